import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from textlab import runner


def test_relative_env_paths_are_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTLAB_20NG", "data/20news-bydate.tar.gz")
    monkeypatch.setenv("TEXTLAB_RUNS", "runs")
    runner._absolute_paths_in_env()
    assert os.environ["TEXTLAB_20NG"] == str(tmp_path / "data" / "20news-bydate.tar.gz")
    assert os.environ["TEXTLAB_RUNS"] == str(tmp_path / "runs")


def test_select_by_number_or_stem():
    assert [nb.stem for nb in runner.select(["02", "01_data"])] == ["01_data", "02_bert"]
    assert [nb.stem for nb in runner.select(None)] == ["01_data", "02_bert", "03_bilstm", "04_ensemble", "05_compare"]
    with pytest.raises(ValueError, match="unknown notebook '07'; choose from: 01_data, 02_bert"):
        runner.select(["07"])


def test_whole_series_on_your_own_data(tmp_path, monkeypatch, capsys):
    """`textlab run --data FILE --set ...`: all five notebooks, with two training seeds, on a file that is not 20
    Newsgroups (3 classes), the overrides reaching every notebook, N-class artifacts per seed, the choice across
    seeds, the ensemble the run chose behind `predict`, no seed-report rows; then other settings are refused before
    any notebook runs."""
    from helpers import keyword_csv
    from textlab import cli
    from textlab.artifacts import read_json
    from textlab.config import resolve
    from textlab.data import load_for_profile
    from textlab.predict import load_predictor

    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("TEXTLAB_FIGURES", raising=False)
    csv = keyword_csv(tmp_path / "reviews.csv", n=240)
    committed = {nb: nb.stat().st_mtime_ns for nb in runner.notebooks()}
    assert cli.main(["run", "--profile", "smoke", "--data", str(csv), "--set", "bert.epochs=2",
                     "--set", "val_fraction=0.2", "--set", "seeds=42,43"]) == 0
    run = tmp_path / "runs" / "smoke-reviews"
    assert sorted(p.stem for p in (run / "notebooks").glob("*.ipynb")) == [nb.stem for nb in runner.notebooks()]
    manifest = read_json(run / "manifest.json")
    assert manifest["data"]["splits"] == {"train": 153, "validation": 39, "test": 48}
    assert manifest["data"]["label_names"] == ["crypto", "hockey", "space"] and not manifest["data"]["is_20newsgroups"]
    assert manifest["settings"]["seeds"] == [42, 43] and manifest["settings"]["split_seed"] == 42
    for seed in (42, 43):
        bert = read_json(run / f"seed-{seed}" / "bert" / "metrics.json")
        assert bert["epochs_run"] == 2 and bert["label_names"] == ["crypto", "hockey", "space"]
        assert len(bert["test"]["confusion"]) == 3 and bert["n_train"] == 153 and bert["seed"] == seed
        assert (run / f"seed-{seed}" / "ensemble" / "ensemble.json").exists()
    assert not np.array_equal(*(np.load(run / f"seed-{s}" / "bert" / "logits_test.npy") for s in (42, 43)))
    table = pd.read_csv(run / "figures" / "comparison.csv")
    assert not table["model"].str.startswith("seed report").any() and len(table) == 6
    assert table["seeds"].tolist() == [2, 2, 2, 2, 2, 1]  # every model over both seeds; the run's choice is one model
    assert {"05_confusion_matrices.png", "05_metrics_ci.png", "ensemble_variants.png", "05_seeds.png"} <= {
        p.name for p in (run / "figures").iterdir()}
    assert (run / "figures" / "conclusions.md").read_text().startswith("- 2 training seeds (42, 43): ")
    chosen = read_json(run / "ensemble" / "metrics.json")
    assert chosen["seeds"] == [42, 43] and {w["variant"] for w in chosen["wins"]}
    ensemble = load_predictor(run, "ensemble")  # the run's choice: a deep ensemble or one seed's variant
    assert ensemble.members == chosen["stage"]["members"] and ensemble.variant.name == chosen["stage"]["name"]
    test = load_for_profile(resolve("smoke", data=str(csv), overrides="val_fraction=0.2"))["test"]
    proba = np.array([[t["probability"] for t in sorted(r["top_k"], key=lambda t: t["label"])]
                      for r in ensemble.predict(test["text"], top_k=3)])
    np.testing.assert_allclose(proba, np.load(run / "ensemble" / "proba_test_chosen.npy"), atol=1e-4)

    first = capsys.readouterr().out.split("\n[2/5]")[0]  # a first run: the estimate measured here, at notebook 01
    assert re.search(r"\[1/5\] 01_data .*; about .+ of training expected on this machine, .*one training step here: "
                     r"bert [\d.]+ / [\d.]+ / [\d.]+ s at 8 / 32 / 64 tokens", first), first
    before = {p: p.stat().st_mtime_ns for p in (run / "notebooks").iterdir()}
    assert all(nb.stat().st_mtime_ns == mtime for nb, mtime in committed.items())  # not the committed run
    assert cli.main(["run", "--profile", "smoke", "--data", str(csv), "--set", "bert.epochs=3",
                     "--set", "val_fraction=0.2", "--set", "seeds=42,43"]) == 2
    captured = capsys.readouterr()
    assert "settings.bert.epochs: 2 -> 3" in captured.err and "[1/5]" not in captured.out
    assert {p: p.stat().st_mtime_ns for p in (run / "notebooks").iterdir()} == before


