"""What notebook 01 shows of a run's data: split sizes, labels, token lengths, empty documents and an example per
class, each computed in one pass over a split (a million-document file takes seconds, not a pass per class)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .dataset import column, is_empty

EXAMPLE_MIN_WORDS = 20  # an example document says something: more words than this
EXAMPLE_CHARS = 240


@dataclass
class Overview:
    sizes: pd.DataFrame  # split -> documents, classes
    labels: dict[str, np.ndarray]  # split -> label ids
    full_lengths: dict[str, np.ndarray]  # split -> WordPiece tokens before truncation ([CLS] and [SEP] included)
    lengths: pd.DataFrame  # split -> median, mean, p90, the share truncated at each length read
    empty: pd.DataFrame  # split -> empty, documents, fraction
    examples: pd.DataFrame  # class, text: the first training document of each class with > EXAMPLE_MIN_WORDS words


def overview(raw, tokenized, reads: dict[str, int]) -> Overview:
    """`raw`: the splits' texts (DatasetDict); `tokenized`: the same splits tokenized (train may lack its empty
    documents); `reads`: the tokens each model reads, e.g. {"bert": 512, "bilstm": 256}."""
    names = raw["train"].features["label"].names
    labels = {s: column(raw[s], "label") for s in raw}
    sizes = pd.DataFrame({s: {"documents": len(y), "classes": len(np.unique(y))} for s, y in labels.items()}).T
    full = {s: column(tokenized[s], "full_length") for s in tokenized}
    cuts = sorted(set(reads.values()))
    lengths = pd.DataFrame({s: {"median": np.median(v), "mean": v.mean(), "p90": np.percentile(v, 90),
                                **{f"truncated at {n}": (v > n).mean() for n in cuts}}
                            for s, v in full.items()}).T
    texts = {s: column(raw[s], "text") for s in raw}
    empty = pd.DataFrame({"empty": {s: sum(map(is_empty, t)) for s, t in texts.items()},
                          "documents": {s: len(t) for s, t in texts.items()}})
    empty["fraction"] = (empty["empty"] / empty["documents"]).round(4)
    return Overview(sizes, labels, full, lengths, empty, _examples(texts["train"], labels["train"], names))


def _examples(texts, labels: np.ndarray, names: list[str]) -> pd.DataFrame:
    found: dict[int, str] = {}
    for text, label in zip(texts, labels):
        if label not in found and len(text.split(None, EXAMPLE_MIN_WORDS)) > EXAMPLE_MIN_WORDS:
            found[label] = " ".join(text.split())[:EXAMPLE_CHARS]
            if len(found) == len(names):
                break
    return pd.DataFrame([{"class": names[c], "text": found[c]} for c in range(len(names)) if c in found])
