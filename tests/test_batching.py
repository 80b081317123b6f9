import numpy as np
import pytest
import torch

from textlab.backbones import get_backbone
from datasets import Dataset

from textlab.batching import Collator, LengthGroupedBatchSampler, default_buckets, make_loader


@pytest.fixture(scope="module")
def lengths():
    return np.random.default_rng(0).integers(2, 300, size=1_037).tolist()


def test_each_index_exactly_once_per_epoch(lengths):
    s = LengthGroupedBatchSampler(lengths, 16, seed=3)
    for epoch in range(3):
        s.set_epoch(epoch)
        batches = list(s)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(lengths)))
        assert len(batches) == len(s)
        assert all(1 <= len(b) <= 16 for b in batches)


def test_batches_group_similar_lengths(lengths):
    lengths_t = np.array(lengths)
    grouped = LengthGroupedBatchSampler(lengths, 16, seed=0)

    def waste(batches):
        padded = sum(len(b) * lengths_t[b].max() for b in batches)
        return 1 - lengths_t.sum() / padded

    rng = np.random.default_rng(0)
    perm = rng.permutation(len(lengths))
    random_batches = [perm[i:i + 16] for i in range(0, len(perm), 16)]
    assert waste(list(grouped)) < 0.1 < waste(random_batches)


def test_order_is_random_but_reproducible(lengths):
    a, b = LengthGroupedBatchSampler(lengths, 16, seed=0), LengthGroupedBatchSampler(lengths, 16, seed=0)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    sizes = [max(lengths[i] for i in batch) for batch in first]
    assert sizes != sorted(sizes) and sizes != sorted(sizes, reverse=True)  # batch order shuffled


def test_eval_order_sorted_by_length(lengths):
    s = LengthGroupedBatchSampler(lengths, 64, shuffle=False)
    flat = [i for b in s for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_collator_pads_only_to_batch_maximum():
    tok = get_backbone("tiny").tokenizer()
    feats = [{"input_ids": [101] + [7] * n + [102], "labels": 1, "idx": i, "length": n + 2}
             for i, n in enumerate((3, 9, 5))]
    batch = Collator(tok)(feats)
    assert batch["input_ids"].shape == (3, 16)  # max 11, rounded up to a multiple of 8
    assert batch["attention_mask"].sum(1).tolist() == [5, 11, 7]
    assert batch["labels"].tolist() == [1, 1, 1] and batch["idx"].tolist() == [0, 1, 2]
    assert "length" not in batch
    fixed = Collator(tok, max_length=32)(feats)
    assert fixed["input_ids"].shape == (3, 32) and fixed["input_ids"].dtype == torch.long


def test_loader_of_a_dataset_without_a_length_column():
    """Tokenized some other way than tokenization.tokenize: the lengths come from input_ids."""
    ds = Dataset.from_dict({"input_ids": [[101, 7, 102], [101, 7, 7, 7, 102]], "labels": [0, 1], "idx": [0, 1]})
    batches = list(make_loader(ds, get_backbone("tiny").tokenizer(), 2, shuffle=False))
    assert batches[0]["input_ids"].shape == (2, 8) and batches[0]["idx"].tolist() == [1, 0]  # longest first


def test_collator_pads_to_the_smallest_bucket_that_fits():
    tok = get_backbone("tiny").tokenizer()

    def feats(*ns):
        return [{"input_ids": [101] + [7] * n + [102], "labels": 0, "idx": i} for i, n in enumerate(ns)]

    collate = Collator(tok, buckets=(64, 16, 32))
    assert collate(feats(3, 9))["input_ids"].shape == (2, 16)
    assert collate(feats(3, 14))["input_ids"].shape == (2, 16)  # 16 tokens with [CLS]/[SEP]: fits exactly
    assert collate(feats(15))["input_ids"].shape == (1, 32)
    assert collate(feats(70))["input_ids"].shape == (1, 72)  # longer than every bucket: dynamic padding
    assert default_buckets(256) == (64, 128, 192, 256) and default_buckets(512)[-1] == 512


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        LengthGroupedBatchSampler([1, 2], 0)
