"""Smoke tests of textlab.plots on small synthetic data, plus save_figure's atomicity."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import warnings  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from textlab import display, fonts, plots, stats  # noqa: E402
from textlab.errors import PlotWarning  # noqa: E402

K = 20
LABELS = [f"class.{i:02d}" for i in range(K)]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(0)
Y = RNG.integers(0, K, 300)


def _noisy(y: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(y)) < accuracy, y, rng.integers(0, K, len(y)))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


def test_save_figure_writes_png_atomically(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = plots.save_figure(fig, tmp_path / "nested" / "dir" / "line.png")
    assert out == tmp_path / "nested" / "dir" / "line.png"
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["line.png"]


def test_save_figure_failure_leaves_nothing(tmp_path):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="xyz"):
        plots.save_figure(fig, tmp_path / "bad.xyz")
    assert list(tmp_path.iterdir()) == []


def test_class_distribution():
    splits = {"test": Y[:50], "train": Y, "validation": Y[50:120]}
    fig = plots.plot_class_distribution(LABELS, splits)
    assert isinstance(fig, Figure)
    assert len(fig.axes[0].patches) == 3 * K


def test_length_distribution_reports_truncation():
    lengths = {"train": np.arange(1, 1001), "test": np.full(10, 600)}
    fig = plots.plot_length_distribution(lengths, max_length=512)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("train") and "48.8% > 512" in titles[0]
    assert "100.0% > 512" in titles[1]


def test_length_distribution_marks_every_length_and_counts_the_overflow():
    lengths = {"train": np.r_[np.arange(1, 601), np.full(7, 5000)]}  # 7 huge posts: one "> 600" bar, no spike
    fig = plots.plot_length_distribution(lengths, {"profile": 256, "BERT": 300}, cap=600)
    ax = fig.axes[0]
    assert "57.8% > 256" in ax.get_title() and "50.6% > 300" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["profile", "BERT"]
    assert "> 600" in [t.get_text() for t in ax.get_xticklabels()] and "7" in _texts(fig)
    last_bin = [p.get_height() for p in ax.patches][-2]  # the histogram's last bin holds no clipped posts
    assert last_bin <= 13  # 12 per bin (+1: the closed right edge), not 13 + 7


def test_learning_curves_single_and_overlay():
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_accuracy": 0.5 + 0.1 * e,
                "val_macro_f1": 0.4 + 0.1 * e} for e in (1, 2, 3)]
    partial = [{"epoch": 1, "train_loss": 0.9, "val_loss": None, "val_accuracy": 0.7}, {"epoch": 2}]
    assert len(plots.plot_learning_curves({"bert": history}).axes) == 3
    fig = plots.plot_learning_curves({"bert": history, "lstm": partial})
    assert any("best epoch 3" in t for t in _texts(fig))
    numbered = [{k: v for k, v in row.items() if k != "epoch"} for row in history]  # rows numbered 1, 2, 3
    assert any("best epoch 3" in t for t in _texts(plots.plot_learning_curves({"bert": numbered})))


def test_confusion_matrices():
    fig = plots.plot_confusion_matrix(Y, _noisy(Y, 0.8, 1), LABELS, title="bert")
    assert fig.axes[0].get_title().startswith("bert\naccuracy") and "(" not in fig.axes[0].get_title()
    assert "row-normalised" in fig.axes[1].get_ylabel()  # the colour bar says what it shows
    # 20 classes: the most frequent confusions of both models as grouped bars, readable at any size
    fig = plots.plot_confusion_matrices({"bert": (Y, _noisy(Y, 0.8, 1)), "lstm": (Y, _noisy(Y, 0.6, 2))}, LABELS)
    ax, = fig.axes
    assert len(ax.patches) == 2 * 12 and all("→" in t.get_text() for t in ax.get_yticklabels())
    # a few classes: the matrices themselves, side by side, each with a labelled colour bar
    small = plots.plot_confusion_matrices({"bert": (Y % 3, Y % 3), "lstm": (Y % 3, (Y + 1) % 3)}, LABELS[:3])
    assert len(small.axes) == 4 and "row-normalised" in small.axes[2].get_ylabel()


def test_top_confusions_are_off_the_diagonal():
    pred = np.where(Y == 3, 4, Y)  # class 3 always predicted as 4
    table = plots.top_confusions({"m": (Y, pred)}, LABELS, n=3)
    assert table.index[0] == "class.03 → class.04" and table.iloc[0, 0] == 1.0


def test_confusion_matrix_draws_on_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert plots.plot_confusion_matrix(Y, Y, LABELS, ax=right) is fig
    assert right.collections and not left.collections


def test_per_class_f1_one_and_several_models():
    one = plots.plot_per_class_f1({"bert": np.linspace(0.5, 0.95, K)}, LABELS)
    assert len(one.axes[0].patches) == K
    several = plots.plot_per_class_f1({"bert": RNG.random(K), "lstm": RNG.random(K)}, LABELS)
    assert several.axes[0].collections
    with pytest.raises(ValueError, match="expected \\(20,\\)"):
        plots.plot_per_class_f1({"bert": np.ones(3)}, LABELS)


def test_architecture_draws_every_stage():
    stages = [("Tokenizer", "WordPiece, max 512"), ("BERT encoder × 12", "hidden 768, 12 heads, FFN 3072"),
              ("[CLS] pooling", ""), ("Dropout", "p = 0.1"), ("Linear", "768 → 20 classes")]
    fig = plots.plot_architectures({"BERT": stages})
    texts = _texts(fig)
    for name, _ in stages:
        assert texts.count(name) == 1
    fig = plots.plot_architectures({"BERT": stages, "BiLSTM": stages[:4]})
    assert sum(len(ax.patches) for ax in fig.axes) == 9


def test_metric_bars():
    table = pd.DataFrame({"model": ["bert", "lstm"], "accuracy": [0.86, 0.8], "accuracy_lo": [0.85, 0.79],
                          "accuracy_hi": [0.87, 0.81], "macro_f1": [0.85, 0.78], "macro_f1_lo": [0.84, 0.77],
                          "macro_f1_hi": [0.86, 0.79]})
    fig = plots.plot_metric_bars(table)
    assert "86.0%" in _texts(fig)
    assert fig.axes[0].get_xlim()[0] > 0.7  # the axis spans the intervals, not 0-100 %
    fig = plots.plot_metric_bars(table.assign(model=["bert", "weighted-average (bert+bilstm+tfidf)"]),
                                 chosen="weighted-average (bert+bilstm+tfidf)")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["BERT", "weighted average (BERT + BiLSTM + TF-IDF + SVM)  ◀ chosen"]
    with pytest.raises(ValueError, match="macro_f1_hi"):
        plots.plot_metric_bars(table.drop(columns="macro_f1_hi"))


def test_reliability_shows_ece():
    probs = {"bert": stats.softmax(RNG.normal(size=(300, K)) * 3), "lstm": stats.softmax(RNG.normal(size=(300, K)))}
    fig = plots.plot_reliability(probs, Y)
    ece = stats.expected_calibration_error(probs["bert"], Y)
    assert f"bert (ECE {ece:.3f})" in _texts(fig)


def test_disagreement_and_pvalues():
    table = stats.disagreement_table(Y, _noisy(Y, 0.8, 1), _noisy(Y, 0.7, 2), _noisy(Y, 0.85, 3))
    assert isinstance(plots.plot_disagreement(table), Figure)
    names = ["bert", "lstm", "ensemble"]
    p = pd.DataFrame([[1.0, 0.01234, 0.5], [0.01234, 1.0, 0.0], [0.5, 0.0, 1.0]], index=names, columns=names)
    fig = plots.plot_pvalue_matrix(p)
    texts = _texts(fig)
    assert "0.01*" in texts and "0.50" in texts and "< 1e-20*" in texts
    assert "1.00" not in texts  # diagonal left blank
    colours = fig.axes[0].collections[0].get_array()
    assert colours[0, 1] == pytest.approx(-np.log10(0.01234)) and colours[1, 2] == pytest.approx(20)


def test_readable_names():
    assert display.readable("meta-MLP (seed-exact, bert+bilstm)") == "meta-MLP (seed-exact, BERT + BiLSTM)"
    assert display.readable("BERT classifier") == "BERT classifier"


def _dejavu_only():
    path = font_manager.findfont("DejaVu Sans")
    return ("DejaVu Sans",), frozenset(font_manager.get_font(path).get_charmap())


def test_labels_no_font_draws_are_escaped_with_one_warning(monkeypatch, tmp_path):
    """Without a CJK font (matplotlib ships none), '中文' would draw as empty boxes: it is written as its escapes,
    a PlotWarning names it, and matplotlib has no glyph to complain about; names DejaVu draws stay as written."""
    monkeypatch.setattr(fonts, "_fonts", _dejavu_only)
    names = ["中文", "Ünïcödé", "naïve café"]
    with pytest.warns(PlotWarning, match=r"1 label name\(s\) have characters no installed font draws; the "
                                               r"figures write them as escapes: '中文' as '\\\\u4e2d\\\\u6587'"):
        assert fonts.drawable_labels(names) == ["\\u4e2d\\u6587", "Ünïcödé", "naïve café"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plots.plot_class_distribution(names, {"train": np.array([0, 1, 2, 2])})
        plots.save_figure(fig, tmp_path / "classes.png")
    assert [str(w.message) for w in caught if "Glyph" in str(w.message)] == []
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["\\u4e2d\\u6587", "Ünïcödé", "naïve café"]


def test_installed_fallback_fonts_join_the_figures_font_family():
    family, covered = fonts._fonts()
    assert plt.rcParams["font.family"] == list(family) and family[0] == "DejaVu Sans"
    assert ord("é") in covered and ord("Ж") in covered  # Latin and Cyrillic: DejaVu Sans
