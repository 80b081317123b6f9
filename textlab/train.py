"""The one training loop (BERT and the BiLSTM), on Accelerate: mixed precision, accumulation, data parallelism,
selection on validation with early stopping, and checkpoints that resume mid-epoch to the uninterrupted weights."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, set_seed
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from .artifacts import check_schema, jsonable, read_json, write_json
from . import checkpoint as ckpt
from .batching import make_loader, pad_buckets
from .config import EXECUTION_ONLY, TrainConfig
from .display import format_duration
from .errors import NonFiniteLossError, OutOfMemoryAdvice
from .evaluate import metrics
from .hardware import device_name, make_accelerator
from .runs import describe_differences, differences


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")


def param_groups(model: torch.nn.Module, weight_decay: float, lr: float | None = None,
                 layer_lr_decay: float = 1.0) -> list[dict]:
    """AdamW groups: biases and LayerNorm weights get no weight decay.

    layer_lr_decay < 1 (layer-wise learning-rate decay, Howard & Ruder 2018; Sun et al. 2019) gives a transformer's
    parameter at depth d (embeddings 0, encoder layer i -> i + 1, pooler and classifier on top) the learning rate
    lr * layer_lr_decay ** (top - d). Only for models with an `encoder.layer.N` stack (BERT).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    depth = {n: int(m.group(1)) + 1 for n, _ in named if (m := _LAYER.search(n))}
    per_layer = layer_lr_decay != 1.0
    if per_layer and lr is None:
        raise ValueError("layer_lr_decay needs the top learning rate (lr)")
    if per_layer and not depth:
        raise ValueError(f"layer_lr_decay={layer_lr_decay} needs a transformer with an encoder.layer.N stack; "
                         f"{type(model).__name__} has none: set layer_lr_decay=1.0 for this model")
    top = max(depth.values(), default=0) + 1
    groups: dict[tuple, list] = {}
    for name, p in named:
        d = 0 if ".embeddings." in f".{name}" else depth.get(name, top)
        factor = layer_lr_decay ** (top - d) if per_layer else 1.0
        decays = not (p.ndim < 2 or "norm" in name.lower())  # biases, LayerNorm weights
        groups.setdefault((factor, decays), []).append(p)
    out = []
    for (factor, decays), params in sorted(groups.items(), key=lambda kv: (kv[0][0], not kv[0][1])):
        group = {"params": params, "weight_decay": weight_decay if decays else 0.0}
        out.append({**group, "lr": lr * factor} if per_layer else group)
    return out


@contextmanager
def _advise_on_oom(cfg: TrainConfig, batch: dict):
    try:
        yield
    except torch.OutOfMemoryError as e:
        b, a = cfg.batch_size, cfg.grad_accum
        shape = " x ".join(map(str, batch["input_ids"].shape))
        if b == 1:
            fix = "batch_size is already 1: lower max_length, use precision bf16/fp16, or a smaller backbone"
        else:
            smaller = max(d for d in range(1, b) if b % d == 0)  # keeps batch_size * grad_accum exact
            fix = (f"use a smaller micro-batch with more accumulation, same effective batch {b * a}: "
                   f"batch_size={smaller}, grad_accum={a * b // smaller}")
        raise OutOfMemoryAdvice(f"out of memory in a training step with micro-batch batch_size={b} "
                                f"(input_ids {shape}) and grad_accum={a}: {fix}") from e


def _bar(accelerator: Accelerator) -> dict:
    """tqdm on the main process only; there tqdm's own defaults apply (TQDM_DISABLE=1 silences CI logs)."""
    return {} if accelerator.is_local_main_process else {"disable": True}


def train_loss(out, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """The model's own cross-entropy, or (label_smoothing > 0) cross-entropy against smoothed targets."""
    if not label_smoothing:
        return out.loss
    return torch.nn.functional.cross_entropy(out.logits.float(), labels, label_smoothing=label_smoothing)


def _model_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "idx"}


