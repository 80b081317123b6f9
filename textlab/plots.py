"""Figures of the study: each function takes data and returns a matplotlib Figure (no backend is chosen here, so
they show inline in notebooks); save_figure writes them atomically."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import Normalize, PowerNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import MaxNLocator, PercentFormatter
from sklearn.metrics import confusion_matrix

from . import stats
from .artifacts import atomic_write
from .display import readable
from .fonts import drawable_labels

METRIC_COLUMNS = ("model", "accuracy", "accuracy_lo", "accuracy_hi", "macro_f1", "macro_f1_lo", "macro_f1_hi")
SIGNIFICANCE = 0.05
_PALETTE = plt.get_cmap("tab10").colors


def save_figure(fig: Figure, path, dpi: int = 120) -> Path:
    """Save fig to path atomically, through the project's one atomic writer (artifacts.atomic_write)."""
    fmt = Path(path).suffix.lstrip(".") or "png"  # explicit, or matplotlib would infer it from the temp name
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt, bbox_inches="tight"))


def _heatmap(ax, values, row_labels, col_labels, fontsize: float, cbar_label: str = "", **heatmap) -> None:
    """sns.heatmap (annotations in black or white, whichever reads on the cell; NaN cells blank) with every row and
    column labelled and a labelled colour bar."""
    sns.heatmap(values, ax=ax, xticklabels=col_labels, yticklabels=row_labels, annot_kws={"fontsize": fontsize},
                cbar_kws={"label": cbar_label, "fraction": 0.046, "pad": 0.02}, **heatmap)
    ax.tick_params(labelsize=fontsize)
    plt.setp(ax.get_xticklabels(), rotation=90)
    plt.setp(ax.get_yticklabels(), rotation=0)  # seaborn turns them vertical unless they overlap


def plot_class_distribution(label_names: list[str], split_labels: dict[str, np.ndarray]) -> Figure:
    """Documents per class as grouped horizontal bars, one bar per split (in the dict's order)."""
    k = len(label_names)
    counts = {f"{split} ({len(v):,} docs)": np.bincount(np.asarray(v, dtype=int), minlength=k)
              for split, v in split_labels.items()}
    for split, c in zip(split_labels, counts.values()):
        if len(c) != k:
            raise ValueError(f"split {split!r} has labels >= {k} (only {k} label names given)")
    fig, ax = plt.subplots(figsize=(8, 0.4 * k + 1.5), layout="tight")
    pd.DataFrame(counts, index=drawable_labels(label_names)).plot.barh(ax=ax, width=0.8)
    ax.invert_yaxis()  # class 0 on top, as listed
    ax.tick_params(axis="y", labelsize=8)
    ax.set(xlabel="documents", ylabel="class", title="Documents per class and split")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_length_distribution(lengths: dict[str, np.ndarray], max_length, cap: int | None = None) -> Figure:
    """Token-length histograms per split with every truncation length marked: max_length is an int, or {label:
    length} when models read different lengths. Lengths above `cap` (default: the 95th percentile or twice the
    longest truncation length, whichever is larger, rounded up to 64) are counted in one "> cap" bar rather than
    clipped into the last bin."""
    marks = {f"max_length = {max_length}": max_length} if np.isscalar(max_length) else dict(max_length)
    marks = {label: int(v) for label, v in sorted(marks.items(), key=lambda kv: kv[1])}
    if not cap:
        every = np.concatenate([np.asarray(v, dtype=float) for v in lengths.values()])
        cap = int(np.ceil(max(np.percentile(every, 95), 2 * max(marks.values())) / 64) * 64)
    width = cap / 50
    fig, axes = plt.subplots(len(lengths), 1, figsize=(8, 2.3 * len(lengths)), sharex=True, squeeze=False,
                             layout="tight")
    for ax, (split, values), color in zip(axes[:, 0], lengths.items(), _PALETTE):
        values = np.asarray(values, dtype=float)
        ax.hist(values[values <= cap], bins=np.arange(0, cap + width, width), color=color, alpha=0.8)
        over = ax.bar(cap + 2 * width, np.sum(values > cap), width=2 * width, color="grey", alpha=0.8)
        ax.bar_label(over, fmt="{:,.0f}", fontsize=8)
        ax.set_ylim(0, 1.15 * ax.get_ylim()[1])  # room for the count above the overflow bar
        for (label, v), style in zip(marks.items(), ("--", ":", "-.", "-")):
            ax.axvline(v, color="black", linestyle=style, label=label)
        shares = ", ".join(f"{np.mean(values > v):.1%} > {v}" for v in marks.values())
        ax.set_title(f"{split}: {len(values):,} documents, {shares} (truncated)", fontsize=10)
        ax.set_ylabel("documents")
        ax.legend(fontsize=8, loc="upper center")  # the overflow bar and its count sit at the right
    ticks = [t for t in axes[-1, 0].get_xticks() if 0 <= t <= 0.9 * cap]  # room for the "> cap" label
    axes[-1, 0].set_xticks(ticks + [cap + 2 * width], [f"{t:g}" for t in ticks] + [f"> {cap}"])
    axes[-1, 0].set(xlim=(0, cap + 3.5 * width), xlabel="WordPiece tokens per document")
    return fig


