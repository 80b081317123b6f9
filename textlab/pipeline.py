"""What the notebooks call: prepare data, build a model, train it with the one loop, evaluate test once,
and write the run's artifacts (metrics JSON, history, checkpoints, validation/test logits)."""

from __future__ import annotations

import dataclasses
import functools
import gc
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from . import locks, runs
from .artifacts import SCHEMA, read_json, read_npy, sha256_file, write_json, write_npy
from .backbones import Backbone, config_dict, get_backbone
from .batching import make_loader, pad_buckets
from .config import Profile, resolve
from .data import load_for_profile
from .dataset import column, iter_texts
from .describe import count_params
from .display import format_seeds
from .errors import show_briefly_in_ipython
from .evaluate import metrics
from .factory import build_from_meta, build_model
from .hardware import make_accelerator
from .kinds import display
from .models.tfidf import TfidfSVM
from .tokenization import tokenize
from .train import fit, loader_logits



SPLITS = ("validation", "test")  # scored, and their logits kept for the ensemble


@dataclass
class Prepared:
    profile: Profile
    backbone: Backbone
    tokenizer: object
    raw: object  # DatasetDict of texts
    data: object  # DatasetDict, tokenized; train without empty documents if profile.drop_empty_train
    label_names: list[str]
    dropped_empty_train: int
    fingerprint: str  # of the texts and labels of every split (textlab.runs.dataset_fingerprint)
    run: Path | None = None  # the run folder, once opened (open_run)
    figures: Path | None = None

    @property
    def run_dir(self) -> Path:
        if self.run is None:
            raise ValueError("this Prepared has no run folder: open one with textlab.pipeline.open_run(profile)")
        return self.run


def prepare(profile: Profile, raw=None) -> Prepared:
    """Data (split, tokenized at the profile's max_length) and backbone for a profile; no run folder. `raw`: the
    profile's splits (data.load_for_profile), if loaded already."""
    backbone = get_backbone(profile.backbone)
    tokenizer = backbone.tokenizer()
    raw = load_for_profile(profile) if raw is None else raw
    fingerprint = runs.dataset_fingerprint(raw)  # once: the run's manifest and every tokenization cache key use it
    data = _tokenized(raw, tokenizer, profile, profile.max_length, "head", fingerprint)
    return Prepared(profile, backbone, tokenizer, raw, data, raw["train"].features["label"].names,
                    len(raw["train"]) - len(data["train"]), fingerprint)


# Profile fields that decide what prepare() returns: a Prepared can serve any profile that agrees on them.
DATA_FIELDS = ("backbone", "data", "max_length", "val_fraction", "split_seed", "max_train_samples",
               "max_eval_samples", "drop_empty_train")


def open_run(profile: Profile | str | None = None, *, data: str = "", overrides=None, name: str = "",
             fresh: bool = False, prep: Prepared | None = None) -> Prepared:
    """What every notebook calls first: the profile (a name or a Profile) with your data file and overrides
    applied, its data, and its run folder (runs/<name>, name defaulting to the profile plus the data file's stem),
    checked against the folder's manifest so that nothing is re-used under other data or settings.
    `prep`: data prepared earlier for a profile with the same DATA_FIELDS (tests, tuning scripts)."""
    show_briefly_in_ipython()  # in a notebook: a DataError is its message, not a traceback through textlab
    profile = resolve(profile, data, overrides)
    if prep is None:
        prep = prepare(profile)
    elif any(getattr(prep.profile, f) != getattr(profile, f) for f in DATA_FIELDS):
        raise ValueError(f"prep was made for other data settings than this profile's ({', '.join(DATA_FIELDS)})")
    run = runs.open_folder(profile, prep.raw, prep.backbone, name, fresh, fingerprint=prep.fingerprint)
    figures = runs.figures_dir(profile, run)
    figures.mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(prep, profile=profile, run=run, figures=figures)


def _tokenized(raw, tokenizer, profile: Profile, max_length: int, truncation: str, fingerprint: str):
    """Tokenized splits (cached on disk), train without empty documents if profile.drop_empty_train."""
    data = tokenize(raw, tokenizer, max_length, truncation=truncation, fingerprint=fingerprint)
    if profile.drop_empty_train:
        # Empty in tokens, not only in text (dataset.is_empty): a text of characters the tokenizer drops is empty too.
        # select, not filter(lambda): one array comparison instead of a Python call per document.
        data["train"] = data["train"].select(np.flatnonzero(column(data["train"], "full_length") > 2))  # [CLS] [SEP]
    return data


def model_max_length(profile: Profile, kind: str) -> int:
    """Tokens `kind` reads: its own TrainConfig.max_length, else the profile's."""
    return getattr(profile, kind).max_length or profile.max_length


def model_data(prep: Prepared, max_length: int, truncation: str = "head"):
    """The tokenized splits at `max_length` cut by `truncation`: prep.data at the profile's length with the head
    kept, else tokenized (and cached) anew."""
    if max_length == prep.profile.max_length and truncation == "head":
        return prep.data
    return _tokenized(prep.raw, prep.tokenizer, prep.profile, max_length, truncation, prep.fingerprint)


