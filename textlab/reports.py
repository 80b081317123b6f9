"""What notebooks 02 and 03 show of a trained model: its figures and the numbers the notebook ends with, read from
the run's artifacts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .artifacts import read_json, read_npy
from . import plots
from .describe import architecture_stages
from .display import backbone_name, display_record
from .pipeline import Prepared, load_model, seed_dir


def model_report(kind: str, prep: Prepared, records: dict[int, dict]):
    """What notebooks 02 and 03 show of a model trained by train_seeds: the learning curves of every seed on one
    figure, and the first seed's test confusion matrix, per-class test F1 and architecture (drawn from the trained
    model object), each saved to the run's figures as <kind>_*.png; returns the per-epoch history of every seed."""
    seeds, name = list(records), records[next(iter(records))]["display_name"]
    first = seed_dir(prep.run_dir, seeds[0]) / kind
    histories = {s: read_json(seed_dir(prep.run_dir, s) / kind / "history.json") for s in seeds}
    curves = {f"{name}, seed {s}" if len(seeds) > 1 else name: h for s, h in histories.items()}
    plots.save_figure(plots.plot_learning_curves(curves), prep.figures / f"{kind}_learning_curves.png")
    which = f", seed {seeds[0]}" if len(seeds) > 1 else ""
    y_true, y_pred = read_npy(first / "labels_test.npy"), read_npy(first / "logits_test.npy").argmax(1)
    fig = plots.plot_confusion_matrix(y_true, y_pred, prep.label_names, title=f"{name}{which}, test split")
    plots.save_figure(fig, prep.figures / f"{kind}_confusion.png")
    fig = plots.plot_per_class_f1({name + which: np.array(records[seeds[0]]["test"]["per_class"]["f1"])},
                                  prep.label_names)
    plots.save_figure(fig, prep.figures / f"{kind}_per_class_f1.png")
    fig = plots.plot_architectures({f"{name} — {backbone_name(prep.profile.backbone)}": architecture(first)})
    plots.save_figure(fig, prep.figures / f"{kind}_architecture.png")
    return pd.DataFrame([{"seed": s, **row} for s, h in histories.items() for row in h])


def architecture(model_dir) -> list[tuple[str, str]]:
    """The stages of a trained model (describe.architecture_stages), read off its selected checkpoint."""
    model, meta = load_model(model_dir)
    return architecture_stages(model, meta["max_length"])


def model_summary(records: dict[int, dict]):
    """The numbers a model's notebook ends with: test and validation scores (mean over seeds), epochs, speed, size."""
    recs = list(records.values())
    mean = lambda f: float(np.mean([f(r) for r in recs]))  # noqa: E731
    first = recs[0]
    return display_record({
        "seeds": ", ".join(map(str, records)),
        "test_accuracy": mean(lambda r: r["test"]["accuracy"]), "test_macro_f1": mean(lambda r: r["test"]["macro_f1"]),
        "val_accuracy": mean(lambda r: r["validation"]["accuracy"]),
        "best_epoch": ", ".join(str(r["best_epoch"]) for r in recs), "epochs_run": sum(r["epochs_run"] for r in recs),
        "s_per_epoch": mean(lambda r: r["s_per_epoch"]), **{k: first[k] for k in ("device", "precision")},
        **{f"params_{k}": first["params"][k] for k in ("total", "trainable", "frozen")},
        "infer_docs_per_s": mean(lambda r: r["infer_docs_per_s"]), "checkpoint_MB": first["checkpoint_bytes"] / 1e6})