def _series(history: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of one key of a per-epoch history, skipping missing or None values."""
    points = [(row.get("epoch", i + 1), row[key]) for i, row in enumerate(history) if row.get(key) is not None]
    epochs, values = zip(*points) if points else ((), ())
    return np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)


def plot_learning_curves(histories: dict[str, list[dict]]) -> Figure:
    """Loss, validation accuracy and validation macro-F1 per epoch, one colour per model."""
    fig, (ax_loss, ax_acc, ax_f1) = plt.subplots(1, 3, figsize=(15, 4.2), layout="tight")
    for (name, history), color in zip(histories.items(), _PALETTE):
        for key, style in (("train_loss", "-"), ("val_loss", "--")):
            ax_loss.plot(*_series(history, key), linestyle=style, marker="o", color=color)
        epochs, acc = _series(history, "val_accuracy")
        best = int(np.argmax(acc)) if len(acc) else None
        label = name if best is None else f"{name} (best epoch {epochs[best]:g}: {acc[best]:.1%})"
        ax_acc.plot(epochs, acc, marker="o", color=color, label=label)
        ax_f1.plot(*_series(history, "val_macro_f1"), marker="o", color=color)
        if best is not None:
            ax_acc.plot(epochs[best], acc[best], marker="*", markersize=16, color=color, markeredgecolor="black")
            for ax in (ax_loss, ax_acc, ax_f1):
                ax.axvline(epochs[best], color=color, linestyle=":", alpha=0.6)
    ax_loss.legend(handles=[Line2D([], [], color="grey", linestyle=style, label=label)
                            for style, label in (("-", "train"), ("--", "validation"))], fontsize=8)
    best_marker = Line2D([], [], color="grey", marker="*", linestyle="", markersize=12, label="best epoch")
    ax_acc.legend(handles=ax_acc.get_legend_handles_labels()[0] + [best_marker], fontsize=8)
    for ax, title, ylabel in ((ax_loss, "Loss", "cross-entropy"),
                              (ax_acc, "Validation accuracy", "accuracy"),
                              (ax_f1, "Validation macro-F1", "macro-F1")):
        ax.set(title=title, xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return fig


def plot_confusion_matrix(y_true, y_pred, label_names, title: str = "", ax=None) -> Figure:
    """Row-normalised confusion-matrix heatmap (rows: true class). The colour scale is a square root, so that errors
    of a few percent stand out from the white background."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    k, label_names = len(label_names), drawable_labels(label_names)
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(k), normalize="true")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.4 * k + 3.5, 0.4 * k + 2.5), layout="tight")
    # Cell values are unreadable past ~10 classes; colour alone carries the pattern then.
    _heatmap(ax, cm, label_names, label_names, 8 if k > 10 else 9, annot=k <= 10, fmt=".2f", cmap="Blues",
             cbar_label="share of the true class (row-normalised)", norm=PowerNorm(0.5, vmin=0, vmax=1))
    accuracy = float(np.mean(y_true == y_pred))  # not empty: confusion_matrix refuses empty input
    ax.set(title=f"{title}\naccuracy {accuracy:.1%}" if title else f"accuracy {accuracy:.1%}",
           xlabel="predicted class", ylabel="true class")
    return ax.figure


