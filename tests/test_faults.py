"""Faults: corrupt or mismatched checkpoints, code in pickles, writers that die mid-write, a failing notebook,
training interrupted (in-process and by SIGKILL) and resumed to the same weights, and GPU out-of-memory advice."""

from __future__ import annotations

import ast
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import textlab
from textlab import artifacts
from textlab import checkpoint as ckpt
from textlab import cli, factory, pipeline, runner
from textlab.config import TrainConfig
from textlab.train import OutOfMemoryAdvice, _advise_on_oom, fit

N_TRAIN, N_VAL = 48, 16  # 6 optimizer steps per epoch at batch 8: a 2-epoch run takes seconds


def small_fit(profile, prep, out, *, slow: float = 0.0, **fit_kw):
    """2 epochs of the tiny BERT on a slice of the tiny data, checkpoint every 3 steps, on CPU."""
    data = {"train": prep.data["train"].select(range(N_TRAIN)),
            "validation": prep.data["validation"].select(range(N_VAL))}
    cfg = dataclasses.replace(profile.bert, epochs=2, batch_size=8, grad_accum=1, eval_batch_size=16,
                              save_every_steps=3)
    torch.manual_seed(profile.seeds[0])
    model = factory.build_model("bert", prep.backbone, len(prep.label_names), profile.bert_model)
    if slow:  # only to give a killer time to strike mid-run; no effect on the numbers
        model.register_forward_pre_hook(lambda *_: time.sleep(slow))
    return fit(model, data, prep.tokenizer, cfg, out, meta=pipeline.model_meta("bert", prep, profile.seeds[0]),
               seed=profile.seeds[0],
               cpu=True, **fit_kw)


@pytest.fixture(scope="module")
def reference(tiny_profile, tiny_prep, tmp_path_factory):
    """An uninterrupted run: the folder (bert kind: checkpoints.json, ckpt-*/, history.json) and its history."""
    out = tmp_path_factory.mktemp("reference") / "bert"
    result = small_fit(tiny_profile, tiny_prep, out)
    assert [h["step"] for h in result.history] == [6, 12]
    return out


def _weights(out, role):
    return ckpt.load_weights(ckpt.checkpoint_path(out, role) / "model.safetensors")


def _history(out):
    return [{k: v for k, v in h.items() if k not in ("seconds", "tokens_per_s")}
            for h in artifacts.read_json(Path(out) / "history.json")]


def assert_same_training(out, reference):
    for role in ("best", "last"):
        assert ckpt.checkpoint_path(out, role).name == ckpt.checkpoint_path(reference, role).name
        got, want = _weights(out, role), _weights(reference, role)
        assert sorted(got) == sorted(want)
        different = [k for k in want if not torch.equal(got[k], want[k])]
        assert not different, f"{role}: {len(different)} tensors differ, e.g. {different[0]}"
    assert _history(out) == _history(reference)


@pytest.fixture
def model_dir(reference, tmp_path) -> Path:
    """A private copy of a trained model folder (never touch the shared one), as seed 42's BERT of a run folder."""
    return Path(shutil.copytree(reference, tmp_path / "run" / "seed-42" / "bert"))


# ---------------------------------------------------------------- corrupt files


@pytest.mark.parametrize("size", ["empty", "header", "half"])
def test_truncated_weights(model_dir, size):
    weights = ckpt.checkpoint_path(model_dir, "best") / "model.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes({"empty": b"", "header": raw[:7], "half": raw[: len(raw) // 2]}[size])
    with pytest.raises(ckpt.CheckpointError, match="not a readable safetensors file") as e:
        pipeline.load_model(model_dir)
    assert str(weights) in str(e.value)


@pytest.mark.parametrize("content", ['{"kind": "bert", "num_la', "", "{}", "[1, 2]", '{"kind": "svm"}'])
def test_corrupt_meta(model_dir, content):
    meta = ckpt.checkpoint_path(model_dir, "best") / "meta.json"
    meta.write_text(content)
    with pytest.raises(ckpt.CheckpointError) as e:
        pipeline.load_model(model_dir)
    assert str(meta) in str(e.value)


