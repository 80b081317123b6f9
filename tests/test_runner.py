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


def test_whole_series_on_your_own_data(tmp_path, monkeypatch, capsys):
    """`textlab run --data FILE --set ...`: all five notebooks on a file that is not 20 Newsgroups (3 classes), the
    overrides reaching every notebook, N-class artifacts, no seed-report rows; then other settings are refused
    before any notebook runs."""
    from helpers import keyword_csv
    from textlab import cli
    from textlab.checkpoint import read_json
    from textlab.predict import load_predictor

    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("TEXTLAB_FIGURES", raising=False)
    csv = keyword_csv(tmp_path / "reviews.csv", n=240)
    assert cli.main(["run", "--profile", "smoke", "--data", str(csv), "--set", "bert.epochs=2",
                     "--set", "val_fraction=0.2"]) == 0
    run = tmp_path / "runs" / "smoke-reviews"
    assert sorted(p.stem for p in (run / "notebooks").glob("*.ipynb")) == [nb.stem for nb in runner.notebooks()]
    manifest = read_json(run / "manifest.json")
    assert manifest["data"]["splits"] == {"train": 153, "validation": 39, "test": 48}
    assert manifest["data"]["label_names"] == ["crypto", "hockey", "space"] and not manifest["data"]["is_20newsgroups"]
    bert = read_json(run / "bert" / "metrics.json")
    assert bert["epochs_run"] == 2 and bert["label_names"] == ["crypto", "hockey", "space"]
    assert len(bert["test"]["confusion"]) == 3 and bert["n_train"] == 153
    table = (run / "figures" / "comparison.csv").read_text()
    assert "seed report" not in table and len(table.strip().splitlines()) == 1 + 5
    assert {"05_confusion_matrices.png", "05_metrics_ci.png", "ensemble_variants.png"} <= {
        p.name for p in (run / "figures").iterdir()}
    label = load_predictor(run, "ensemble").predict(["orbit rocket launch nasa"])[0]["label"]
    assert label in ("crypto", "hockey", "space")

    capsys.readouterr()
    before = {p: p.stat().st_mtime_ns for p in (run / "notebooks").iterdir()}
    assert cli.main(["run", "--profile", "smoke", "--data", str(csv), "--set", "bert.epochs=3",
                     "--set", "val_fraction=0.2"]) == 2
    captured = capsys.readouterr()
    assert "settings.bert.epochs: 2 -> 3" in captured.err and "[1/5]" not in captured.out
    assert {p: p.stat().st_mtime_ns for p in (run / "notebooks").iterdir()} == before