def _notebook(cells) -> dict:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_printed_lines_reach_the_terminal_without_progress_bars(tmp_path, capfd):
    """What a notebook prints (the per-epoch lines) is forwarded to the runner's stdout; displays are not, nor the
    kernel's start-up warnings (capfd: the kernel process writes to the terminal itself)."""
    import nbformat

    src = tmp_path / "07_print.ipynb"
    nbformat.write(_notebook([nbformat.v4.new_code_cell(
        "import sys\n"
        "for e in (1, 2):\n"
        "    print(f'bert epoch {e}: train loss 0.5, val acc 0.7, 715 s', flush=True)\n"
        "sys.stderr.write('10%|#  | 1/10\\r')\n"
        "'a displayed value'")]), src)
    runner.execute(src, tmp_path / "out.ipynb", {})
    out, err = capfd.readouterr()
    assert "      bert epoch 1: train loss 0.5, val acc 0.7, 715 s\n      bert epoch 2:" in out
    assert "10%|" not in out and "a displayed value" not in out
    assert "IPKernelApp" not in err


def test_forward_keeps_the_last_state_of_a_rewritten_line():
    import io

    buf = io.StringIO()
    fwd = runner._Forward(buf, indent="> ")
    fwd.write("step 1\rstep 2\nhalf a ")
    fwd.write("line\n\n")
    assert buf.getvalue() == "> step 2\n> half a line\n"


def test_time_left_from_the_last_run():
    previous = {"01_data": 30, "02_bert": 2200, "03_bilstm": 1850}
    left = runner.notebooks_time_left
    assert left(["02_bert", "03_bilstm"], previous) == "about 68 min left (timings of the last run)"
    assert runner.notebooks_time_left(["03_bilstm", "04_ensemble"], previous).startswith("at least 31 min")
    assert runner.notebooks_time_left(["01_data"], previous) == "about 30 s left (timings of the last run)"
    assert runner.notebooks_time_left(["05_compare"], previous) == ""


