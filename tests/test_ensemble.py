"""Tests of textlab.ensemble and textlab.ensemble_choice on synthetic member logits (3 members, 20 classes), kept
small for CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textlab.config import EnsembleConfig
from textlab.ensemble import MetaMLPEnsemble, ProbAverage, TemperatureAverage, WeightedAverage, fit_temperature
from textlab.ensemble_choice import choose_ensemble
from textlab.models.tfidf import UNSEEN_SCORE, TfidfSVM
from textlab.stats import softmax

K = 20
NAMES = ("bert", "bilstm", "tfidf")
SMALL = EnsembleConfig(folds=3, max_epochs=40, weight_decays=(0.0, 1e-2))


def _split(n: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels and three members: one-hot signal plus independent noise, each on its own (miscalibrated) scale."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    members = [scale * (signal * np.eye(K)[y] + rng.normal(0, 1, (n, K)))
               for signal, scale in ((2.0, 3.0), (2.2, 0.5), (2.4, 1.0))]
    return y, members


@pytest.fixture(scope="module")
def data():
    y_val, val = _split(600, seed=1)
    y_test, test = _split(800, seed=2)
    members = {name: {"validation": v, "test": t} for name, v, t in zip(NAMES, val, test)}
    return y_val, val, y_test, test, members


@pytest.fixture(scope="module")
def report(data):
    y_val, _, y_test, _, members = data
    return choose_ensemble(members, y_val, y_test, SMALL, seed=0)


def _accuracy(proba, y) -> float:
    return float((np.asarray(proba).argmax(1) == y).mean())


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (4000, K))
    y = np.array([rng.choice(K, p=p) for p in softmax(z)])  # z is calibrated by construction
    assert fit_temperature(2.5 * z, y) == pytest.approx(2.5, rel=0.1)


def test_prob_average_beats_every_member(data):
    _, _, y_test, test, _ = data
    average = _accuracy(ProbAverage().predict_proba(test), y_test)
    assert average > max(_accuracy(z, y_test) for z in test)


def test_out_of_fold_scores_of_prob_average_are_its_plain_scores(data, report):
    """It fits nothing, so every fold's prediction is the plain average: the folds cover each row exactly once."""
    y_val, val, *_ = data
    plain = ProbAverage().predict_proba(val[:2])
    np.testing.assert_allclose(report.val_oof_proba["prob-average (bert+bilstm)"], plain, rtol=1e-12)
    row = report.table.set_index("variant").loc["prob-average (bert+bilstm)"]
    assert row["val_cv_accuracy"] == _accuracy(plain, y_val)


def test_fitted_averages_describe_temperatures_and_convex_weights(data):
    y_val, val, *_ = data
    temp = TemperatureAverage(NAMES).fit(val, y_val).describe()
    assert len(temp["temperatures"]) == 3 and all(t > 0 for t in temp["temperatures"])
    weights = WeightedAverage(NAMES).fit(val, y_val).describe()["weights"]
    assert min(weights) >= 0 and sum(weights) == pytest.approx(1.0)


def test_compare_chooses_one_ensemble_by_validation_cv(report):
    table = report.table
    assert table["chosen"].sum() == 1
    row = table[table["chosen"]].iloc[0]
    assert row["kind"] == "ensemble" and row["variant"] == report.chosen
    assert row["val_cv_accuracy"] == table.loc[table["kind"] == "ensemble", "val_cv_accuracy"].max()
    assert {"meta-MLP (seed-exact, bert+bilstm)", "prob-average (bert+bilstm+tfidf)"} <= set(table["variant"])
    assert len(table) == 3 + 2 * 4
    assert report.test_proba[report.chosen].shape == (800, K)
    assert report.seed_meta_mlp is report.fitted["meta-MLP (seed-exact, bert+bilstm)"]


