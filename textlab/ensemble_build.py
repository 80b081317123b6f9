"""A run's ensembles (notebook 04): each training seed's, chosen on validation from its members' cached logits, then
the run's choice over every seed's variants and the deep ensembles across seeds; their artifacts in the run folder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import runs
from .artifacts import SCHEMA, read_npy, write_json, write_npy, write_text
from .ensemble import MetaMLPEnsemble
from .ensemble_choice import choose_across_seeds, choose_ensemble, wins
from .errors import CheckpointError
from .kinds import NEURAL
from .pipeline import SPLITS, Prepared, member_logits, seed_dir, train_tfidf, under_run_lock


@under_run_lock
def build_ensemble(prep: Prepared) -> tuple[dict, object, dict]:
    """Each training seed's ensemble (_seed_ensemble), then the run's: the deep ensembles over every seed's members
    against every seed's variants, chosen on validation CV alone (ensemble_choice.choose_across_seeds). Writes
    ensemble/{table.csv, ensemble.json, proba_test_chosen.npy, metrics.json}; returns ({seed: (report, record)},
    the run's report, the run's record)."""
    run, seeds = prep.run_dir, prep.profile.seeds
    per_seed, members = {}, {}
    for seed in seeds:
        report, record, members[seed], (y_val, y_test) = _seed_ensemble(prep, seed)
        per_seed[seed] = (report, record)
    t0 = time.perf_counter()
    report = choose_across_seeds({s: r for s, (r, _) in per_seed.items()}, members, y_val, y_test,
                                 prep.profile.ensemble, seed=prep.profile.split_seed)
    seconds = time.perf_counter() - t0
    out = run / "ensemble"
    write_text(out / "table.csv", report.table.to_csv(index=False))
    row = report.table.set_index("variant").loc[report.chosen]
    seed = None if row["seed"] == "all" else int(row["seed"])
    variant = report.fitted[report.chosen]
    stage = {**_ensemble_stage(variant, report.chosen, out, "chosen_meta_mlp"), "seed": seed,
             "member_folders": [member_folder(m, seed).as_posix() for m in variant.members]}
    write_json(out / "ensemble.json", stage)
    write_npy(out / "proba_test_chosen.npy", report.test_proba[report.chosen].astype(np.float32))
    record = {"schema": SCHEMA, "chosen": report.chosen, "seed": seed, "seeds": list(seeds),
              "row": row.to_dict(), "stage": stage, "compare_seconds": seconds, "label_names": prep.label_names,
              "wins": wins({s: r for s, (r, _) in per_seed.items()}).to_dict("records")}
    write_json(out / "metrics.json", record)
    return per_seed, report, record


def member_folder(member: str, seed: int | None) -> Path:
    """A member of an ensemble, relative to the run folder: "bert@43" -> seed-43/bert; "bert" of seed 42 ->
    seed-42/bert."""
    kind, _, own = member.partition("@")
    return Path(seed_dir(Path(), int(own) if own else seed)) / kind


def _seed_ensemble(prep: Prepared, seed: int):
    """One seed's members' cached logits -> every ensemble variant, compared on validation by cross-validation;
    writes seed-<seed>/ensemble/: the table, the chosen and the seed-exact ensembles, and their test probabilities.
    Returns (report, record, {member: {split: logits}}, (validation labels, test labels))."""
    profile, root = prep.profile, seed_dir(prep.run_dir, seed)
    for kind in NEURAL:  # finished and evaluated, not only checkpointed (a training cut short has a checkpoint)
        if not (root / kind / "metrics.json").exists():
            raise CheckpointError(f"{root / kind} holds no finished {kind} training: "
                                       f"{runs.train_first(prep.run_dir, kind)}")
    if not (root / "tfidf" / "metrics.json").exists():
        train_tfidf(prep, seed)
    cached = {kind: member_logits(root / kind, prep) for kind in NEURAL}  # {kind: {split: (logits, labels)}}
    logits = {kind: {s: pair[0] for s, pair in splits.items()} for kind, splits in cached.items()}
    logits["tfidf"] = {s: read_npy(root / "tfidf" / f"logits_{s}.npy") for s in SPLITS}
    y_val, y_test = cached["bert"]["validation"][1], cached["bert"]["test"][1]
    t0 = time.perf_counter()
    report = choose_ensemble(logits, y_val, y_test, profile.ensemble, seed=seed)
    seconds = time.perf_counter() - t0
    out = root / "ensemble"
    write_text(out / "table.csv", report.table.to_csv(index=False))
    stages = {}
    for tag, name in (("seed", report.seed_meta_mlp.name), ("chosen", report.chosen)):
        stages[tag] = _ensemble_stage(report.fitted[name], name, out, f"{tag}_meta_mlp")
        write_npy(out / f"proba_test_{tag}.npy", report.test_proba[name].astype(np.float32))
    write_json(out / "ensemble.json", stages["chosen"])
    table = report.table.set_index("variant")
    singles = report.table[report.table["kind"] == "single"].sort_values("val_cv_accuracy", ascending=False)
    record = {"schema": SCHEMA, "seed": seed, "chosen": report.chosen, "seed_exact": report.seed_meta_mlp.name,
              "compare_seconds": seconds,
              "rows": {tag: table.loc[st["variant"]].to_dict() for tag, st in stages.items()},
              "stages": stages, "best_single_on_validation": singles["variant"].iloc[0],
              "singles": singles.set_index("variant")[["val_cv_accuracy", "test_accuracy", "test_macro_f1"]]
              .to_dict("index"), "label_names": prep.label_names}
    write_json(out / "metrics.json", record)
    return report, record, logits, (y_val, y_test)


def _ensemble_stage(variant, name: str, out: Path, folder: str) -> dict:
    """The ensemble's own stage: its describe() with fitted parameters and checkpoint size (a meta-MLP is saved to
    out/folder)."""
    info = {"variant": name, "class": type(variant).__name__, "own_params": int(variant.n_fitted),
            "seconds_per_epoch": None, "checkpoint_bytes": 0, **variant.describe()}
    if isinstance(variant, MetaMLPEnsemble):
        saved = variant.save(out / folder)
        info.update(checkpoint=folder, checkpoint_bytes=sum(f.stat().st_size for f in saved.iterdir()))
    return info