def test_clean_notebook_keeps_outputs_but_not_the_machine(tmp_path):
    import nbformat

    root, home = Path("/srv/me/textlab"), Path("/srv/me")
    params = nbformat.v4.new_code_cell('profile = None\ndata = ""', metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell('profile = "cpu"', metadata={"tags": ["injected-parameters"]})
    work = nbformat.v4.new_code_cell("train()", execution_count=3, metadata={
        "execution": {"iopub.execute_input": "2026-11-27T09:00:00Z"}, "papermill": {"start_time": "2026-11-27"}})
    work.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="bert epoch 1/3:  45%|####5     | 9/20 [00:01<00:01]\r"),
        nbformat.v4.new_output("stream", name="stdout", text=f"run cpu: data {root}/runs/cpu, cache {home}/.cache\n"),
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: something real\n"),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                                      "text/plain": "HBox()"}),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"PosixPath('{root}')",
                                                        "image/png": "iVBORw0KGgo"}, execution_count=3),
    ]
    nb = _notebook([params, injected, work])
    nb.metadata["papermill"] = {"input_path": f"{root}/notebooks/x.ipynb", "start_time": "2026-11-27"}
    clean = runner.clean_notebook(nb, root=root, home=home)

    assert [c.source for c in clean["cells"]] == ['profile = None\ndata = ""', "train()"]
    outs = clean["cells"][1]["outputs"]
    assert [o.get("name", o["output_type"]) for o in outs] == ["stdout", "stderr", "execute_result"]
    assert outs[0]["text"] == "run cpu: data runs/cpu, cache ~/.cache\n"
    assert outs[2]["data"] == {"text/plain": "PosixPath('.')", "image/png": "iVBORw0KGgo"}
    assert clean["cells"][1]["metadata"] == {} and "papermill" not in clean["metadata"]
    assert "/srv/me" not in json.dumps(clean)
    nbformat.validate(nbformat.from_dict(clean))
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]  # the input is not modified


def test_only_the_committed_study_writes_into_notebooks(tmp_path, monkeypatch):
    from textlab.config import PROJECT_ROOT, get_profile

    monkeypatch.delenv("TEXTLAB_FIGURES", raising=False)
    monkeypatch.delenv("TEXTLAB_RUNS", raising=False)
    default = PROJECT_ROOT / "runs"
    assert runner.publishes(get_profile("study"), default / "study")
    assert not runner.publishes(get_profile("cpu"), default / "cpu")  # one seed: the quick run, not the study
    assert not runner.publishes(get_profile("smoke"), default / "smoke")
    assert not runner.publishes(get_profile("study", **{"bert.epochs": 2}), default / "study")
    assert not runner.publishes(get_profile("study", seeds=(42, 43)), default / "study")
    assert not runner.publishes(get_profile("study"), default / "short")
    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path))
    assert not runner.publishes(get_profile("study"), tmp_path / "study")


def test_the_committed_run_pastes_its_tables_and_sentences_into_the_pages(tmp_path):
    """refresh_blocks: each marked block of README.md / docs/*.md becomes the generated file it names; a block whose
    file the run did not write stays as it is; a page without blocks is not rewritten."""
    (tmp_path / "docs").mkdir()
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "headline.md").write_text("| new | table |\n")
    (tmp_path / "README.md").write_text("# x\n<!-- headline.md: start -->\n| old |\n<!-- headline.md: end -->\n"
                                        "<!-- tuning.md: start -->\nkept\n<!-- tuning.md: end -->\n")
    (tmp_path / "docs" / "plain.md").write_text("no blocks\n")
    assert runner.refresh_blocks(figures, tmp_path) == [tmp_path / "README.md"]
    assert (tmp_path / "README.md").read_text() == ("# x\n<!-- headline.md: start -->\n| new | table |\n"
                                                    "<!-- headline.md: end -->\n<!-- tuning.md: start -->\nkept\n"
                                                    "<!-- tuning.md: end -->\n")
    assert runner.refresh_blocks(figures, tmp_path) == []  # already in step


def test_run_holds_its_folder_for_the_whole_command(tmp_path, monkeypatch):
    """The lock is taken before the folder is opened (or emptied by --fresh) and kept while the notebooks run."""
    from textlab import locks

    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path))
    seen = []
    monkeypatch.setattr(runner, "_execute", lambda chosen, prof, run_dir, *a: seen.append(
        (run_dir.resolve() in locks._held, [nb.stem for nb in chosen])) or run_dir)
    runner.run("smoke", ["01"], fresh=True)
    assert seen == [(True, ["01_data"])] and not locks._held  # held throughout, released at the end


def test_timings_of_a_run_from_another_state_give_no_estimate(tmp_path):
    log = tmp_path / "run.json"
    assert runner._last_timings(log, 1, []) == {}  # never ran
    log.write_text(json.dumps({"seeds": 1, "finished": [], "seconds": {"01_data": 16.0, "02_bert": 1386.0}}))
    assert runner._last_timings(log, 1, []) == {"01_data": 16.0, "02_bert": 1386.0}
    assert runner._last_timings(log, 3, []) == {}  # seeds added since: only the new ones train
    assert runner._last_timings(log, 1, ["seed-42/bert"]) == {}  # BERT is trained now: 02 only re-evaluates it


