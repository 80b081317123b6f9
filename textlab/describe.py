"""Parameter counts of the three models from config alone, and architecture stages read off model objects."""

from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification, BertConfig

from .backbones import BACKBONES, config_dict, get_backbone
from .config import BiLSTMConfig
from .models import BiLSTMClassifier, MetaMLP


def count_params(model: torch.nn.Module) -> dict:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "frozen": total - trainable}


def build_all(arch: str = "bert-base-uncased", num_labels: int = 20, members: int = 2) -> dict[str, torch.nn.Module]:
    """The three models with `arch`'s shape, on the meta device: no weights allocated, no download."""
    if arch == "bert-base-uncased":
        config = BertConfig()  # its exact architecture, offline
    elif arch in BACKBONES:
        config = get_backbone(arch).config
    else:
        raise ValueError(f"unknown arch {arch!r}; choose one of: {', '.join(BACKBONES)}")
    config = BertConfig(**{**config_dict(config), "num_labels": num_labels, "classifier_dropout": 0.3})
    with torch.device("meta"):
        bert = AutoModelForSequenceClassification.from_config(config)
        bilstm = BiLSTMClassifier.from_config(config, num_labels, **vars(BiLSTMConfig()))
        meta = MetaMLP(members * num_labels, num_labels)
    return {"bert": bert, "bilstm": bilstm, "meta_mlp": meta}


def describe(arch: str = "bert-base-uncased", num_labels: int = 20) -> dict[str, dict]:
    """{model: {total, trainable, frozen}} — the meta-MLP's own stage only (its members are frozen)."""
    return {name: count_params(m) for name, m in build_all(arch, num_labels).items()}


def architecture_stages(model: torch.nn.Module, max_length: int | None = None) -> list[tuple[str, str]]:
    """(stage, details) from the model object itself, for plots.plot_architecture."""
    if isinstance(model, BiLSTMClassifier):
        emb = model.embeddings
        d = emb.word_embeddings.embedding_dim
        lstm = model.lstm
        head = model.head
        dropout = next(m.p for m in head if isinstance(m, torch.nn.Dropout))
        n_emb = sum(p.numel() for p in emb.parameters())
        return [
            ("WordPiece tokens", f"vocab {emb.word_embeddings.num_embeddings:,}" + (f", ≤ {max_length} tokens" if max_length else "")),
            ("Frozen BERT embeddings", f"word + position + type + LayerNorm, d = {d} ({n_emb:,} params, frozen)"),
            (f"BiLSTM × {lstm.num_layers}", f"hidden {lstm.hidden_size} per direction → {2 * lstm.hidden_size}, packed"),
            ("Attention pooling", f"Linear({model.attention.in_features} → 1) score, masked softmax over time"),
            ("Head", f"LayerNorm → Linear({head[1].in_features} → {head[1].out_features}) → GELU → Dropout({dropout})"),
            ("Linear", f"{head[-1].in_features} → {head[-1].out_features} classes"),
        ]
    config = getattr(model, "config", None)
    if config is not None and hasattr(model, "bert"):
        drop = model.dropout.p
        return [
            ("WordPiece tokens", f"vocab {config.vocab_size:,}" + (f", ≤ {max_length} tokens" if max_length else "")),
            ("Embeddings", f"word + position ({config.max_position_embeddings}) + type, d = {config.hidden_size}"),
            (f"Encoder × {config.num_hidden_layers}",
             f"{config.num_attention_heads} heads, FFN {config.intermediate_size}, fine-tuned"),
            ("Pooler", f"[CLS] → Linear({config.hidden_size} → {config.hidden_size}) → tanh"),
            ("Dropout", f"p = {drop}"),
            ("Linear", f"{model.classifier.in_features} → {model.classifier.out_features} classes"),
        ]
    if isinstance(model, MetaMLP):
        linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
        return [("Member softmax, concatenated", f"{linears[0].in_features} inputs")] + [
            (f"Linear {i + 1}", f"{lin.in_features} → {lin.out_features}") for i, lin in enumerate(linears)
        ]
    raise ValueError(f"no architecture description for {type(model).__name__}")
