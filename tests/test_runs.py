"""A run is what it was made from: run names, the manifest and its refusals, --fresh, and the run folder's lock."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from textlab import artifacts, cli, ensemble_build, locks, pipeline, runs
from textlab import checkpoint as ckpt
from textlab.config import get_profile, resolve


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_run_names_keep_own_data_apart_from_20newsgroups():
    assert runs.run_name(get_profile("cpu")) == "cpu"
    assert runs.run_name(resolve("cpu", data="/data/reviews.csv")) == "cpu-reviews"
    assert runs.run_name(resolve("smoke", data="x.jsonl"), "mine") == "mine"
    with pytest.raises(ValueError, match="a run name is a folder name without '/', got 'a/b'"):
        runs.run_name(get_profile("cpu"), "a/b")


def test_manifest_records_what_the_run_is_made_from(runs_root, tiny_profile, tiny_prep):
    prep = pipeline.open_run(tiny_profile, prep=tiny_prep)
    assert prep.run == runs_root / "smoke" and prep.figures == runs_root / "smoke" / "figures"
    m = artifacts.read_json(prep.run / runs.MANIFEST)
    assert m["schema"] == artifacts.SCHEMA and m["run"] == "smoke"
    assert m["data"]["splits"] == {"train": 200, "validation": 100, "test": 100}
    assert m["data"]["is_20newsgroups"] and len(m["data"]["label_names"]) == 20
    assert m["data"]["fingerprint"] == runs.dataset_fingerprint(tiny_prep.raw) == tiny_prep.fingerprint
    assert m["settings"]["max_train_samples"] == 200 and m["settings"]["bert"]["lr"] == 1e-3
    assert "compile" not in m["settings"]["bert"]  # execution-only: not part of what the run is
    assert m["backbone"] == {"name": "tiny", "weights_sha256": None, "config_sha256": m["backbone"]["config_sha256"]}
    assert set(runs.NUMERIC_PACKAGES) <= set(m["versions"]) and m["versions"]["torch"].startswith("2.")
    assert m["command"] == ("python -m textlab run --profile smoke --set max_length=32 --set max_train_samples=200 "
                            "--set max_eval_samples=100")
    pipeline.open_run(tiny_profile, prep=tiny_prep)  # the same settings open the same run again


def test_other_settings_are_refused_naming_each_difference(runs_root, tiny_profile, tiny_prep):
    pipeline.open_run(tiny_profile, prep=tiny_prep)
    before = (runs_root / "smoke" / runs.MANIFEST).read_bytes()
    with pytest.raises(runs.RunError) as e:
        pipeline.open_run(tiny_profile, overrides="bert.lr=0.5 split_seed=7", prep=None)
    msg = str(e.value)
    assert f"{runs_root / 'smoke'} was made from other data or settings" in msg
    assert "settings.bert.lr: 0.001 -> 0.5" in msg and "settings.split_seed: 42 -> 7" in msg
    assert "data.fingerprint: " in msg  # split seed 7 carves another validation split
    assert "--name NAME" in msg and "--set split_seed=7 " in msg and "--set bert.lr=0.5 --fresh" in msg
    assert (runs_root / "smoke" / runs.MANIFEST).read_bytes() == before  # nothing written


def test_other_data_is_refused(runs_root, tiny_profile, tiny_prep, tmp_path):
    from helpers import keyword_csv

    csv = keyword_csv(tmp_path / "kw.csv", n=150)
    pipeline.open_run(resolve(tiny_profile, data=str(csv)), name="same")
    keyword_csv(csv, n=150, seed=1)  # same file name, other contents
    with pytest.raises(runs.RunError, match=r"data\.fingerprint: [0-9a-f]{64} -> [0-9a-f]{64}"):
        pipeline.open_run(resolve(tiny_profile, data=str(csv)), name="same")


def test_fresh_starts_over(runs_root, tiny_profile, tiny_prep):
    pipeline.open_run(tiny_profile, prep=tiny_prep)
    (runs_root / "smoke" / "bert").mkdir()
    changed = resolve(tiny_profile, overrides="bert.lr=0.5")
    prep = pipeline.open_run(changed, prep=tiny_prep, fresh=True)
    assert not (runs_root / "smoke" / "bert").exists()
    assert artifacts.read_json(prep.run / runs.MANIFEST)["settings"]["bert"]["lr"] == 0.5


def test_a_folder_without_manifest_or_of_another_schema_is_refused(runs_root, tiny_profile, tiny_prep):
    (runs_root / "smoke" / "bert").mkdir(parents=True)
    with pytest.raises(runs.RunError, match=r"holds a run without manifest.json \(bert\).*older textlab"):
        pipeline.open_run(tiny_profile, prep=tiny_prep)
    (runs_root / "smoke" / "bert").rmdir()
    pipeline.open_run(tiny_profile, prep=tiny_prep)
    manifest = runs_root / "smoke" / runs.MANIFEST
    artifacts.write_json(manifest, {**artifacts.read_json(manifest), "schema": 0})
    with pytest.raises(runs.RunError, match="has artifact schema 0; this textlab reads schema 1"):
        pipeline.open_run(tiny_profile, prep=tiny_prep)


def test_train_cli_never_reports_an_old_model_under_new_settings(trained_run, monkeypatch, capsys):
    """The reported bug: `train --set max_length=...` on a finished run re-evaluated the old model under new labels."""
    run, _ = trained_run
    monkeypatch.setenv("TEXTLAB_RUNS", str(run.parent))
    metrics = (run / "seed-42" / "bert" / "metrics.json").read_bytes()
    same = ["train", "--profile", "smoke", "--model", "bert", "--set", "max_train_samples=200",
            "--set", "max_eval_samples=100", "--set", "max_length=32"]
    assert cli.main(same[:-1] + ["max_length=16"]) == 2
    err = capsys.readouterr().err
    assert "settings.max_length: 32 -> 16" in err and "--fresh" in err
    assert (run / "seed-42" / "bert" / "metrics.json").read_bytes() == metrics


def test_hints_name_the_command_of_this_run(runs_root, tiny_profile, tiny_prep, tmp_path):
    from helpers import keyword_csv

    csv = keyword_csv(tmp_path / "kw.csv", n=150)
    prep = pipeline.open_run(resolve("smoke", data=str(csv), overrides="bert.epochs=2"), name="kw")
    assert runs.how_to_make(prep.run, "04_ensemble") == (
        f"python -m textlab run --profile smoke --data {csv} --set bert.epochs=2 --name kw --only 04_ensemble")
    with pytest.raises(ckpt.CheckpointError, match=f"holds no finished bert training: .*--data {csv} .*--only 02_bert"):
        ensemble_build.build_ensemble(prep)


# ---------------------------------------------------------------- the lock

HOLDER = textwrap.dedent("""
    import sys, time
    from textlab import locks
    with locks.lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
