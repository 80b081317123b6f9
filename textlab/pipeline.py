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
import pandas as pd
import torch

from . import checkpoint as ckpt
from . import plots, runs
from .backbones import Backbone, config_dict, get_backbone
from .batching import make_loader
from .compare import backbone_name, display_record
from .config import Profile, resolve
from .data import load_for_profile
from .dataset import column
from .describe import CLASSIFIER_DROPOUT, architecture_stages, count_params, from_config
from .errors import show_briefly_in_ipython
from .ensemble import MetaMLPEnsemble
from .ensemble_choice import choose_across_seeds, choose_ensemble, wins
from .evaluate import metrics
from .kinds import NEURAL, display
from .models import BiLSTMClassifier
from .models.tfidf import TfidfSVM
from .tokenization import tokenize
from .train import fit, make_accelerator, pad_buckets, loader_logits



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
    return {"schema": ckpt.SCHEMA, "kind": kind, "backbone": p.backbone, "num_labels": len(prep.label_names),
            "label_names": prep.label_names, "max_length": model_max_length(p, kind),
            "truncation": getattr(p, kind).truncation, "model_config": config_dict(prep.backbone.config),
            "bert_model": asdict(p.bert_model), "bilstm": asdict(p.bilstm_model), "profile": p.name,
            "data": prep.fingerprint, "seed": seed, "drop_empty_train": p.drop_empty_train}


def build_model(kind: str, backbone: Backbone, num_labels: int, profile: Profile) -> torch.nn.Module:
    """Pre-trained weights where the backbone has them (BERT: all of it; BiLSTM: its embeddings)."""
    if kind == "bert":
        return backbone.classifier(num_labels, dropout=CLASSIFIER_DROPOUT,
                                   attention_dropout=profile.bert_model.attention_dropout)
    if kind == "bilstm":
        embeddings = backbone.classifier(num_labels).bert.embeddings
        return BiLSTMClassifier(embeddings, num_labels, **asdict(profile.bilstm_model))
    raise ValueError(f"unknown model kind {kind!r}; choose one of: {', '.join(NEURAL)}")


def build_from_meta(meta: dict) -> torch.nn.Module:
    """The architecture a checkpoint was made for, from its stored config alone (no download)."""
    return from_config(meta["kind"], meta["model_config"], meta["num_labels"], meta.get("bilstm", {}))


def _locked(step):
    """`step` holding the lock of its Prepared argument's run folder (re-entrant: one locked step may call another)."""
    @functools.wraps(step)
    def locked(*args, **kw):
        prep = next(a for a in (*args, *kw.values()) if isinstance(a, Prepared))
        with runs.lock(prep.run_dir):
            return step(*args, **kw)
    return locked


@_locked
def train_seeds(kind: str, prep: Prepared, **fit_kw) -> dict[int, dict]:
    """train_and_evaluate `kind` once per training seed of the profile, in order: {seed: record}. A seed already
    trained is re-used, one cut short resumes inside its last checkpoint."""
    records, seeds = {}, prep.profile.seeds
    for i, seed in enumerate(seeds):
        records[seed] = train_and_evaluate(kind, prep, seed=seed, trainings_after=len(seeds) - 1 - i, **fit_kw)
        history = ckpt.read_json(seed_dir(prep.run_dir, seed) / kind / "history.json")
        records[seed]["train_seconds"] = sum(row["seconds"] for row in history)  # every epoch, resumed ones too
    return records


@_locked
def train_and_evaluate(kind: str, prep: Prepared, seed: int | None = None, **fit_kw) -> dict:
    """Train `kind` with training seed `seed` (default: the profile's first) in the run folder of `prep` (open_run),
    into seed-<seed>/<kind>, resuming if a checkpoint of the same settings exists; evaluate the selected checkpoint
    on validation and, once, on test; write metrics.json and the logits for the ensemble. The run folder is locked
    meanwhile."""
    profile, cfg = prep.profile, getattr(prep.profile, kind)
    seed = _check_seed(profile, seed)
    out = seed_dir(prep.run_dir, seed) / kind
    torch.manual_seed(seed)
    model = build_model(kind, prep.backbone, len(prep.label_names), profile)
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
    ckpt.write_json(out / "logits.json", _logits_key(out))
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


