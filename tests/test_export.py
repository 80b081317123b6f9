"""textlab export: a standard transformers folder for BERT (pipeline() round trip, offline), self-contained folders
for the BiLSTM and the ensemble, the model card's numbers, and every fault as one line with nothing half-written."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import yaml
from transformers import pipeline as hf_pipeline

from textlab import card, cli, ensemble_build
from textlab import pipeline as tp
from textlab.artifacts import EXPORT, read_json
from textlab.errors import CheckpointError
from textlab.export import export
from textlab.predict import load_predictor


@pytest.fixture(scope="module")
def bert_export(trained_run, tmp_path_factory):
    run, _ = trained_run
    return export(run, "bert", tmp_path_factory.mktemp("export") / "bert")


@pytest.fixture(scope="module")
def test_texts(tiny_prep) -> list[str]:
    return list(tiny_prep.raw["test"]["text"])


def test_bert_export_is_a_transformers_folder_that_pipeline_loads_offline(bert_export, trained_run, test_texts):
    run, records = trained_run
    config = json.loads((bert_export / "config.json").read_text())
    names = records["bert"]["label_names"]
    assert config["id2label"] == {str(i): n for i, n in enumerate(names)}
    assert config["label2id"] == {n: i for i, n in enumerate(names)}
    assert json.loads((bert_export / "tokenizer_config.json").read_text())["model_max_length"] == 32
    classify = hf_pipeline("text-classification", model=str(bert_export))
    # The tiny profile reads 32 tokens: nearly every test document is cut, so this checks the truncation too.
    got = [r["label"] for r in classify(test_texts, truncation=True)]
    ours = [r["label"] for r in load_predictor(run, "bert").predict(test_texts)]
    assert got == ours  # top-1 agreement, document by document
    y = np.load(tp.seed_dir(run, 42) / "bert" / "labels_test.npy")  # the test split's labels, in its order
    assert np.mean([names.index(g) == t for g, t in zip(got, y)]) == records["bert"]["test"]["accuracy"]


@pytest.mark.parametrize("kind", ["bilstm", "ensemble"])
def test_bilstm_and_ensemble_exports_predict_without_the_run(kind, trained_run, tiny_run, test_texts, tmp_path):
    run, _ = trained_run
    if kind == "ensemble":
        ensemble_build.build_ensemble(tiny_run)
    out = export(run, kind, tmp_path / kind)
    moved = shutil.copytree(run, tmp_path / "elsewhere")  # what the run predicts, then the run is gone
    want = load_predictor(moved, kind).predict(test_texts, top_k=20)
    shutil.rmtree(moved)
    got = load_predictor(out).predict(test_texts, top_k=20)
    assert [r["label"] for r in got] == [r["label"] for r in want]
    assert np.array_equal([[t["probability"] for t in r["top_k"]] for r in got],
                          [[t["probability"] for t in r["top_k"]] for r in want])
    assert not any(out.rglob("training_state.pt"))  # weights only: nothing to resume training from
    if kind == "ensemble":  # the card's numbers are the run's choice's
        row = read_json(run / "ensemble" / "metrics.json")["row"]
        meta = yaml.safe_load((out / "README.md").read_text().split("---")[1])
        metrics = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
        assert metrics == {"accuracy": round(row["test_accuracy"], 4), "f1": round(row["test_macro_f1"], 4)}
    assert cli.main(["predict", "--run", str(out), "--json", test_texts[0]]) == 0


def test_card_numbers_are_the_runs(bert_export, trained_run):
    run, records = trained_run
    card = (bert_export / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    metrics = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    test = records["bert"]["test"]
    assert metrics == {"accuracy": round(test["accuracy"], 4), "f1": round(test["macro_f1"], 4)}
    assert meta["datasets"] == ["SetFit/20_newsgroups"] and meta["pipeline_tag"] == "text-classification"
    assert f"- Accuracy: {100 * test['accuracy']:.2f} %" in card
    assert f"- Macro-F1: {100 * test['macro_f1']:.2f} %" in card
    per = test["per_class"]
    for name, f1 in zip(per["label"], per["f1"]):
        assert re.search(rf"^\| {re.escape(name)} \| [\d.]+ \| [\d.]+ \| {f1:.3f} \|", card, re.M), name
    splits = read_json(run / "manifest.json")["data"]["splits"]
    assert (f"- Splits: train {splits['train']}, validation {splits['validation']}, test {splits['test']} "
            "documents") in card
    assert "bydate test split was posted after the training split" in card
    assert ("- The run evaluated in" in card) == (records["bert"]["precision"] != "fp32")


def test_an_export_changed_afterwards_is_refused_by_name(bert_export, tmp_path):
    changed = shutil.copytree(bert_export, tmp_path / "changed")
    weights = changed / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors was changed after export"):
        load_predictor(changed)
    weights.unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing"):
        load_predictor(changed)


def test_an_export_predicts_only_its_own_model(bert_export):
    with pytest.raises(ValueError, match="holds the exported bert model, not bilstm"):
        load_predictor(bert_export, "bilstm")
    with pytest.raises(ValueError, match="training seed 42; export seed 7"):
        load_predictor(bert_export, seed=7)


def test_export_faults_are_one_line_and_leave_nothing(trained_run, tmp_path, capsys):
    run, _ = trained_run
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main(["export", "--run", str(run), str(out)]) == 2
    assert "is not empty: give a new folder, or --force" in capsys.readouterr().err
    assert cli.main(["export", "--run", str(run), "--force", str(out)]) == 2  # --force replaces only an export
    assert "holds no earlier export" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"

    again = tmp_path / "again"
    assert cli.main(["export", "--run", str(run), str(again)]) == 0
    first = read_json(again / EXPORT)["files"]
    assert cli.main(["export", "--run", str(run), "--model", "bilstm", "--force", str(again)]) == 0
    assert read_json(again / EXPORT)["model"] == "bilstm" and not (again / "config.json").exists()
    assert "config.json" in first

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli.main(["export", "--run", str(run), str(blocker / "out")]) == 2
    assert f"cannot write into {blocker}" in capsys.readouterr().err

    unfinished = shutil.copytree(run, tmp_path / "unfinished")
    (tp.seed_dir(unfinished, 42) / "bilstm" / "metrics.json").unlink()
    assert cli.main(["export", "--run", str(unfinished), "--model", "bilstm", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "holds no finished bilstm training (no metrics.json): run notebook 03_bilstm" in err
    assert len(err.strip().splitlines()) == 1
    assert cli.main(["export", "--run", str(again), str(tmp_path / "c")]) == 2
    assert "is an exported model, not a run folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "again", "out", "unfinished"]  # no temp folder


def test_what_a_transformers_folder_cannot_express_is_said():
    facts = {"truncation": "head_tail", "max_length": 512, "name": "BERT classifier, training seed 43"}
    notes = card._notes("bert", facts, {"settings": {"seeds": [42, 43, 44]}})
    assert len(notes) == 2
    assert "head_tail truncation; transformers' pipeline can only keep the head" in notes[0]
    assert "the run trained 3 seeds; this folder holds one of them (BERT classifier, training seed 43)" in notes[1]
    assert card._notes("bert", {**facts, "truncation": "head"}, {"settings": {"seeds": [42]}}) == []