def top_confusions(preds: dict[str, tuple[np.ndarray, np.ndarray]], label_names, n: int = 12) -> pd.DataFrame:
    """The n (true -> predicted) pairs with the largest row-normalised share, averaged over the models; one column
    per model."""
    k = len(label_names)
    shares = {name: confusion_matrix(y, p, labels=np.arange(k), normalize="true") for name, (y, p) in preds.items()}
    mean = np.mean(list(shares.values()), axis=0)
    np.fill_diagonal(mean, -1)
    flat = np.argsort(mean, axis=None)[::-1][:n]
    pairs = [np.unravel_index(i, mean.shape) for i in flat]
    return pd.DataFrame({name: [cm[i, j] for i, j in pairs] for name, cm in shares.items()},
                        index=[f"{label_names[i]} → {label_names[j]}" for i, j in pairs])


def plot_confusion_matrices(preds: dict[str, tuple[np.ndarray, np.ndarray]], label_names) -> Figure:
    """Several models' confusions in one figure a reader can read: up to 10 classes, row-normalised matrices side
    by side; more classes, the 12 most frequent confusions (true → predicted) as grouped bars."""
    if not preds:
        raise ValueError("preds is empty: give at least one model's (y_true, y_pred)")
    k, label_names = len(label_names), drawable_labels(label_names)
    if k <= 10:
        side = 0.4 * k + 3.5
        fig, axes = plt.subplots(1, len(preds), figsize=(side * len(preds), side - 1), squeeze=False, layout="tight")
        for ax, (name, (y_true, y_pred)) in zip(axes[0], preds.items()):
            plot_confusion_matrix(y_true, y_pred, label_names, title=name, ax=ax)
        return fig
    accuracy = {name: np.mean(np.asarray(y_true) == np.asarray(y_pred)) for name, (y_true, y_pred) in preds.items()}
    table = top_confusions(preds, label_names).rename(columns=lambda m: f"{m} (accuracy {accuracy[m]:.1%})")
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(table) * max(len(preds), 2) / 2 + 2), layout="tight")
    table.plot.barh(ax=ax, width=0.8, color=_PALETTE[:len(preds)])
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=9)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set(xlabel="share of the true class's test documents predicted as the other class (row-normalised)",
           title=f"The {len(table)} most frequent confusions (true → predicted)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=1)  # below the axis, off the bars
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_per_class_f1(f1_by_model: dict[str, np.ndarray], label_names) -> Figure:
    """Per-class F1: sorted bars for one model, a models x classes heatmap for several."""
    k, label_names = len(label_names), drawable_labels(label_names)
    scores = {name: np.asarray(v, dtype=float) for name, v in f1_by_model.items()}
    for name, v in scores.items():
        if v.shape != (k,):
            raise ValueError(f"F1 of {name!r} has shape {v.shape}, expected ({k},) for {k} label names")
    if len(scores) > 1:
        fig, ax = plt.subplots(figsize=(0.6 * k + 3, 0.5 * len(scores) + 2.5), layout="tight")
        _heatmap(ax, np.vstack(list(scores.values())), list(scores), label_names, 8, annot=True, fmt=".2f",
                 cmap="viridis", vmin=0, vmax=1)
        ax.set(xlabel="class", ylabel="model", title="Per-class F1")
        return fig
    (name, f1), = scores.items()
    fig, ax = plt.subplots(figsize=(8, 0.35 * k + 1.5), layout="tight")
    pd.Series(f1, index=label_names).sort_values().plot.barh(ax=ax, width=0.8)
    ax.tick_params(axis="y", labelsize=8)
    ax.axvline(f1.mean(), color="black", linestyle="--", label=f"macro-F1 {f1.mean():.1%}")
    ax.set(xlim=(0, 1), xlabel="F1", ylabel="class", title=f"Per-class F1: {name}")
    ax.legend(loc="lower right", fontsize=8)
    return fig


# Flow-diagram geometry in data units (the axes keep an equal aspect, so corners stay round).
_BOX_W, _BOX_H, _STEP, _PANEL_W = 3.6, 0.78, 1.15, 4.0


def plot_architectures(diagrams: dict[str, list[tuple[str, str]]]) -> Figure:
    """{title: stages}: vertical flow diagrams side by side, top-aligned, at one scale; one rounded box per (stage
    name, details), arrows between them."""
    if not diagrams or not all(diagrams.values()):
        raise ValueError("diagrams must map each title to a non-empty list of stages")
    n_rows = max(len(s) for s in diagrams.values())
    fig, axes = plt.subplots(1, len(diagrams), figsize=(4.6 * len(diagrams), _STEP * n_rows + 0.8), squeeze=False,
                             layout="tight")
    x0, x_mid = (_PANEL_W - _BOX_W) / 2, _PANEL_W / 2
    for ax, (title, stages) in zip(axes[0], diagrams.items()):
        colors = plt.get_cmap("Blues")(np.linspace(0.12, 0.35, len(stages)))
        for i, ((name, details), color) in enumerate(zip(stages, colors)):
            y = -i * _STEP
            ax.add_patch(FancyBboxPatch((x0, y - _BOX_H / 2), _BOX_W, _BOX_H, boxstyle="round,pad=0,rounding_size=0.15",
                                        facecolor=color, edgecolor="#1f3b73", linewidth=1.2))
            wrapped = textwrap.fill(details, 46)
            ax.text(x_mid, y + (0.14 if wrapped else 0), name, ha="center", va="center", fontsize=10, fontweight="bold")
            if wrapped:
                ax.text(x_mid, y - 0.16, wrapped, ha="center", va="center", fontsize=7.5, color="#333333")
            if i:
                ax.annotate("", xy=(x_mid, y + _BOX_H / 2), xytext=(x_mid, y + _STEP - _BOX_H / 2),
                            arrowprops=dict(arrowstyle="-|>", color="#1f3b73", linewidth=1.3))
        ax.set(xlim=(0, _PANEL_W), ylim=(-(n_rows - 1) * _STEP - _BOX_H / 2 - 0.1, _BOX_H / 2 + 0.1), aspect="equal")
        ax.set_title(title, fontsize=12, fontweight="bold")
        ax.axis("off")
    return fig


def plot_metric_bars(table: pd.DataFrame, chosen: str | None = None) -> Figure:
    """Accuracy and macro-F1 per model (named by `readable`) as dots with 95 % bootstrap CI bars, on an axis that
    spans the models' intervals (differences of a point stay visible); `chosen`: the model to mark."""
    missing = [c for c in METRIC_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}; needs {list(METRIC_COLUMNS)}")
    keys = table["model"].astype(str).tolist()
    labels = [readable(m) + ("  ◀ chosen" if m == chosen else "") for m in keys]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(keys) + 1.8), sharey=True, layout="tight")
    for ax, metric, title, color in zip(axes, ("accuracy", "macro_f1"), ("Accuracy", "Macro-F1"), _PALETTE):
        value = table[metric].to_numpy(float)
        low, high = table[f"{metric}_lo"].to_numpy(float), table[f"{metric}_hi"].to_numpy(float)
        y = np.arange(len(keys))
        span = max(np.nanmax(high) - np.nanmin(low), 0.01)
        for yi, v, lo, hi, key in zip(y, value, low, high, keys):
            mark = key == chosen
            ax.errorbar(v, yi, xerr=[[v - lo], [hi - v]], fmt="D" if mark else "o", color="black" if mark else color,
                        markersize=8 if mark else 6, capsize=4, ecolor="black")
            ax.text(hi + 0.02 * span, yi, f"{v:.1%}", va="center", fontsize=9,
                    fontweight="bold" if mark else "normal")
        ax.set_yticks(y, labels)
        ax.set_xlim(np.nanmin(low) - 0.05 * span, np.nanmax(high) + 0.2 * span)
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0 if span > 0.05 else 1))
        ax.set_title(f"{title} (95 % bootstrap CI)")
        ax.grid(axis="x", alpha=0.3)
    if chosen in keys:
        axes[0].get_yticklabels()[keys.index(chosen)].set_fontweight("bold")
    axes[0].invert_yaxis()  # first model on top (sharey applies it to both panels)
    return fig


