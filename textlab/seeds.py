"""Seed spread: every model's test scores per training seed, their mean ± sd, paired gaps between models, and the
sentences of "what the run shows", each stated only as far as the seeds carry it.

A gap between two models is called larger than the seed spread when the 95 % t-interval of the paired per-seed
differences excludes zero (|mean| > t(0.975, n - 1) · sd / √n); a single number (a published score, a deep ensemble)
against a model's seeds, when it lies outside the 95 % prediction interval of one more seed (t · sd · √(1 + 1/n)).
Otherwise it is inside the seed spread. This is about training seeds only: the test set's own sampling noise is
what the bootstrap intervals of notebook 05 show. One seed measures no seed spread: its gaps are one seed's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from .artifacts import read_json
from .errors import CheckpointError
from .kinds import MEMBERS
from .display import readable
from .runs import run_seeds

SEED_EXACT = "ensemble: meta-MLP (seed-exact)"
WITHIN_SEED = "ensemble chosen within each seed"
SCORES = ("test_accuracy", "test_macro_f1", "val_accuracy")


def seed_table(records: dict[int, dict]) -> pd.DataFrame:
    """One line per training seed of one model (train_seeds' records): validation and test accuracy / macro-F1,
    best epoch, epochs run, training seconds; with several seeds, mean and sd lines below."""
    rows = [{"seed": str(seed), "val_accuracy": r["validation"]["accuracy"],
             "val_macro_f1": r["validation"]["macro_f1"],
             "test_accuracy": r["test"]["accuracy"], "test_macro_f1": r["test"]["macro_f1"],
             "best_epoch": r["best_epoch"], "epochs_run": r["epochs_run"], "train_s": r.get("train_seconds")}
            for seed, r in records.items()]
    table = pd.DataFrame(rows)
    if len(rows) > 1:
        scores = table.drop(columns="seed").astype(float)
        table = pd.concat([table, scores.mean().to_frame("mean").T.assign(seed="mean"),
                           scores.std(ddof=1).to_frame("sd").T.assign(seed="sd")], ignore_index=True)
    return table


def study_scores(run) -> pd.DataFrame:
    """Test (and validation) scores of every model of a run, one row per (model, seed): the three members, the seed's
    meta-MLP and the ensemble chosen within each seed; the run's own choice with seed "all" when it is a deep
    ensemble. Columns: model, seed, test_accuracy, test_macro_f1, val_accuracy, variant."""
    run = Path(run)
    rows = []
    for s in run_seeds(run):
        folder, seed = run / f"seed-{s}", str(s)
        for kind in MEMBERS:
            rec = _read(folder / kind / "metrics.json")
            rows.append({"model": rec["display_name"], "seed": seed, "test_accuracy": rec["test"]["accuracy"],
                         "test_macro_f1": rec["test"]["macro_f1"], "val_accuracy": rec["validation"]["accuracy"],
                         "variant": kind})
        ens = _read(folder / "ensemble" / "metrics.json")
        for tag, model in (("seed", SEED_EXACT), ("chosen", WITHIN_SEED)):
            row = ens["rows"][tag]
            rows.append({"model": model, "seed": seed, "test_accuracy": row["test_accuracy"],
                         "test_macro_f1": row["test_macro_f1"], "val_accuracy": row["val_cv_accuracy"],
                         "variant": ens["stages"][tag]["variant"]})
    run_choice = run_record(run)
    row = run_choice["row"]
    rows.append({"model": chosen_name(run_choice),
                 "seed": "all" if run_choice["seed"] is None else str(run_choice["seed"]),
                 "test_accuracy": row["test_accuracy"], "test_macro_f1": row["test_macro_f1"],
                 "val_accuracy": row["val_cv_accuracy"], "variant": run_choice["chosen"]})
    return pd.DataFrame(rows)


def run_record(run) -> dict:
    """The run's ensemble choice (ensemble/metrics.json), refused if it was made over other seeds than the run's."""
    record = _read(Path(run) / "ensemble" / "metrics.json")
    if record.get("seeds") != run_seeds(run):
        raise CheckpointError(f"{Path(run) / 'ensemble'} was chosen over seeds {record.get('seeds')}, the run has "
                              f"{run_seeds(run)}: run notebook 04 of this run again")
    return record


def chosen_name(record: dict) -> str:
    """The run's chosen ensemble as the tables name it."""
    return f"ensemble chosen on validation: {readable(record['chosen'])}"


def _read(path: Path) -> dict:
    if not path.exists():
        raise CheckpointError(f"{path} is missing: run notebooks 02-04 of this run first")
    return read_json(path)


def spread(scores: pd.DataFrame, column: str = "test_accuracy") -> pd.DataFrame:
    """Per model, in first-seen order: `column`_mean, _sd (over seeds, n - 1), _min, _max, and seeds (n)."""
    grouped = scores.groupby("model", sort=False)[column]
    out = grouped.agg(["mean", "std", "min", "max", "size"])
    out.columns = [f"{column}_{c}" for c in ("mean", "sd", "min", "max")] + ["seeds"]
    return out.reset_index()


def ensemble_records(run) -> dict[int, dict]:
    """Each training seed's ensemble record (seed-<seed>/ensemble/metrics.json), by seed."""
    return {s: _read(Path(run) / f"seed-{s}" / "ensemble" / "metrics.json") for s in run_seeds(run)}


def paired(scores: pd.DataFrame, a: str, b: str, column: str = "test_accuracy") -> dict:
    """`a` minus `b` seed by seed (the seeds both have): the differences, their mean, the half-width of their 95 %
    t-interval, and whether the gap is larger than the seed spread (module docstring)."""
    wide = scores.pivot_table(index="seed", columns="model", values=column, sort=False)
    diff = (wide[a] - wide[b]).dropna()
    n, gap = len(diff), float(diff.mean())
    half = float(student_t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    verdict = "one seed" if n < 2 else "larger than the seed spread" if abs(gap) > half else "inside the seed spread"
    return {"a": a, "b": b, "diffs": diff.to_dict(), "gap": gap, "min": float(diff.min()), "max": float(diff.max()),
            "n": n, "half_width": half, "verdict": verdict}


def against_one(scores: pd.DataFrame, model: str, value: float, column: str = "test_accuracy") -> dict:
    """One number (a published score, a deep ensemble) against `model`'s seeds: outside the seed spread when it lies
    outside the 95 % prediction interval of one more seed of `model`."""
    s = scores.loc[scores["model"] == model, column]
    n, gap = len(s), float(value - s.mean())
    half = float(student_t.ppf(0.975, n - 1) * s.std(ddof=1) * np.sqrt(1 + 1 / n)) if n > 1 else float("nan")
    verdict = "one seed" if n < 2 else "outside the seed spread" if abs(gap) > half else "inside the seed spread"
    return {"gap": gap, "verdict": verdict, "n": n, "half_width": half}


def pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def points(v: float) -> str:
    return f"{100 * v:+.2f} points"


def mean_sd(scores: pd.DataFrame, model: str, column: str = "test_accuracy") -> str:
    s = scores.loc[scores["model"] == model, column]
    if len(s) < 2:
        return pct(s.iloc[0])
    return f"{100 * s.mean():.2f} ± {100 * s.std(ddof=1):.2f} % (min {pct(s.min())}, max {pct(s.max())})"


def conclusions(scores: pd.DataFrame, reference: list[dict] | None = None) -> list[str]:
    """The sentences of "what the run shows", each generated from `scores` (study_scores) and, on 20 Newsgroups,
    the seed report's published numbers (`reference`: rows with "ours", the prefix of the model each stands beside,
    test_accuracy and setting). Nothing is claimed that the numbers do not carry: every gap says whether it is
    larger than the seed spread."""
    seeds = sorted(set(scores["seed"]) - {"all"}, key=int)
    n = len(seeds)
    singles = scores[scores["variant"].isin(MEMBERS)]
    ranked = spread(singles).sort_values("test_accuracy_mean", ascending=False)["model"].tolist()
    # the ensembles' comparator: the single model best on validation, as notebook 04 picks it (on test only where
    # the scores carry no validation accuracy)
    on = "validation" if "val_accuracy" in singles and singles["val_accuracy"].notna().all() else "test"
    column = "val_accuracy" if on == "validation" else "test_accuracy"
    best = spread(singles, column).sort_values(f"{column}_mean", ascending=False)["model"].iloc[0]
    out = [f"{n} training seed{'s' * (n > 1)} ({', '.join(seeds)}): "
           + ("scores are mean ± sd over seeds, and a gap counts only where it is larger than the seed spread."
              if n > 1 else "one seed measures no seed spread, so no gap below can be called larger than it.")]
    out.append("Single models, by mean test accuracy: " + "; ".join(f"{m} {mean_sd(scores, m)}" for m in ranked) + ".")
    out += [f"{ranked[0]} against {other}: {_gap(paired(scores, ranked[0], other))}." for other in ranked[1:]]
    run = scores[scores["model"].str.startswith("ensemble chosen on validation")].iloc[0]
    if n == 1:
        gap = paired(scores.assign(model=scores["model"].replace({run["model"]: WITHIN_SEED})), WITHIN_SEED, best)
        out.append(f"The ensemble chosen on validation, {readable(run['variant'])}, "
                   f"reaches {pct(run['test_accuracy'])}; "
                   f"against the best single model on {on}, {best}: {_gap(gap)}.")
    else:
        wins = scores.loc[scores["model"] == WITHIN_SEED, "variant"].value_counts()
        others = ", ".join(f"{readable(v)} {c}" for v, c in wins.iloc[1:].items())
        out.append(f"The ensemble chosen within each seed reaches {mean_sd(scores, WITHIN_SEED)}; against the best "
                   f"single model on {on}, {best}, seed by seed: {_gap(paired(scores, WITHIN_SEED, best))}. "
                   f"Within a seed the choice was {readable(wins.index[0])} in {wins.iloc[0]} of {n} seeds"
                   + (f" (other choices: {others})." if others else "."))
    if n == 1:
        pass
    elif run["seed"] == "all":
        vs = against_one(scores, best, run["test_accuracy"])
        out.append(f"The run's choice on validation is the deep {readable(run['variant'])}, one model over every "
                   f"seed's members: {pct(run['test_accuracy'])}, {points(vs['gap'])} from the mean of {best} "
                   "(best single model on "
                   f"{on}), "
                   f"{_one(vs, 'the seed spread of ' + best)}.")
    else:
        out.append(f"The run's choice on validation is {readable(run['variant'])}: {pct(run['test_accuracy'])}.")
    if (scores["model"] == SEED_EXACT).any() and (scores["model"] == "BERT classifier").any():
        out.append(f"The seed report's meta-MLP, reproduced exactly, against BERT: "
                   f"{_gap(paired(scores, SEED_EXACT, 'BERT classifier'))}.")
    for ref in reference or []:
        ours = next((m for m in ranked + [SEED_EXACT] if m.startswith(ref["ours"])), None)
        if ours is not None:
            vs = against_one(scores, ours, ref["test_accuracy"])
            out.append(f"{ours}: {mean_sd(scores, ours)} here against {pct(ref['test_accuracy'])} in the seed report "
                       f"(one published number, {ref['setting']}): {points(-vs['gap'])}, "
                       f"{_one(vs, 'our seed spread')}.")
    return out


def _gap(p: dict) -> str:
    """"+3.17 points on average (per seed +3.10 to +3.20; 95 % interval ± 0.12): larger than the seed spread"."""
    if p["n"] < 2:
        return f"{points(p['gap'])} (one seed)"
    return (f"{points(p['gap'])} on average (per seed {100 * p['min']:+.2f} to {100 * p['max']:+.2f}; 95 % interval "
            f"± {100 * p['half_width']:.2f}): {p['verdict']}")


def _one(vs: dict, spread_of: str) -> str:
    """against_one's verdict as words: "outside the seed spread of BERT classifier"."""
    if vs["n"] < 2:
        return "one seed"
    return f"{vs['verdict'].replace('the seed spread', '').strip()} {spread_of}"
