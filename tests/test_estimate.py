import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from textlab import estimate
from textlab.config import get_profile


def test_probe_lengths_and_interpolation():
    assert estimate.probe_lengths(512) == (64, 256, 512)
    assert estimate.probe_lengths(32) == (8, 16, 32)
    probe = {64: 1.0, 256: 3.0, 512: 9.0}
    got = estimate.batch_seconds(np.array([32, 64, 160, 256, 384, 512]), probe)
    np.testing.assert_allclose(got, [0.5, 1.0, 2.0, 3.0, 6.0, 9.0])  # proportional below 64, linear between


def test_padded_lengths_are_each_batchs_longest_rounded_to_8():
    lengths = np.array([3, 9, 17, 16, 1, 40, 8, 8])
    padded = estimate.padded_lengths(lengths, 2, shuffle=False)  # sorted longest first, batches of 2
    assert padded.tolist() == [40, 16, 8, 8]  # 40 17 | 16 9 | 8 8 | 3 1
    shuffled = estimate.padded_lengths(lengths, 2, shuffle=True)
    assert len(shuffled) == 4 and shuffled.max() == 40 and shuffled.sum() >= 40 + 8 * 3


def test_training_seconds_counts_every_epoch_seed_and_evaluation():
    profile = get_profile("smoke", bert__epochs=3, bert__batch_size=2, bert__eval_batch_size=4, bert__grad_accum=1)
    split = lambda lengths: Dataset.from_dict({"length": lengths})  # noqa: E731
    data = DatasetDict(train=split([8] * 6), validation=split([8] * 4), test=split([8] * 8))
    probe = {8: 1.0, 16: 2.0}
    # per epoch: 3 training batches (3 s) and one validation batch of 4 at a third of a step per 2 documents (2/3 s);
    # per seed: 3 epochs, then validation (2/3 s) and test (2 batches: 4/3 s) once more
    want = 2 * (3 * (3 + 2 / 3) + 2 / 3 + 4 / 3)
    assert estimate.training_seconds("bert", profile, data, probe, seeds=2) == pytest.approx(want)
    capped = get_profile("smoke", bert__epochs=3, bert__batch_size=2, bert__eval_batch_size=4, bert__grad_accum=1,
                         bert__max_steps=4)  # 3 steps an epoch: 4 steps, 2 epochs begun (2 validation passes)
    assert estimate.training_seconds("bert", capped, data, probe, seeds=1) == pytest.approx(4 + 2 * 2 / 3 + 2)
    padded = get_profile("smoke", bert__epochs=1, bert__batch_size=2, bert__eval_batch_size=4, bert__grad_accum=1,
                         bert__length_grouped=False, bert__max_length=16)  # the seed's recipe: every batch at 16
    assert estimate.training_seconds("bert", padded, data, probe, seeds=1) == pytest.approx(3 * 2 + 2 / 3 + 2)


def test_step_seconds_times_each_length(tmp_path):
    from textlab.backbones import get_backbone

    profile = get_profile("smoke")
    got = estimate.step_seconds("bilstm", get_backbone(profile.backbone), 3, profile, (8, 16))
    assert list(got) == [8, 16] and all(s > 0 for s in got.values())


def test_other_processes_share_of_the_cpu_and_the_note_it_gives(monkeypatch):
    monkeypatch.setattr(estimate.psutil, "cpu_count", lambda: 2)
    # 2 cores for 2 s: 4 CPU seconds; the machine used 6 (this process 2): the others kept both cores busy
    assert estimate.others_share((100.0, 10.0), (106.0, 12.0), 2.0) == 1.0
    assert estimate.others_share((100.0, 10.0), (103.0, 12.0), 2.0) == 0.25  # one of 4 CPU seconds: others
    assert estimate.others_share((100.0, 10.0), (102.0, 12.0), 2.0) == 0.0  # quiet: only this process
    assert estimate.busy_note(estimate.BUSY_SHARE) == ""
    assert estimate.busy_note(0.25) == ("; other processes used 25% of the CPU meanwhile, so training will take less "
                                        "if they stop: an upper bound")
    machine, own = estimate.cpu_seconds()  # real readings: this process's time is part of the machine's
    assert 0 < own <= machine