@torch.no_grad()
def loader_logits(model, loader, accelerator: Accelerator,
                   desc: str = "predict") -> tuple[np.ndarray, np.ndarray, float]:
    """Logits and labels in dataset order (any sampler, any number of processes) and the mean loss."""
    model.eval()
    gathered, loss_sum, n = [], 0.0, 0
    for batch in tqdm(loader, desc=desc, leave=False, **_bar(accelerator)):
        out = model(**_model_inputs(batch))
        loss_sum += out.loss.float().item() * len(batch["labels"])
        n += len(batch["labels"])
        gathered.append(accelerator.gather_for_metrics((out.logits.float(), batch["labels"], batch["idx"])))
    logits, labels, idx = (torch.cat(parts).cpu() for parts in zip(*gathered))
    order = torch.argsort(idx)
    return logits[order].numpy(), labels[order].numpy(), loss_sum / max(n, 1)


# Saved with a checkpoint but not part of what it is: progress, and loop settings that change speed, not results.
# model_config._name_or_path is where the backbone was read from (a venv's site-packages), not what it is: the run's
# manifest pins the weights by SHA-256, and a clone elsewhere must resume the same run.
RESUME_SKIP = ("step", "loop", "precision", "model_config._name_or_path") + tuple(f"config.{k}" for k in EXECUTION_ONLY)


def check_resumable(saved: dict, meta: dict, path: Path) -> None:
    """Refuse to resume (or re-use) a checkpoint made from anything other than `meta` (kind, backbone, data
    fingerprint, seed, model and loop settings), naming each difference; and one of another artifact schema."""
    check_schema(saved, path, ": train into a fresh folder")
    diff = differences(saved, json.loads(json.dumps(meta, default=jsonable)), RESUME_SKIP)
    if diff:
        raise ckpt.CheckpointError(
            f"{path} was made from other data or settings; it is never resumed or re-used under these "
            f"(made -> now):\n{describe_differences(diff)}\nTrain with the same settings, or into a fresh folder.")


def _bare(accelerator: Accelerator, model: torch.nn.Module) -> torch.nn.Module:
    """The model itself: without DDP, mixed-precision or torch.compile wrappers."""
    return accelerator.unwrap_model(model, keep_torch_compile=False)


@dataclass
class LoopState:
    """Where training stands. Stored in every checkpoint's meta.json as "loop" (asdict: these keys) to resume from."""

    epoch: int = 0  # epochs finished
    micro_in_epoch: int = 0  # micro-batches done in the current epoch (a resume skips them)
    global_step: int = 0  # optimizer steps done
    history: list = field(default_factory=list)  # one row per finished epoch (history.json)
    best_metric: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0  # epochs since the last validation improvement
    train_loss_sum: float = 0.0  # of the current epoch's micro-batches ...
    train_tokens: int = 0
    train_micro: int = 0
    epoch_seconds: float = 0.0  # ... and its training time before the last mid-epoch checkpoint


@dataclass
class FitResult:
    history: list[dict]
    best_epoch: int
    best_metric: float
    precision: str
    device: str
    s_per_epoch: float
    stopped_early: bool
    model: torch.nn.Module  # prepared by `accelerator` (possibly wrapped), holding the selected (best) weights
    accelerator: Accelerator


