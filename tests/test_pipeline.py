"""The notebooks' calls on a tiny trained run: artifacts, cached logits, resume, ensemble, comparison table."""

import numpy as np
import pandas as pd
import pytest

from textlab import artifacts, compare, display, ensemble_build, factory, pipeline
from textlab import checkpoint as ckpt
from textlab.config import get_profile


def test_records_and_artifacts(trained_run, tiny_prep):
    run, records = trained_run
    n_val, n_test = len(tiny_prep.data["validation"]), len(tiny_prep.data["test"])
    for kind, rec in records.items():
        folder = run / "seed-42" / kind
        assert artifacts.read_json(folder / "metrics.json")["test"]["accuracy"] == rec["test"]["accuracy"]
        assert artifacts.read_npy(folder / "logits_validation.npy").shape == (n_val, 20)
        assert artifacts.read_npy(folder / "logits_test.npy").shape == (n_test, 20)
        assert np.array_equal(artifacts.read_npy(folder / "labels_test.npy"), tiny_prep.data["test"]["labels"])
        logits, labels = artifacts.read_npy(folder / "logits_test.npy"), artifacts.read_npy(folder / "labels_test.npy")
        assert rec["test"]["accuracy"] == np.mean(logits.argmax(1) == labels) and rec["test"]["n"] == n_test
        assert len(rec["test"]["confusion"]) == 20 and sum(map(sum, rec["test"]["confusion"])) == n_test
        assert rec["params"]["total"] == rec["params"]["trainable"] + rec["params"]["frozen"]
        assert rec["dropped_empty_train"] >= 0 and rec["n_train"] == len(tiny_prep.data["train"])
    assert records["bert"]["params"]["frozen"] == 0 and records["bilstm"]["params"]["frozen"] > 0


def test_saved_logits_match_the_selected_checkpoint(trained_run, tiny_prep):
    run, _ = trained_run
    model, meta = pipeline.load_model(run / "seed-42" / "bert")
    assert meta["kind"] == "bert" and meta["num_labels"] == 20 and meta["label_names"] == tiny_prep.label_names
    cached = pipeline.member_logits(run / "seed-42" / "bert", tiny_prep)
    np.testing.assert_array_equal(cached["test"][0], artifacts.read_npy(run / "seed-42" / "bert" / "logits_test.npy"))


def test_member_logits_recomputed_when_checkpoint_changes(trained_run, tiny_prep, tmp_path):
    import shutil

    run, _ = trained_run
    copy = tmp_path / "bilstm"
    shutil.copytree(run / "seed-42" / "bilstm", copy)
    artifacts.write_json(copy / "logits.json", {"checkpoint": "ckpt-other", "weights_sha": "0"})
    artifacts.write_npy(copy / "logits_test.npy", np.zeros((1, 20), np.float32))  # stale
    fresh = pipeline.member_logits(copy, tiny_prep)
    np.testing.assert_allclose(fresh["test"][0], artifacts.read_npy(run / "seed-42" / "bilstm" / "logits_test.npy"),
                               atol=1e-4)
    assert artifacts.read_json(copy / "logits.json")["checkpoint"] == ckpt.checkpoint_path(copy, "best").name


def test_rerun_reuses_the_finished_training(trained_run, tiny_run, capsys):
    run, records = trained_run
    before = ckpt.read_pointer(run / "seed-42" / "bert")
    again = pipeline.train_and_evaluate("bert", tiny_run)
    assert f"bert: re-using the finished training in {run / 'seed-42' / 'bert'}" in capsys.readouterr().out
    assert ckpt.read_pointer(run / "seed-42" / "bert") == before  # nothing retrained
    assert again["test"]["accuracy"] == records["bert"]["test"]["accuracy"]


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown model kind 'cnn'; choose one of: bert, bilstm"):
        factory.build_model("cnn", None, 2, None)


