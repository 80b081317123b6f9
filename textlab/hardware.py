"""The machine a training runs on: its device, the precision that pays there (this CPU's bf16 path), the Accelerator
that runs the loop, and the device's name as records state it."""

from __future__ import annotations

import platform
import re
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import TorchDynamoPlugin

from .config import TrainConfig


def resolve_precision(precision: str, device: str) -> str:
    """auto: bf16 where the hardware supports it, else fp16 on CUDA, fp32 on CPU."""
    if precision != "auto":
        if precision == "fp16" and device == "cpu":
            raise ValueError("precision fp16 needs a CUDA GPU; on CPU use bf16 or fp32 (or auto)")
        return precision
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    # bf16 autocast pays on CPUs with native bf16 dot products (AVX512-BF16 or AMX).
    return "bf16" if cpu_bf16_path() else "fp32"


def cpu_bf16_path() -> str | None:
    """This CPU's native bf16 path: "AMX" (Intel Xeon 4th gen. on), "AVX512-BF16" (e.g. AMD EPYC Zen 4), or None.
    Not get_cpu_capability(): it says "AVX512" on both. The probes are private torch: where a version lacks them,
    None (fp32)."""
    for name, probe in (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported")):
        if getattr(torch.cpu, probe, lambda: False)():
            return name
    return None


def make_accelerator(cfg: TrainConfig, project_dir: Path | None = None, cpu: bool = False) -> Accelerator:
    device = "cuda" if torch.cuda.is_available() and not cpu else "cpu"
    precision = resolve_precision(cfg.precision, device)
    # One process trains several models (notebooks, tests) with different precisions: Accelerate keeps a
    # process-wide singleton that refuses a change, so reset it (the distributed PartialState is kept).
    AcceleratorState._reset_state(reset_partial_state=False)
    dynamo = None
    if cfg.compile:
        # Static shapes (the collator pads to a few buckets); each bucket x train/eval is one graph.
        dynamo = TorchDynamoPlugin(backend=cfg.compile, dynamic=False)
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    return Accelerator(mixed_precision="no" if precision == "fp32" else precision,
                       gradient_accumulation_steps=cfg.grad_accum, cpu=cpu, log_with=cfg.log_with or None,
                       project_dir=str(project_dir) if project_dir else None, dynamo_plugin=dynamo)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    model = re.search(r"^model name\s*:(.*)$", cpuinfo.read_text() if cpuinfo.exists() else "", re.MULTILINE)
    name = model.group(1).strip() if model else platform.processor() or platform.machine()
    return f"CPU ({torch.get_num_threads()} threads, {name})"
