"""Tests of textlab.stats on hand-built examples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import accuracy_score, f1_score

from textlab import stats


def _predictions(n: int, k: int = 20, accuracy: float = 0.8, seed: int = 0):
    """Labels and predictions that are right with probability `accuracy`."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    wrong = (y + rng.integers(1, k, n)) % k  # never equal to y
    return y, np.where(rng.random(n) < accuracy, y, wrong)


def test_softmax_rows_sum_to_one_and_match_hand_value():
    p = stats.softmax(np.array([[0.0, np.log(3.0)], [1000.0, 1000.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p, [[0.25, 0.75], [0.5, 0.5]])  # large logits must not overflow


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_bootstrap_ci_contains_point_and_matches_sklearn(metric):
    y, p = _predictions(500)
    point, low, high = stats.bootstrap_ci(y, p, metric=metric, n_boot=300)
    expected = accuracy_score(y, p) if metric == "accuracy" else f1_score(y, p, average="macro", zero_division=0)
    assert point == pytest.approx(expected)
    assert low < point < high
    assert stats.bootstrap_ci(y, p, metric=metric, n_boot=300) == (point, low, high)
    assert stats.bootstrap_ci(y, p, metric=metric, n_boot=300, seed=1) != (point, low, high)


def test_bootstrap_ci_narrows_with_more_data():
    small = stats.bootstrap_ci(*_predictions(400), n_boot=400)
    large = stats.bootstrap_ci(*_predictions(1600), n_boot=400)
    # Width scales as 1/sqrt(n): 4x the documents should about halve it.
    assert large[2] - large[1] < 0.7 * (small[2] - small[1])


def test_bootstrap_macro_f1_of_perfect_predictions_is_one():
    # Class 1 is missing from ~37 % of resamples; like sklearn, such a class must not count as F1 = 0.
    y = np.r_[np.zeros(20, dtype=int), 1]
    assert stats.bootstrap_ci(y, y, metric="macro_f1", n_boot=50) == (1.0, 1.0, 1.0)


def test_mcnemar_exact_for_few_discordant_pairs():
    y = np.zeros(30, dtype=int)
    a = np.r_[np.zeros(10), np.ones(2), np.zeros(18)].astype(int)  # wrong on 2 documents
    b = np.r_[np.ones(10), np.zeros(2), np.zeros(18)].astype(int)  # wrong on 10 others
    result = stats.mcnemar(y, a, b)
    assert (result["b"], result["c"], result["method"]) == (10, 2, "exact")
    assert result["p_value"] == pytest.approx(sps.binomtest(2, 12).pvalue)
    assert result["p_value"] == pytest.approx(0.0386, abs=1e-4)


def test_mcnemar_chi2_with_continuity_correction():
    y = np.zeros(100, dtype=int)
    a = np.r_[np.zeros(30), np.ones(10), np.zeros(60)].astype(int)
    b = np.r_[np.ones(30), np.zeros(10), np.zeros(60)].astype(int)
    result = stats.mcnemar(y, a, b)
    assert (result["b"], result["c"], result["method"]) == (30, 10, "chi2")
    assert result["statistic"] == pytest.approx(19**2 / 40)
    assert result["p_value"] == pytest.approx(sps.chi2.sf(19**2 / 40, 1))


def test_mcnemar_identical_predictions():
    y = np.arange(10)
    assert stats.mcnemar(y, y, y) == {"b": 0, "c": 0, "statistic": 0.0, "p_value": 1.0, "method": "exact"}


def test_ece_zero_when_confidence_equals_accuracy():
    probs = np.tile([0.8, 0.2], (10, 1))
    y = np.array([0] * 8 + [1] * 2)  # 80 % right at 80 % confidence
    assert stats.expected_calibration_error(probs, y) == pytest.approx(0.0, abs=1e-12)


def test_ece_hand_computed():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.3, 0.7]])
    y = np.array([0, 1, 1, 0])
    # Bins of width 0.5: (0.5, 1.0] holds everything, conf 0.775, accuracy 0.5 -> ECE 0.275.
    assert stats.expected_calibration_error(probs, y, n_bins=2) == pytest.approx(0.275)
    # 10 bins: (0.8,0.9] conf 0.9 acc 0.5; (0.5,0.6] conf 0.6 acc 1; (0.6,0.7] conf 0.7 acc 0.
    expected = (2 * 0.4 + 1 * 0.4 + 1 * 0.7) / 4
    assert stats.expected_calibration_error(probs, y, n_bins=10) == pytest.approx(expected)


