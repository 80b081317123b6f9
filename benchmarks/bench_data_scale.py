"""Own data at scale: wall time and peak memory of every stage before training, for own-data files of 10 k, 100 k
and 1 M documents, on this machine.

Each size runs in a fresh process (its own memory baseline), with a fresh tokenization cache. The file is a .csv
with `text` and `label` columns (no `split` column: textlab carves the stratified 20 % test split), generated from
the 20 Newsgroups training documents: each document is lines of one class drawn at random from that class's
documents, as many lines as a random training document of the class has, so lengths, vocabulary and classes follow
20NG's (mean 354 WordPiece tokens) while every document is new. The stages are what `textlab run` does before the
first training step, through textlab's own functions:

  read_and_check   data.load_for_profile: read the file, check it (warnings), test and validation splits
  fingerprint      runs.dataset_fingerprint: SHA-256 of every split's texts and labels (the run's identity)
  tokenize         WordPiece at every length the profile's models read (cpu: BiLSTM 256, BERT 512), cache cold
  tokenize_cached  the same again: cache hits, as in every notebook after 01
  overview         what notebook 01 shows: split sizes, class counts, token lengths, empty documents, examples
  tfidf_fit        the TF-IDF + linear SVM member trained on the training split (notebook 04, no GPU needed)
  tfidf_predict    that member on the test split

Peak memory is the largest resident set size sampled every 20 ms during the stage (psutil), so it includes what
earlier stages still hold. `--run` adds `textlab predict` throughput of a trained run's BERT, BiLSTM and ensemble on
500 generated documents, and every size's training epoch is extrapolated from that run's measured tokens per second.
Usage:
  python benchmarks/bench_data_scale.py --run runs/study --json benchmarks/results/data_scale_cpu.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

STAGES = ("read_and_check", "fingerprint", "tokenize", "tokenize_cached", "overview", "tfidf_fit", "tfidf_predict")
BEFORE_TRAINING = ("read_and_check", "fingerprint", "tokenize", "overview")  # what `textlab run` does before training


def generate(n: int, path: Path, seed: int = 0) -> None:
    """`n` new documents made of 20NG training lines of one class (see the module docstring), written as a .csv."""
    from textlab.data import load_data

    train = load_data(os.environ.get("TEXTLAB_20NG"))["train"]
    names = train.features["label"].names
    rng = np.random.default_rng(seed)
    by_class = {}
    for text, label in zip(train["text"], train["label"]):
        by_class.setdefault(label, []).append(text.split("\n"))
    classes = rng.integers(0, len(names), size=n)
    texts = []
    for c in range(len(names)):
        docs = by_class[c]
        lines = [line for doc in docs for line in doc]
        where = np.flatnonzero(classes == c)
        counts = np.array([len(docs[i]) for i in rng.integers(0, len(docs), size=len(where))])
        picks = rng.integers(0, len(lines), size=counts.sum())
        ends = np.cumsum(counts)
        texts.extend((i, "\n".join(lines[j] for j in picks[e - k:e])) for i, k, e in zip(where, counts, ends))
    texts.sort()
    # Every text quoted: to_csv leaves a text with a lone \r unquoted, and readers end the row there.
    pd.DataFrame({"text": [t for _, t in texts], "label": [names[c] for c in classes]}).to_csv(
        path, index=False, quoting=csv.QUOTE_NONNUMERIC)


@contextmanager
def measured(rows: dict, stage: str):
    """Wall seconds and peak RSS (sampled every 20 ms) of the block, stored as rows[stage]."""
    proc, peak, done = psutil.Process(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            done.wait(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        thread.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        rows[stage] = {"seconds": seconds, "peak_rss_gib": peak[0] / 2**30}
        print(f"  {stage:<16} {seconds:8.1f} s  peak {peak[0] / 2**30:6.2f} GiB", flush=True)


def one_size(path: Path, run: Path | None) -> dict:
    """Every stage on one file, in this process."""
    from textlab import pipeline, runs
    from textlab.backbones import get_backbone
    from textlab.config import resolve
    from textlab.data import load_for_profile
    from textlab.dataset import column, iter_texts
    from textlab.overview import overview
    from textlab.models.tfidf import TfidfSVM

    import datasets

    datasets.disable_progress_bars()
    profile = resolve("cpu", data=str(path))
    tokenizer = get_backbone(profile.backbone).tokenizer()
    lengths = sorted({(pipeline.model_max_length(profile, k), getattr(profile, k).truncation) for k in ("bert",
                                                                                                       "bilstm")})
    rows, out = {}, {}
    with measured(rows, "read_and_check"):
        raw = load_for_profile(profile)
    with measured(rows, "fingerprint"):
        fingerprint = runs.dataset_fingerprint(raw)
    for stage in ("tokenize", "tokenize_cached"):
        with measured(rows, stage):
            tokenized = {(n, cut): pipeline._tokenized(raw, tokenizer, profile, n, cut, fingerprint)
                         for n, cut in lengths}
    with measured(rows, "overview"):
        overview(raw, tokenized[lengths[0]], {k: pipeline.model_max_length(profile, k) for k in ("bert", "bilstm")})
    with measured(rows, "tfidf_fit"):
        names = raw["train"].features["label"].names
        tfidf = TfidfSVM(seed=42).fit(iter_texts(raw["train"]), column(raw["train"], "label"), len(names))
    test = column(raw["test"], "text")
    with measured(rows, "tfidf_predict"):
        tfidf.decision_function(test)
    rows["tfidf_predict"]["docs_per_s"] = len(test) / rows["tfidf_predict"]["seconds"]
    out["stages"] = rows
    out["splits"] = {s: len(raw[s]) for s in raw}
    out["train_tokens"] = {f"{n} {cut}": int(column(tokenized[(n, cut)]["train"], "length").sum())
                           for n, cut in lengths}
    out["train_tokens_untruncated"] = int(column(tokenized[lengths[0]]["train"], "full_length").sum())
    out["tfidf_vocabulary"] = len(tfidf.vectorizer.vocabulary_)
    return out


def predict_speed(run: Path, path: Path, docs: int = 500) -> dict:
    """`textlab predict` documents per second of a trained run's models on `docs` generated documents."""
    from textlab.predict import load_predictor

    texts = pd.read_csv(path, nrows=docs, dtype=str, keep_default_na=False)["text"].tolist()
    rows = {}
    for model in ("bert", "bilstm", "ensemble"):
        predictor = load_predictor(run, model, device="cpu")
        predictor.predict(texts[:32])  # untimed: kernel selection, allocator
        t0 = time.perf_counter()
        predictor.predict(texts)
        rows[model] = len(texts) / (time.perf_counter() - t0)
        print(f"  predict {model:<8} {rows[model]:8.1f} docs/s", flush=True)
    return rows