def plot_seed_scores(scores: pd.DataFrame) -> Figure:
    """Test accuracy and macro-F1 of every model (seeds.study_scores), one dot per training seed, the mean as a bar
    with ± 1 sd; a model over every seed's members (seed "all": a deep ensemble) is one diamond."""
    models = list(dict.fromkeys(scores["model"]))
    seeds = sorted(set(scores["seed"]) - {"all"}, key=int)
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.6 * len(models) + 1.8), sharey=True, layout="tight")
    fig.suptitle("Test scores over training seeds: one dot per seed, bar: mean ± 1 sd")
    for ax, metric, title in zip(axes, ("test_accuracy", "test_macro_f1"), ("Test accuracy", "Test macro-F1")):
        for y, model in enumerate(models):
            rows = scores[scores["model"] == model]
            values = rows[metric].to_numpy(float)
            if (rows["seed"] == "all").all():
                ax.plot(values, [y] * len(values), "D", color="black", markersize=8)
                continue
            mean, sd = values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0
            ax.errorbar(mean, y, xerr=sd, fmt="|", color="grey", markersize=18, capsize=5, zorder=1)
            for seed, v in zip(rows["seed"], values):
                ax.plot(v, y, "o", color=_PALETTE[seeds.index(seed) % len(_PALETTE)], alpha=0.85, zorder=2)
            ax.text(values.max(), y - 0.28, f"{mean:.1%}" + (f" ± {sd:.1%}" if len(values) > 1 else ""), fontsize=8,
                    ha="right")
        ax.set_yticks(range(len(models)), [textwrap.fill(readable(m), 40) for m in models], fontsize=9)
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=1))
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], marker="o", linestyle="", color=_PALETTE[i % len(_PALETTE)], label=f"seed {s}")
               for i, s in enumerate(seeds)]
    handles += [Line2D([], [], marker="|", linestyle="", color="grey", markersize=14, label="mean ± sd")]
    if (scores["seed"] == "all").any():
        handles.append(Line2D([], [], marker="D", linestyle="", color="black", label="over all seeds (one model)"))
    axes[1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    axes[0].set_ylim(len(models) - 0.5, -0.8)  # the first model on top, its mean label below the title
    return fig


def plot_reliability(probs_by_model: dict[str, np.ndarray], y_true, n_bins: int = 15) -> Figure:
    """Reliability diagram (confidence vs accuracy) with each model's ECE, and confidence counts below."""
    fig, (ax, ax_count) = plt.subplots(2, 1, figsize=(9.5, 7.5), sharex=True,
                                       gridspec_kw=dict(height_ratios=[3, 1]), layout="tight")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    width = 1 / n_bins / max(len(probs_by_model), 1)
    for i, ((name, probs), color) in enumerate(zip(probs_by_model.items(), _PALETTE)):
        bins = stats.reliability_bins(probs, y_true, n_bins)
        ece = stats.expected_calibration_error(probs, y_true, n_bins)
        filled = bins[bins["count"] > 0]
        ax.plot(filled["confidence"], filled["accuracy"], marker="o", color=color, label=f"{name} (ECE {ece:.3f})")
        ax_count.bar(bins["bin_lower"] + (i + 0.5) * width, bins["count"], width=width, color=color, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), title="Reliability diagram", ylabel="accuracy")
    # Beside the axes, not on them: the curves cover every corner of the unit square.
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, borderaxespad=0)
    ax.grid(alpha=0.3)
    ax_count.set(yscale="log", xlabel="confidence (top-label probability)", ylabel="documents")
    ax_count.set_title("Documents per confidence bin", fontsize=10)
    return fig