def seed_dir(run: Path, seed: int) -> Path:
    """Where one training seed's models live: runs/<name>/seed-<seed>/{bert,bilstm,tfidf,ensemble}."""
    return Path(run) / f"seed-{seed}"


def model_meta(kind: str, prep: Prepared, seed: int) -> dict:
    """What a checkpoint stores about its model: enough to rebuild it, and what it was trained from (the data's
    fingerprint, the training seed), so that it is never resumed or re-used under anything else
    (train.check_resumable)."""
    p = prep.profile
    return {"schema": SCHEMA, "kind": kind, "backbone": p.backbone, "num_labels": len(prep.label_names),
            "label_names": prep.label_names, "max_length": model_max_length(p, kind),
            "truncation": getattr(p, kind).truncation, "model_config": config_dict(prep.backbone.config),
            "bert_model": asdict(p.bert_model), "bilstm": asdict(p.bilstm_model), "profile": p.name,
            "data": prep.fingerprint, "seed": seed, "drop_empty_train": p.drop_empty_train}


def under_run_lock(step):
    """`step` holding the lock of its Prepared argument's run folder (re-entrant: one locked step may call another)."""
    @functools.wraps(step)
    def locked(*args, **kw):
        prep = next(a for a in (*args, *kw.values()) if isinstance(a, Prepared))
        with locks.lock(prep.run_dir):
            return step(*args, **kw)
    return locked


@under_run_lock
def train_seeds(kind: str, prep: Prepared, **fit_kw) -> dict[int, dict]:
    """train_and_evaluate `kind` once per training seed of the profile, in order: {seed: record}. A seed already
    trained is re-used, one cut short resumes inside its last checkpoint."""
    records, seeds = {}, prep.profile.seeds
    for i, seed in enumerate(seeds):
        records[seed] = train_and_evaluate(kind, prep, seed=seed, trainings_after=len(seeds) - 1 - i, **fit_kw)
        history = read_json(seed_dir(prep.run_dir, seed) / kind / "history.json")
        records[seed]["train_seconds"] = sum(row["seconds"] for row in history)  # every epoch, resumed ones too
    return records


@under_run_lock
def train_and_evaluate(kind: str, prep: Prepared, seed: int | None = None, **fit_kw) -> dict:
    """Train `kind` with training seed `seed` (default: the profile's first) in the run folder of `prep` (open_run),
    into seed-<seed>/<kind>, resuming if a checkpoint of the same settings exists; evaluate the selected checkpoint
    on validation and, once, on test; write metrics.json and the logits for the ensemble. The run folder is locked
    meanwhile."""
    profile, cfg = prep.profile, getattr(prep.profile, kind)
    seed = _check_seed(profile, seed)
    out = seed_dir(prep.run_dir, seed) / kind
    torch.manual_seed(seed)
    model = build_model(kind, prep.backbone, len(prep.label_names), profile.bert_model, profile.bilstm_model)
    params = count_params(model)
    max_length = model_max_length(profile, kind)
    data = model_data(prep, max_length, cfg.truncation)
    result = fit(model, data, prep.tokenizer, cfg, out, meta=model_meta(kind, prep, seed), seed=seed,
                 desc=kind if len(profile.seeds) == 1 else f"{kind} seed {seed}", **fit_kw)
    buckets = pad_buckets(cfg, max_length)

    def predict(split: str):
        return _logits(result.model, result.accelerator, data[split], prep.tokenizer, cfg.eval_batch_size,
                       f"{kind} {split}", buckets)

    record = _test_and_record(
        prep, out, predict, model=kind, seed=seed, display_name=display(kind), backbone=profile.backbone, params=params,
        precision=result.precision, device=result.device, s_per_epoch=result.s_per_epoch,
        best_epoch=result.best_epoch, epochs_run=len(result.history), stopped_early=result.stopped_early,
        select_metric=cfg.select_metric,
        checkpoint_bytes=(ckpt.checkpoint_path(out, "best") / "model.safetensors").stat().st_size,
        dropped_empty_train=prep.dropped_empty_train, n_train=len(data["train"]), max_length=max_length,
        truncation=cfg.truncation, config=asdict(cfg))
    write_json(out / "logits.json", _logits_key(out))
    model = result = None  # free the model before the next one is built (names kept for the closure above)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return record


def _check_seed(profile: Profile, seed: int | None) -> int:
    """`seed`, one of the profile's training seeds (default: the first); else a ValueError naming them."""
    if seed is None:
        return profile.seeds[0]
    if seed not in profile.seeds:
        raise ValueError(f"seed {seed} is not a training seed of this run ({format_seeds(profile.seeds)}); add it with "
                         f"--set seeds={','.join(map(str, (*profile.seeds, seed)))}")
    return seed