def format_seeds(seeds) -> str:
    return f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"


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
    record = {"schema": ckpt.SCHEMA, "profile": prep.profile.name, **record,
              "infer_docs_per_s": splits["test"]["docs_per_s"], **splits, "label_names": prep.label_names}
    ckpt.write_json(out / "metrics.json", record)
    return record


def model_report(kind: str, prep: Prepared, records: dict[int, dict]):
    """What notebooks 02 and 03 show of a model trained by train_seeds: the learning curves of every seed on one
    figure, and the first seed's test confusion matrix, per-class test F1 and architecture (drawn from the trained
    model object), each saved to the run's figures as <kind>_*.png; returns the per-epoch history of every seed."""
    seeds, name = list(records), records[next(iter(records))]["display_name"]
    first = seed_dir(prep.run_dir, seeds[0]) / kind
    histories = {s: ckpt.read_json(seed_dir(prep.run_dir, s) / kind / "history.json") for s in seeds}
    curves = {f"{name}, seed {s}" if len(seeds) > 1 else name: h for s, h in histories.items()}
    plots.save_figure(plots.plot_learning_curves(curves), prep.figures / f"{kind}_learning_curves.png")
    which = f", seed {seeds[0]}" if len(seeds) > 1 else ""
    y_true, y_pred = ckpt.read_npy(first / "labels_test.npy"), ckpt.read_npy(first / "logits_test.npy").argmax(1)
    fig = plots.plot_confusion_matrix(y_true, y_pred, prep.label_names, title=f"{name}{which}, test split")
    plots.save_figure(fig, prep.figures / f"{kind}_confusion.png")
    fig = plots.plot_per_class_f1({name + which: np.array(records[seeds[0]]["test"]["per_class"]["f1"])},
                                  prep.label_names)
    plots.save_figure(fig, prep.figures / f"{kind}_per_class_f1.png")
    fig = plots.plot_architectures({f"{name} — {backbone_name(prep.profile.backbone)}": architecture(first)})
    plots.save_figure(fig, prep.figures / f"{kind}_architecture.png")
    return pd.DataFrame([{"seed": s, **row} for s, h in histories.items() for row in h])


def architecture(model_dir) -> list[tuple[str, str]]:
    """The stages of a trained model (describe.architecture_stages), read off its selected checkpoint."""
    model, meta = load_model(model_dir)
    return architecture_stages(model, meta["max_length"])


def model_summary(records: dict[int, dict]):
    """The numbers a model's notebook ends with: test and validation scores (mean over seeds), epochs, speed, size."""
    recs = list(records.values())
    mean = lambda f: float(np.mean([f(r) for r in recs]))  # noqa: E731
    first = recs[0]
    return display_record({
        "seeds": ", ".join(map(str, records)),
        "test_accuracy": mean(lambda r: r["test"]["accuracy"]), "test_macro_f1": mean(lambda r: r["test"]["macro_f1"]),
        "val_accuracy": mean(lambda r: r["validation"]["accuracy"]),
        "best_epoch": ", ".join(str(r["best_epoch"]) for r in recs), "epochs_run": sum(r["epochs_run"] for r in recs),
        "s_per_epoch": mean(lambda r: r["s_per_epoch"]), **{k: first[k] for k in ("device", "precision")},
        **{f"params_{k}": first["params"][k] for k in ("total", "trainable", "frozen")},
        "infer_docs_per_s": mean(lambda r: r["infer_docs_per_s"]), "checkpoint_MB": first["checkpoint_bytes"] / 1e6})


def _logits_key(model_dir: Path) -> dict:
    """What cached logits belong to: the selected checkpoint, by name and weights."""
    best = ckpt.checkpoint_path(model_dir, "best")
    return {"checkpoint": best.name, "weights_sha": ckpt.sha256_file(best / "model.safetensors")}


def _logits(model, accelerator, dataset, tokenizer, batch_size: int, desc: str, buckets: tuple):
    """Logits and labels of a dataset, in its order."""
    loader = accelerator.prepare(make_loader(dataset, tokenizer, batch_size, shuffle=False, buckets=buckets))
    return loader_logits(model, loader, accelerator, desc=desc)[:2]