def plot_disagreement(table: pd.DataFrame) -> Figure:
    """Documents per agreement case of two models, the part the ensemble gets right highlighted."""
    missing = [c for c in ("documents", "ensemble_right") if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}; pass stats.disagreement_table output")
    ensemble = table.attrs.get("ensemble", "ensemble")
    cases = table.index.astype(str).tolist()
    documents, right = table["documents"].to_numpy(float), table["ensemble_right"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(cases) + 1.8), layout="tight")
    bars = ax.barh(cases, documents, color="#d0d0d0", label="documents")
    ax.barh(cases, right, color=_PALETTE[2], label=f"{ensemble} right")
    ax.bar_label(bars, [f"  {r:,.0f} / {n:,.0f}" + (f" ({r / n:.1%})" if n else "") for n, r in zip(documents, right)],
                 fontsize=9)
    ax.invert_yaxis()
    ax.set(xlim=(0, documents.max() * 1.35 if documents.max() > 0 else 1), xlabel="documents", ylabel="case",
           title=f"Where the models disagree, and how the {ensemble} does")
    ax.legend(loc="lower right", fontsize=8)
    return fig


P_FLOOR = 1e-20  # the colour scale's end; smaller p-values share its colour (and say "< 1e-20")


def _p_text(v: float) -> str:
    if v < P_FLOOR:
        return "< 1e-20"
    return f"{v:.2f}" if v >= 0.01 else f"{v:.0e}"