class _Training:
    """What one fit() trains with: the accelerator, seeded loaders, optimizer and warm-up/decay schedule, all
    prepared for the devices."""

    def __init__(self, model, data, tokenizer, cfg: TrainConfig, out_dir: Path, meta: dict, seed: int, cpu: bool,
                 desc: str, trainings_after: int = 0):
        if cfg.log_with and not _installed(cfg.log_with):
            # Accelerate would only warn and track nothing: a user who asked for tracking should know before training.
            raise ImportError(f"log_with={cfg.log_with!r} needs the {cfg.log_with} package: pip install {cfg.log_with} "
                              "(or leave log_with empty to train without tracking)")
        self.cfg, self.out_dir, self.meta, self.desc, self.trainings_after = cfg, out_dir, meta, desc, trainings_after
        self.accelerator = make_accelerator(cfg, out_dir, cpu=cpu)
        self.precision = "fp32" if self.accelerator.mixed_precision == "no" else self.accelerator.mixed_precision
        set_seed(seed)
        buckets = pad_buckets(cfg, meta.get("max_length"))
        train_loader = make_loader(data["train"], tokenizer, cfg.batch_size, shuffle=True, seed=seed, buckets=buckets,
                                   length_grouped=cfg.length_grouped, max_length=meta.get("max_length"))
        val_loader = make_loader(data["validation"], tokenizer, cfg.eval_batch_size, shuffle=False, buckets=buckets)
        # The length-grouped batch sampler, re-seeded every epoch; None for plain shuffling.
        self.sampler = train_loader.batch_sampler if cfg.length_grouped else None
        optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.lr, cfg.layer_lr_decay), lr=cfg.lr)
        self.model, self.optimizer, self.train_loader, self.val_loader = self.accelerator.prepare(
            model, optimizer, train_loader, val_loader)
        self.steps_per_epoch = math.ceil(len(self.train_loader) / cfg.grad_accum)
        self.total_steps = min(self.steps_per_epoch * cfg.epochs, cfg.max_steps or math.inf)
        # Not prepared: Accelerate would step it once per process; we step it once per optimizer step.
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, int(cfg.warmup_ratio * self.total_steps),
                                                         self.total_steps)
        self.last_save = time.monotonic()  # at the last checkpoint


def fit(model: torch.nn.Module, data, tokenizer, cfg: TrainConfig, out_dir, *, meta: dict, seed: int = 42,
        resume: bool = True, cpu: bool = False, desc: str = "train",
        on_step: Callable[[LoopState], None] | None = None, trainings_after: int = 0) -> FitResult:
    """Train on data["train"], select on data["validation"] (cfg.select_metric), keep the best weights.

    `meta` (kind, backbone, label_names, ...) is stored with every checkpoint so it can be rebuilt.
    If `out_dir` holds a checkpoint and resume=True, training continues from it.
    `on_step(state)` is called after every optimizer step (and its checkpoint, if one was due): a place to log,
    or to stop training by raising. `trainings_after`: how many trainings like this one follow (the other training
    seeds), counted into the time left that each epoch's line prints.
    """
    t = _Training(model, data, tokenizer, cfg, Path(out_dir), meta, seed, cpu, desc, trainings_after)
    state = _resume(t) if resume else LoopState()
    if cfg.log_with:
        t.accelerator.init_trackers(desc, config={k: v for k, v in asdict(cfg).items() if not isinstance(v, tuple)})
    while not _finished(t, state):
        _train_epoch(t, state, on_step)
        _evaluate_and_select(t, state)
    if cfg.log_with:
        t.accelerator.end_training()
    ckpt.load_into(_bare(t.accelerator, t.model), ckpt.checkpoint_path(t.out_dir, "best") / "model.safetensors")
    write_json(t.out_dir / "history.json", state.history)
    seconds = [h["seconds"] for h in state.history]
    return FitResult(
        history=state.history, best_epoch=state.best_epoch, best_metric=state.best_metric, precision=t.precision,
        device=device_name(t.accelerator.device),
        s_per_epoch=float(np.median(seconds)) if seconds else 0.0,  # robust to one disturbed epoch
        stopped_early=state.bad_epochs >= cfg.patience, model=t.model, accelerator=t.accelerator)


