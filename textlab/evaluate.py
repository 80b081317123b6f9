"""Metrics from logits: accuracy, macro-F1, per-class P/R/F1, confusion matrix, one-vs-rest ROC AUC."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, roc_auc_score

from .stats import softmax


def metrics(logits: np.ndarray, labels: np.ndarray, label_names: list[str] | None = None, full: bool = True) -> dict:
    """Accuracy and macro-F1; with full=True also per-class scores, confusion matrix and OvR ROC AUC."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(f"logits must be (N, C) matching {len(labels)} labels, got shape {logits.shape}")
    classes = range(logits.shape[1])
    pred = logits.argmax(1)
    out = {"n": int(len(labels)), "accuracy": float(accuracy_score(labels, pred)),
           "macro_f1": float(f1_score(labels, pred, average="macro", labels=classes, zero_division=0))}
    if not full:
        return out
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
    out["per_class"] = {"label": list(label_names or classes), "precision": p.tolist(), "recall": r.tolist(),
                        "f1": f.tolist(), "support": s.tolist()}
    out["confusion"] = confusion_matrix(labels, pred, labels=classes).tolist()
    present = np.unique(labels)
    if len(present) > 1:
        # One-vs-rest macro AUC over the classes present (a class absent from a small subset has no AUC).
        probs = softmax(logits)
        out["roc_auc_ovr"] = float(np.mean([roc_auc_score(labels == c, probs[:, c]) for c in present]))
    return out
