"""Every default lives here: one frozen dataclass per stage, grouped into named profiles. Overrides name known keys
("bert.lr", "max_length") and must keep the default's type; anything else is an error that lists the valid keys."""

from __future__ import annotations

import ast
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SettingError, UnknownSetting

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TRAINING_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SELECT_METRICS = ("accuracy", "macro_f1")
TRACKERS = ("", "tensorboard", "wandb")  # Accelerate trackers for TrainConfig.log_with ("": off)
TRUNCATIONS = ("head", "head_tail")  # what a longer document keeps (tokenization.truncate_ids)
# Loop settings that change speed or bookkeeping, not results: a run may resume, and is the same run, with other values.
EXECUTION_ONLY = ("compile", "pad_buckets", "save_every_steps", "save_every_minutes", "log_with")


def _require(obj, rules: list[tuple[str, bool, str]]) -> None:
    """The first (setting, holds, rule) that does not hold is a ValueError: "lr must be > 0, got -1"."""
    for name, holds, rule in rules:
        if not holds:
            raise SettingError(f"{name} must be {rule}, got {getattr(obj, name)}")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the one training loop (textlab.train.fit)."""

    epochs: int = 3
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    batch_size: int = 16  # micro-batch per process
    grad_accum: int = 2  # effective batch = batch_size * grad_accum * processes
    eval_batch_size: int = 64
    max_grad_norm: float = 1.0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    select_metric: str = "accuracy"  # validation metric for model selection / early stopping
    patience: int = 2  # epochs without validation improvement before stopping
    length_grouped: bool = True  # similar lengths per batch (False: shuffle, pad to max_length)
    save_every_steps: int = 0  # also checkpoint every this many optimizer steps (0: off)
    # Also checkpoint every this many minutes (0: off): a Ctrl-C or a crash loses that, not a ~12-minute cpu BERT epoch.
    save_every_minutes: float = 10.0
    max_steps: int = 0  # debug knob: stop after this many optimizer steps (0: no limit)
    log_with: str = ""  # "" (off), "tensorboard" or "wandb": Accelerate trackers
    compile: str = ""  # torch.compile through Accelerate ("" off; "inductor" on a GPU)
    pad_buckets: tuple = ()  # compiled graphs are shape-specialised: pad to these lengths (empty: 4 even steps)
    max_length: int = 0  # tokens this model reads (0: the profile's): BERT may read longer documents than the BiLSTM
    # "head": the first max_length tokens; "head_tail": the first quarter and the last three quarters of them
    # (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?": head+tail beat head-only on long reviews).
    truncation: str = "head"
    label_smoothing: float = 0.0  # training loss only (validation loss stays plain cross-entropy)
    # Layer-wise lr decay (1.0: off): each encoder layer below the head trains at this factor less (train.param_groups).
    layer_lr_decay: float = 1.0

    def __post_init__(self):
        for name, choices in (("precision", TRAINING_PRECISIONS), ("log_with", TRACKERS), ("truncation", TRUNCATIONS),
                              ("select_metric", SELECT_METRICS)):
            if getattr(self, name) not in choices:
                raise SettingError(f"unknown {name} {getattr(self, name)!r}; "
                                  f"choose one of: {', '.join(c or repr(c) + ' (off)' for c in choices)}")
        counts = ("epochs", "batch_size", "grad_accum", "eval_batch_size")
        _require(self, [(n, getattr(self, n) >= 1, ">= 1") for n in counts] + [
            ("pad_buckets", all(isinstance(b, int) and b >= 1 for b in self.pad_buckets), "positive token lengths"),
            ("label_smoothing", 0.0 <= self.label_smoothing < 1.0, "in [0, 1)"),
            ("layer_lr_decay", 0.0 < self.layer_lr_decay <= 1.0, "in (0, 1] (1.0 = off)"),
            ("save_every_minutes", self.save_every_minutes >= 0, ">= 0 (0: off)"),
            ("lr", self.lr > 0, "> 0"),
            ("max_length", not self.max_length or 8 <= self.max_length <= 512,
             "0 (the profile's) or in [8, 512] (BERT positions)"),
        ])


@dataclass(frozen=True)
class BertModelConfig:
    # Dropout on the attention probabilities (BERT's and MiniLM's own value: 0.1). At 0 PyTorch's fused
    # attention kernel can run instead of materialising and masking every [L x L] probability matrix: on this
    # CPU a training step at batch 32, bf16 ran x1.78 faster at 256 tokens, x3.57 at 512 (benchmarks/bench_step.py).
    attention_dropout: float = 0.1

    def __post_init__(self):
        _require(self, [("attention_dropout", 0.0 <= self.attention_dropout < 1.0, "in [0, 1)")])


@dataclass(frozen=True)
class BiLSTMConfig:
    num_layers: int = 2
    dropout: float = 0.3  # head dropout (seed: 0.3)
    lstm_dropout: float = 0.2  # between the LSTM layers
    input_dropout: float = 0.0  # on the frozen embedding outputs, training only (the embedding module stays in eval)


@dataclass(frozen=True)
class EnsembleConfig:
    hidden: tuple = (80, 40)  # seed's meta-MLP: 2N -> 80 -> 40 -> N
    dropouts: tuple = (0.15, 0.10)
    folds: int = 5  # cross-validation folds inside the meta-learner's training data
    max_epochs: int = 300
    lr: float = 3e-3
    weight_decays: tuple = (0.0, 1e-3, 1e-2, 1e-1)  # grid searched by cross-validation


@dataclass(frozen=True)
class Profile:
    name: str
    backbone: str  # see textlab.backbones.BACKBONES
    data: str = ""  # "" = 20 Newsgroups; or a path to your own .csv / .jsonl / .parquet (text, label)
    max_length: int = 256
    val_fraction: float = 0.1
    # The data split (validation carved from train, own files' test split, debug subsets) has its own fixed seed, so
    # that every training seed selects on the same documents and is scored on the same test set.
    split_seed: int = 42
    # Training seeds (new layers' initialisation, dropout, data order): each model is trained once per seed, and the
    # study reports mean ± sd over them (textlab.seeds). One seed is a quick run; the "study" profile trains three.
    seeds: tuple = (42,)
    max_train_samples: int = 0  # 0: all (debug knob: a stratified subset)
    max_eval_samples: int = 0  # 0: all; caps validation and test alike
    drop_empty_train: bool = True  # empty-after-stripping documents carry no signal to learn from
    bert: TrainConfig = field(default_factory=TrainConfig)
    bilstm: TrainConfig = field(default_factory=TrainConfig)
    bert_model: BertModelConfig = field(default_factory=BertModelConfig)
    bilstm_model: BiLSTMConfig = field(default_factory=BiLSTMConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)

    def __post_init__(self):
        _require(self, [("val_fraction", 0 < self.val_fraction < 1, "in (0, 1)"),
                        ("max_length", 8 <= self.max_length <= 512, "in [8, 512] (BERT positions)"),
                        ("seeds", len(self.seeds) >= 1 and all(type(s) is int and s >= 0 for s in self.seeds)
                         and len(set(self.seeds)) == len(self.seeds),
                         "one or more distinct integers >= 0, e.g. seeds=42,43,44")])


PROFILES: dict[str, Profile] = {
    # Whole series in a few minutes on 2 CPU cores: random-init tiny BERT, a few hundred documents.
    "smoke": Profile(
        name="smoke", backbone="tiny", max_length=64, max_train_samples=400, max_eval_samples=200,
        bert=TrainConfig(epochs=1, lr=1e-3, batch_size=16, grad_accum=1, precision="fp32"),
        bilstm=TrainConfig(epochs=1, lr=2e-3, batch_size=16, grad_accum=1, precision="fp32"),
        ensemble=EnsembleConfig(folds=3, max_epochs=30, weight_decays=(0.0, 1e-2)),
    ),
    # The README's main command: embedded MiniLM-L6, full data, 2 CPU cores; bf16 autocast trains x2.8 faster than
    # fp32 here (avx512_bf16). Tuned on validation (benchmarks/results/tuning, README "Tuning"), one step at a time:
    # BERT lr 3e-4 (1e-4 under-fitted: val loss still falling after 3 epochs); 3 epochs (4: +0.2 points but over the
    # 90-minute budget); label smoothing 0.1 (beat 384 tokens and head+tail); no attention dropout, so that 512 tokens
    # cost less than 256 did with it (bench_step.py) and 512 beat 256 / 384; layer-wise lr decay 0.7 (embeddings at
    # 0.7^7 of the head's lr). The BiLSTM over-fitted without input dropout.
    "cpu": Profile(
        name="cpu", backbone="minilm", max_length=256,
        bert=TrainConfig(epochs=3, lr=3e-4, batch_size=32, grad_accum=1, precision="auto", warmup_ratio=0.06,
                         label_smoothing=0.1, max_length=512, layer_lr_decay=0.7),
        bert_model=BertModelConfig(attention_dropout=0.0),
        bilstm=TrainConfig(epochs=8, lr=2e-3, batch_size=32, grad_accum=1, precision="auto", weight_decay=0.01,
                           patience=3, warmup_ratio=0.03),
        bilstm_model=BiLSTMConfig(input_dropout=0.3),
    ),
    # The seed's recipe, for a GPU: bert-base-uncased, micro-batch 16 x 2, fp16 with loss scaling.
    "paper": Profile(
        name="paper", backbone="bert-base-uncased", max_length=256,
        bert=TrainConfig(epochs=4, lr=2e-5, batch_size=16, grad_accum=2, precision="fp16"),
        bilstm=TrainConfig(epochs=10, lr=1e-3, batch_size=16, grad_accum=2, precision="fp32", patience=3),
    ),
}
# The committed study: the cpu profile trained with three seeds (`make study`), so that every conclusion carries its
# seed spread. Its run folder is runs/study.
PROFILES["study"] = dataclasses.replace(PROFILES["cpu"], name="study", seeds=(42, 43, 44))


_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _coerce(value: Any, default: Any, key: str) -> Any:
    """Keep the default's type; accept strings from the command line ("2", "1e-3", "yes", "64,128")."""
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        try:
            if kind is tuple:
                value = tuple(ast.literal_eval(f"({value},)")) if value.strip() else ()
            else:
                value = _BOOLS[value.lower()] if kind is bool else kind(value)
        except (KeyError, ValueError, SyntaxError):
            pass  # left a string: refused below
    accepted = {bool: (bool,), int: (int,), float: (int, float), tuple: (list, tuple)}.get(kind, (kind,))
    if not isinstance(value, accepted) or (isinstance(value, bool) and kind is not bool):
        raise TypeError(f"override {key}={value!r} must be of type {kind.__name__} like its default {default!r}")
    return kind(value) if kind in (int, float, tuple) else value


