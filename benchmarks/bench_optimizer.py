"""AdamW's step on the cpu profile's BERT parameters, side by side in one process: PyTorch's default implementation
(foreach on CPU) against fused=True, and what share of a real training step each takes.

Same parameters (the BERT classifier's 22.7 M, with fit's weight-decay groups and layer-wise learning rates), the
same random gradients; rows alternated, `--repeats` timed steps each after 3 untimed ones, medians reported. The
share is against one training step of 32 documents x 256 tokens (bf16), timed in the same process. Usage:
  python benchmarks/bench_optimizer.py --json benchmarks/results/optimizer_cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from textlab.backbones import get_backbone
from textlab.config import get_profile
from textlab.estimate import step_seconds
from textlab.factory import build_model
from textlab.hardware import cpu_bf16_path, device_name
from textlab.train import param_groups


def optimizer_seconds(model, cfg, fused: bool, repeats: int) -> list[float]:
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.lr, cfg.layer_lr_decay), lr=cfg.lr,
                                  fused=fused or None)
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    for _ in range(3):
        optimizer.step()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        optimizer.step()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    profile = get_profile("cpu")
    backbone = get_backbone(profile.backbone)
    model = build_model("bert", backbone, 20, profile.bert_model)
    times = {"foreach (default)": [], "fused": []}
    for _ in range(3):  # alternated
        for name in times:
            times[name] += optimizer_seconds(model, profile.bert, name == "fused", args.repeats // 3 + 1)
    step = step_seconds("bert", backbone, 20, profile, (256,))[256]
    rows = {name: {"seconds": float(np.median(t)), "share_of_step_256": float(np.median(t)) / step}
            for name, t in times.items()}
    for name, r in rows.items():
        print(f"{name:<18} {1000 * r['seconds']:7.1f} ms per step = {100 * r['share_of_step_256']:.1f} % of a "
              f"{step:.2f} s training step at 256 tokens", flush=True)
    result = {"device": device_name(torch.device("cpu")), "bf16_path": cpu_bf16_path(),
              "params": sum(p.numel() for p in model.parameters()), "train_step_256_s": step, "results": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
