"""The benchmark scripts whose results the docs cite, run small: they must still run, and what they check must hold."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_data_scale  # noqa: E402
import bench_train  # noqa: E402

from textlab.data import resolve_20ng_path  # noqa: E402


@pytest.fixture(autouse=True)
def _needs_20ng():
    if resolve_20ng_path() is None:
        pytest.skip("20 Newsgroups archive not available ($TEXTLAB_20NG)")


def test_the_trainer_fed_our_batches_meets_the_same_tokens(tmp_path):
    out = tmp_path / "loop.json"
    bench_train.main(["--backbone", "tiny", "--steps", "2", "--warmup-steps", "0", "--only", "trainer-our-batches",
                      "ours", "--json", str(out)])
    rows = json.loads(out.read_text())["results"]
    assert round(rows["ours"]["tokens"]) == round(rows["trainer-our-batches"]["tokens"]) > 0
    assert rows["ours"]["docs"] == rows["trainer-our-batches"]["docs"] == 64


def test_every_stage_of_the_own_data_benchmark_runs_on_a_generated_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "docs.csv"
    bench_data_scale.generate(3000, path)  # enough for the 5-fold check on validation (20 classes)
    result = bench_data_scale.one_size(path, None)
    assert set(result["stages"]) == set(bench_data_scale.STAGES)
    assert sum(result["splits"].values()) == 3000 and result["splits"]["test"] == 600  # the stratified 20 %
    assert result["train_tokens"]["256 head"] <= result["train_tokens"]["512 head"]
    assert result["train_tokens"]["512 head"] <= result["train_tokens_untruncated"]
