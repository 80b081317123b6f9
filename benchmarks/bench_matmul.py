"""What this machine's dense matrix multiply can do: GFLOP/s for bf16 and fp32 at the thread count training uses.

The shapes are the training matmuls of the cpu profile's models (32 sequences of ~160 tokens = 5,120 rows): BERT's
(MiniLM-L6, d = 384) Q/K/V/output projections and feed-forward layers, forward and the two backward products, and
the BiLSTM's input-to-gates product (d = 384 -> 4 x 192 gates). Each cell is the best of `--repeats` timed
multiplies after one untimed. The measured bf16 and fp32 peaks (the fastest model-shaped cell) are the denominators
of the FLOP utilisation that benchmarks/bench_train.py reports. A multiply of (m x k) by (k x n) counts 2mkn FLOPs.
Usage:
  python benchmarks/bench_matmul.py --json benchmarks/results/matmul_cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

ROWS = 32 * 160
D, FF, GATES = 384, 1536, 4 * 192
# (name, m, k, n): out = (m x k) @ (k x n)
SHAPES = [
    ("attention projection, forward", ROWS, D, D),
    ("feed-forward up, forward", ROWS, D, FF),
    ("feed-forward down, forward", ROWS, FF, D),
    ("feed-forward up, input grad", ROWS, FF, D),
    ("feed-forward up, weight grad", D, ROWS, FF),
    ("BiLSTM input gates, forward", ROWS, D, GATES),
    ("square 2048 (reference)", 2048, 2048, 2048),
]
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def gflops(m: int, k: int, n: int, dtype: torch.dtype, repeats: int) -> float:
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    torch.mm(a, b)  # untimed: kernel selection, page faults
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9


def measure(repeats: int = 10, dtypes: tuple[str, ...] = tuple(DTYPES)) -> dict:
    """`dtypes`: which of DTYPES to time. A CPU without a native bf16 path (an AVX2-only AMD EPYC) emulates bf16
    multiplies so slowly that timing them took minutes; leave bf16 out there when nothing trains in it."""
    cells = {}
    for name, m, k, n in SHAPES:
        cells[name] = {"shape": [m, k, n], **{dt: gflops(m, k, n, DTYPES[dt], repeats) for dt in dtypes}}
        print(f"{name:<32} {m:>5} x {k:>5} x {n:>5}   " + "   ".join(f"{dt} {cells[name][dt]:7.1f}" for dt in dtypes)
              + " GFLOP/s", flush=True)
    model_cells = [c for name, c in cells.items() if "reference" not in name]
    peak = {dt: max(c[dt] for c in model_cells) for dt in dtypes}
    return {"device": f"CPU, {torch.get_num_threads()} threads", "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "gflops": cells, "peak_gflops": peak}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    result = measure(args.repeats)
    print("peak (model shapes): " + ", ".join(f"{dt} {v:.0f}" for dt, v in result["peak_gflops"].items())
          + " GFLOP/s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