@pytest.mark.parametrize("change, expect", [
    ({"label_names": ["a", "b"]}, "label_names has 2 names but num_labels is 20: edited or corrupt"),
    ({"num_labels": 21}, "label_names has 20 names but num_labels is 21: edited or corrupt"),
    ({"label_names": "a,b"}, "label_names must be a list of strings, found a,b"),
    ({"label_names": list(range(20))}, "label_names must be a list of strings, found [0, 1, 2"),
    ({"num_labels": 1, "label_names": ["a"]}, "num_labels must be an integer >= 2, found 1"),
    ({"num_labels": "20"}, "num_labels must be an integer >= 2, found '20'"),
])
def test_inconsistent_meta_labels(model_dir, change, expect):
    """Once a numpy broadcast error at prediction time, naming no file."""
    from textlab.predict import load_predictor

    meta = ckpt.checkpoint_path(model_dir, "best") / "meta.json"
    artifacts.write_json(meta, {**_meta(model_dir), **change})
    before = meta.read_bytes()
    for load in (lambda: pipeline.load_model(model_dir), lambda: load_predictor(model_dir.parent.parent, "bert")):
        with pytest.raises(ckpt.CheckpointError) as e:
            load()
        assert str(e.value).startswith(f"{meta}: {expect}")
    assert meta.read_bytes() == before  # reported, not rewritten


def test_consistent_meta_passes_unchanged(reference):
    meta = _meta(reference)
    assert ckpt.validate_meta(meta, "meta.json") is meta
    minimal = {"schema": artifacts.SCHEMA, "num_labels": 2}
    assert ckpt.validate_meta(minimal, "meta.json") == minimal  # label names are optional here
    with pytest.raises(ckpt.CheckpointError, match="meta.json has artifact schema None; this textlab reads schema 1"):
        ckpt.validate_meta({"num_labels": 2}, "meta.json")


def test_missing_meta(model_dir):
    meta = ckpt.checkpoint_path(model_dir, "best") / "meta.json"
    meta.unlink()
    with pytest.raises(ckpt.CheckpointError, match="is missing") as e:
        pipeline.load_model(model_dir)
    assert str(meta) in str(e.value)


@pytest.mark.parametrize("content", ['{"last": "ckpt-000', "", "[]", "null", '{"best": 5}',
                                     '{"best": "ckpt-99999999"}'])
def test_corrupt_pointer(model_dir, content):
    (model_dir / ckpt.POINTER).write_text(content)
    with pytest.raises(ckpt.CheckpointError) as e:
        pipeline.load_model(model_dir)
    assert str(model_dir / ckpt.POINTER) in str(e.value)


def test_missing_pointer(model_dir):
    (model_dir / ckpt.POINTER).unlink()
    with pytest.raises(ckpt.CheckpointError, match=f"{ckpt.POINTER} is missing") as e:
        pipeline.load_model(model_dir)
    assert str(model_dir) in str(e.value)


# ---------------------------------------------------------------- checkpoint / model mismatch


def _meta(model_dir) -> dict:
    return artifacts.read_json(ckpt.checkpoint_path(model_dir, "best") / "meta.json")


@pytest.mark.parametrize("change, expect", [
    ({"num_labels": 5}, r"tensors of another shape \(e\.g\. classifier\.weight: "
                        r"checkpoint \(20, 64\), model \(5, 64\)\)"),
    ({"model_config": {"hidden_size": 32}}, r"another shape .*checkpoint \(30522, 64\), model \(30522, 32\)"),
    ({"model_config": {"num_hidden_layers": 3}}, r"tensors missing \(e\.g\. bert\.encoder\.layer\.2\."),
    ({"kind": "bilstm"}, r"tensors missing .*unexpected tensors"),
])
def test_checkpoint_of_another_shape(reference, change, expect):
    meta = _meta(reference)
    assert meta["num_labels"] == 20 and meta["model_config"]["hidden_size"] == 64
    other = {**meta, **change, "model_config": {**meta["model_config"], **change.get("model_config", {})}}
    model = factory.build_from_meta(other)
    weights = ckpt.checkpoint_path(reference, "best") / "model.safetensors"
    with pytest.raises(ckpt.CheckpointError, match=expect) as e:
        ckpt.load_into(model, weights, meta)
    assert str(weights) in str(e.value)
    assert "made for backbone 'tiny' with 20 classes" in str(e.value)


