"""The same cpu-profile run (training seed 42, the same code and settings) made on two CPU kinds: every model's test
score side by side, from each run's figures/comparison.csv, and how many points it moved. Scores are bit-identical
on the same CPU kind; across kinds the bf16 kernels (AMX tiles against AVX512-BF16 dot products) round differently,
so training takes another path. A source is a path, or REV:PATH for a file in this repository's history.

  python benchmarks/cpu_kinds.py --run "Intel Xeon (AMX)=09f073c:figures/comparison.csv" \\
      --run "AMD EPYC (AVX512-BF16)=runs/cpu/figures/comparison.csv" --json benchmarks/results/cpu_kinds.json
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def read_source(source: str) -> tuple[pd.DataFrame, str]:
    """The CSV at `source` (a path, or REV:PATH from git) and where it came from, commit included."""
    if ":" in source and not Path(source).exists():
        rev, path = source.split(":", 1)
        commit = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, text=True, capture_output=True,
                                check=True).stdout.strip()
        text = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, text=True, capture_output=True,
                              check=True).stdout
        return pd.read_csv(io.StringIO(text)), f"{path} at commit {commit[:7]}"
    return pd.read_csv(source), source


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="NAME=SOURCE")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    kinds = {}
    for item in args.run:
        name, source = item.split("=", 1)
        table, where = read_source(source)
        table = table[~table["model"].str.startswith("seed report")]
        kinds[name] = {"source": where, "device": table["device"].iloc[0],
                       "test_accuracy": dict(zip(table["model"], table["test_accuracy"])),
                       "s_per_epoch": {m: s for m, s in zip(table["model"], table["s_per_epoch"]) if pd.notna(s)}}
    for name, k in kinds.items():
        print(name, k["source"])
        for model, acc in k["test_accuracy"].items():
            print(f"  {100 * acc:6.2f} %  {model}")
    if args.json:
        args.json.write_text(json.dumps(kinds, indent=1) + "\n")


if __name__ == "__main__":
    main()