def _resume(t: _Training) -> LoopState:
    """The loop state, weights, optimizer, schedule, loss scale and RNG of the last checkpoint in t.out_dir, once
    check_resumable agrees it was made from the same data and settings; a fresh state if there is none."""
    if not ckpt.read_pointer(t.out_dir).get("last"):
        return LoopState()
    last = ckpt.checkpoint_path(t.out_dir, "last")
    saved = read_json(last / "meta.json")
    check_resumable(saved, {**t.meta, "config": asdict(t.cfg)}, last)
    ckpt.load_into(_bare(t.accelerator, t.model), last / "model.safetensors", saved)
    ts = ckpt.load_training_state(last)
    t.optimizer.load_state_dict(ts["optimizer"])
    t.scheduler.load_state_dict(ts["scheduler"])
    if t.accelerator.scaler is not None and "scaler" in ts:
        t.accelerator.scaler.load_state_dict(ts["scaler"])
    torch.set_rng_state(ts["rng_cpu"])
    if "rng_cuda" in ts and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ts["rng_cuda"])
    state = LoopState(**saved["loop"])
    if _finished(t, state):
        t.accelerator.print(f"{t.desc}: re-using the finished training in {t.out_dir} ({last.name}), nothing to train")
    else:
        t.accelerator.print(f"resuming {t.desc} from {last.name}: epoch {state.epoch + 1}, step {state.global_step}")
    return state


def _finished(t: _Training, state: LoopState) -> bool:
    """All epochs or max_steps done, or stopped early (final: a resumed run out of patience trains nothing more)."""
    return state.epoch >= t.cfg.epochs or state.global_step >= t.total_steps or state.bad_epochs >= t.cfg.patience


def _train_epoch(t: _Training, state: LoopState, on_step) -> None:
    """The rest of epoch state.epoch (all of it, unless resumed mid-epoch), with mid-epoch checkpoints when due."""
    # Accelerate's loader re-seeds the sampler with its own count of iterations at every iter(): set that
    # count too, else the epoch after a resumed (skip_first_batches) epoch would replay the previous order.
    t.train_loader.set_epoch(state.epoch)
    if t.sampler is not None:
        t.sampler.set_epoch(state.epoch)
    t.model.train()
    skip = state.micro_in_epoch
    loader = t.accelerator.skip_first_batches(t.train_loader, skip) if skip else t.train_loader
    t0 = time.perf_counter()
    for batch in tqdm(loader, total=len(t.train_loader), initial=state.micro_in_epoch, leave=False,
                      desc=f"{t.desc} epoch {state.epoch + 1}/{t.cfg.epochs}", **_bar(t.accelerator)):
        loss = _micro_step(t, state, batch)
        if not t.accelerator.sync_gradients:
            continue
        if not t.accelerator.optimizer_step_was_skipped:
            t.scheduler.step()
        state.global_step += 1
        if t.cfg.log_with:
            t.accelerator.log({"train_loss": loss.item(), "lr": t.scheduler.get_last_lr()[0]}, step=state.global_step)
        if _save_due(t, state.global_step):
            state.epoch_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            _save(t, state)
        if on_step is not None:
            on_step(state)
        if state.global_step >= t.total_steps:
            break
    state.epoch_seconds += time.perf_counter() - t0


def _micro_step(t: _Training, state: LoopState, batch: dict) -> torch.Tensor:
    """Forward and backward of one micro-batch; clipping and the optimizer step where accumulation completes."""
    with _advise_on_oom(t.cfg, batch), t.accelerator.accumulate(t.model):
        loss = train_loss(t.model(**_model_inputs(batch)), batch["labels"], t.cfg.label_smoothing)
        if not torch.isfinite(loss.detach()):
            raise NonFiniteLossError(
                f"non-finite loss ({loss.item()}) at optimizer step {state.global_step + 1} (epoch {state.epoch + 1})"
                f" with precision {t.precision}: lower lr, or try precision=fp32/bf16")
        t.accelerator.backward(loss)
        if t.accelerator.sync_gradients and t.cfg.max_grad_norm:
            t.accelerator.clip_grad_norm_(t.model.parameters(), t.cfg.max_grad_norm)
        t.optimizer.step()
        t.optimizer.zero_grad()
    state.micro_in_epoch += 1
    state.train_micro += 1
    state.train_loss_sum += loss.detach().float().item()
    state.train_tokens += int(batch["attention_mask"].sum()) * t.accelerator.num_processes
    return loss