def test_edited_meta_does_not_fit_the_weights(model_dir):
    meta_file = ckpt.checkpoint_path(model_dir, "best") / "meta.json"
    meta = _meta(model_dir)  # consistent in itself (validate_meta passes), but not with the weights
    artifacts.write_json(meta_file, {**meta, "num_labels": 5, "label_names": meta["label_names"][:5]})
    with pytest.raises(ckpt.CheckpointError, match=r"model\.safetensors does not fit this model: .*classifier"):
        pipeline.load_model(model_dir)


# ---------------------------------------------------------------- loading never runs code


JOBLIB_POOL = {"Parallel", "delayed", "cpu_count"}


def test_torch_load_is_only_called_with_weights_only():
    package = Path(textlab.__file__).parent
    loads = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None) or ""
                assert not {"pickle", "dill", "cloudpickle"} & {module, *names}, f"{path}: imports a pickler"
                # joblib only for its process pool (tasks handed to its own workers in memory), never joblib.load
                assert "joblib" not in names and not (module == "joblib" and set(names) - JOBLIB_POOL), \
                    f"{path}: imports joblib beyond {sorted(JOBLIB_POOL)}"
                assert not (module == "torch" and "load" in names), f"{path}: `from torch import load` hides torch.load"
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                kw = {k.arg: k.value for k in node.keywords}
                if func == "torch.load":
                    loads.append(path.name)
                    assert "weights_only" in kw and ast.literal_eval(kw["weights_only"]) is True, (
                        f"{path}:{node.lineno}: torch.load without weights_only=True")
                if func in ("np.load", "numpy.load") and "allow_pickle" in kw:
                    assert ast.literal_eval(kw["allow_pickle"]) is False, f"{path}:{node.lineno}: allow_pickle"
    assert "checkpoint.py" in loads  # where training_state.pt is read: the scan found it


class _Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def test_training_state_with_code_is_refused(model_dir, tmp_path):
    last = ckpt.checkpoint_path(model_dir, "last")
    state = ckpt.load_training_state(last)  # the genuine file loads
    assert {"optimizer", "scheduler", "rng_cpu"} <= set(state)
    marker = tmp_path / "marker"
    torch.save({**state, "optimizer": _Payload(marker)}, last / "training_state.pt")
    with pytest.raises(ckpt.CheckpointError, match="could not be loaded safely") as e:
        ckpt.load_training_state(last)
    assert str(last / "training_state.pt") in str(e.value)
    assert not marker.exists()
    # The payload is live: an unsafe load would have run it (so the check above can fail).
    torch.load(last / "training_state.pt", weights_only=False)
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_training_state_missing_or_truncated(model_dir, damage):
    path = ckpt.checkpoint_path(model_dir, "last") / "training_state.pt"
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ckpt.CheckpointError, match="missing" if damage == "missing" else "truncated or corrupt") as e:
        ckpt.load_training_state(path.parent)
    assert str(path) in str(e.value)


# ---------------------------------------------------------------- atomic writes


