"""Digest of a run folder's artifacts with the timing fields left out: the check that a structural change of the code
changed no result (issue #24: smoke-profile artifacts bit-identical before and after every structural step).

    python tools/smoke_digest.py --run-to /tmp/before      # a 2-seed smoke run, then its digest -> /tmp/before.json
    ... change the code ...
    python tools/smoke_digest.py --run-to /tmp/after --against /tmp/before.json

Every .npy, .safetensors and .pt file is hashed as bytes; every .json and .csv is hashed after dropping the keys and
columns that hold times or speeds (TIMING), which differ between any two runs. Notebooks, figures and Markdown are
left out: they carry times and random style ids. Exits 1, naming the files, when a digest differs from --against.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

TIMING = {"compare_seconds", "docs_per_s", "epoch_seconds", "finished", "started", "infer_docs_per_s", "s_per_epoch",
          "seconds", "seconds_per_epoch", "tokens_per_s", "train_seconds",
          # a meta-MLP's folder holds its seconds per epoch in meta.json: its size moves with that number's digits
          # (its weights are hashed byte for byte as .safetensors)
          "checkpoint_bytes", "checkpoint_mb"}
BYTES = (".npy", ".safetensors", ".pt")
RENAMED: dict[str, str] = {}  # old key -> new key, for a step that renames stored keys on purpose


def _strip(obj):
    if isinstance(obj, dict):
        return {RENAMED.get(k, k): _strip(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _json_digest(text: str) -> str:
    return hashlib.sha256(json.dumps(_strip(json.loads(text)), sort_keys=True).encode()).hexdigest()


def digest(run: Path) -> dict[str, str]:
    out = {}
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        rel = str(path.relative_to(run))
        if path.suffix in BYTES:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.suffix == ".json" and path.name not in ("run.json", "manifest.json"):  # start times, versions
            out[rel] = _json_digest(path.read_text())
        elif path.suffix == ".csv":
            frame = pd.read_csv(path).rename(columns=RENAMED)
            frame = frame.drop(columns=[c for c in frame.columns if c in TIMING])
            buf = io.StringIO()
            frame.to_csv(buf, index=False)
            out[rel] = hashlib.sha256(buf.getvalue().encode()).hexdigest()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-to", type=Path, required=True, help="TEXTLAB_RUNS folder for a fresh 2-seed smoke run")
    ap.add_argument("--against", type=Path, help="a digest written before the change")
    ap.add_argument("--no-run", action="store_true", help="digest what --run-to already holds")
    args = ap.parse_args()
    env = {**os.environ, "TEXTLAB_RUNS": str(args.run_to), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    if not args.no_run:
        command = ["run", "--profile", "smoke", "--set", "seeds=42,43", "--fresh"]
        subprocess.run([sys.executable, "-m", "textlab", *command], env=env, check=True, stdout=subprocess.DEVNULL)
    found = digest(args.run_to / "smoke")
    args.run_to.with_suffix(".json").write_text(json.dumps(found, indent=1))
    print(f"{len(found)} artifacts digested -> {args.run_to.with_suffix('.json')}")
    if args.against:
        before = json.loads(args.against.read_text())
        differ = sorted(k for k in before.keys() | found.keys() if before.get(k) != found.get(k))
        print("identical" if not differ else "DIFFER:\n  " + "\n  ".join(differ))
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
