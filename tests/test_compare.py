"""Formatting of the comparison tables (textlab.compare) on a hand-made table: what the CSV, the markdown, the
README's headline and a notebook show."""

import numpy as np
import pandas as pd

from textlab import compare, display


def _table(with_seed: bool = True, seeds: int = 1) -> pd.DataFrame:
    """A comparison table as notebook 05 writes it; with several seeds, the same numbers with an sd of 0.2 points."""
    ours = [
        {"model": "BERT classifier", "test_accuracy": 0.71256, "test_macro_f1": 0.69511, "total_params": 22720916.0,
         "trainable_params": 22720916.0, "frozen_params": 0.0, "s_per_epoch": 725.6, "infer_docs_per_s": 48.2,
         "checkpoint_mb": 90.9, "pretrained_backbone": "MiniLM-L6-H384 (fine-tuned)", "device": "CPU"},
        {"model": "ensemble: meta-MLP (seed-exact)", "test_accuracy": 0.71322,
         "test_macro_f1": 0.69779, "total_params": 36501397.0, "trainable_params": 7340.0, "frozen_params": 36494057.0,
         "s_per_epoch": 0.00295, "device": "CPU (cached logits)"},
        {"model": "ensemble chosen on validation: weighted average (BERT + BiLSTM + TF-IDF + SVM)",
         "test_accuracy": 0.74177, "test_macro_f1": 0.72545, "total_params": 40724062.0, "trainable_params": 5.0,
         "frozen_params": 40724057.0,
         "s_per_epoch": np.nan, "device": "CPU (cached logits)"},
    ]
    sd = 0.002 if seeds > 1 else np.nan
    ours = [{**row, "seeds": seeds, "test_accuracy_sd": sd, "test_macro_f1_sd": sd} for row in ours]
    seed = [{**{c: np.nan for c in compare.COLUMNS}, **ref, "seeds": 1} for ref in compare.SEED_REFERENCE] \
        if with_seed else []
    return compare.typed(pd.DataFrame(ours + seed, columns=compare.COLUMNS))


def test_csv_writes_counts_as_integers_and_missing_as_empty(tmp_path):
    compare.write_tables(_table(), tmp_path)
    csv = (tmp_path / "comparison.csv").read_text().splitlines()
    assert csv[0].startswith("model,test_accuracy,test_accuracy_sd,test_accuracy_min,test_accuracy_max,test_macro_f1,"
                             "test_macro_f1_sd,seeds,total_params")
    assert ",1,22720916,22720916,0," in csv[1] and ".0," not in csv[1].split("725")[0]
    assert csv[-1].startswith("seed report: meta-MLP ensemble,0.6948,,,,0.6735,,1,,,,1.0,")


def test_markdown_reads_well():
    md = display.to_markdown(_table())
    lines = md.splitlines()
    assert lines[0].startswith("| model | test_accuracy | test_macro_f1 | seeds | total_params |")  # no sd: dropped
    assert "| BERT classifier | 71.26 % | 69.51 % | 1 | 22,720,916 | 22,720,916 | 0 | 726 |" in md
    assert "nan" not in md.lower() and "—" not in md
    assert "sequence_modelling" not in lines[0]  # empty in every row: dropped
    assert "ensemble chosen on validation: weighted average (BERT + BiLSTM + TF-IDF + SVM) | 74.18 % |" in md


def test_headline_puts_the_seed_report_beside_its_model():
    md = compare.headline_markdown(_table())
    assert md.splitlines()[0] == ("| model | test accuracy | macro-F1 | parameters | trained | s / epoch | "
                                  "seed report: accuracy / macro-F1 (s / epoch) |")
    assert "| BERT classifier | 71.26 % | 69.51 % | 22,720,916 | 22,720,916 | 726 | 70.23 % / 67.93 % (160 s) |" in md
    assert "| 7,340 | 0.00295 | 69.48 % / 67.35 % (1 s) |" in md
    assert "seed report" not in compare.headline_markdown(_table(with_seed=False))  # own data: no such column
    md = compare.headline_markdown(_table(seeds=3))
    assert md.splitlines()[0].startswith("| model | test accuracy (mean ± sd, 3 seeds) "
                                         "| macro-F1 (mean ± sd, 3 seeds) |")
    assert "| BERT classifier | 71.26 ± 0.20 % | 69.51 ± 0.20 % | 22,720,916 |" in md


def test_notebook_displays():
    html = display.display_table(_table()).to_html()
    assert "22,720,916" in html and "71.26 %" in html and "nan" not in html.lower()
    rec = display.display_record({"parameters": 7340.0, "epochs (chosen by CV)": 8.0, "test_accuracy": 0.71256,
                                  "weight decay": 0.0001, "device": "CPU", "s_per_epoch": 725.64})
    assert rec.data["value"].tolist() == ["7,340", "8", "71.26 %", "0.0001", "CPU", "725.6"]
    assert display.display_record({"temperatures": [1.2, 0.5]}).data["value"].tolist() == ["[1.2, 0.5]"]


def test_backbone_keys_read_as_names():
    assert display.backbone_name("minilm") == "MiniLM-L6-H384" and display.backbone_name("other") == "other"


def test_display_table_formats_any_results_table():
    boot = pd.DataFrame({"model": ["bert"], "accuracy": [0.71256], "accuracy_lo": [0.7012], "chosen": [True]})
    cells = display.formatted(boot)
    assert cells.iloc[0].tolist() == ["bert", "71.26 %", "70.12 %", "True"]
    assert "71.26 %" in display.display_table(boot).to_html()