def _override(obj, key: str, value: Any, prefix: str = ""):
    head, _, rest = key.partition(".")
    names = [f.name for f in dataclasses.fields(obj)]
    full = prefix + key
    if head not in names:
        raise UnknownSetting(f"unknown setting {full!r}; valid keys here: {', '.join(prefix + n for n in names)}")
    current = getattr(obj, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise UnknownSetting(f"{prefix + head!r} has no sub-settings; cannot set {full!r}")
        return dataclasses.replace(obj, **{head: _override(current, rest, value, f"{prefix}{head}.")})
    if dataclasses.is_dataclass(current):
        first = dataclasses.fields(current)[0].name
        raise UnknownSetting(f"{full!r} is a group; set one of its keys, e.g. {full}.{first}")
    return dataclasses.replace(obj, **{head: _coerce(value, current, full)})


def _apply(profile: Profile, overrides: dict[str, Any]) -> Profile:
    for key, value in overrides.items():
        profile = _override(profile, key.replace("__", "."), value)
    return profile


def get_profile(name: str | None = None, **overrides: Any) -> Profile:
    """The named profile (default: $TEXTLAB_PROFILE, else "cpu") with overrides applied, nested with "__" or ".":
    get_profile("smoke", bert__epochs=2) or get_profile("smoke", **{"bert.epochs": 2})."""
    name = name or os.environ.get("TEXTLAB_PROFILE") or "cpu"
    if name not in PROFILES:
        raise SettingError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")
    return _apply(PROFILES[name], overrides)


def parse_overrides(overrides: str | list | tuple | dict | None) -> dict[str, Any]:
    """The one parser of overrides (--set K=V, papermill parameters, a notebook's parameters cell): a dict
    {"bert.epochs": 2}, a list ["bert.epochs=2", ...], or one string of KEY=VALUE items separated by whitespace."""
    if not overrides:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    items = overrides.split() if isinstance(overrides, str) else list(overrides)
    out = {}
    for item in items:
        key, eq, value = str(item).partition("=")
        if not eq or not key.strip():
            raise SettingError(f"an override is KEY=VALUE (e.g. bert.epochs=2), got {item!r}")
        out[key.strip()] = value.strip()
    return out


def resolve(profile: Profile | str | None = None, data: str = "", overrides=None) -> Profile:
    """A profile (name or object) with your data file and overrides applied; a bad key or value is a ValueError
    that names it. What the CLI, the runner and every notebook's parameters cell go through."""
    items = parse_overrides(overrides)
    if data:
        items["data"] = str(data)
    try:
        return _apply(profile if isinstance(profile, Profile) else get_profile(profile), items)
    except (UnknownSetting, TypeError) as e:
        raise SettingError(str(e)) from None  # one line in a notebook too (errors.show_briefly_in_ipython)
