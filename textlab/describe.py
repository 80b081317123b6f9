"""Parameter counts of the three models from config alone, and architecture stages read off model objects."""

from __future__ import annotations

import torch
from transformers import BertConfig

from .backbones import BACKBONES, HUB_BERT, get_backbone
from .factory import build_model, shape_only
from .kinds import NEURAL
from .models import BiLSTMClassifier, MetaMLP


def count_params(model: torch.nn.Module) -> dict:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "frozen": total - trainable}


def build_all(arch: str = "bert-base-uncased", num_labels: int = 20) -> dict[str, torch.nn.Module]:
    """The three models with `arch`'s shape, on the meta device: no weights allocated, no download."""
    if arch not in BACKBONES:
        raise ValueError(f"unknown arch {arch!r}; choose one of: {', '.join(BACKBONES)}")
    # its exact shape, offline
    shape = shape_only(arch, BertConfig() if arch == HUB_BERT else get_backbone(arch).config)
    with torch.device("meta"):
        models = {kind: build_model(kind, shape, num_labels, to_train=False) for kind in NEURAL}
        models["meta_mlp"] = MetaMLP(2 * num_labels, num_labels)  # the seed's: over BERT and the BiLSTM
    return models


def describe(arch: str = "bert-base-uncased", num_labels: int = 20) -> dict[str, dict]:
    """{model: {total, trainable, frozen}} — the meta-MLP's own stage only (its members are frozen)."""
    return {name: count_params(m) for name, m in build_all(arch, num_labels).items()}


def architecture_stages(model: torch.nn.Module, max_length: int | None = None) -> list[tuple[str, str]]:
    """(stage, details) from the model object itself, for plots.plot_architectures."""
    limit = f", ≤ {max_length} tokens" if max_length else ""
    if isinstance(model, BiLSTMClassifier):
        words, lstm, head = model.embeddings.word_embeddings, model.lstm, model.head
        n_emb = sum(p.numel() for p in model.embeddings.parameters())
        return [
            ("WordPiece tokens", f"vocab {words.num_embeddings:,}{limit}"),
            ("Frozen BERT embeddings",
             f"word + position + type + LayerNorm, d = {words.embedding_dim} ({n_emb:,} params, frozen)"),
            (f"BiLSTM × {lstm.num_layers}", f"hidden {lstm.hidden_size} per direction → {2 * lstm.hidden_size}"),
            ("Attention pooling", f"Linear({model.attention.in_features} → 1) score, masked softmax over time"),
            ("Head", f"LayerNorm → Linear({head[1].in_features} → {head[1].out_features}) → GELU → "
                     f"Dropout({head[3].p})"),
            ("Linear", f"{head[-1].in_features} → {head[-1].out_features} classes"),
        ]
    if hasattr(model, "bert"):
        c = model.config
        return [
            ("WordPiece tokens", f"vocab {c.vocab_size:,}{limit}"),
            ("Embeddings", f"word + position ({c.max_position_embeddings}) + type, d = {c.hidden_size}"),
            (f"Encoder × {c.num_hidden_layers}",
             f"{c.num_attention_heads} heads, FFN {c.intermediate_size}, fine-tuned"),
            ("Pooler", f"[CLS] → Linear({c.hidden_size} → {c.hidden_size}) → tanh"),
            ("Dropout", f"p = {model.dropout.p}"),
            ("Linear", f"{model.classifier.in_features} → {model.classifier.out_features} classes"),
        ]
    if isinstance(model, MetaMLP):
        linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
        return [("Member softmax, concatenated", f"{linears[0].in_features} inputs")] + [
            (f"Linear {i + 1}", f"{lin.in_features} → {lin.out_features}") for i, lin in enumerate(linears)
        ]
    raise ValueError(f"no architecture description for {type(model).__name__}")
