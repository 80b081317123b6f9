"""How long training will take on this machine, before any has run here: one optimizer step of each model, timed at
a few batch lengths (seconds), then summed over the real batches of every epoch still to train, with validation and
test passes at a third of a training step per batch. Times differ by CPU kind and by day (docs/speed.md); this is
what the runner prints when no earlier execution of the run tells it better (runner.notebooks_time_left)."""

from __future__ import annotations

import dataclasses
import gc
import math
import time

import numpy as np
import psutil
import torch

from .batching import LengthGroupedBatchSampler, padded_length
from .config import Profile
from .dataset import column
from .display import format_duration
from .factory import build_model
from .hardware import make_accelerator
from .pipeline import model_data, model_max_length
from .train import param_groups, train_loss

FORWARD_SHARE = 1 / 3  # an evaluation batch against a training step of the same shape: forward only, no backward
# Other processes' share of the machine's CPU time while the probe ran, above which the printed line says so. On a
# 2-core AMD EPYC, one single-threaded job at nice 19 beside the probe made BERT's probe steps 5-6x slower than
# quiet (38.6 s at 512 tokens against 7.8 s) and the estimate 14.1 h: measured on a busy machine, it is an upper bound.
BUSY_SHARE = 0.2


def step_seconds(kind: str, backbone, num_labels: int, profile: Profile, lengths: tuple[int, ...]) -> dict:
    """Seconds of one training micro-batch (forward, backward, clipping, AdamW step) of `kind` as the profile trains
    it (batch size, precision), on random token ids at each length; one untimed step first."""
    cfg = dataclasses.replace(getattr(profile, kind), compile="")  # eager: a compile would be timed, not a step
    torch.manual_seed(0)
    model = build_model(kind, backbone, num_labels, profile.bert_model, profile.bilstm_model)
    accelerator = make_accelerator(cfg)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.lr, cfg.layer_lr_decay), lr=cfg.lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    vocab, device = backbone.config.vocab_size, accelerator.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)  # time the kernels, not their launch

    def step(n: int) -> float:
        ids = torch.randint(vocab // 2, vocab, (cfg.batch_size, n), device=device)
        labels = torch.randint(0, num_labels, (cfg.batch_size,), device=device)
        sync()
        t0 = time.perf_counter()
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
        loss = train_loss(out, labels, cfg.label_smoothing)
        accelerator.backward(loss)
        if cfg.max_grad_norm:  # as train._micro_step
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()
        sync()
        return time.perf_counter() - t0

    step(lengths[0])
    seconds = {n: step(n) for n in lengths}
    model = optimizer = None  # freed before the notebooks' kernels train (on a GPU: its memory too)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds


def probe_lengths(max_length: int) -> tuple[int, ...]:
    """An eighth, half and all of max_length (e.g. 64, 256, 512): the step time grows faster than the length."""
    return tuple(sorted({max(8, max_length // 8), max(8, max_length // 2), max_length}))


def batch_seconds(padded: np.ndarray, probe: dict) -> np.ndarray:
    """Each batch's seconds, interpolated between the probe's lengths (proportional below the shortest)."""
    xs, ys = np.array(list(probe)), np.array(list(probe.values()))
    return np.where(padded < xs[0], ys[0] * padded / xs[0], np.interp(padded, xs, ys))


def padded_lengths(lengths, batch_size: int, shuffle: bool, pad_to: int = 0) -> np.ndarray:
    """The padded length of every batch of an epoch, as make_loader batches and pads them: length-grouped and padded
    to a multiple of 8, or (`pad_to`, the seed's recipe) every batch padded to that length."""
    lengths = np.asarray(lengths)
    if pad_to:
        return np.full(-(-len(lengths) // batch_size), pad_to)
    batches = LengthGroupedBatchSampler(lengths, batch_size, shuffle=shuffle, seed=0)
    return np.array([padded_length(int(lengths[b].max())) for b in batches])


def training_seconds(kind: str, profile: Profile, data, probe: dict, seeds: int) -> float:
    """Seconds to train `kind` for `seeds` training seeds: its optimizer steps (all epochs, or max_steps), a
    validation pass after each epoch begun, and each seed's last validation and test pass. `data`: the splits
    tokenized at the model's length. Counted per micro-batch, AdamW's step is over-counted by (grad_accum - 1) /
    grad_accum of 2 % of a step (benchmarks/results/optimizer_cpu.json): within the estimate's noise."""
    cfg = getattr(profile, kind)
    pad_to = 0 if cfg.length_grouped else model_max_length(profile, kind)
    epoch = batch_seconds(padded_lengths(column(data["train"], "length"), cfg.batch_size, True, pad_to), probe).sum()
    scale = cfg.eval_batch_size / cfg.batch_size * FORWARD_SHARE
    evaluate = {s: scale * batch_seconds(padded_lengths(column(data[s], "length"), cfg.eval_batch_size, False),
                                         probe).sum() for s in ("validation", "test")}
    steps = math.ceil(math.ceil(len(data["train"]) / cfg.batch_size) / cfg.grad_accum)  # per epoch, as fit counts
    total = min(steps * cfg.epochs, cfg.max_steps or math.inf)
    return seeds * (epoch * total / steps + math.ceil(total / steps) * evaluate["validation"]
                    + evaluate["validation"] + evaluate["test"])


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds this machine's processes have used, of which this process), since each began counting."""
    machine, own = psutil.cpu_times(), psutil.Process().cpu_times()
    return sum(machine) - machine.idle - getattr(machine, "iowait", 0.0), own.user + own.system


def others_share(before: tuple[float, float], after: tuple[float, float], seconds: float) -> float:
    """The share of the machine's CPU time (all cores over `seconds`) that other processes used between two
    cpu_seconds() readings: 0 on a quiet machine, 1 when they kept every core busy."""
    others = (after[0] - before[0]) - (after[1] - before[1])
    return min(1.0, max(0.0, others / (seconds * (psutil.cpu_count() or 1))))


def estimate(prep, to_train: dict[str, int]) -> tuple[float, str]:
    """(seconds, a line saying what was measured) for training `to_train` ({kind: training seeds}) on `prep`'s
    data, from a probe of each kind on this machine; the line says when other processes were busy beside it."""
    total, parts, before, t0 = 0.0, [], cpu_seconds(), time.perf_counter()
    for kind, seeds in to_train.items():
        n = model_max_length(prep.profile, kind)
        probe = step_seconds(kind, prep.backbone, len(prep.label_names), prep.profile, probe_lengths(n))
        data = model_data(prep, n, getattr(prep.profile, kind).truncation)
        total += training_seconds(kind, prep.profile, data, probe, seeds)
        shown = " / ".join(f"{s:.2f}" for s in probe.values())
        parts.append(f"{kind} {shown} s at {' / '.join(map(str, probe))} tokens")
    return total, f"one training step here: {'; '.join(parts)}" + busy_note(
        others_share(before, cpu_seconds(), time.perf_counter() - t0))


def busy_note(share: float) -> str:
    if share <= BUSY_SHARE:
        return ""
    return (f"; other processes used {share:.0%} of the CPU meanwhile, so training will take less if they stop: "
            "an upper bound")


def estimate_line(seconds: float, measured: str) -> str:
    return (f"about {format_duration(seconds)} of training expected on this machine, plus minutes for notebooks 01, "
            f"04 and 05 (no earlier run from this state to time from; {measured})")
