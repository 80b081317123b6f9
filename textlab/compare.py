"""Notebook 05: the comparison table and the statistics behind the figures, computed from a run's artifacts."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from .checkpoint import CheckpointError, checkpoint_path, read_json, read_npy, write_text
from .pipeline import train_first
from .plots import readable
from .runs import read_manifest
from .stats import bootstrap_ci, mcnemar, softmax

# The published student report this study starts from (bert-base-uncased on an RTX 3060), as reported there.
SEED_REFERENCE = [
    {"model": "seed report: BERT", "test_accuracy": 0.7023, "test_macro_f1": 0.6793, "s_per_epoch": 160.0},
    {"model": "seed report: BiLSTM", "test_accuracy": 0.6800, "test_macro_f1": 0.6686, "s_per_epoch": 74.0},
    {"model": "seed report: meta-MLP ensemble", "test_accuracy": 0.6948, "test_macro_f1": 0.6735, "s_per_epoch": 1.0},
]
# The results first, then size and speed, then what each model is.
COLUMNS = ["model", "test_accuracy", "test_macro_f1", "total_params", "trainable_params", "frozen_params",
           "s_per_epoch", "infer_docs_per_s", "checkpoint_mb", "pretrained_backbone", "sequence_modelling", "pooling",
           "precision", "device"]
INT_COLUMNS = ("total_params", "trainable_params", "frozen_params")
# Backbone keys of textlab.backbones as a reader knows the models.
BACKBONE_NAMES = {"minilm": "MiniLM-L6-H384", "bert-base-uncased": "bert-base-uncased", "tiny": "tiny random BERT",
                  "bert-base-uncased-random": "bert-base-uncased (random weights)"}
# Which row of this study each seed-report row stands beside in the headline table (by model-name prefix).
SEED_BESIDE = {"seed report: BERT": "BERT classifier", "seed report: BiLSTM": "BiLSTM",
               "seed report: meta-MLP ensemble": "ensemble: meta-MLP (seed-exact"}
# How each ensemble variant (textlab.ensemble) combines its members.
POOLING = {"prob-average": "mean of member softmax", "temp-average": "mean of temperature-scaled member softmax",
           "weighted-average": "weighted mean of temperature-scaled member softmax",
           "meta-MLP": "meta-MLP on member softmax"}


def backbone_name(key: str) -> str:
    return BACKBONE_NAMES.get(key, key)


def _load(run: Path, kind: str) -> dict:
    path = Path(run) / kind / "metrics.json"
    if not path.exists():
        raise CheckpointError(f"{path} is missing: {train_first(run, kind)}")
    return read_json(path)


def _architecture(model_dir: Path, rec: dict) -> tuple[str, str, str]:
    """(pre-trained backbone, sequence modelling, pooling) of a model folder, from what its checkpoint stored."""
    if rec["model"] == "tfidf":
        return ("none", "bag of 1-2 grams", "none")
    meta = read_json(checkpoint_path(model_dir, "best") / "meta.json")
    cfg = meta["model_config"]
    if rec["model"] == "bert":
        return (f"{backbone_name(rec['backbone'])} (fine-tuned)",
                f"Transformer encoder × {cfg['num_hidden_layers']} (d={cfg['hidden_size']})", "[CLS] pooler")
    return (f"{backbone_name(rec['backbone'])} embeddings (frozen)",
            f"BiLSTM × {meta['bilstm']['num_layers']} (hidden {cfg['hidden_size'] // 2} × 2)", "masked attention")


def comparison_table(run) -> pd.DataFrame:
    """One row per model of the run, every cell computed; on 20 Newsgroups, the seed report's rows (labelled)."""
    run = Path(run)
    rows, members = [], {}
    for kind in ("bert", "bilstm", "tfidf"):
        rec = members[kind] = _load(run, kind)
        architecture = zip(("pretrained_backbone", "sequence_modelling", "pooling"), _architecture(run / kind, rec))
        rows.append({"model": rec["display_name"], **{f"{k}_params": v for k, v in rec["params"].items()},
                     **{k: rec[k] for k in ("precision", "s_per_epoch", "device", "infer_docs_per_s")},
                     **dict(architecture), "checkpoint_mb": rec["checkpoint_bytes"] / 1e6,
                     "test_accuracy": rec["test"]["accuracy"], "test_macro_f1": rec["test"]["macro_f1"]})
    ens = _load(run, "ensemble")
    for tag, label in (("seed", "ensemble"), ("chosen", "ensemble chosen on validation")):
        row, stage = ens["rows"][tag], ens["stages"][tag]
        names = row["members"].split("+")
        frozen = sum(members[m]["params"]["total"] for m in names)
        is_mlp = stage["class"] == "MetaMLPEnsemble"
        rows.append({
            "model": f"{label}: {readable(stage['variant'])}", "total_params": stage["own_params"] + frozen,
            "trainable_params": stage["own_params"], "frozen_params": frozen,
            "pretrained_backbone": "members' (frozen)", "sequence_modelling": "members'",
            "pooling": POOLING[stage["variant"].partition(" (")[0]],
            "precision": "fp32", "s_per_epoch": stage["seconds_per_epoch"] if is_mlp else np.nan,
            "device": "CPU (cached logits)",
            "infer_docs_per_s": 1 / sum(1 / members[m]["infer_docs_per_s"] for m in names),
            "test_accuracy": row["test_accuracy"], "test_macro_f1": row["test_macro_f1"],
            "checkpoint_mb": (sum(members[m]["checkpoint_bytes"] for m in names) + stage["checkpoint_bytes"]) / 1e6})
    manifest = read_manifest(run)
    for ref in SEED_REFERENCE if manifest and manifest["data"]["is_20newsgroups"] else []:
        rows.append({**{c: np.nan for c in COLUMNS}, **ref, "device": "RTX 3060 (reported)",
                     "pretrained_backbone": "bert-base-uncased", "precision": "fp16/fp32 (reported)"})
    return typed(pd.DataFrame(rows, columns=COLUMNS))