def plot_pvalue_matrix(pvalues: pd.DataFrame) -> Figure:
    """Model x model heatmap of McNemar p-values, coloured by -log10 p from 1 down to 1e-20 (so p = 1e-2, 1e-6 and
    1e-17 get different colours), each cell annotated; diagonal blank."""
    if pvalues.shape[0] != pvalues.shape[1]:
        raise ValueError(f"pvalues must be square (model x model), got shape {pvalues.shape}")
    p = pvalues.to_numpy(float).copy()
    np.fill_diagonal(p, np.nan)
    score = -np.log10(np.clip(p, P_FLOOR, 1))
    labels = [readable(str(m)) for m in pvalues.index]
    text = [[_p_text(v) + ("*" if v < SIGNIFICANCE else "") for v in row] for row in p]
    fig, ax = plt.subplots(figsize=(1.2 * len(p) + 4, 1.0 * len(p) + 2), layout="tight")
    _heatmap(ax, score, labels, labels, 9, cbar_label="p-value (log scale)", annot=np.array(text), fmt="",
             cmap="viridis", norm=Normalize(vmin=0, vmax=-np.log10(P_FLOOR)))
    ticks = {0: "1", -np.log10(SIGNIFICANCE): str(SIGNIFICANCE), 2: "1e-2", 5: "1e-5", 10: "1e-10", 15: "1e-15",
             20: "≤ 1e-20"}
    ax.collections[0].colorbar.set_ticks(list(ticks), labels=list(ticks.values()))
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.set_title(f"McNemar p-values (* p < {SIGNIFICANCE})")
    return fig