def _test_and_record(prep: Prepared, out: Path, predict, **record) -> dict:
    """Scores of `predict(split) -> (logits, labels)` on validation and test, its logits saved for the ensemble;
    written with `record` as out/metrics.json."""
    splits = {}
    for split in SPLITS:
        t0 = time.perf_counter()
        logits, labels = predict(split)
        seconds = time.perf_counter() - t0
        write_logits(out, split, logits, labels)
        splits[split] = {**metrics(logits, labels, prep.label_names), "docs_per_s": len(labels) / seconds}
    record = {"schema": SCHEMA, "profile": prep.profile.name, **record,
              "infer_docs_per_s": splits["test"]["docs_per_s"], **splits, "label_names": prep.label_names}
    write_json(out / "metrics.json", record)
    return record


def _logits_key(model_dir: Path) -> dict:
    """What cached logits belong to: the selected checkpoint, by name and weights."""
    best = ckpt.checkpoint_path(model_dir, "best")
    return {"checkpoint": best.name, "weights_sha": sha256_file(best / "model.safetensors")}


def _logits(model, accelerator, dataset, tokenizer, batch_size: int, desc: str, buckets: tuple):
    """Logits and labels of a dataset, in its order."""
    loader = accelerator.prepare(make_loader(dataset, tokenizer, batch_size, shuffle=False, buckets=buckets))
    return loader_logits(model, loader, accelerator, desc=desc)[:2]


def write_logits(out: Path, split: str, logits: np.ndarray, labels: np.ndarray) -> None:
    write_npy(out / f"logits_{split}.npy", logits.astype(np.float32))
    write_npy(out / f"labels_{split}.npy", labels.astype(np.int64))


def load_model(model_dir, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The selected (best) checkpoint of a trained model folder, rebuilt from its metadata."""
    best = ckpt.checkpoint_path(model_dir, "best")
    meta_path = best / "meta.json"
    if not meta_path.exists():
        raise ckpt.CheckpointError(f"{meta_path} is missing: the checkpoint cannot be rebuilt")
    meta = ckpt.validate_meta(read_json(meta_path), meta_path)
    try:
        model = build_from_meta(meta)
    except (KeyError, TypeError, ValueError) as e:  # valid JSON, but not our metadata
        raise ckpt.CheckpointError(f"{meta_path} does not describe a model (corrupt?): {e!r}") from e
    ckpt.load_into(model, best / "model.safetensors", meta)
    return model.to(device).eval(), meta


def member_logits(model_dir, prep: Prepared) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Cached logits of a trained model, keyed by its selected checkpoint; recomputed (one model in memory
    at a time, then freed) when the checkpoint changed or the cache is missing."""
    model_dir = Path(model_dir)
    key = _logits_key(model_dir)
    cached = model_dir / "logits.json"
    if cached.exists() and read_json(cached) == key and all(
            (model_dir / f"logits_{s}.npy").exists() for s in SPLITS):
        return {s: (read_npy(model_dir / f"logits_{s}.npy"), read_npy(model_dir / f"labels_{s}.npy"))
                for s in SPLITS}
    model, meta = load_model(model_dir)
    cfg = getattr(prep.profile, meta["kind"])
    accelerator = make_accelerator(cfg)
    model = accelerator.prepare(model)
    max_length = int(meta["max_length"])  # read as it was trained
    data, buckets = model_data(prep, max_length, meta["truncation"]), pad_buckets(cfg, max_length)
    out = {}
    for s in SPLITS:
        out[s] = _logits(model, accelerator, data[s], prep.tokenizer, 64, f"{meta['kind']} {s}", buckets)
        write_logits(model_dir, s, *out[s])
    write_json(cached, key)
    del model
    gc.collect()
    return out


# ---------------------------------------------------------------- the TF-IDF member (notebook 04)


@under_run_lock
def train_tfidf(prep: Prepared, seed: int | None = None) -> dict:
    """TF-IDF + linear SVM on the training split (seconds on a CPU), for training seed `seed` (default: the first):
    the lexical member and baseline."""
    seed = _check_seed(prep.profile, seed)
    out = seed_dir(prep.run_dir, seed) / "tfidf"
    t0 = time.perf_counter()
    train = prep.raw["train"]
    model = TfidfSVM(seed=seed).fit(iter_texts(train), column(train, "label"), len(prep.label_names))
    fit_seconds = time.perf_counter() - t0
    model.save(out / "model")

    def predict(split: str):
        return model.decision_function(column(prep.raw[split], "text")), column(prep.raw[split], "label")

    return _test_and_record(
        prep, out, predict, model="tfidf", seed=seed, display_name=display("tfidf"),
        backbone="none (1-2 gram TF-IDF)", params={"total": model.n_params, "trainable": model.n_params, "frozen": 0},
        vocabulary=len(model.vectorizer.vocabulary_), precision="fp32", device="CPU (scikit-learn)",
        s_per_epoch=fit_seconds, checkpoint_bytes=sum(f.stat().st_size for f in (out / "model").iterdir()))