def write_logits(out: Path, split: str, logits: np.ndarray, labels: np.ndarray) -> None:
    ckpt.write_npy(out / f"logits_{split}.npy", logits.astype(np.float32))
    ckpt.write_npy(out / f"labels_{split}.npy", labels.astype(np.int64))


def load_model(model_dir, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The selected (best) checkpoint of a trained model folder, rebuilt from its metadata."""
    best = ckpt.checkpoint_path(model_dir, "best")
    meta_path = best / "meta.json"
    if not meta_path.exists():
        raise ckpt.CheckpointError(f"{meta_path} is missing: the checkpoint cannot be rebuilt")
    meta = ckpt.validate_meta(ckpt.read_json(meta_path), meta_path)
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
    if cached.exists() and ckpt.read_json(cached) == key and all(
            (model_dir / f"logits_{s}.npy").exists() for s in SPLITS):
        return {s: (ckpt.read_npy(model_dir / f"logits_{s}.npy"), ckpt.read_npy(model_dir / f"labels_{s}.npy"))
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
    ckpt.write_json(cached, key)
    del model
    gc.collect()
    return out


# ---------------------------------------------------------------- TF-IDF member and the ensemble (notebook 04)


@_locked
def train_tfidf(prep: Prepared, seed: int | None = None) -> dict:
    """TF-IDF + linear SVM on the training split (seconds on a CPU), for training seed `seed` (default: the first):
    the lexical member and baseline."""
    seed = _check_seed(prep.profile, seed)
    out = seed_dir(prep.run_dir, seed) / "tfidf"
    t0 = time.perf_counter()
    train = prep.raw["train"]
    model = TfidfSVM(seed=seed).fit(column(train, "text"), column(train, "label"), len(prep.label_names))
    fit_seconds = time.perf_counter() - t0
    model.save(out / "model")

    def predict(split: str):
        return model.decision_function(column(prep.raw[split], "text")), column(prep.raw[split], "label")

    return _test_and_record(
        prep, out, predict, model="tfidf", seed=seed, display_name=display("tfidf"),
        backbone="none (1-2 gram TF-IDF)", params={"total": model.n_params, "trainable": model.n_params, "frozen": 0},
        vocabulary=len(model.vectorizer.vocabulary_), precision="fp32", device="CPU (scikit-learn)",
        s_per_epoch=fit_seconds, checkpoint_bytes=sum(f.stat().st_size for f in (out / "model").iterdir()))


@_locked
def build_ensemble(prep: Prepared) -> tuple[dict, object, dict]:
    """Each training seed's ensemble (_seed_ensemble), then the run's: the deep ensembles over every seed's members
    against every seed's variants, chosen on validation CV alone (ensemble_choice.choose_across_seeds). Writes
    ensemble/{table.csv, ensemble.json, proba_test_chosen.npy, metrics.json}; returns ({seed: (report, record)},
    the run's report, the run's record)."""
    run, seeds = prep.run_dir, prep.profile.seeds
    per_seed, members = {}, {}
    for seed in seeds:
        report, record, members[seed], (y_val, y_test) = _seed_ensemble(prep, seed)
        per_seed[seed] = (report, record)
    t0 = time.perf_counter()
    report = choose_across_seeds({s: r for s, (r, _) in per_seed.items()}, members, y_val, y_test,
                                 prep.profile.ensemble, seed=prep.profile.split_seed)
    seconds = time.perf_counter() - t0
    out = run / "ensemble"
    ckpt.write_text(out / "table.csv", report.table.to_csv(index=False))
    row = report.table.set_index("variant").loc[report.chosen]
    seed = None if row["seed"] == "all" else int(row["seed"])
    variant = report.fitted[report.chosen]
    stage = {**_ensemble_stage(variant, report.chosen, out, "chosen_meta_mlp"), "seed": seed,
             "member_folders": [member_folder(m, seed).as_posix() for m in variant.members]}
    ckpt.write_json(out / "ensemble.json", stage)
    ckpt.write_npy(out / "proba_test_chosen.npy", report.test_proba[report.chosen].astype(np.float32))
    record = {"schema": ckpt.SCHEMA, "chosen": report.chosen, "seed": seed, "seeds": list(seeds),
              "row": row.to_dict(), "stage": stage, "compare_seconds": seconds, "label_names": prep.label_names,
              "wins": wins({s: r for s, (r, _) in per_seed.items()}).to_dict("records")}
    ckpt.write_json(out / "metrics.json", record)
    return per_seed, report, record


def member_folder(member: str, seed: int | None) -> Path:
    """A member of an ensemble, relative to the run folder: "bert@43" -> seed-43/bert; "bert" of seed 42 ->
    seed-42/bert."""
    kind, _, own = member.partition("@")
    return Path(seed_dir(Path(), int(own) if own else seed)) / kind


def _seed_ensemble(prep: Prepared, seed: int):
    """One seed's members' cached logits -> every ensemble variant, compared on validation by cross-validation;
    writes seed-<seed>/ensemble/: the table, the chosen and the seed-exact ensembles, and their test probabilities.
    Returns (report, record, {member: {split: logits}}, (validation labels, test labels))."""
    profile, root = prep.profile, seed_dir(prep.run_dir, seed)
    for kind in NEURAL:  # finished and evaluated, not only checkpointed (a training cut short has a checkpoint)
        if not (root / kind / "metrics.json").exists():
            raise ckpt.CheckpointError(f"{root / kind} holds no finished {kind} training: "
                                       f"{runs.train_first(prep.run_dir, kind)}")
    if not (root / "tfidf" / "metrics.json").exists():
        train_tfidf(prep, seed)
    cached = {kind: member_logits(root / kind, prep) for kind in NEURAL}  # {kind: {split: (logits, labels)}}
    logits = {kind: {s: pair[0] for s, pair in splits.items()} for kind, splits in cached.items()}
    logits["tfidf"] = {s: ckpt.read_npy(root / "tfidf" / f"logits_{s}.npy") for s in SPLITS}
    y_val, y_test = cached["bert"]["validation"][1], cached["bert"]["test"][1]
    t0 = time.perf_counter()
    report = choose_ensemble(logits, y_val, y_test, profile.ensemble, seed=seed)
    seconds = time.perf_counter() - t0
    out = root / "ensemble"
    ckpt.write_text(out / "table.csv", report.table.to_csv(index=False))
    stages = {}
    for tag, name in (("seed", report.seed_meta_mlp.name), ("chosen", report.chosen)):
        stages[tag] = _ensemble_stage(report.fitted[name], name, out, f"{tag}_meta_mlp")
        ckpt.write_npy(out / f"proba_test_{tag}.npy", report.test_proba[name].astype(np.float32))
    ckpt.write_json(out / "ensemble.json", stages["chosen"])
    table = report.table.set_index("variant")
    singles = report.table[report.table["kind"] == "single"].sort_values("val_cv_accuracy", ascending=False)
    record = {"schema": ckpt.SCHEMA, "seed": seed, "chosen": report.chosen, "seed_exact": report.seed_meta_mlp.name,
              "compare_seconds": seconds,
              "rows": {tag: table.loc[st["variant"]].to_dict() for tag, st in stages.items()},
              "stages": stages, "best_single_on_validation": singles["variant"].iloc[0],
              "singles": singles.set_index("variant")[["val_cv_accuracy", "test_accuracy", "test_macro_f1"]]
              .to_dict("index"), "label_names": prep.label_names}
    ckpt.write_json(out / "metrics.json", record)
    return report, record, logits, (y_val, y_test)


def _ensemble_stage(variant, name: str, out: Path, folder: str) -> dict:
    """The ensemble's own stage: its describe() with fitted parameters and checkpoint size (a meta-MLP is saved to
    out/folder)."""
    info = {"variant": name, "class": type(variant).__name__, "own_params": int(variant.n_fitted),
            "seconds_per_epoch": None, "checkpoint_bytes": 0, **variant.describe()}
    if isinstance(variant, MetaMLPEnsemble):
        saved = variant.save(out / folder)
        info.update(checkpoint=folder, checkpoint_bytes=sum(f.stat().st_size for f in saved.iterdir()))
    return info