""")


def test_a_second_process_is_refused_and_a_killed_holder_does_not_block(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(runs.RunError, match=rf"{run} is in use by process {holder.pid} \(.*since .*\): wait"):
            with locks.lock(run):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up code runs
        holder.wait()
    with locks.lock(run):  # the kernel released the dead process's lock
        with locks.lock(run):  # and the lock is re-entrant within one process
            assert f"process {os.getpid()}" in (run / locks.LOCK).read_text()


def _process_on_a_trained_run(script: str, tmp_path, monkeypatch):
    """runs/smoke holding a model's metrics, and a process running `script` on it."""
    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path))
    run = tmp_path / "smoke"
    (run / "seed-42" / "bert").mkdir(parents=True)
    (run / "seed-42" / "bert" / "metrics.json").write_text("{}")
    return run, subprocess.Popen([sys.executable, "-c", script, str(run)], stdout=subprocess.PIPE, text=True)


RUNNER = textwrap.dedent("""
    import subprocess, sys, time
    from textlab import locks
    with locks.lock(sys.argv[1]):
        child = "import sys; from textlab import locks; locks.lock(sys.argv[1]).__enter__(); print('child in')"
        print(subprocess.run([sys.executable, "-c", child, sys.argv[1]], capture_output=True, text=True).stdout.strip(),
              flush=True)
        time.sleep(120)
""")


