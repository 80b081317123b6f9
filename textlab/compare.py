"""Notebook 05: the comparison table and the statistics behind the figures, computed from a run's artifacts."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from . import seeds
from .artifacts import read_json, read_npy, write_text
from .checkpoint import checkpoint_path
from .errors import CheckpointError
from .display import backbone_name, formatted, to_markdown
from .kinds import MEMBERS, NEURAL, REGISTRY
from .runs import read_manifest, run_seeds, train_first
from .stats import bootstrap_ci, mcnemar, softmax

# The published student report this study starts from (bert-base-uncased on an RTX 3060), as reported there; "ours":
# the model of this study each stands beside (by name prefix).
SEED_REFERENCE = [
    {"model": "seed report: BERT", "test_accuracy": 0.7023, "test_macro_f1": 0.6793, "s_per_epoch": 160.0,
     "ours": "BERT classifier"},
    {"model": "seed report: BiLSTM", "test_accuracy": 0.6800, "test_macro_f1": 0.6686, "s_per_epoch": 74.0,
     "ours": "BiLSTM"},
    {"model": "seed report: meta-MLP ensemble", "test_accuracy": 0.6948, "test_macro_f1": 0.6735, "s_per_epoch": 1.0,
     "ours": "ensemble: meta-MLP (seed-exact"},
]
SEED_SETTING = "bert-base-uncased on a GPU, one run"
# The results first (mean over training seeds, their sd, min and max), then size and speed, then what each model is.
COLUMNS = ["model", "test_accuracy", "test_accuracy_sd", "test_accuracy_min", "test_accuracy_max", "test_macro_f1",
           "test_macro_f1_sd", "seeds", "total_params", "trainable_params", "frozen_params", "s_per_epoch",
           "infer_docs_per_s", "checkpoint_mb", "pretrained_backbone", "sequence_modelling", "pooling", "precision",
           "device"]
INT_COLUMNS = ("seeds", "total_params", "trainable_params", "frozen_params")
# How each ensemble variant (textlab.ensemble) combines its members.
POOLING = {"prob-average": "mean of member softmax", "temp-average": "mean of temperature-scaled member softmax",
           "weighted-average": "weighted mean of temperature-scaled member softmax",
           "meta-MLP": "meta-MLP on member softmax"}


def _load(folder: Path, kind: str) -> dict:
    """The metrics.json of `kind` in a run folder or one of its seed-* folders."""
    path = Path(folder) / kind / "metrics.json"
    if not path.exists():
        run = path.parent.parent.parent if path.parent.parent.name.startswith("seed-") else path.parent.parent
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
    """One row per model of the run, every cell computed: test scores as mean, sd, min and max over the training
    seeds (seeds.study_scores), size and speed from the first seed's records (times: mean over seeds); on 20
    Newsgroups, the seed report's rows (labelled)."""
    run = Path(run)
    scores = seeds.study_scores(run)
    acc, f1 = (seeds.spread(scores, c).set_index("model") for c in ("test_accuracy", "test_macro_f1"))
    folders = [run / f"seed-{s}" for s in run_seeds(run)]  # in the manifest's order: the first is the reference
    first = folders[0]
    members, rows = {}, []
    for kind in MEMBERS:
        rec = members[kind] = _load(first, kind)
        architecture = zip(("pretrained_backbone", "sequence_modelling", "pooling"), _architecture(first / kind, rec))
        rows.append({"model": rec["display_name"], **{f"{k}_params": v for k, v in rec["params"].items()},
                     **{k: rec[k] for k in ("precision", "device", "infer_docs_per_s")},
                     "s_per_epoch": np.mean([_load(f, kind)["s_per_epoch"] for f in folders]),
                     **dict(architecture), "checkpoint_mb": rec["checkpoint_bytes"] / 1e6})
    ensembles = [_load(f, "ensemble") for f in folders]
    run_choice = seeds.run_record(run)
    stages = [(seeds.SEED_EXACT, [e["stages"]["seed"] for e in ensembles])]
    if len(folders) > 1:  # with one seed, its choice is the run's
        stages.append((seeds.WITHIN_SEED, [e["stages"]["chosen"] for e in ensembles]))
    stages.append((seeds.chosen_name(run_choice), [run_choice["stage"]]))
    for model, variants in stages:
        stage = variants[0]
        names = [m.partition("@")[0] for m in stage["members"]]
        frozen = sum(members[m]["params"]["total"] for m in names)
        is_mlp = stage["class"] == "MetaMLPEnsemble"
        if len({v["variant"] for v in variants}) > 1:  # seeds chose different ensembles: no one size or speed
            rows.append({"model": model, "pooling": " / ".join(dict.fromkeys(
                POOLING[v["variant"].partition(" (")[0]] for v in variants)), "device": "CPU (cached logits)"})
            continue
        rows.append({
            "model": model, "total_params": stage["own_params"] + frozen, "trainable_params": stage["own_params"],
            "frozen_params": frozen, "pretrained_backbone": "members' (frozen)", "sequence_modelling": "members'",
            "pooling": POOLING[stage["variant"].partition(" (")[0]],
            "precision": "fp32", "s_per_epoch": stage["seconds_per_epoch"] if is_mlp else np.nan,
            "device": "CPU (cached logits)",
            "infer_docs_per_s": 1 / sum(1 / members[m]["infer_docs_per_s"] for m in names),
            "checkpoint_mb": (sum(members[m]["checkpoint_bytes"] for m in names) + stage["checkpoint_bytes"]) / 1e6})
    for row in rows:
        row.update(acc.loc[row["model"]].rename(lambda c: c.replace("_mean", "")).to_dict(),
                   **f1.loc[row["model"], ["test_macro_f1_mean", "test_macro_f1_sd"]].rename(
                       lambda c: c.replace("_mean", "")).to_dict())
    manifest = read_manifest(run)
    for ref in SEED_REFERENCE if manifest and manifest["data"]["is_20newsgroups"] else []:
        rows.append({**{c: np.nan for c in COLUMNS}, **{k: v for k, v in ref.items() if k in COLUMNS},
                     "seeds": 1, "device": "RTX 3060 (reported)", "pretrained_backbone": "bert-base-uncased",
                     "precision": "fp16/fp32 (reported)"})
    return typed(pd.DataFrame(rows, columns=COLUMNS))