def test_meta_mlp_is_deterministic_and_round_trips(data, tmp_path):
    y_val, val, _, test, _ = data
    def meta():
        return MetaMLPEnsemble(EnsembleConfig(weight_decays=(1e-2,), max_epochs=40, folds=3),
                               members=("bert", "bilstm"))

    first, second = meta().fit(val[:2], y_val), meta().fit(val[:2], y_val)
    np.testing.assert_array_equal(first.predict_proba(test[:2]), second.predict_proba(test[:2]))
    loaded = MetaMLPEnsemble.load(first.save(tmp_path / "meta"))
    np.testing.assert_array_equal(loaded.predict_proba(test[:2]), first.predict_proba(test[:2]))
    assert loaded.describe() == first.describe()
    assert sum(f.stat().st_size for f in (tmp_path / "meta").iterdir()) < 100_000


def test_compare_rejects_a_member_without_test_logits(data):
    y_val, _, y_test, _, members = data
    broken = {**members, "bilstm": {"validation": members["bilstm"]["validation"]}}
    with pytest.raises(ValueError, match="bilstm.*test"):
        choose_ensemble(broken, y_val, y_test, SMALL)


def test_compare_rejects_mismatched_class_counts(data):
    y_val, _, y_test, _, members = data
    broken = {**members, "tfidf": {split: z[:, :-1] for split, z in members["tfidf"].items()}}
    with pytest.raises(ValueError, match="tfidf.*19 classes"):
        choose_ensemble(broken, y_val, y_test, SMALL)


def test_tfidf_member_scores_unseen_text():
    texts = ["space shuttle launch orbit", "nasa orbit launch", "hockey goal season", "season goal playoff"] * 3
    labels = [0, 0, 1, 1] * 3
    scores = TfidfSVM(seed=0).fit(texts, labels).decision_function(["orbit launch", "goal"])
    assert scores.shape == (2, 2) and scores.argmax(1).tolist() == [0, 1]
    once = TfidfSVM(seed=0).fit(iter(texts), labels)  # an iterator, read once (dataset.iter_texts): the same model
    np.testing.assert_array_equal(once.decision_function(["orbit launch", "goal"]), scores)


def test_meta_mlp_inner_cv_on_every_core_gives_the_bits_of_one_process(data, monkeypatch):
    y_val, val, *_ = data
    cfg = EnsembleConfig(weight_decays=(0.0, 1e-2), max_epochs=20, folds=3)
    monkeypatch.setattr("textlab.ensemble.cpu_count", lambda: 2)  # two worker processes, even on a 1-core machine
    parallel = MetaMLPEnsemble(cfg).fit(val[:2], y_val)
    monkeypatch.setattr("textlab.ensemble.cpu_count", lambda: 1)  # n_jobs=1: every task in this process
    serial = MetaMLPEnsemble(cfg).fit(val[:2], y_val)
    chosen = ("weight_decay", "epochs", "cv_accuracy", "cv_nll")
    assert [getattr(parallel, k) for k in chosen] == [getattr(serial, k) for k in chosen]
    weights = zip(parallel.model.state_dict().values(), serial.model.state_dict().values())
    assert all(torch.equal(a, b) for a, b in weights)


def test_tfidf_member_scores_the_whole_label_space(tmp_path):
    """A label without training documents (own data: one only in test) still has a column, scored far below every
    learned class, so the member's matrix lines up with BERT's and the BiLSTM's; saved and loaded alike."""
    texts = ["space shuttle launch orbit", "nasa orbit launch", "season goal playoff", "hockey goal season"] * 3
    model = TfidfSVM(seed=0).fit(texts, [0, 0, 2, 2] * 3, num_classes=4)  # classes 1 and 3: none in training
    scores = model.decision_function(["orbit launch", "goal"])
    assert scores.shape == (2, 4) and scores.argmax(1).tolist() == [0, 2]
    assert (scores[:, [1, 3]] == UNSEEN_SCORE).all() and (scores[:, [0, 2]] > UNSEEN_SCORE / 2).all()
    loaded = TfidfSVM.load(model.save(tmp_path / "tfidf"))
    np.testing.assert_array_equal(loaded.decision_function(["orbit launch", "goal"]), scores)
    three = TfidfSVM(seed=0).fit(texts, [0, 1, 2, 2] * 3)  # every index up to the largest learned: no filler
    assert three.decision_function(["goal"]).shape == (1, 3) and (three.decision_function(["goal"]) > -100).all()