def trained_tokens_per_s(run: Path) -> dict:
    """Mean training tokens per second of each neural model of a run's first seed (its history.json)."""
    seed = sorted(run.glob("seed-*"))[0]
    return {k: float(np.mean([r["tokens_per_s"] for r in json.loads((seed / k / "history.json").read_text())]))
            for k in ("bert", "bilstm")}


def machine() -> dict:
    import torch

    from textlab.hardware import cpu_bf16_path, device_name

    return {"cpu": device_name(torch.device("cpu")), "bf16_path": cpu_bf16_path(), "cores": os.cpu_count(),
            "memory_gib": psutil.virtual_memory().total / 2**30,
            "python": platform.python_version()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--run", type=Path, help="a trained run: adds predict speed and per-epoch extrapolation")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # internal: one size in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_size(args.one, args.run)))
        return
    result = {"machine": machine(), "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="textlab-scale-") as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"docs{n}.csv"
            t0 = time.perf_counter()
            generate(n, path)
            print(f"{n:,} documents: {path.stat().st_size / 2**20:,.0f} MiB generated in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            env = {**os.environ, "TEXTLAB_CACHE": str(Path(tmp) / f"cache{n}")}
            proc = subprocess.run([sys.executable, __file__, "--one", str(path)], env=env, text=True,
                                  stdout=subprocess.PIPE, check=True)
            lines = proc.stdout.strip().splitlines()
            print("\n".join(lines[:-1]), flush=True)
            size = json.loads(lines[-1])
            size["file_mib"] = path.stat().st_size / 2**20
            size["before_training_seconds"] = sum(size["stages"][s]["seconds"] for s in BEFORE_TRAINING)
            size["before_training_peak_gib"] = max(size["stages"][s]["peak_rss_gib"] for s in BEFORE_TRAINING)
            if args.run:
                tps = trained_tokens_per_s(args.run)
                size["epoch_seconds_extrapolated"] = {
                    k: size["train_tokens"][key] / tps[k] for k in tps
                    for key in size["train_tokens"] if key.startswith(str(512 if k == "bert" else 256))}
                if n == args.sizes[0]:
                    result["predict_docs_per_s"] = predict_speed(args.run, path)
                    result["trained_tokens_per_s"] = {"run": str(args.run), **tps}
            print(f"  before training: {size['before_training_seconds']:.0f} s, peak "
                  f"{size['before_training_peak_gib']:.2f} GiB", flush=True)
            result["sizes"][str(n)] = size
            path.unlink()
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
