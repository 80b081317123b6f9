import json
import shutil

import pytest

from textlab import checkpoint as ckpt
from textlab.tuning import TUNED_KEYS, record, save_record, to_markdown, tuning_table


def test_record_reads_a_trained_folder(trained_run, tmp_path):
    run, records = trained_run
    rec = record(run / "bilstm", "baseline")
    assert rec["kind"] == "bilstm" and rec["label"] == "baseline"
    assert rec["train"]["lr"] == records["bilstm"]["config"]["lr"]
    assert rec["train"]["layer_lr_decay"] == 1.0 and "eval_batch_size" not in rec["train"]  # every tuned key, only those
    assert rec["model"] == {"num_layers": 2, "dropout": 0.3, "lstm_dropout": 0.2, "input_dropout": 0.0}
    assert rec["val_accuracy"] == records["bilstm"]["validation"]["accuracy"]
    assert [h["epoch"] for h in rec["history"]] == list(range(1, records["bilstm"]["epochs_run"] + 1))
    path = save_record(run / "bilstm", "baseline", tmp_path)
    assert path.name == "bilstm-baseline.json" and json.loads(path.read_text())["test_accuracy"] == rec["test_accuracy"]


def test_record_of_an_unfinished_folder_says_so(trained_run, tmp_path):
    run, _ = trained_run
    shutil.copytree(run / "bert", tmp_path / "bert")
    (tmp_path / "bert" / "metrics.json").unlink()
    with pytest.raises(ckpt.CheckpointError, match="not a finished training run"):
        record(tmp_path / "bert", "x")


def _rec(label, val, lr=1e-3, input_dropout=0.0, kind="bilstm"):
    return {"label": label, "kind": kind, "max_length": 256, "train": {"epochs": 8, "lr": lr},
            "model": {"dropout": 0.3, "input_dropout": input_dropout}, "best_epoch": 8, "epochs_run": 8,
            "val_accuracy": val, "val_macro_f1": val - 0.01, "test_accuracy": val - 0.05,
            "test_macro_f1": val - 0.06, "s_per_epoch": 200.0}


def test_table_names_what_changed_and_ranks_by_validation():
    table = tuning_table([_rec("baseline", 0.72), _rec("drop", 0.74, input_dropout=0.3), _rec("lr", 0.70, lr=2e-3)],
                         "baseline")
    assert list(table["run"]) == ["drop", "baseline", "lr"]
    assert list(table["changed"]) == ["model.input_dropout=0.3", "(baseline)", "lr=0.002"]
    md = to_markdown(table)
    assert "| drop | model.input_dropout=0.3 | 8 (8) | 74.00 % |" in md and md.count("\n") == 5


def test_table_refuses_mixed_kinds_and_unknown_baseline():
    with pytest.raises(ValueError, match="one model kind"):
        tuning_table([_rec("a", 0.7), _rec("b", 0.7, kind="bert")], "a")
    with pytest.raises(ValueError, match="baseline 'x' is not among the runs: a"):
        tuning_table([_rec("a", 0.7)], "x")


def test_settings_added_later_count_as_their_default_in_older_records():
    old = _rec("baseline", 0.72)  # written before truncation / label_smoothing existed
    new = _rec("ls", 0.73)
    new["train"].update(truncation="head", label_smoothing=0.1)
    assert list(tuning_table([old, new], "baseline")["changed"]) == ["label_smoothing=0.1", "(baseline)"]


def test_bert_model_settings_added_later_count_as_their_default():
    old = {**_rec("baseline", 0.72, kind="bert"), "model": {}}  # written before attention_dropout existed
    same = {**_rec("same", 0.71, kind="bert"), "model": {"attention_dropout": 0.1}}
    fused = {**_rec("fused", 0.73, kind="bert"), "model": {"attention_dropout": 0.0}}
    table = tuning_table([old, same, fused], "baseline")
    assert list(table["changed"]) == ["model.attention_dropout=0.0", "(baseline)", "(baseline)"]


def test_every_loop_setting_that_can_change_scores_shows_when_changed():
    # the table's keys follow TrainConfig: a field added later (here layer_lr_decay) shows without editing a list
    assert {"layer_lr_decay", "label_smoothing", "patience", "max_grad_norm"} <= set(TUNED_KEYS)
    assert not {"eval_batch_size", "save_every_steps", "log_with", "compile", "pad_buckets"} & set(TUNED_KEYS)
    old = _rec("baseline", 0.72, kind="bert")  # written before layer_lr_decay existed
    llrd = _rec("llrd", 0.75, kind="bert")
    llrd["train"]["layer_lr_decay"] = 0.8
    assert list(tuning_table([old, llrd], "baseline")["changed"]) == ["layer_lr_decay=0.8", "(baseline)"]
