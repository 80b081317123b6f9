"""The kinds of model a run makes, in one place: every module, table and command reads them from here. Adding a
model is one entry in REGISTRY plus its code (its model class, how factory builds it and pipeline trains it, its
notebook)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    key: str  # its folder under seed-<seed>/, the --model value, its name among an ensemble's members
    display: str  # tables, notebooks and model cards: "BERT classifier"
    short: str  # figures and ensemble variant names: "weighted average (BERT + BiLSTM + ...)"
    notebook: str  # the notebook of the series that makes it (errors say which to run)
    neural: bool  # trained by the one loop (train.fit): checkpoints, cached logits, a tokenizer
    member: bool  # one of each seed's ensemble members


REGISTRY = {k.key: k for k in (
    Kind("bert", "BERT classifier", "BERT", "02_bert", neural=True, member=True),
    Kind("bilstm", "BiLSTM (frozen BERT embeddings)", "BiLSTM", "03_bilstm", neural=True, member=True),
    Kind("tfidf", "TF-IDF + linear SVM", "TF-IDF + SVM", "04_ensemble", neural=False, member=True),
    Kind("ensemble", "ensemble chosen on validation", "ensemble", "04_ensemble", neural=False, member=False),
)}
NEURAL = tuple(k for k, v in REGISTRY.items() if v.neural)  # ("bert", "bilstm")
MEMBERS = tuple(k for k, v in REGISTRY.items() if v.member)  # ("bert", "bilstm", "tfidf")
SERVED = (*NEURAL, "ensemble")  # what `textlab predict` and `textlab export` serve


def display(key: str) -> str:
    return REGISTRY[key].display


def notebook(key: str) -> str:
    return REGISTRY[key].notebook