def test_a_running_command_keeps_its_folder_and_its_notebooks_work_under_it(tmp_path, tiny_profile, tiny_prep,
                                                                             monkeypatch):
    """`textlab run` holds the lock for the whole command: a process it starts (a notebook's kernel) works under
    it, while another command, even with --fresh, is refused before it reads or deletes anything."""
    run, holder = _process_on_a_trained_run(RUNNER, tmp_path, monkeypatch)
    try:
        assert holder.stdout.readline().strip() == "child in"  # the holder's child took the lock it holds
        for fresh in (True, False):
            with pytest.raises(runs.RunError, match=rf"is in use by process {holder.pid} \(.*-c.*since .*\): wait"):
                pipeline.open_run(tiny_profile, prep=tiny_prep, fresh=fresh)
        assert (run / "seed-42" / "bert" / "metrics.json").exists()  # nothing deleted
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


KERNEL = textwrap.dedent("""
    import sys, time
    from textlab import locks
    with locks.lock(sys.argv[1]):  # what pipeline.open_run does in a JupyterLab kernel
        locks.keep_open(sys.argv[1])
    print("open", flush=True)
    time.sleep(120)
""")


def test_a_folder_open_in_a_notebook_kernel_is_neither_deleted_nor_run_over(tmp_path, tiny_profile, tiny_prep,
                                                                            monkeypatch):
    """A kernel in JupyterLab may write to its run between cells, without holding the lock: while it lives, --fresh
    and `textlab run` elsewhere are refused, naming its pid and command line; another kernel may open it too."""
    run, kernel = _process_on_a_trained_run(KERNEL, tmp_path, monkeypatch)
    try:
        assert kernel.stdout.readline().strip() == "open"
        with pytest.raises(runs.RunError, match=rf"(?s)smoke is open in process {kernel.pid} \(.*-c .*\), a notebook "
                                                r"kernel that may still write to it: shut that kernel down"):
            pipeline.open_run(tiny_profile, prep=tiny_prep, fresh=True)
        assert (run / "seed-42" / "bert" / "metrics.json").exists()  # nothing deleted
        with pytest.raises(runs.RunError, match=rf"is open in process {kernel.pid} "):
            with locks.lock(run), locks.alone(run):  # what `textlab run` holds for its whole command
                pass
        with locks.lock(run):
            locks.keep_open(run)  # a second kernel: fine
    finally:
        os.kill(kernel.pid, signal.SIGKILL)
        kernel.wait()
    pipeline.open_run(tiny_profile, prep=tiny_prep, fresh=True)  # this process's own open folder: its --fresh works
    assert not (run / "seed-42").exists()


def test_an_unwritable_run_folder_says_so(tmp_path, monkeypatch):
    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(locks.os, "open", denied)
    with pytest.raises(runs.RunError, match=r"cannot write to the run folder .*run \(Permission denied\)"
                                            r".*TEXTLAB_RUNS"):
        with locks.lock(tmp_path / "run"):
            pass


def test_training_holds_the_lock(trained_run, tiny_run, monkeypatch):
    """Two processes training into one folder collided on temporary checkpoints; now the second is refused."""
    held = []
    real = locks._acquire
    monkeypatch.setattr(locks, "_acquire", lambda run: held.append(run) or real(run))
    pipeline.train_and_evaluate("bert", tiny_run)
    assert held == [tiny_run.run.resolve()]


def test_values_on_the_command_line_have_no_spaces():
    """The runner passes overrides to the notebooks as one space-separated string: a tuple must not add spaces."""
    assert runs.format_value((64, 128)) == runs.format_value([64, 128]) == "64,128"
    assert resolve("smoke", overrides=f"bert.pad_buckets={runs.format_value((64, 128))}").bert.pad_buckets == (64, 128)