def test_finished_models_are_the_evaluated_ones(tmp_path):
    for folder in ("seed-42/bert", "seed-42/bilstm", "seed-43/bert", "ensemble"):
        (tmp_path / folder).mkdir(parents=True)
    for done in ("seed-42/bert", "seed-43/bert", "ensemble"):
        (tmp_path / done / "metrics.json").write_text("{}")
    (tmp_path / "seed-42" / "bilstm" / "checkpoints.json").write_text("{}")  # checkpointed, not finished
    assert runner._finished(tmp_path) == ["seed-42/bert", "seed-43/bert", "ensemble"]


def test_a_label_only_in_test_and_rare_validation_classes_end_in_a_result(tmp_path, monkeypatch, capsys):
    """Own data whose `split` column puts one label only in test, and a class with fewer validation documents than
    the ensemble's folds: 01 warns once for each, by name, as one line; every model scores the whole label space
    (the TF-IDF member too), so 04 chooses an ensemble and the test set stays whole."""
    from helpers import keyword_csv
    from textlab import cli
    from textlab.artifacts import read_json

    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("TEXTLAB_FIGURES", raising=False)
    rows = pd.read_csv(keyword_csv(tmp_path / "k.csv", n=150))
    rows["split"] = ["test" if i % 5 == 0 else "train" for i in range(len(rows))]
    rare = pd.DataFrame({"text": ["a rare topic about tea", "tea leaves and kettles"], "label": "tea",
                         "split": "train"})
    unseen = pd.DataFrame({"text": [f"weather report {i} rain" for i in range(4)], "label": "weather", "split": "test"})
    pd.concat([rows, rare, unseen]).to_csv(tmp_path / "odd.csv", index=False)
    assert cli.main(["run", "--profile", "smoke", "--data", str(tmp_path / "odd.csv"), "--only", "01", "02", "03",
                     "04"]) == 0
    out = "".join(capsys.readouterr())
    assert "DataWarning: " + str(tmp_path / "odd.csv") + ": 1 label(s) occur only in test" in out
    assert "_warn_splits(" not in out  # the warning's line, not Python's source line under it
    assert "2 of 5 classes have fewer validation documents than the ensemble choice's 3 folds ('tea' (0), " \
           "'weather' (0))" in out
    run = tmp_path / "runs" / "smoke-odd"
    assert read_json(run / "manifest.json")["data"]["splits"]["test"] == 34  # 30 + the 4 unseen: all kept
    for member in ("bert", "bilstm", "tfidf"):
        assert np.load(run / "seed-42" / member / "logits_test.npy").shape == (34, 5)
    assert read_json(run / "ensemble" / "metrics.json")["chosen"]


def test_a_validation_split_too_small_for_the_folds_is_refused_before_any_notebook(tmp_path, monkeypatch, capsys):
    from textlab import cli

    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path / "runs"))
    pd.DataFrame({"text": [f"text {c} number {i}" for c in range(40) for i in range(10)],
                  "label": [f"c{c}" for c in range(40) for i in range(10)]}).to_csv(tmp_path / "many.csv", index=False)
    assert cli.main(["run", "--profile", "smoke", "--data", str(tmp_path / "many.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'many.csv'}: the validation split (32 documents, val_fraction=0.1) is "
                          "too small for the ensemble choice's 3-fold cross-validation") and err.count("\n") == 1
    assert "--set val_fraction=" in err and "--set ensemble.folds=2" in err
    assert [p.name for p in (tmp_path / "runs" / "smoke-many").iterdir()] == [".lock"]  # nothing made but the lock


def test_ctrl_c_is_one_line_with_the_command_that_resumes(monkeypatch, capsys):
    from textlab import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupted)
    assert cli.main(["run", "--profile", "smoke", "--set", "bert.epochs=2"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted: finished notebooks and models are kept") and "\n" not in err
    assert err.endswith("run `python -m textlab run --profile smoke --set bert.epochs=2` again to go on")
