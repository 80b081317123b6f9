"""Prediction speed on CPU, side by side in one process: documents per second of `textlab predict` for a trained run's
BERT, BiLSTM and chosen ensemble, and of BERT with each opt-in faster precision, with its test accuracy change.

Each row classifies the same `--docs` test documents (a fixed random sample, their own lengths, the predictor's
longest-first batching), timed after one untimed batch. Accuracy rows classify `--accuracy-docs` test documents (a
fixed random sample; 0 = all 7,532) with fp32 and with each faster precision, and report the accuracy of both and
how many predictions changed. Usage (after `make run`):
  python benchmarks/bench_predict.py --run runs/cpu --json benchmarks/results/predict_cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from textlab.config import get_profile
from textlab.data import load_for_profile
from textlab.predict import INFERENCE_PRECISIONS, load_predictor


def docs_per_s(predictor, texts: list[str]) -> float:
    predictor.predict(texts[:32])  # untimed: kernel selection, allocator
    t0 = time.perf_counter()
    predictor.predict(texts)
    return len(texts) / (time.perf_counter() - t0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/cpu"))
    parser.add_argument("--profile", default="cpu", help="the run's profile (its test split is read)")
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--accuracy-docs", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    test = load_for_profile(get_profile(args.profile))["test"]
    rng = np.random.default_rng(0)
    texts, labels = list(test["text"]), np.asarray(test["label"])
    speed_idx = rng.choice(len(texts), size=min(args.docs, len(texts)), replace=False)
    n_acc = args.accuracy_docs or len(texts)
    acc_idx = rng.choice(len(texts), size=min(n_acc, len(texts)), replace=False)
    sample = [texts[i] for i in speed_idx]
    rows = {}
    for model in ("bert", "bilstm", "ensemble"):
        for precision in INFERENCE_PRECISIONS if model == "bert" else ("fp32",):
            predictor = load_predictor(args.run, model, device="cpu", precision=precision)
            rows[f"{model} {precision}"] = {"docs_per_s": docs_per_s(predictor, sample)}
            print(f"{model:<9} {precision:<5} {rows[f'{model} {precision}']['docs_per_s']:8.1f} docs/s", flush=True)
    base = rows["bert fp32"]["docs_per_s"]
    for precision in INFERENCE_PRECISIONS:
        rows[f"bert {precision}"]["speedup_vs_fp32"] = rows[f"bert {precision}"]["docs_per_s"] / base
    docs = [texts[i] for i in acc_idx]
    preds = {p: np.array([r["label_id"]
                          for r in load_predictor(args.run, "bert", device="cpu", precision=p).predict(docs)])
             for p in INFERENCE_PRECISIONS}
    for p in INFERENCE_PRECISIONS:
        row = rows[f"bert {p}"]
        row.update(accuracy=float((preds[p] == labels[acc_idx]).mean()),
                   changed_predictions=int((preds[p] != preds["fp32"]).sum()), accuracy_docs=len(acc_idx))
        print(f"bert {p:<5} x{row['speedup_vs_fp32']:.2f} docs/s, accuracy {100 * row['accuracy']:.2f} % on "
              f"{len(acc_idx)} test documents, {row['changed_predictions']} predictions changed vs fp32", flush=True)
    result = {"device": f"CPU, {torch.get_num_threads()} threads", "run": str(args.run), "docs": len(sample),
              "results": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
