"""Which ensemble: every variant compared honestly on validation, the choice made there, test looked at once.

The seed's meta-MLP, trained on validation logits, lost to a plain probability average. Here every
variant that fits parameters is scored by out-of-fold cross-validation on validation, the choice is
made from those scores alone, and the seed's exact meta-MLP stays in the table as the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np
import pandas as pd

from .config import EnsembleConfig
from .ensemble import (MetaMLPEnsemble, ProbAverage, TemperatureAverage, Variant, WeightedAverage, check_labels,
                       check_logits)
from .evaluate import metrics
from .kinds import NEURAL
from .stats import softmax, stratified_folds


def _oof_proba(make_variant: Callable[[], Variant], member_logits, y, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold probabilities: each validation fold predicted by a variant fit on the other folds."""
    arrays = check_logits(member_logits)
    proba = np.zeros(arrays[0].shape)
    for tr, te in stratified_folds(y, folds, seed):
        variant = make_variant().fit([z[tr] for z in arrays], y[tr])
        proba[te] = variant.predict_proba([z[te] for z in arrays])
    return proba


def _nll(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)).mean())


@dataclass
class EnsembleReport:
    """The comparison table, the chosen ensemble's row name, and the probabilities and fits behind it."""

    table: pd.DataFrame
    chosen: str
    test_proba: dict[str, np.ndarray] = field(default_factory=dict)
    val_oof_proba: dict[str, np.ndarray] = field(default_factory=dict)
    fitted: dict[str, Variant] = field(default_factory=dict)
    seed_meta_mlp: MetaMLPEnsemble | None = None


def _validate(members: dict, y_val, y_test) -> None:
    """Every member has both splits, finite logits of one class count and one row per label; else name who and what."""
    if not members:
        raise ValueError("no members given")
    want, classes = {"validation": len(y_val), "test": len(y_test)}, None
    for name, splits in members.items():
        missing = [s for s in want if s not in splits]
        if missing:
            raise ValueError(f"member {name!r} lacks the {' and '.join(missing)} logits")
        for split, n in want.items():
            shape = np.shape(splits[split])
            if len(shape) != 2 or shape[0] != n:
                raise ValueError(f"member {name!r}: {split} logits have shape {shape}, expected ({n}, C)")
            if not np.isfinite(splits[split]).all():
                raise ValueError(f"member {name!r}: {split} logits hold NaN or infinite values")
            classes = classes or shape[1]
            if shape[1] != classes:
                raise ValueError(f"member {name!r} has {shape[1]} classes in its {split} logits, the first member "
                                 f"{classes}")
    check_labels(y_val, len(y_val), classes)
    check_labels(y_test, len(y_test), classes)


def _row(name: str, members, kind: str, oof, y_val, test, y_test, n_fitted: int) -> dict:
    val, tst = metrics(oof, y_val, full=False), metrics(test, y_test, full=False)
    return {"variant": name, "members": "+".join(members), "kind": kind, "val_fitted_params": n_fitted,
            "val_cv_accuracy": val["accuracy"], "val_cv_macro_f1": val["macro_f1"], "val_cv_nll": _nll(oof, y_val),
            "test_accuracy": tst["accuracy"], "test_macro_f1": tst["macro_f1"]}


def choose_ensemble(members: dict[str, dict[str, np.ndarray]], y_val, y_test, cfg: EnsembleConfig, seed: int = 0,
                    seed_members=NEURAL) -> EnsembleReport:
    """Singles and every variant over the seed's members and over all members; choose by validation CV only."""
    _validate(members, y_val, y_test)
    absent = [m for m in seed_members if m not in members]
    if absent:
        raise ValueError(f"seed members {absent} are not among the members {list(members)}")
    y_val, y_test = np.asarray(y_val), np.asarray(y_test)
    report = EnsembleReport(table=pd.DataFrame(), chosen="")
    rows = []
    for name, splits in members.items():
        val, test = softmax(splits["validation"]), softmax(splits["test"])
        report.val_oof_proba[name], report.test_proba[name] = val, test
        rows.append(_row(name, (name,), "single", val, y_val, test, y_test, 0))
    groups = [tuple(seed_members)] + ([tuple(members)] if set(members) != set(seed_members) else [])
    for group in groups:
        seed_group = group == tuple(seed_members)
        # fresh-variant factories, so each CV fold and the final refit start unfitted
        makers = [partial(ProbAverage, group), partial(TemperatureAverage, group), partial(WeightedAverage, group),
                  partial(MetaMLPEnsemble, cfg, seed, group, "seed-exact" if seed_group else "")]
        rows += _variant_rows(report, makers, members, group, y_val, y_test, cfg.folds, seed)
        if seed_group:
            report.seed_meta_mlp = report.fitted[rows[-1]["variant"]]
    report.table = _mark_chosen(pd.DataFrame(rows))
    report.chosen = report.table.loc[report.table["chosen"], "variant"].item()
    return report


def _variant_rows(report: EnsembleReport, makers, members: dict, group, y_val, y_test, folds: int,
                  seed: int) -> list[dict]:
    """Each variant over `group`: cross-validated on validation, refit on all of it, then its one look at test;
    recorded in `report`, returned as table rows."""
    val = [members[m]["validation"] for m in group]
    test = [members[m]["test"] for m in group]
    rows = []
    for make in makers:
        oof = _oof_proba(make, val, y_val, folds, seed)
        variant = make().fit(val, y_val)  # refit on the whole validation split before its one look at test
        proba = variant.predict_proba(test)
        report.val_oof_proba[variant.name], report.test_proba[variant.name] = oof, proba
        report.fitted[variant.name] = variant
        rows.append(_row(variant.name, group, "ensemble", oof, y_val, proba, y_test, variant.n_fitted))
    return rows


