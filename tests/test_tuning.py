import dataclasses
import json
import shutil

import pytest

from textlab import artifacts
from textlab import checkpoint as ckpt
from textlab.config import TrainConfig
from textlab.tuning import TUNED_KEYS, record, save_record, tuning_markdown, tuning_table


def test_record_reads_a_trained_folder(trained_run, tmp_path):
    run, records = trained_run
    rec = record(run / "seed-42" / "bilstm", "baseline")
    assert rec["kind"] == "bilstm" and rec["label"] == "baseline"
    assert rec["train"]["lr"] == records["bilstm"]["config"]["lr"]
    # every tuned key, only those
    assert rec["train"]["layer_lr_decay"] == 1.0 and "eval_batch_size" not in rec["train"]
    assert rec["model"] == {"num_layers": 2, "dropout": 0.3, "lstm_dropout": 0.2, "input_dropout": 0.0}
    assert rec["val_accuracy"] == records["bilstm"]["validation"]["accuracy"]
    assert [h["epoch"] for h in rec["history"]] == list(range(1, records["bilstm"]["epochs_run"] + 1))
    path = save_record(run / "seed-42" / "bilstm", "baseline", tmp_path)
    assert path.name == "bilstm-baseline.json" and json.loads(path.read_text())["test_accuracy"] == rec["test_accuracy"]


def test_record_of_an_unfinished_folder_says_so(trained_run, tmp_path):
    run, _ = trained_run
    shutil.copytree(run / "seed-42" / "bert", tmp_path / "bert")
    (tmp_path / "bert" / "metrics.json").unlink()
    with pytest.raises(ckpt.CheckpointError, match="not a finished training run"):
        record(tmp_path / "bert", "x")


def _rec(label, val, lr=1e-3, input_dropout=0.0, kind="bilstm"):
    train = {k: v for k, v in dataclasses.asdict(TrainConfig(epochs=8, lr=lr)).items() if k in TUNED_KEYS}
    model = {"dropout": 0.3, "input_dropout": input_dropout} if kind == "bilstm" else {"attention_dropout": 0.1}
    return {"schema": artifacts.SCHEMA, "label": label, "kind": kind, "max_length": 256, "train": train, "model": model,
            "best_epoch": 8, "epochs_run": 8, "val_accuracy": val, "val_macro_f1": val - 0.01,
            "test_accuracy": val - 0.05, "test_macro_f1": val - 0.06, "s_per_epoch": 200.0}


def test_table_names_what_changed_and_ranks_by_validation():
    table = tuning_table([_rec("baseline", 0.72), _rec("drop", 0.74, input_dropout=0.3), _rec("lr", 0.70, lr=2e-3)],
                         "baseline")
    assert list(table["run"]) == ["drop", "baseline", "lr"]
    assert list(table["changed"]) == ["model.input_dropout=0.3", "(baseline)", "lr=0.002"]
    md = tuning_markdown(table)
    assert "| drop | model.input_dropout=0.3 | 8 (8) | 74.00 % |" in md and md.count("\n") == 5


def test_table_refuses_mixed_kinds_and_unknown_baseline():
    with pytest.raises(ValueError, match="one model kind"):
        tuning_table([_rec("a", 0.7), _rec("b", 0.7, kind="bert")], "a")
    with pytest.raises(ValueError, match="baseline 'x' is not among the runs: a"):
        tuning_table([_rec("a", 0.7)], "x")


def test_a_record_of_another_schema_is_refused_not_filled_with_guesses():
    old = _rec("baseline", 0.72)
    del old["schema"]
    with pytest.raises(ckpt.CheckpointError, match="tuning record 'baseline' has artifact schema None; "
                                                   "this textlab reads"):
        tuning_table([old, _rec("ls", 0.73)], "baseline")


def test_every_loop_setting_that_can_change_scores_shows_when_changed():
    # the table's keys follow TrainConfig: a field added later (here layer_lr_decay) shows without editing a list
    assert {"layer_lr_decay", "label_smoothing", "patience", "max_grad_norm"} <= set(TUNED_KEYS)
    assert not {"eval_batch_size", "save_every_steps", "save_every_minutes", "log_with", "compile",
                "pad_buckets"} & set(TUNED_KEYS)
    base = _rec("baseline", 0.72, kind="bert")
    llrd = _rec("llrd", 0.75, kind="bert")
    llrd["train"]["layer_lr_decay"] = 0.8
    assert list(tuning_table([base, llrd], "baseline")["changed"]) == ["layer_lr_decay=0.8", "(baseline)"]
