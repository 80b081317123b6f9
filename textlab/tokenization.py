"""WordPiece tokenization of a run's splits, cached on disk: each text is tokenized once, whole (so its full length is
known), and every cut a model reads (max_length, truncation) is made from that by array arithmetic. A million
documents are tokenized once for BERT's 512 and the BiLSTM's 256 tokens, not twice (benchmarks/bench_data_scale.py)."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import DatasetDict, Features, Sequence, Value, load_from_disk

from .cache import cache_dir, load_cached, save_atomic
from .config import TRUNCATIONS
from .runs import dataset_fingerprint

log = logging.getLogger(__name__)

TOKENIZATION_VERSION = 3  # bump when tokenize() or its cache key changes
ADDED = {"input_ids": Sequence(Value("int32")), "length": Value("int32"), "full_length": Value("int32"),
         "labels": Value("int64"), "idx": Value("int64")}
CUT_BATCH = 10_000  # documents per vectorized cut


def _tokenizer_id(tokenizer) -> str:
    # Our own key, not datasets' fingerprint: hashing a tokenizer object is not stable across processes.
    vocab = hashlib.sha256(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode()).hexdigest()
    special = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id]
    lower = getattr(tokenizer, "do_lower_case", None)
    return json.dumps({"class": type(tokenizer).__name__, "vocab": vocab, "lower": lower, "special": special},
                      sort_keys=True)


def _entry(tokenizer_id: str, max_length: int, truncation: str, fingerprint: str) -> Path:
    """The cache folder of these texts (`fingerprint`) cut so by this tokenizer; max_length 0: tokenized whole."""
    ident = f"v{TOKENIZATION_VERSION}|{max_length}|{truncation}|{tokenizer_id}|{fingerprint}"
    return cache_dir() / f"tok-{hashlib.sha256(ident.encode()).hexdigest()[:20]}"


def check_truncation(truncation: str) -> None:
    if truncation not in TRUNCATIONS:
        raise ValueError(f"unknown truncation {truncation!r}; choose one of: {', '.join(TRUNCATIONS)}")


def truncate_ids(ids: list[int], max_length: int, truncation: str, sep: int) -> list[int]:
    """Cut one [CLS] ... [SEP] sequence to max_length tokens. "head": the first max_length - 1 and [SEP], as the
    tokenizer's truncation=True; "head_tail": the first max_length // 4 and the last max_length - max_length // 4."""
    if len(ids) <= max_length:
        return list(ids)
    if truncation == "head":
        return list(ids[: max_length - 1]) + [sep]
    check_truncation(truncation)
    head = max_length // 4  # head_tail
    return list(ids[:head]) + list(ids[len(ids) - (max_length - head):])


def cut_lists(ids: pa.ListArray, max_length: int, truncation: str, sep: int) -> pa.ListArray:
    """truncate_ids on every row of an Arrow list array at once (the same ids, tested against it)."""
    offsets = ids.offsets.to_numpy()  # into ids.values, which ignores a slice's offset: so do these
    values = ids.values.to_numpy()
    start, n = offsets[:-1], np.diff(offsets)
    keep = np.minimum(n, max_length)
    new = np.concatenate([[0], np.cumsum(keep)])
    pos = np.arange(new[-1]) - np.repeat(new[:-1], keep)  # each kept token's position in its row
    src = np.repeat(start, keep) + pos
    cut = n > max_length
    if truncation == "head_tail":  # from position max_length // 4 on, the row's last tokens
        src += np.repeat(np.where(cut, n - max_length, 0), keep) * (pos >= max_length // 4)
    out = values[src]
    if truncation == "head":
        out[new[1:][cut] - 1] = sep
    return pa.ListArray.from_arrays(pa.array(new, pa.int32()), pa.array(out, pa.int32()))


def _whole(dsd: DatasetDict, tokenizer, target: Path, num_proc: int | None) -> DatasetDict:
    """Every split tokenized whole (length = full_length), cached at `target`."""
    cached = load_cached(target)
    if cached is not None:
        return cached

    def encode(batch, indices):
        ids = tokenizer(batch["text"], add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        lengths = [len(x) for x in ids]
        return {"input_ids": ids, "length": lengths, "full_length": lengths, "labels": batch["label"], "idx": indices}

    out = DatasetDict()
    for split, ds in dsd.items():
        out[split] = ds.map(encode, batched=True, with_indices=True, batch_size=512, num_proc=num_proc,
                            desc=f"tokenize {split}", load_from_cache_file=False,
                            features=Features({**ds.features, **ADDED}))
    save_atomic(out, target)
    return load_from_disk(str(target))


def tokenize(dsd: DatasetDict, tokenizer, max_length: int = 256, num_proc: int | None = None,
             truncation: str = "head", fingerprint: str = "") -> DatasetDict:
    """Add `input_ids` (cut by truncate_ids), `length`, `full_length`, `labels`, `idx`; cached under .cache/tok-<key>
    for the same texts, tokenizer, max_length and truncation, and made from the splits tokenized whole (cached too).
    `fingerprint`: runs.dataset_fingerprint(dsd), if known (hashing 20NG's texts takes ~0.6 s)."""
    check_truncation(truncation)
    fingerprint = fingerprint or dataset_fingerprint(dsd)
    tokenizer_id = _tokenizer_id(tokenizer)
    target = _entry(tokenizer_id, max_length, truncation, fingerprint)
    cached = load_cached(target)
    if cached is not None:
        log.info("tokenization cache hit: %s", target)
        return cached
    whole = _whole(dsd, tokenizer, _entry(tokenizer_id, 0, "whole", fingerprint), num_proc)
    sep = tokenizer.sep_token_id

    def cut(batch: pa.Table) -> pa.Table:
        ids = cut_lists(batch["input_ids"].combine_chunks(), max_length, truncation, sep)
        batch = batch.set_column(batch.schema.get_field_index("input_ids"), "input_ids", ids)
        return batch.set_column(batch.schema.get_field_index("length"), "length", pc.list_value_length(ids))

    out = DatasetDict()
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".cut-") as tmp:  # map's output, until saved
        for split, ds in whole.items():
            out[split] = ds.with_format("arrow").map(
                cut, batched=True, batch_size=CUT_BATCH, features=ds.features, load_from_cache_file=False,
                cache_file_name=str(Path(tmp) / f"{split}.arrow"), desc=f"cut {split} to {max_length}"
            ).with_format(None)
        save_atomic(out, target)
    return load_from_disk(str(target))