def test_reliability_bins_marks_empty_bins():
    probs = np.array([[0.9, 0.1], [0.3, 0.7]])
    bins = stats.reliability_bins(probs, np.array([0, 0]), n_bins=5)
    assert list(bins.columns) == ["bin_lower", "bin_upper", "confidence", "accuracy", "count"]
    assert bins["count"].tolist() == [0, 0, 0, 1, 1]
    assert bins["confidence"].isna().tolist() == [True, True, True, False, False]
    assert bins["accuracy"].tolist()[3:] == [0.0, 1.0]
    # Bins are (lower, upper]: confidence exactly 0.5 belongs to the first of two bins.
    edge = stats.reliability_bins(np.array([[0.5, 0.5]]), np.array([0]), n_bins=2)
    assert edge["count"].tolist() == [1, 0]


def test_disagreement_table_hand_example():
    y = np.array([0, 1, 2, 3, 4, 5])
    a = np.array([0, 1, 2, 9, 9, 9])  # right on 0-2
    b = np.array([0, 9, 9, 3, 9, 9])  # right on 0 and 3
    e = np.array([0, 1, 9, 3, 4, 9])  # right on 0, 1, 3, 4
    table = stats.disagreement_table(y, a, b, e, names=("bert", "lstm", "ens"))
    assert table.index.tolist() == ["both right", "only bert right", "only lstm right", "both wrong"]
    assert table["documents"].tolist() == [1, 2, 1, 2]
    assert table["documents"].sum() == len(y)
    assert table["ensemble_right"].tolist() == [1, 1, 1, 1]
    assert table["ensemble_accuracy"].tolist() == [1.0, 0.5, 1.0, 0.5]


def test_bad_input_raises_useful_errors():
    y = np.arange(5)
    with pytest.raises(ValueError, match="differ in length"):
        stats.bootstrap_ci(y, y[:4])
    with pytest.raises(ValueError, match="unknown metric 'f2'.*accuracy, macro_f1"):
        stats.bootstrap_ci(y, y, metric="f2")
    with pytest.raises(ValueError, match="differ in length"):
        stats.mcnemar(y, y, y[:3])
    with pytest.raises(ValueError, match="2-D"):
        stats.expected_calibration_error(np.ones(5) / 5, y)
    with pytest.raises(ValueError, match="one label per row"):
        stats.expected_calibration_error(np.full((4, 5), 0.2), y)
    with pytest.raises(ValueError, match="apply softmax"):
        stats.expected_calibration_error(np.full((5, 5), 3.0), y)
    with pytest.raises(ValueError, match="differ in length"):
        stats.disagreement_table(y, y, y, y[:2])


def test_metrics_leave_out_what_a_split_cannot_have():
    """A split with one class (own data, a tiny test set) has no one-vs-rest AUC: the key is absent, not a KeyError
    later, and everything else is scored; with two classes the AUC is there."""
    from textlab.evaluate import metrics

    logits = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    one = metrics(logits, np.array([0, 0]), ["a", "b", "c"])
    assert "roc_auc_ovr" not in one and one["accuracy"] == 0.5 and one["per_class"]["support"] == [2, 0, 0]
    assert metrics(logits, np.array([0, 1]), ["a", "b", "c"])["roc_auc_ovr"] == 1.0
