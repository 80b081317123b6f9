"""The one model factory: every BERT classifier and BiLSTM textlab trains, loads, counts or benchmarks is built here."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass

import torch
from transformers import BertConfig

from .backbones import Backbone
from .config import BertModelConfig, BiLSTMConfig
from .kinds import NEURAL
from .models import BiLSTMClassifier

CLASSIFIER_DROPOUT = 0.3  # the seed's


def _settings(value) -> dict:
    return asdict(value) if is_dataclass(value) else dict(value)


def build_model(kind: str, backbone: Backbone, num_labels: int, bert_model: BertModelConfig | dict | None = None,
                bilstm_model: BiLSTMConfig | dict | None = None, *, to_train: bool = True) -> torch.nn.Module:
    """`kind` over `backbone`: its pre-trained weights where it has them (BERT: all of it; BiLSTM: its embeddings),
    else random init of its config (no download). `bert_model` / `bilstm_model`: the profile's model settings
    (a config object or the dict a checkpoint stores; None: the backbone's own attention dropout, BiLSTMConfig's
    defaults). to_train=False: weights will be loaded into it or none allocated (a checkpoint, the meta device), so
    a BiLSTM builds its embeddings alone instead of a whole classifier (bert-base shape: 85 M parameters less)."""
    if kind == "bert":
        attention = None if bert_model is None else _settings(bert_model)["attention_dropout"]
        return backbone.classifier(num_labels, dropout=CLASSIFIER_DROPOUT, attention_dropout=attention)
    if kind == "bilstm":
        settings = _settings(bilstm_model or BiLSTMConfig())
        if not to_train:
            return BiLSTMClassifier.from_config(backbone.config, num_labels, **settings)
        # The whole classifier, for its embeddings: one loading path for pre-trained weights and the same random
        # draws as every run before this factory (smoke artifacts bit-identical).
        embeddings = backbone.classifier(num_labels).bert.embeddings
        return BiLSTMClassifier(embeddings, num_labels, **settings)
    raise ValueError(f"unknown model kind {kind!r}; choose one of: {', '.join(NEURAL)}")


def shape_only(name: str, config: dict | BertConfig) -> Backbone:
    """A backbone of `config`'s architecture with random weights: for a checkpoint's own weights to be loaded into,
    or for counting parameters on the meta device."""
    config = config if isinstance(config, BertConfig) else BertConfig.from_dict(config)
    return Backbone(name, None, config, tokenizer_source="")


def build_from_meta(meta: dict) -> torch.nn.Module:
    """The architecture a checkpoint was made for, from its stored metadata alone (no download)."""
    return build_model(meta["kind"], shape_only(meta.get("backbone", ""), meta["model_config"]), meta["num_labels"],
                       meta.get("bert_model"), meta.get("bilstm"), to_train=False)
