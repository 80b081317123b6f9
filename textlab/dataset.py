"""Documents as a `datasets.Dataset`: built from rows (text, label name, id), its columns read at Arrow speed,
stratified index splits, and what counts as an empty document. The layer under data.py and owndata.py."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from datasets import ClassLabel, Dataset, Features, Value
from sklearn.model_selection import train_test_split


def from_rows(texts: list[str], labels: list[str], doc_ids: list[str], names: list[str]) -> Dataset:
    """The rows of either source, `labels` given by name, as a ClassLabel over `names`."""
    ids = {name: i for i, name in enumerate(names)}
    features = Features({"text": Value("string"), "label": ClassLabel(names=names), "doc_id": Value("string")})
    return Dataset.from_dict({"text": texts, "label": [ids[x] for x in labels], "doc_id": doc_ids}, features=features)


def column(ds: Dataset, name: str) -> np.ndarray | list:
    """A column of `ds` read at Arrow speed: numbers as a NumPy array, text as a list. Not ds[name], which reads row
    by row (datasets 4 and on): 100k labels took 2.7 s that way, 0.01 s this way."""
    values = ds.with_format("arrow")[name]
    text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    return values.to_pylist() if text else values.to_numpy()


def iter_texts(ds: Dataset, batch_size: int = 10_000):
    """The text column one document at a time, read from Arrow a batch at a time: one pass over the documents
    without all their Python strings alive at once (the TF-IDF fit: 0.07 GiB less at 100 k documents)."""
    for batch in ds.with_format("arrow").iter(batch_size):
        yield from batch["text"].to_pylist()


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(labels))
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 and round(fraction * len(labels)) >= len(counts) else None
    keep, held = train_test_split(idx, test_size=fraction, stratify=stratify, random_state=seed)
    return np.sort(keep), np.sort(held)


def is_empty(text: str) -> bool:
    return not text.strip()
