"""Tuning log: what each training run of a model changed, and what validation said about it. A record is distilled
from a trained model folder (metrics.json, history.json, the selected checkpoint's meta.json), so the tables are
regenerated from run artifacts, never typed. Choices are made on validation accuracy only; test is shown after."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pandas as pd

from .artifacts import SCHEMA, check_schema, read_json, write_json
from .checkpoint import checkpoint_path, validate_meta
from .errors import CheckpointError
from .config import EXECUTION_ONLY, TrainConfig
from .display import to_markdown

# Loop settings that cannot change a run's scores (max_length is shown as the length the model read); every other
# TrainConfig field, including ones added later, appears in a table's "changed" column when it differs.
NOT_TUNED = ("eval_batch_size", "max_length")
TUNED_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in NOT_TUNED + EXECUTION_ONLY)
MODEL_SETTINGS = {"bert": "bert_model", "bilstm": "bilstm"}  # checkpoint meta key of each kind's own settings


def record(model_dir, label: str) -> dict:
    """The settings and validation history of one trained model folder (small enough to commit)."""
    model_dir = Path(model_dir)
    for path in (model_dir / "metrics.json", model_dir / "history.json"):
        if not path.exists():
            raise CheckpointError(f"{path} is missing: {model_dir} is not a finished training run")
    metrics, history = read_json(model_dir / "metrics.json"), read_json(model_dir / "history.json")
    meta_path = checkpoint_path(model_dir, "best") / "meta.json"
    meta = validate_meta(read_json(meta_path), meta_path)
    return {
        "schema": SCHEMA, "label": label, "kind": meta["kind"], "backbone": meta["backbone"],
        "max_length": meta["max_length"], "train": {k: meta["config"][k] for k in TUNED_KEYS},
        "model": meta[MODEL_SETTINGS[meta["kind"]]],
        "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
        "val_accuracy": metrics["validation"]["accuracy"], "val_macro_f1": metrics["validation"]["macro_f1"],
        "test_accuracy": metrics["test"]["accuracy"], "test_macro_f1": metrics["test"]["macro_f1"],
        "s_per_epoch": metrics["s_per_epoch"],  # training's median over epochs
        "history": [{k: h[k] for k in ("epoch", "train_loss", "val_loss", "val_accuracy", "val_macro_f1")}
                    for h in history],
    }


def save_record(model_dir, label: str, out_dir) -> Path:
    rec = record(model_dir, label)
    return write_json(Path(out_dir) / f"{rec['kind']}-{label}.json", rec)


def _settings(rec: dict) -> dict:
    check_schema(rec, f"tuning record {rec.get('label')!r}")
    return {"max_length": rec["max_length"], **{k: rec["train"][k] for k in TUNED_KEYS},
            **{f"model.{k}": v for k, v in rec["model"].items()}}


def tuning_table(records: list[dict], baseline: str) -> pd.DataFrame:
    """One row per run of one model kind: the settings it changed against `baseline` (a label) and its
    validation (selection) and test (reported only) scores, best validation first."""
    kinds = {r["kind"] for r in records}
    if len(kinds) != 1:
        raise ValueError(f"a tuning table compares runs of one model kind, got {sorted(kinds)}")
    by_label = {r["label"]: r for r in records}
    if baseline not in by_label:
        raise ValueError(f"baseline {baseline!r} is not among the runs: {', '.join(by_label)}")
    base = _settings(by_label[baseline])
    rows = []
    for r in records:
        s = _settings(r)
        changed = ", ".join(f"{k}={s[k]}" for k in s if s[k] != base.get(k)) or "(baseline)"
        rows.append({"run": r["label"], "changed": changed, "epochs (best)": f"{r['epochs_run']} ({r['best_epoch']})",
                     "val_accuracy": r["val_accuracy"], "val_macro_f1": r["val_macro_f1"],
                     "test_accuracy": r["test_accuracy"], "test_macro_f1": r["test_macro_f1"],
                     "s_per_epoch": r["s_per_epoch"]})
    return pd.DataFrame(rows).sort_values("val_accuracy", ascending=False, kind="stable").reset_index(drop=True)


def tuning_markdown(table: pd.DataFrame) -> str:
    """figures/tuning_*.md, as committed and pasted into the docs: display.to_markdown, seconds per epoch whole and
    without thousands separators."""
    return to_markdown(table.assign(s_per_epoch=table["s_per_epoch"].map("{:.0f}".format)))
