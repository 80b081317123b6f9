"""Tuning log of the cpu profile: one committed JSON record per training run, one table per model.

  python benchmarks/tuning_table.py add runs/cpu/seed-42/bilstm --label baseline   # record a finished run
  python benchmarks/tuning_table.py                                      # figures/tuning_<kind>.md

Records live in benchmarks/results/tuning/ (settings + per-epoch validation history + final scores);
the tables are regenerated from them. Runs are compared on validation accuracy; the test column is
reported after the choice, never used for it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from textlab.artifacts import read_json, write_text
from textlab.config import PROFILES
from textlab.runs import PUBLISHED, figures_dir, runs_root
from textlab.tuning import save_record, tuning_markdown, tuning_table

RECORDS = Path(__file__).resolve().parent / "results" / "tuning"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    add = sub.add_parser("add", help="record a finished model folder (e.g. runs/cpu/seed-42/bilstm)")
    add.add_argument("model_dir")
    add.add_argument("--label", required=True)
    parser.add_argument("--baseline", default="baseline")
    args = parser.parse_args()
    if args.command == "add":
        print(save_record(args.model_dir, args.label, RECORDS))
        return
    records = [read_json(p) for p in sorted(RECORDS.glob("*.json"))]
    out = figures_dir(PROFILES[PUBLISHED], runs_root() / PUBLISHED)  # the committed figures/
    for kind in sorted({r["kind"] for r in records}):
        table = tuning_table([r for r in records if r["kind"] == kind], args.baseline)
        path = out / f"tuning_{kind}.md"
        write_text(path, tuning_markdown(table))
        print(path)


if __name__ == "__main__":
    main()