def test_ensemble_and_comparison_table(trained_run, tiny_run, tiny_prep):
    run, _ = trained_run
    per_seed, report, record = ensemble_build.build_ensemble(tiny_run)
    assert report.table["chosen"].sum() == 1 and record["chosen"] == report.chosen and record["seed"] == 42
    assert list(per_seed) == [42] and per_seed[42][1]["chosen"] == report.chosen  # one seed: its choice is the run's
    seed_record = per_seed[42][1]
    assert seed_record["stages"]["seed"]["own_params"] == 7_340  # the seed's meta-MLP: 2 members x 20 classes
    assert seed_record["stages"]["seed"]["checkpoint_bytes"] < 100_000
    assert record["stage"]["member_folders"] == [f"seed-42/{m}" for m in record["stage"]["members"]]
    table = compare.comparison_table(run)
    assert list(table.columns) == compare.COLUMNS
    assert len(table) == 5 + len(compare.SEED_REFERENCE)  # one seed: no "chosen within each seed" row
    assert set(table["seeds"].dropna()) == {1} and table["test_accuracy_sd"].isna().all()
    tfidf = table.set_index("model").loc["TF-IDF + linear SVM"]
    assert 0.2 <= tfidf["test_accuracy"] <= 0.7  # lexical features learn something from 200 documents
    seed_row = table.set_index("model").loc["ensemble: meta-MLP (seed-exact)"]
    chosen = table[table["model"].str.startswith("ensemble chosen on validation: ")].iloc[0]
    assert chosen["pooling"] == compare.POOLING[report.chosen.partition(" (")[0]]
    assert seed_row["trainable_params"] == 7_340
    assert seed_row["frozen_params"] == sum(pipeline.count_params(pipeline.load_model(run / "seed-42" / k)[0])["total"]
                                            for k in ("bert", "bilstm"))
    md = display.to_markdown(table)
    assert md.count("\n") == len(table) + 2 and "70.23 %" in md
    y, probs = compare.test_probabilities(run)
    assert set(probs) >= {"BERT classifier", "ensemble (chosen)"}
    assert all(np.allclose(p.sum(1), 1, atol=1e-4) for p in probs.values())
    pvals = compare.mcnemar_matrix(y, probs)
    assert np.allclose(pvals.values, pvals.values.T, equal_nan=True) and pvals.isna().values.diagonal().all()
    ex = compare.disagreement_examples(tiny_prep.raw["test"]["text"], y, probs["BERT classifier"].argmax(1),
                                       probs["TF-IDF + linear SVM"].argmax(1), probs["ensemble (chosen)"].argmax(1),
                                       tiny_prep.label_names, k=3)
    assert isinstance(ex, pd.DataFrame) and len(ex) <= 3 and (ex["BERT"] != ex["BiLSTM"]).all()


def test_a_model_can_read_more_tokens_than_the_profile(tiny_profile, tiny_prep, tmp_path, monkeypatch):
    """bert.max_length overrides the profile's for BERT alone: trained, stored and re-evaluated at its length."""
    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path))
    p = get_profile("smoke", max_train_samples=200, max_eval_samples=100, max_length=32,
                    **{"bert.max_length": 48, "bert.max_steps": 2})
    assert (pipeline.model_max_length(p, "bert"), pipeline.model_max_length(p, "bilstm")) == (48, 32)
    longer = pipeline.model_data(tiny_prep, 48)
    assert pipeline.model_data(tiny_prep, 32) is tiny_prep.data
    assert max(longer["train"]["length"]) == 48 and max(tiny_prep.data["train"]["length"]) == 32
    assert max(longer["test"]["length"]) == 48  # so evaluating at 32 tokens would give other logits
    assert longer["test"]["labels"] == tiny_prep.data["test"]["labels"]

    record = pipeline.train_and_evaluate("bert", pipeline.open_run(p, prep=tiny_prep))
    assert record["max_length"] == 48
    _, meta = pipeline.load_model(tmp_path / "smoke" / "seed-42" / "bert")
    assert meta["max_length"] == 48
    folder = tmp_path / "smoke" / "seed-42" / "bert"
    trained = artifacts.read_npy(folder / "logits_test.npy")
    artifacts.write_json(folder / "logits.json", {"checkpoint": "other", "weights_sha": "0"})  # force re-evaluation
    again = pipeline.member_logits(folder, tiny_prep)  # tiny_prep holds 32-token data; the checkpoint says 48
    np.testing.assert_allclose(again["test"][0], trained, atol=1e-5)


def test_head_tail_truncation_is_trained_stored_and_served(tiny_prep, tmp_path, monkeypatch):
    """bert.truncation=head_tail: the model trains on head+tail cuts, the checkpoint says so, and both the
    ensemble's re-evaluation and the predictor cut documents the same way."""
    from textlab.predict import load_predictor

    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path))
    p = get_profile("smoke", max_train_samples=200, max_eval_samples=100, max_length=32,
                    **{"bert.truncation": "head_tail", "bert.max_steps": 2})
    both = pipeline.model_data(tiny_prep, 32, "head_tail")
    assert both["test"]["input_ids"] != tiny_prep.data["test"]["input_ids"]  # some test documents are longer
    record = pipeline.train_and_evaluate("bert", pipeline.open_run(p, prep=tiny_prep))
    folder = tmp_path / "smoke" / "seed-42" / "bert"
    assert record["truncation"] == "head_tail" and pipeline.load_model(folder)[1]["truncation"] == "head_tail"
    trained = artifacts.read_npy(folder / "logits_test.npy")
    artifacts.write_json(folder / "logits.json", {"checkpoint": "other", "weights_sha": "0"})  # force re-evaluation
    np.testing.assert_allclose(pipeline.member_logits(folder, tiny_prep)["test"][0], trained, atol=1e-5)
    pred = load_predictor(tmp_path / "smoke", "bert", device="cpu")
    ids, truncated = pred.encode(list(tiny_prep.raw["test"]["text"]))
    assert ids == list(both["test"]["input_ids"]) and truncated == [n > 32 for n in both["test"]["full_length"]]
    np.testing.assert_allclose(pred.predict_logits(list(tiny_prep.raw["test"]["text"])), trained, atol=1e-4)

