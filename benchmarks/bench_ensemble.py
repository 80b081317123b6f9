"""Notebook 04's ensemble choice on a trained run's cached logits, side by side in one process: the meta-MLP's inner
cross-validation on one process (n_jobs=1) and on every core (what textlab does), with the check that both choose
the same ensemble with the same bits; and where the time goes, per variant and member group.

Usage (after `make run`):
  python benchmarks/bench_ensemble.py --run runs/cpu/seed-42 --json benchmarks/results/ensemble_cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from unittest import mock

import numpy as np

from textlab import ensemble
from textlab.artifacts import read_npy
from textlab.config import get_profile
from textlab.ensemble_choice import _oof_proba, choose_ensemble

MEMBERS = ("bert", "bilstm", "tfidf")
VARIANTS = {"prob-average": ensemble.ProbAverage, "temp-average": ensemble.TemperatureAverage,
            "weighted-average": ensemble.WeightedAverage}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/cpu/seed-42"), help="one training seed's folder")
    parser.add_argument("--profile", default="cpu", help="the run's profile (its ensemble settings)")
    parser.add_argument("--seed", type=int, default=42, help="the folder's training seed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    cfg, seed = profile.ensemble, args.seed
    logits = {m: {s: read_npy(args.run / m / f"logits_{s}.npy") for s in ("validation", "test")} for m in MEMBERS}
    y_val, y_test = (read_npy(args.run / "bert" / f"labels_{s}.npy") for s in ("validation", "test"))

    rows, reports = {}, {}
    for name, cores in (("one process", lambda: 1), ("every core", ensemble.cpu_count)):
        with mock.patch.object(ensemble, "cpu_count", cores):
            t0 = time.perf_counter()
            reports[name] = choose_ensemble(logits, y_val, y_test, cfg, seed=seed)
            rows[name] = {"seconds": time.perf_counter() - t0, "processes": cores()}
        print(f"{name:<12} {rows[name]['processes']} process(es): {rows[name]['seconds']:.1f} s", flush=True)
    a, b = reports.values()
    identical = a.table.equals(b.table) and all(np.array_equal(a.test_proba[k], b.test_proba[k]) for k in a.test_proba)
    speedup = rows["one process"]["seconds"] / rows["every core"]["seconds"]
    print(f"x{speedup:.2f}; same table and test probabilities, bit for bit: {identical}")

    split = {}  # seconds of each variant's out-of-fold predictions and refit (every core), per member group
    for group in (("bert", "bilstm"), MEMBERS):
        val = [logits[m]["validation"] for m in group]
        makers = {**{k: (lambda v=v: v(group)) for k, v in VARIANTS.items()},
                  "meta-MLP": lambda: ensemble.MetaMLPEnsemble(cfg, seed, group)}
        for kind, make in makers.items():
            key, t0 = f"{kind} ({'+'.join(group)})", time.perf_counter()
            _oof_proba(make, val, y_val, cfg.folds, seed)
            make().fit(val, y_val)
            split[key] = time.perf_counter() - t0
            print(f"  {key}: {split[key]:.1f} s", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"run": str(args.run), "profile": args.profile, "rows": rows,
                                         "speedup": speedup, "identical": identical,
                                         "seconds_per_variant_every_core": split}, indent=2) + "\n")


if __name__ == "__main__":
    main()