def typed(table: pd.DataFrame) -> pd.DataFrame:
    """Counts as nullable integers (a CSV then says 2058836, not 2058836.0; a missing count stays empty)."""
    return table.assign(**{c: pd.to_numeric(table[c]).round().astype("Int64") for c in INT_COLUMNS if c in table})


def headline_markdown(table: pd.DataFrame) -> str:
    """The README's short table (figures/headline.md): this run's models (test accuracy and macro-F1 as mean ± sd
    over training seeds, size, time per epoch), each with the seed report's published scores beside it where the
    seed report has that model (20 Newsgroups only; elsewhere the column is dropped, being empty)."""
    ours = table[~table["model"].str.startswith("seed report")]
    beside = {}
    for _, ref in table[table["model"].str.startswith("seed report")].iterrows():
        prefix = next(r["ours"] for r in SEED_REFERENCE if r["model"] == ref["model"])
        match = [m for m in ours["model"] if m.startswith(prefix)]
        if match:
            beside[match[0]] = (f"{100 * ref['test_accuracy']:.2f} % / {100 * ref['test_macro_f1']:.2f} %"
                                f" ({ref['s_per_epoch']:,.0f} s)")
    names = {"model": "model", "total_params": "parameters", "trainable_params": "trained", "s_per_epoch": "s / epoch"}
    cells = formatted(ours[list(names)]).rename(columns=names)
    n = ours["seeds"].max()
    for i, (col, head) in enumerate((("test_accuracy", "test accuracy"), ("test_macro_f1", "macro-F1")), 1):
        head += f" (mean ± sd, {n} seeds)" if n > 1 else ""
        cells.insert(i, head, [_mean_sd(m, sd) for m, sd in zip(ours[col], ours[col + "_sd"])])
    seed = [beside.get(m, "") for m in ours["model"]]
    return to_markdown(cells.assign(**{"seed report: accuracy / macro-F1 (s / epoch)": seed}))


def _mean_sd(mean: float, sd: float) -> str:
    return f"{100 * mean:.2f} %" if pd.isna(sd) else f"{100 * mean:.2f} ± {100 * sd:.2f} %"


def seed_reference(run) -> list[dict]:
    """The seed report's published rows, where the run is on 20 Newsgroups (its numbers are of that data only)."""
    manifest = read_manifest(run)
    return [{**r, "setting": SEED_SETTING} for r in SEED_REFERENCE] \
        if manifest and manifest["data"]["is_20newsgroups"] \
        else []


def write_conclusions(run, scores: pd.DataFrame, folder) -> str:
    """"What the run shows" as markdown bullets generated from the run's scores (seeds.conclusions), written to
    folder/conclusions.md; returns the text."""
    text = "".join(f"- {sentence}\n" for sentence in seeds.conclusions(scores, seed_reference(run)))
    write_text(Path(folder) / "conclusions.md", text)
    return text


def write_tables(table: pd.DataFrame, folder) -> None:
    """comparison.csv, comparison.md and headline.md of a run, from comparison_table's output."""
    folder = Path(folder)
    write_text(folder / "comparison.csv", typed(table).to_csv(index=False))
    write_text(folder / "comparison.md", to_markdown(table))
    write_text(folder / "headline.md", headline_markdown(table))


def test_probabilities(run) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Test labels and the test probabilities of the first training seed's models (softmax of logits; its
    meta-MLP's own) and of the run's chosen ensemble: the models that bootstrap intervals, McNemar tests,
    confusion matrices and calibration are shown for."""
    run = Path(run)
    first = run / f"seed-{run_seeds(run)[0]}"
    y = read_npy(first / "bert" / "labels_test.npy")
    probs = {}
    for kind in MEMBERS:
        rec = _load(first, kind)
        if not np.array_equal(read_npy(first / kind / "labels_test.npy"), y):
            raise CheckpointError(f"{first / kind / 'labels_test.npy'} is not in the order of the BERT test labels")
        probs[rec["display_name"]] = softmax(read_npy(first / kind / "logits_test.npy"))
    probs["meta-MLP (seed-exact)"] = read_npy(first / "ensemble" / "proba_test_seed.npy")
    seeds.run_record(run)  # refused if chosen over other seeds than the run's
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


def disagreement_examples(texts, y, pred_a, pred_b, pred_ens, label_names, k: int = 6, seed: int = 0,
                          names: tuple[str, str, str] = (*(REGISTRY[m].short for m in NEURAL), "ensemble")
                          ) -> pd.DataFrame:
    """A few test documents where models a and b disagree: who is right, and what the ensemble says (columns:
    `names`)."""
    y, pred_a, pred_b, pred_ens = map(np.asarray, (y, pred_a, pred_b, pred_ens))
    idx = np.flatnonzero(pred_a != pred_b)
    idx = np.random.default_rng(seed).choice(idx, size=min(k, len(idx)), replace=False)
    def name(i):
        return label_names[int(i)]

    return pd.DataFrame([{"text": " ".join(str(texts[i]).split())[:160], "true": name(y[i]),
                          **dict(zip(names, (name(p[i]) for p in (pred_a, pred_b, pred_ens))))} for i in sorted(idx)])