def typed(table: pd.DataFrame) -> pd.DataFrame:
    """Counts as nullable integers (a CSV then says 2058836, not 2058836.0; a missing count stays empty)."""
    return table.assign(**{c: pd.to_numeric(table[c]).round().astype("Int64") for c in INT_COLUMNS if c in table})


def format_cell(col: str, v, digits: int = 3, whole_from: float = 10) -> str:
    """One cell as the tables show it: accuracy / macro-F1 columns (incl. bootstrap _lo / _hi) as percentages with
    two decimals, other numbers with thousands separators (`digits` significant digits below `whole_from`), missing
    values empty."""
    if pd.api.types.is_scalar(v) and pd.isna(v):
        return ""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return str(v)
    if "accuracy" in col or "macro_f1" in col:
        return f"{100 * v:.2f} %"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return f"{v:,.{digits}g}" if abs(v) < whole_from else f"{v:,.0f}"


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings, the way to_markdown writes it; columns empty in every row dropped."""
    out = pd.DataFrame({c: [format_cell(c, v) for v in table[c]] for c in table.columns}, index=table.index)
    return out.loc[:, (out != "").any()]


def to_markdown(table: pd.DataFrame) -> str:
    """A readable markdown table of formatted cells, unpadded: the committed tables are compared as text (pandas'
    to_markdown pads every column and needs tabulate, not a dependency)."""
    cells = formatted(table)
    header = "| " + " | ".join(cells.columns) + " |\n|" + "---|" * len(cells.columns) + "\n"
    return header + "".join("| " + " | ".join(r) + " |\n" for r in cells.itertuples(index=False))


def display_table(table: pd.DataFrame):
    """A table for a notebook (the comparison table, the bootstrap table, the ensemble's variants): a pandas Styler
    with the markdown's formatting, index hidden, names in full (no truncation), missing values empty."""
    cells = formatted(table)
    return (cells.style.hide(axis="index")
            .set_properties(**{"white-space": "nowrap", "text-align": "right"})
            .set_properties(subset=[cells.columns[0]], **{"text-align": "left"}))  # the names


def display_record(values: dict):
    """A notebook's "Record" cell: one row per key, formatted as the tables are but with 4 significant digits
    below 1,000, as a Styler (no truncated values; the DataFrame is its .data)."""
    table = pd.DataFrame({"value": [format_cell(k, v, 4, 1000) for k, v in values.items()]}, index=list(values))
    return table.style.set_properties(**{"white-space": "nowrap", "text-align": "right"})


def headline_markdown(table: pd.DataFrame) -> str:
    """The README's short table (figures/headline.md): this run's models (accuracy, macro-F1, size, time per epoch),
    each with the seed report's published scores beside it where the seed report has that model (20 Newsgroups
    only; elsewhere the column is dropped, being empty)."""
    ours = table[~table["model"].str.startswith("seed report")]
    beside = {}
    for _, ref in table[table["model"].str.startswith("seed report")].iterrows():
        prefix = SEED_BESIDE.get(ref["model"])
        match = [m for m in ours["model"] if prefix and m.startswith(prefix)]
        if match:
            beside[match[0]] = (f"{100 * ref['test_accuracy']:.2f} % / {100 * ref['test_macro_f1']:.2f} %"
                                f" ({ref['s_per_epoch']:,.0f} s)")
    names = {"model": "model", "test_accuracy": "test accuracy", "test_macro_f1": "macro-F1",
             "total_params": "parameters", "trainable_params": "trained", "s_per_epoch": "s / epoch"}
    cells = formatted(ours[list(names)]).rename(columns=names)
    seed = [beside.get(m, "") for m in ours["model"]]
    return to_markdown(cells.assign(**{"seed report: accuracy / macro-F1 (s / epoch)": seed}))


def write_tables(table: pd.DataFrame, folder) -> None:
    """comparison.csv, comparison.md and headline.md of a run, from comparison_table's output."""
    folder = Path(folder)
    write_text(folder / "comparison.csv", typed(table).to_csv(index=False))
    write_text(folder / "comparison.md", to_markdown(table))
    write_text(folder / "headline.md", headline_markdown(table))


def test_probabilities(run) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Test labels and each model's test probabilities (softmax of logits; ensembles' own probabilities)."""
    run = Path(run)
    y = read_npy(run / "bert" / "labels_test.npy")
    probs = {}
    for kind in ("bert", "bilstm", "tfidf"):
        rec = _load(run, kind)
        if not np.array_equal(read_npy(run / kind / "labels_test.npy"), y):
            raise CheckpointError(f"{run / kind / 'labels_test.npy'} is not in the order of the BERT test labels")
        probs[rec["display_name"]] = softmax(read_npy(run / kind / "logits_test.npy"))
    probs["meta-MLP (seed-exact)"] = read_npy(run / "ensemble" / "proba_test_seed.npy")
    probs["ensemble (chosen)"] = read_npy(run / "ensemble" / "proba_test_chosen.npy")
    return y, probs


def bootstrap_table(y, probs: dict[str, np.ndarray], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    rows = []
    for name, p in probs.items():
        pred = p.argmax(1)
        acc, acc_lo, acc_hi = bootstrap_ci(y, pred, "accuracy", n_boot=n_boot, seed=seed)
        f1, f1_lo, f1_hi = bootstrap_ci(y, pred, "macro_f1", n_boot=n_boot, seed=seed)
        rows.append({"model": name, "accuracy": acc, "accuracy_lo": acc_lo, "accuracy_hi": acc_hi,
                     "macro_f1": f1, "macro_f1_lo": f1_lo, "macro_f1_hi": f1_hi})
    return pd.DataFrame(rows)


def mcnemar_matrix(y, probs: dict[str, np.ndarray]) -> pd.DataFrame:
    names = list(probs)
    out = pd.DataFrame(np.nan, index=names, columns=names)
    for a, b in combinations(names, 2):
        out.loc[a, b] = out.loc[b, a] = mcnemar(y, probs[a].argmax(1), probs[b].argmax(1))["p_value"]
    return out


def disagreement_examples(texts, y, pred_a, pred_b, pred_ens, label_names, k: int = 6, seed: int = 0) -> pd.DataFrame:
    """A few test documents where the two models disagree: who is right, and what the ensemble says."""
    y, pred_a, pred_b, pred_ens = map(np.asarray, (y, pred_a, pred_b, pred_ens))
    idx = np.flatnonzero(pred_a != pred_b)
    idx = np.random.default_rng(seed).choice(idx, size=min(k, len(idx)), replace=False)
    name = lambda i: label_names[int(i)]
    return pd.DataFrame([{"text": " ".join(str(texts[i]).split())[:160], "true": name(y[i]), "BERT": name(pred_a[i]),
                          "BiLSTM": name(pred_b[i]), "ensemble": name(pred_ens[i])} for i in sorted(idx)])
