import os

import pytest

from textlab import runner


def test_relative_env_paths_are_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTLAB_20NG", "data/20news-bydate.tar.gz")
    monkeypatch.setenv("TEXTLAB_RUNS", "runs")
    runner._absolute_paths_in_env()
    assert os.environ["TEXTLAB_20NG"] == str(tmp_path / "data" / "20news-bydate.tar.gz")
    assert os.environ["TEXTLAB_RUNS"] == str(tmp_path / "runs")


def test_select_by_number_or_stem():
    assert [nb.stem for nb in runner.select(["02", "01_data"])] == ["01_data", "02_bert"]
    assert [nb.stem for nb in runner.select(None)] == ["01_data", "02_bert", "03_bilstm", "04_ensemble", "05_compare"]
    with pytest.raises(ValueError, match="unknown notebook '07'; choose from: 01_data, 02_bert"):
        runner.select(["07"])