def _evaluate_and_select(t: _Training, state: LoopState) -> None:
    """Validate the epoch just trained, record it, keep it as `best` if it improved, checkpoint."""
    val_logits, val_labels, val_loss = loader_logits(t.model, t.val_loader, t.accelerator, desc="validate")
    m = metrics(val_logits, val_labels, full=False)
    seconds = state.epoch_seconds
    row = {"epoch": state.epoch + 1, "step": state.global_step,
           "train_loss": state.train_loss_sum / max(state.train_micro, 1),
           "val_loss": val_loss, "val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"],
           "seconds": seconds, "tokens_per_s": state.train_tokens / max(seconds, 1e-9),
           "lr": t.scheduler.get_last_lr()[0]}
    state.history.append(row)
    if t.cfg.log_with:
        t.accelerator.log({k: v for k, v in row.items() if k != "epoch"}, step=state.global_step)
    improved = m[t.cfg.select_metric] > state.best_metric
    if improved:
        state.best_metric, state.best_epoch = m[t.cfg.select_metric], state.epoch + 1
    state.bad_epochs = 0 if improved else state.bad_epochs + 1
    state.epoch += 1
    state.micro_in_epoch = state.train_micro = state.train_tokens = 0
    state.train_loss_sum = state.epoch_seconds = 0.0
    t.accelerator.print(f"{t.desc} epoch {state.epoch}: train loss {row['train_loss']:.4f}, val loss {val_loss:.4f}, "
                        f"val acc {m['accuracy']:.4f}, val macro-F1 {m['macro_f1']:.4f}, {seconds:.0f} s, "
                        f"~{format_duration(training_time_left(t, state))} left"
                        + (f" with the {t.trainings_after} seed{'s' * (t.trainings_after > 1)} to come"
                           if t.trainings_after else ""))
    _save(t, state, ("last", "best") if improved else ("last",))
    if state.bad_epochs >= t.cfg.patience:
        t.accelerator.print(f"{t.desc}: early stop, no val {t.cfg.select_metric} gain for {t.cfg.patience} epochs")


def training_time_left(t: _Training, state: LoopState) -> float:
    """Seconds of training left, this one's and the `trainings_after` like it to come, if every epoch takes as long as
    the median epoch so far (early stopping can only make it shorter)."""
    if not state.history:
        return 0.0
    epochs_left = 0 if _finished(t, state) else min(
        t.cfg.epochs - state.epoch, math.ceil((t.total_steps - state.global_step) / t.steps_per_epoch))
    epochs_left += t.trainings_after * t.cfg.epochs
    return epochs_left * float(np.median([h["seconds"] for h in state.history]))


def _save(t: _Training, state: LoopState, role=("last",)) -> None:
    """A checkpoint of everything needed to resume here (written by the main process, all processes waiting)."""
    t.accelerator.wait_for_everyone()
    if t.accelerator.is_main_process:
        # A compiled model's keys lose their "_orig_mod." prefix: a checkpoint loads the same with or without compile.
        weights = {k.replace("_orig_mod.", ""): v for k, v in t.accelerator.get_state_dict(t.model).items()}
        training = {"optimizer": t.optimizer.state_dict(), "scheduler": t.scheduler.state_dict(),
                    "rng_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            training["rng_cuda"] = torch.cuda.get_rng_state_all()
        if t.accelerator.scaler is not None:
            training["scaler"] = t.accelerator.scaler.state_dict()
        ckpt.save_checkpoint(t.out_dir, state.global_step, weights,
                             {**t.meta, "config": asdict(t.cfg), "loop": asdict(state), "precision": t.precision},
                             training, role=role)
    t.accelerator.wait_for_everyone()
    t.last_save = time.monotonic()


def _save_due(t: _Training, step: int) -> bool:
    """A mid-epoch checkpoint after this optimizer step: every save_every_steps steps, or once save_every_minutes
    have passed since the last one (the main process's clock decides for all, so every process saves together)."""
    due = bool(t.cfg.save_every_steps) and step % t.cfg.save_every_steps == 0
    if t.cfg.save_every_minutes and not due:
        due = time.monotonic() - t.last_save >= 60 * t.cfg.save_every_minutes
        if t.accelerator.num_processes > 1:
            due = broadcast_object_list([due])[0]
    return due
