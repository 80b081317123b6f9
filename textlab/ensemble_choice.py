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
from sklearn.model_selection import StratifiedKFold

from .config import EnsembleConfig
from .ensemble import (MetaMLPEnsemble, ProbAverage, TemperatureAverage, Variant, WeightedAverage, check_labels,
                       check_logits)
from .evaluate import metrics
from .stats import softmax


def _oof_proba(make_variant: Callable[[], Variant], member_logits, y, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold probabilities: each validation fold predicted by a variant fit on the other folds."""
    arrays = check_logits(member_logits)
    proba = np.zeros(arrays[0].shape)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(arrays[0], y):
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
                    seed_members=("bert", "bilstm")) -> EnsembleReport:
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
        val = [members[m]["validation"] for m in group]
        test = [members[m]["test"] for m in group]
        # fresh-variant factories, so each CV fold and the final refit start unfitted
        for make in (partial(ProbAverage, group), partial(TemperatureAverage, group), partial(WeightedAverage, group),
                     partial(MetaMLPEnsemble, cfg, seed, group, "seed-exact" if seed_group else "")):
            oof = _oof_proba(make, val, y_val, cfg.folds, seed)
            variant = make().fit(val, y_val)  # refit on the whole validation split before its one look at test
            proba = variant.predict_proba(test)
            report.val_oof_proba[variant.name], report.test_proba[variant.name] = oof, proba
            report.fitted[variant.name] = variant
            rows.append(_row(variant.name, group, "ensemble", oof, y_val, proba, y_test, variant.n_fitted))
            if seed_group and isinstance(variant, MetaMLPEnsemble):
                report.seed_meta_mlp = variant
    report.table = _mark_chosen(pd.DataFrame(rows))
    report.chosen = report.table.loc[report.table["chosen"], "variant"].item()
    return report


def _mark_chosen(table: pd.DataFrame) -> pd.DataFrame:
    """Flag the ensemble with the best validation CV accuracy; ties go to fewer fitted parameters, then members."""
    ens = table[table["kind"] == "ensemble"].assign(n_members=lambda t: t["members"].str.count(r"\+") + 1)
    best = ens.sort_values(["val_cv_accuracy", "val_fitted_params", "n_members"], ascending=[False, True, True],
                           kind="stable").index[0]
    return table.assign(chosen=table.index == best)