def seed_key(name: str, seed: int) -> str:
    """A variant of one seed's table, named in the run's table: "temp-average (bert+bilstm) [seed 42]"."""
    return f"{name} [seed {seed}]"


def choose_across_seeds(reports: dict[int, EnsembleReport], members: dict[int, dict[str, dict[str, np.ndarray]]],
                        y_val, y_test, cfg: EnsembleConfig, seed: int = 0) -> EnsembleReport:
    """The run's ensemble. With one training seed, that seed's report. With several, by the same rule as within a
    seed (validation CV accuracy alone): every seed's variants, and the deep ensembles, the averaging variants over
    every seed's members ("bert@42", "bert@43", ...) of BERT + BiLSTM and of all members, cross-validated with the
    folds of `seed`. The table's `seed` column says which seed a row is from ("all": deep)."""
    if len(reports) == 1:
        (only, report), = reports.items()
        report.table = report.table.assign(seed=str(only))
        return report
    y_val, y_test = np.asarray(y_val), np.asarray(y_test)
    run = EnsembleReport(table=pd.DataFrame(), chosen="")
    tables = []
    for s, rep in reports.items():
        tables.append(rep.table.assign(variant=[seed_key(v, s) for v in rep.table["variant"]], seed=str(s)))
        for name in rep.test_proba:
            run.test_proba[seed_key(name, s)] = rep.test_proba[name]
            run.val_oof_proba[seed_key(name, s)] = rep.val_oof_proba[name]
        run.fitted.update({seed_key(name, s): v for name, v in rep.fitted.items()})
    kinds = list(next(iter(members.values())))
    deep = {f"{k}@{s}": members[s][k] for k in kinds for s in members}
    _validate(deep, y_val, y_test)
    tag = f"deep, {len(members)} seeds"
    rows = []
    for group_kinds in dict.fromkeys((NEURAL, tuple(kinds))):
        group = tuple(f"{k}@{s}" for k in group_kinds for s in members)
        makers = [partial(ProbAverage, group, tag), partial(TemperatureAverage, group, tag),
                  partial(WeightedAverage, group, tag)]
        rows += _variant_rows(run, makers, deep, group, y_val, y_test, cfg.folds, seed)
    tables.append(pd.DataFrame(rows).assign(seed="all"))
    run.table = _mark_chosen(pd.concat([t.drop(columns="chosen", errors="ignore") for t in tables],
                                       ignore_index=True))
    run.chosen = run.table.loc[run.table["chosen"], "variant"].item()
    return run


def wins(reports: dict[int, EnsembleReport]) -> pd.DataFrame:
    """How often each variant was chosen within a seed: variant, seeds (that chose it), wins."""
    chosen = pd.DataFrame({"variant": [r.chosen for r in reports.values()], "seed": list(map(str, reports))})
    return (chosen.groupby("variant", sort=False)["seed"].agg([", ".join, "size"])
            .set_axis(["seeds", "wins"], axis=1).reset_index().sort_values("wins", ascending=False, kind="stable"))


def _mark_chosen(table: pd.DataFrame) -> pd.DataFrame:
    """Flag the ensemble with the best validation CV accuracy; ties go to fewer fitted parameters, then members."""
    ens = table[table["kind"] == "ensemble"].assign(n_members=lambda t: t["members"].str.count(r"\+") + 1)
    best = ens.sort_values(["val_cv_accuracy", "val_fitted_params", "n_members"], ascending=[False, True, True],
                           kind="stable").index[0]
    return table.assign(chosen=table.index == best)


def seed_choices(records: dict[int, dict]) -> pd.DataFrame:
    """One line per training seed (its record from ensemble_build): the ensemble chosen on validation, the best
    single model on validation, and the chosen ensemble's paired test gain over that single model."""
    rows = []
    for seed, rec in records.items():
        best = rec["best_single_on_validation"]
        best_acc = rec["singles"][best]["test_accuracy"]
        chosen = rec["rows"]["chosen"]
        rows.append({"seed": str(seed), "chosen": rec["chosen"], "chosen_val_cv_accuracy": chosen["val_cv_accuracy"],
                     "chosen_test_accuracy": chosen["test_accuracy"], "best_single": best,
                     "best_single_test_accuracy": best_acc, "gain_points": 100 * (chosen["test_accuracy"] - best_acc)})
    return pd.DataFrame(rows)


def shown_variants(reports: dict[int, EnsembleReport], run: EnsembleReport) -> tuple[dict[str, np.ndarray], str]:
    """What a figure of variants shows: the test probabilities of the first seed's singles and variants (named with
    their seed where there are several), of the deep ones, and of the run's choice wherever it comes from; and the
    key of the run's choice, the one to mark."""
    first = next(iter(reports))
    keep = lambda k: " [seed " not in k or k.endswith(f" [seed {first}]") or k == run.chosen  # noqa: E731
    return {k: v for k, v in run.test_proba.items() if keep(k)}, run.chosen
