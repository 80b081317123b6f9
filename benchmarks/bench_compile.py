"""torch.compile (inductor) against eager for the cpu profile's BERT training step, steady state, side by side in one
process: the same model weights, random batches of 32 documents at each length the profile's length buckets pad to,
bf16 autocast where the CPU has a bf16 path. Each compiled shape is compiled and run twice untimed first, so the
timed steps are what every later epoch and seed would pay (compilation is reported on its own); rows alternated,
the median of `--repeats` steps kept. Usage:
  python benchmarks/bench_compile.py --json benchmarks/results/compile_cpu.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from textlab.backbones import get_backbone
from textlab.batching import default_buckets
from textlab.config import get_profile
from textlab.factory import build_model
from textlab.hardware import cpu_bf16_path, device_name, resolve_precision
from textlab.train import param_groups


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="default: the cpu BERT's buckets")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    profile = get_profile("cpu")
    cfg = profile.bert
    lengths = args.lengths or list(default_buckets(cfg.max_length))
    backbone = get_backbone(profile.backbone)
    torch.manual_seed(0)
    eager = build_model("bert", backbone, 20, profile.bert_model).train()
    compiled_model = copy.deepcopy(eager).train()
    compiled = torch.compile(compiled_model, backend="inductor", dynamic=False)
    bf16 = resolve_precision("auto", "cpu") == "bf16"
    opts = {name: torch.optim.AdamW(param_groups(m, cfg.weight_decay, cfg.lr, cfg.layer_lr_decay), lr=cfg.lr)
            for name, m in (("eager", eager), ("compiled", compiled_model))}
    runs = {"eager": eager, "compiled": compiled}
    g = torch.Generator().manual_seed(0)
    batches = {n: (torch.randint(1000, 30000, (cfg.batch_size, n), generator=g),
                   torch.randint(0, 20, (cfg.batch_size,), generator=g)) for n in lengths}

    def step(name: str, n: int) -> float:
        ids, labels = batches[n]
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = runs[name](input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        opts[name].step()
        opts[name].zero_grad()
        return time.perf_counter() - t0

    compile_s = {}
    for n in lengths:  # compile every shape, then once more untimed
        compile_s[n] = step("compiled", n)
        step("compiled", n)
        step("eager", n)
        print(f"length {n}: first compiled step (compilation) {compile_s[n]:.1f} s", flush=True)
    rows = {}
    for n in lengths:
        times = {"eager": [], "compiled": []}
        for _ in range(args.repeats):
            for name in times:
                times[name].append(step(name, n))
        med = {k: float(np.median(v)) for k, v in times.items()}
        rows[str(n)] = {**{f"{k}_s": v for k, v in med.items()}, "speedup": med["eager"] / med["compiled"],
                        "compile_s": compile_s[n]}
        print(f"length {n}: eager {med['eager']:.2f} s, compiled {med['compiled']:.2f} s per step, "
              f"x{rows[str(n)]['speedup']:.2f}", flush=True)
    result = {"device": device_name(torch.device("cpu")), "bf16_path": cpu_bf16_path(), "precision":
              "bf16" if bf16 else "fp32", "batch": cfg.batch_size, "repeats": args.repeats, "results": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
