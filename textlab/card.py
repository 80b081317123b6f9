"""The model card of an exported model (README.md with the Hub's YAML metadata), generated from the run's artifacts:
what it is, what it was trained on, how well it does (bootstrap intervals, seed spread, per-class F1, calibration),
on what hardware, and where it fails. Nothing in it is typed by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from huggingface_hub import EvalResult, ModelCardData

from .artifacts import read_json, read_npy
from .evaluate import metrics as score
from .kinds import NEURAL, display
from .pipeline import seed_dir
from .display import readable
from .stats import bootstrap_ci, expected_calibration_error, softmax

# The Hub's name and license of each pre-trained backbone (random-weight backbones have none).
BASE_MODELS = {"minilm": ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0"),
               "bert-base-uncased": ("google-bert/bert-base-uncased", "apache-2.0")}
NG20_HUB = "SetFit/20_newsgroups"  # the Hub's copy of scikit-learn's bydate split with headers, footers, quotes removed


def model_card(run: Path, model: str, seed: int | None, manifest: dict) -> tuple[str, list[str]]:
    """(README.md text, notes): the notes say what the exported folder cannot express exactly (also in the card)."""
    facts = _ensemble_facts(run) if model == "ensemble" else _model_facts(run, model, seed)
    notes = _notes(model, facts, manifest)
    return _yaml(model, facts, manifest) + _body(model, facts, manifest, notes), notes


# ---------------------------------------------------------------- facts, from the run's artifacts


def _model_facts(run: Path, model: str, seed: int) -> dict:
    folder = seed_dir(run, seed) / model
    rec = read_json(folder / "metrics.json")
    y, logits = read_npy(folder / "labels_test.npy"), read_npy(folder / "logits_test.npy")
    spread = [read_json(f)["test"]["accuracy"] for f in sorted(run.glob(f"seed-*/{model}/metrics.json"))]
    return {"name": f"{display(model)}, training seed {seed}", "label_names": rec["label_names"], "y": y,
            "proba": softmax(logits), "test": rec["test"], "val_accuracy": rec["validation"]["accuracy"],
            "val_what": "validation accuracy", "spread": spread, "spread_what": f"the {display(model)}",
            "backbone": rec["backbone"], "max_length": rec["max_length"], "truncation": rec["truncation"],
            "settings": rec["config"], "trained": [rec]}


def _ensemble_facts(run: Path) -> dict:
    rec = read_json(run / "ensemble" / "metrics.json")
    stage = rec["stage"]
    members = [run / f for f in stage["member_folders"]]
    y = read_npy(members[0] / "labels_test.npy")
    proba = read_npy(run / "ensemble" / "proba_test_chosen.npy")
    trained = [read_json(f / "metrics.json") for f in members if f.name in NEURAL]
    spread = [read_json(f)["rows"]["chosen"]["test_accuracy"]
              for f in sorted(run.glob("seed-*/ensemble/metrics.json"))]
    return {"name": f"ensemble: {readable(rec['chosen'])}", "label_names": rec["label_names"], "y": y, "proba": proba,
            "test": score(np.log(np.clip(proba, 1e-30, None)), y, rec["label_names"]),
            "val_accuracy": rec["row"]["val_cv_accuracy"], "val_what": "cross-validated accuracy on validation",
            "spread": spread, "spread_what": "the ensemble chosen within each seed",
            "backbone": trained[0]["backbone"], "max_length": max(t["max_length"] for t in trained),
            "truncation": trained[0]["truncation"], "members": stage["member_folders"],
            "settings": {k: v for k, v in stage.items()
                         if k not in ("member_folders", "checkpoint_bytes", "seconds_per_epoch", "variant")},
            "trained": trained}


def _notes(model: str, facts: dict, manifest: dict) -> list[str]:
    notes = []
    if model == "bert" and facts["truncation"] != "head":
        notes.append(f"this BERT was trained and evaluated on {facts['truncation']} truncation; transformers' "
                     f"pipeline can only keep the head, so for documents longer than {facts['max_length']} tokens its "
                     "predictions can differ from the run's (textlab's load_predictor on this folder keeps "
                     f"{facts['truncation']})")
    if len(manifest["settings"]["seeds"]) > 1 and model != "ensemble":
        notes.append(f"the run trained {len(manifest['settings']['seeds'])} seeds; this folder holds one of them "
                     f"({facts['name']}); the card states the spread over all seeds")
    return notes


# ---------------------------------------------------------------- the card


def _yaml(model: str, facts: dict, manifest: dict) -> str:
    data = manifest["data"]
    is_20ng = data["is_20newsgroups"]
    dataset = NG20_HUB if is_20ng else Path(data["source"]).name
    base, license_ = BASE_MODELS.get(facts["backbone"], (None, None))
    results = [EvalResult(task_type="text-classification", dataset_type=dataset, dataset_name=_data_name(data),
                          dataset_split="test", metric_type=kind, metric_name=name, metric_value=round(value, 4),
                          metric_args=args)
               for kind, name, value, args in (("accuracy", "Accuracy", facts["test"]["accuracy"], None),
                                               ("f1", "Macro F1", facts["test"]["macro_f1"], {"average": "macro"}))]
    card = ModelCardData(model_name=f"textlab {facts['name']}", base_model=base, license=license_,
                         language="en" if is_20ng else None, datasets=[NG20_HUB] if is_20ng else None,
                         library_name="transformers" if model == "bert" else "textlab",
                         pipeline_tag="text-classification", metrics=["accuracy", "f1"], eval_results=results,
                         tags=["textlab", "text-classification"])
    return f"---\n{card.to_yaml()}\n---\n\n"


def _data_name(data: dict) -> str:
    return ("20 Newsgroups (bydate; headers, footers and quotes removed)" if data["is_20newsgroups"]
            else f"own data: {Path(data['source']).name}")


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _body(model: str, facts: dict, manifest: dict, notes: list[str]) -> str:
    data, names, test = manifest["data"], facts["label_names"], facts["test"]
    y, pred = facts["y"], facts["proba"].argmax(1)
    lines = [f"# textlab {facts['name']}", "",
             f"A {len(names)}-class text classifier trained with textlab in run "
             f"`{manifest['run']}` ({manifest['command']}); backbone `{facts['backbone']}`, reading the first "
             f"{facts['max_length']} tokens ({facts['truncation']} truncation).", "", *_usage(model), "",
             "## Training data", "", f"- Source: {_data_name(data)}; fingerprint `{data['fingerprint'][:16]}`.",
             "- Splits: " + ", ".join(f"{s} {n:,}" for s, n in data["splits"].items()) + " documents (validation "
             f"carved from train by split seed {manifest['settings']['split_seed']}; it made every choice).",
             f"- Classes ({len(names)}): " + ", ".join(f"`{n}`" for n in names) + ".", "", "## Results (test split)",
             ""]
    for metric, label in (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1")):
        _, low, high = bootstrap_ci(y, pred, metric, n_boot=1000, seed=0)
        lines.append(f"- {label}: {_pct(test[metric])} (95 % bootstrap interval {_pct(low)} – {_pct(high)}, "
                     f"{len(y):,} documents).")
    spread = facts["spread"]
    if len(spread) > 1:
        lines.append(f"- Over the run's {len(spread)} training seeds, {facts['spread_what']} scored "
                     f"{_pct(np.mean(spread))} ± {_pct(np.std(spread, ddof=1))} test accuracy (min {_pct(min(spread))},"
                     f" max {_pct(max(spread))}).")
    ece = expected_calibration_error(facts["proba"], y)
    lines += [f"- Calibration: mean top-1 probability {_pct(facts['proba'].max(1).mean())} against accuracy "
              f"{_pct(test['accuracy'])}; expected calibration error {ece:.3f} (15 bins).", "",
              "Per-class F1 (test):", "", "| class | precision | recall | F1 | documents |", "|---|---|---|---|---|"]
    per = test["per_class"]
    lines += [f"| {n} | {p:.3f} | {r:.3f} | {f:.3f} | {s} |"
              for n, p, r, f, s in zip(names, per["precision"], per["recall"], per["f1"], per["support"])]
    lines += ["", *_limits(facts, data, notes), "", *_training(model, facts, manifest), ""]
    return "\n".join(lines)


def _usage(model: str) -> list[str]:
    if model == "bert":
        return ["```python", "from transformers import pipeline", "",
                'classify = pipeline("text-classification", model="PATH/TO/THIS/FOLDER")',
                'classify(["some text"], truncation=True)  # truncation=True: cut at the length it was trained on',
                "```"]
    return ["```python", "from textlab.predict import load_predictor", "",
            'load_predictor("PATH/TO/THIS/FOLDER").predict(["some text"])  # or: python -m textlab predict --run '
            "PATH/TO/THIS/FOLDER \"some text\"", "```"]


def _limits(facts: dict, data: dict, notes: list[str]) -> list[str]:
    names, test = facts["label_names"], facts["test"]
    gap = 100 * (facts["val_accuracy"] - test["accuracy"])
    worst = sorted(range(len(names)), key=lambda c: test["per_class"]["f1"][c])[:3]
    confusion = np.array(test["confusion"])
    np.fill_diagonal(confusion, 0)
    pairs = [divmod(int(i), len(names)) for i in np.argsort(-confusion, axis=None, kind="stable")[:3]]
    lines = ["## Intended use and limits", "",
             f"- For sorting documents like its training data into these {len(names)} classes; any other text is "
             "still forced into one of them (there is no \"none\" class).",
             f"- Its {facts['val_what']} was {_pct(facts['val_accuracy'])}, {abs(gap):.2f} points "
             f"{'above' if gap >= 0 else 'below'} test: expect the test figure, not validation's, on new documents."]
    if data["is_20newsgroups"]:
        lines.append("- The bydate test split was posted after the training split: topics drift, and newer text "
                     "scores lower than text like the training data.")
    lines.append("- Weakest classes (test F1): " + ", ".join(
        f"`{names[c]}` {test['per_class']['f1'][c]:.3f}" for c in worst) + ".")
    lines.append("- Most frequent confusions (true → predicted, test documents): " + ", ".join(
        f"`{names[a]}` → `{names[b]}` {int(confusion[a, b])}" for a, b in pairs if confusion[a, b]) + ".")
    evaluated = {rec["precision"] for rec in facts["trained"]} - {"fp32"}
    if evaluated:  # the test figures above came from that arithmetic; this folder's weights are fp32
        lines.append(f"- The run evaluated in {', '.join(sorted(evaluated))}; this folder's weights run in fp32 unless "
                     "you ask for less, so a few predictions near a tie can differ from the run's.")
    lines += [f"- {note[0].upper()}{note[1:]}." for note in notes]
    return lines


def _training(model: str, facts: dict, manifest: dict) -> list[str]:
    lines = ["## Training", ""]
    if model == "ensemble":
        lines.append("Members: " + ", ".join(f"`{m}`" for m in facts["members"]) + "; the combination was chosen "
                     "among the run's ensemble variants by cross-validation on the validation split.")
    for rec in facts["trained"]:
        lines.append(f"- {rec['display_name']} (seed {rec['seed']}): {rec['epochs_run']} epoch(s), best epoch "
                     f"{rec['best_epoch']}, {rec['s_per_epoch']:.0f} s per epoch on {rec['device']} ({rec['precision']}"
                     f"), {rec['n_train']:,} training documents, {rec['params']['trainable']:,} trained parameters.")
    lines += ["", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in facts["settings"].items()]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in manifest["versions"].items()) + "."]
    return lines
