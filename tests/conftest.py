import os
from pathlib import Path

import pytest

from textlab import pipeline
from textlab.config import get_profile
from textlab.kinds import NEURAL


@pytest.fixture(scope="session")
def archive() -> Path:
    path = os.environ.get("TEXTLAB_20NG")
    assert path and Path(path).exists(), (
        "tests need the original 20news-bydate.tar.gz: set TEXTLAB_20NG=/path/to/20news-bydate.tar.gz")
    return Path(path)


@pytest.fixture(scope="session")
def tiny_profile(archive):
    """Tiny random BERT, 200 training documents of 32 tokens: seconds on 2 cores."""
    return get_profile("smoke", max_train_samples=200, max_eval_samples=100, max_length=32)


@pytest.fixture(scope="session")
def tiny_prep(tiny_profile):
    return pipeline.prepare(tiny_profile)


@pytest.fixture(scope="session")
def trained_run(tiny_profile, tiny_prep, tmp_path_factory):
    """A run folder with both neural models trained on the tiny setting (shared, read-only for tests)."""
    root = tmp_path_factory.mktemp("runs")
    old = os.environ.get("TEXTLAB_RUNS")
    os.environ["TEXTLAB_RUNS"] = str(root)
    try:
        prep = pipeline.open_run(tiny_profile, prep=tiny_prep)
        records = {kind: pipeline.train_and_evaluate(kind, prep) for kind in NEURAL}
    finally:
        os.environ["TEXTLAB_RUNS"] = old
    return prep.run, records


@pytest.fixture
def tiny_run(trained_run, tiny_prep, monkeypatch):
    """tiny_prep opened on the trained run's folder (for calls that write into the run: ensemble, re-runs)."""
    run, _ = trained_run
    monkeypatch.setenv("TEXTLAB_RUNS", str(run.parent))
    return pipeline.open_run(tiny_prep.profile, prep=tiny_prep)
