"""Seconds per BERT training step by sequence length, with and without dropout on the attention probabilities.

One process, same model weights and batches: a batch of `--batch` random token ids at each length, forward +
backward under the profile's precision (bf16 autocast where the CPU supports it), timed after one untimed step.
With attention dropout PyTorch's scaled_dot_product_attention must materialise the [L x L] probabilities and draw
a dropout mask over them; without it, the fused kernel runs. Usage:
  python benchmarks/bench_step.py                      # cpu profile's backbone (MiniLM-L6)
  python benchmarks/bench_step.py --json benchmarks/results/step_cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from textlab import factory
from textlab.backbones import get_backbone
from textlab.config import get_profile
from textlab.hardware import resolve_precision

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def step_seconds(model, length: int, batch: int, precision: str, device: str, repeats: int) -> float:
    ids = torch.randint(1000, 30000, (batch, length), device=device)
    labels = torch.randint(0, model.config.num_labels, (batch,), device=device)
    times = []
    for _ in range(repeats + 1):  # the first is untimed
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device, dtype=DTYPES.get(precision, torch.float32), enabled=precision in DTYPES):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="minilm", help="minilm | bert-base-uncased-random | tiny")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 384, 512])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per cell (the fastest is reported)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    hf_logging.set_verbosity_error()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = resolve_precision("auto", device)
    rows = {}
    for attention_dropout in (0.1, 0.0):
        profile = get_profile("cpu", backbone=args.backbone, bert_model__attention_dropout=attention_dropout)
        torch.manual_seed(0)
        model = factory.build_model("bert", get_backbone(args.backbone), 20, profile.bert_model).to(device).train()
        for length in args.lengths:
            s = step_seconds(model, length, args.batch, precision, device, args.repeats)
            rows.setdefault(str(length), {})[f"attention_dropout={attention_dropout}"] = s
            print(f"attention dropout {attention_dropout}  length {length:4d}  {s:7.3f} s/step", flush=True)
    for length, r in rows.items():
        r["speedup"] = r["attention_dropout=0.1"] / r["attention_dropout=0.0"]
        print(f"length {length:>4}: x{r['speedup']:.2f} without attention dropout")
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    result = {"device": name, "backbone": args.backbone, "batch": args.batch, "precision": precision,
              "seconds_per_step": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