def _write_text_dies(exc):
    def write_text(self, data, *a, **kw):
        with open(self, "w") as f:
            f.write(data[: len(data) // 2])
        raise exc
    return write_text


def _np_save_dies(exc):
    def save(f, arr, **kw):
        f.write(b"\x93NUMPY half")
        raise exc
    return save


def _save_file_dies(exc):
    def save_file(tensors, filename, **kw):
        Path(filename).write_bytes(b"half a safetensors file")
        raise exc
    return save_file


WRITERS = {  # write, check the file, (module, attribute) of the inner writer, a dying inner writer, file name
    "write_json": (lambda p: artifacts.write_json(p, {"a": [1, 2]}), lambda p: artifacts.read_json(p) == {"a": [1, 2]},
                   (Path, "write_text"), _write_text_dies, "x.json"),
    "write_npy": (lambda p: artifacts.write_npy(p, np.arange(5.0)),
                  lambda p: np.array_equal(artifacts.read_npy(p), np.arange(5.0)),
                  (np, "save"), _np_save_dies, "x.npy"),
    "save_weights": (lambda p: ckpt.save_weights(p, {"w": torch.ones(3)}),
                     lambda p: torch.equal(ckpt.load_weights(p)["w"], torch.ones(3)), (ckpt, "save_file"),
                     _save_file_dies, "model.safetensors"),
}


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()], ids=["OSError", "KeyboardInterrupt"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_atomic_write_keeps_previous_file(tmp_path, monkeypatch, writer, exc):
    write, intact, (owner, attr), dying, name = WRITERS[writer]
    path = tmp_path / name
    write(path)
    before = path.read_bytes()
    with monkeypatch.context() as m:
        m.setattr(owner, attr, dying(exc))
        with pytest.raises(type(exc)):
            write(path)
    assert path.read_bytes() == before and intact(path)
    # no temporary file left behind (an array's recorded hash is its folder's artifacts.json)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name, *[artifacts.ARTIFACTS] * name.endswith(".npy")})


def test_checkpoint_folder_is_atomic(model_dir, monkeypatch):
    pointer = ckpt.read_pointer(model_dir)
    folders = sorted(p.name for p in model_dir.iterdir())

    def dies(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", dies)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(model_dir, 99, {"w": torch.ones(2)}, {"kind": "bert"}, {"x": torch.ones(1)})
    assert ckpt.read_pointer(model_dir) == pointer
    assert sorted(p.name for p in model_dir.iterdir()) == folders  # no ckpt-00000099, no .ckpt-* leftovers


# ---------------------------------------------------------------- a failing notebook


@pytest.fixture
def failing_notebooks(tmp_path, monkeypatch) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell('raise ValueError("boom")')]
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(nb, folder / "01_fail.ipynb")
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", folder)
    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs" / "smoke" / "notebooks" / "01_fail.ipynb"


def test_failing_notebook(failing_notebooks, capsys):
    target = failing_notebooks
    with pytest.raises(runner.NotebookFailed) as e:
        runner.run("smoke")
    msg = str(e.value)
    assert "01_fail.ipynb" in msg and "ValueError" in msg and "boom" in msg and str(target) in msg
    kept = nbformat.read(target, as_version=4)
    errors = [o for c in kept.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert [(o.ename, o.evalue) for o in errors] == [("ValueError", "boom")]
    target.unlink()
    capsys.readouterr()
    assert cli.main(["run", "--only", "01"]) == 1
    err = capsys.readouterr().err
    assert "error: 01_fail.ipynb failed" in err and "ValueError: boom" in err and str(target) in err
    assert target.exists()


def test_unknown_notebook_lists_valid_ones(failing_notebooks, capsys):
    with pytest.raises(ValueError, match=r"unknown notebook '99'; choose from: 01_fail"):
        runner.select(["99"])
    assert cli.main(["run", "--only", "99"]) == 2
    assert "unknown notebook '99'; choose from: 01_fail" in capsys.readouterr().err


# ---------------------------------------------------------------- interrupted training


def _ctrl_c_after(step: int):
    """An on_step callback that acts like a Ctrl-C right after optimizer step `step`."""
    def on_step(state):
        if state.global_step >= step:
            raise KeyboardInterrupt(f"stopped after step {state.global_step}")
    return on_step


def test_interrupted_and_resumed_equals_uninterrupted(tiny_profile, tiny_prep, reference, tmp_path):
    """Stopped mid-epoch 1, at the end of epoch 1 (before validation) and mid-epoch 2, resumed each time."""
    out = tmp_path / "bert"
    for stop in (3, 6, 9):
        with pytest.raises(KeyboardInterrupt, match=f"stopped after step {stop}"):
            small_fit(tiny_profile, tiny_prep, out, on_step=_ctrl_c_after(stop))
        assert ckpt.read_pointer(out)["last"] == f"ckpt-{stop:08d}"
        assert not (out / "history.json").exists()
    small_fit(tiny_profile, tiny_prep, out)
    assert_same_training(out, reference)


KILLED_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_faults import small_fit
from textlab import pipeline
from textlab.config import get_profile
import torch

torch.set_num_threads({threads})  # as in the test process: another thread count sums in another order
profile = get_profile("smoke", max_train_samples={n_train}, max_eval_samples={n_eval}, max_length={max_length})
small_fit(profile, pipeline.prepare(profile), Path(sys.argv[1]), slow=0.1)
"""


def test_killed_process_resumes_to_same_weights(tiny_profile, tiny_prep, reference, tmp_path):
    script = tmp_path / "train_me.py"
    script.write_text(KILLED_SCRIPT.format(
        tests=str(Path(__file__).parent), threads=torch.get_num_threads(), n_train=tiny_profile.max_train_samples,
        n_eval=tiny_profile.max_eval_samples, max_length=tiny_profile.max_length))
    out = tmp_path / "bert"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ.copy())
    try:
        deadline = time.monotonic() + 180
        while not (out / ckpt.POINTER).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # right after the first checkpoint: mid-training
    finally:
        proc.kill()
        err = proc.communicate()[1].decode(errors="replace")
    assert (out / ckpt.POINTER).exists(), f"no checkpoint appeared:\n{err[-3000:]}"
    assert proc.returncode == -signal.SIGKILL, f"training ended before the kill:\n{err[-3000:]}"
    assert not (out / "history.json").exists()  # it died mid-training
    # Right after the kill, the pointer's last checkpoint is whole.
    last = ckpt.checkpoint_path(out, "last")
    meta = artifacts.read_json(last / "meta.json")
    ckpt.load_into(factory.build_from_meta(meta), last / "model.safetensors", meta)
    assert {"optimizer", "scheduler", "rng_cpu"} <= set(ckpt.load_training_state(last))
    small_fit(tiny_profile, tiny_prep, out)
    assert_same_training(out, reference)
    assert not list(out.glob(".ckpt-*"))  # a half-written checkpoint of the killed writer is cleaned up


# ---------------------------------------------------------------- out of memory


def test_out_of_memory_suggests_smaller_micro_batch(tiny_profile, tiny_prep, tmp_path):
    torch.manual_seed(0)
    model = factory.build_model("bert", tiny_prep.backbone, len(tiny_prep.label_names), tiny_profile.bert_model)

    def forward(*_a, **_k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    model.forward = forward
    data = {"train": tiny_prep.data["train"].select(range(24)),
            "validation": tiny_prep.data["validation"].select(range(8))}
    cfg = dataclasses.replace(tiny_profile.bert, batch_size=12, grad_accum=2)
    with pytest.raises(OutOfMemoryAdvice) as e:
        fit(model, data, tiny_prep.tokenizer, cfg, tmp_path / "m", meta=pipeline.model_meta("bert", tiny_prep, 42),
            cpu=True)
    msg = str(e.value)
    assert "batch_size=12" in msg and "grad_accum=2" in msg and "input_ids 12 x " in msg
    assert "same effective batch 24: batch_size=6, grad_accum=4" in msg
    assert isinstance(e.value, RuntimeError) and isinstance(e.value.__cause__, torch.OutOfMemoryError)


@pytest.mark.parametrize("batch, accum, advice", [
    (16, 1, "batch_size=8, grad_accum=2"), (7, 3, "batch_size=1, grad_accum=21"), (9, 1, "batch_size=3, grad_accum=3"),
    (1, 4, "batch_size is already 1"),
])
def test_out_of_memory_advice_keeps_effective_batch(batch, accum, advice):
    cfg = TrainConfig(batch_size=batch, grad_accum=accum)
    with pytest.raises(OutOfMemoryAdvice, match=advice):
        with _advise_on_oom(cfg, {"input_ids": torch.zeros(batch, 64)}):
            raise torch.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(ValueError):  # anything else passes through untouched
        with _advise_on_oom(cfg, {"input_ids": torch.zeros(batch, 64)}):
            raise ValueError("not memory")


@pytest.mark.parametrize("swap", ["zeroed", "foreign"])
def test_an_artifact_that_is_not_the_one_written_is_refused(tmp_path, swap):
    """Cached logits carry their hash from the moment they are written: a zeroed file, or one copied in from another
    run, is refused with its name, never used."""
    logits = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    path = artifacts.write_npy(tmp_path / "seed-42" / "bert" / "logits_test.npy", logits)
    np.testing.assert_array_equal(artifacts.read_npy(path), logits)
    other = np.zeros_like(logits) if swap == "zeroed" else logits + 1
    np.save(path, other)  # behind textlab's back, as a copy or an edit would
    with pytest.raises(ckpt.CheckpointError, match=f"^{path} is not the file this run wrote there"):
        artifacts.read_npy(path)
    artifacts.write_npy(path, other)  # written by textlab: recorded, and read
    np.testing.assert_array_equal(artifacts.read_npy(path), other)
