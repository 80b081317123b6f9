import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import keyword_csv
import textlab
from textlab import artifacts
from textlab import checkpoint as ckpt
from textlab import display, factory, pipeline, train
from textlab.config import TrainConfig, get_profile
from textlab.hardware import cpu_bf16_path, resolve_precision
from textlab.train import NonFiniteLossError, fit, param_groups


@pytest.fixture(scope="module")
def keyword_prep(tmp_path_factory):
    csv = keyword_csv(tmp_path_factory.mktemp("kw") / "kw.csv", n=360)
    profile = get_profile("smoke", data=str(csv), max_length=16, val_fraction=0.2, bert__epochs=6, bert__lr=2e-3,
                          bert__batch_size=8, bert__patience=6)
    return profile, pipeline.prepare(profile)


def _fit(profile, prep, out, kind="bert", **kw):
    torch.manual_seed(profile.seeds[0])
    model = factory.build_model(kind, prep.backbone, len(prep.label_names), profile.bert_model, profile.bilstm_model)
    cfg = dataclasses.replace(getattr(profile, kind), **kw.pop("cfg", {}))
    return fit(model, prep.data, prep.tokenizer, cfg, out, meta=pipeline.model_meta(kind, prep, profile.seeds[0]),
               seed=profile.seeds[0], **kw)


def _weights(out):
    return ckpt.load_weights(ckpt.checkpoint_path(out, "best") / "model.safetensors")


def test_loop_learns_a_learnable_task(keyword_prep, tmp_path, capsys):
    profile, prep = keyword_prep
    result = _fit(profile, prep, tmp_path / "m")
    # Each epoch's line estimates the training time left from the median epoch so far.
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " epoch " in ln]
    seconds = [h["seconds"] for h in result.history]
    assert [ln.rsplit(", ", 1)[1] for ln in lines] == [
        f"~{display.format_duration((6 - e) * float(np.median(seconds[:e])))} left" for e in range(1, 7)]
    assert len(result.history) == 6
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_metric >= 0.9  # validation accuracy on keyword classes
    assert result.best_epoch == max(range(1, 7), key=lambda e: result.history[e - 1]["val_accuracy"])
    saved = artifacts.read_json(tmp_path / "m" / "history.json")
    assert [h["epoch"] for h in saved] == [1, 2, 3, 4, 5, 6]
    assert all(h["tokens_per_s"] > 0 and h["seconds"] > 0 for h in saved)


def test_selection_by_macro_f1(keyword_prep, tmp_path):
    """select_metric="macro_f1": the kept epoch is the first with the best validation macro-F1, and that score (not
    the accuracy, another number) is the best metric."""
    profile, prep = keyword_prep
    result = _fit(profile, prep, tmp_path / "m", cfg={"epochs": 3, "lr": 3e-4, "select_metric": "macro_f1"})
    f1 = [h["val_macro_f1"] for h in result.history]
    assert max(f1) not in [h["val_accuracy"] for h in result.history]
    assert result.best_epoch == f1.index(max(f1)) + 1 and result.best_metric == max(f1)


def test_same_seed_same_metrics_and_weights(keyword_prep, tmp_path):
    profile, prep = keyword_prep
    a = _fit(profile, prep, tmp_path / "a", cfg={"epochs": 2})
    b = _fit(profile, prep, tmp_path / "b", cfg={"epochs": 2})
    def strip(h):
        return [{k: v for k, v in e.items() if k not in ("seconds", "tokens_per_s")} for e in h]
    assert strip(a.history) == strip(b.history)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_early_stopping_and_max_steps(keyword_prep, tmp_path):
    profile, prep = keyword_prep
    r = _fit(profile, prep, tmp_path / "s", cfg={"epochs": 3, "max_steps": 5})
    assert r.history[-1]["step"] == 5 and len(r.history) == 1
    r = _fit(profile, prep, tmp_path / "p", cfg={"epochs": 6, "lr": 1e-9, "patience": 1})
    assert r.stopped_early and len(r.history) == 2  # epoch 1 sets the best, epoch 2 does not beat it


def test_early_stop_is_final(keyword_prep, tmp_path, capsys):
    """Re-running an early-stopped run trains nothing: same checkpoints, same history, still 'stopped early'."""
    profile, prep = keyword_prep
    first = _fit(profile, prep, tmp_path / "p", cfg={"epochs": 6, "lr": 1e-9, "patience": 1})
    pointer, history = ckpt.read_pointer(tmp_path / "p"), artifacts.read_json(tmp_path / "p" / "history.json")
    capsys.readouterr()
    again = _fit(profile, prep, tmp_path / "p", cfg={"epochs": 6, "lr": 1e-9, "patience": 1})
    assert again.stopped_early and again.history == first.history and len(again.history) == 2
    assert ckpt.read_pointer(tmp_path / "p") == pointer
    assert artifacts.read_json(tmp_path / "p" / "history.json") == history
    assert "re-using the finished training" in capsys.readouterr().out


def test_checkpoint_by_time_mid_epoch(keyword_prep, tmp_path, monkeypatch):
    """save_every_minutes: a checkpoint once that much training time has passed since the last, mid-epoch (resuming
    from a mid-epoch checkpoint to the same weights is tested in test_faults)."""

    profile, prep = keyword_prep
    clock = iter(range(0, 10_000, 40))  # every reading of the clock is 40 s later
    monkeypatch.setattr(train.time, "monotonic", lambda: float(next(clock)))
    saves = []
    real_save = ckpt.save_checkpoint
    monkeypatch.setattr(train.ckpt, "save_checkpoint",
                        lambda out, step, *a, **k: saves.append(step) or real_save(out, step, *a, **k))
    _fit(profile, prep, tmp_path / "t", cfg={"epochs": 1, "save_every_minutes": 1.0})
    steps = len(prep.data["train"]) // 8 + (len(prep.data["train"]) % 8 > 0)
    # a save every other step (40 s per clock reading: 80 s >= 60 s), then the end-of-epoch one
    assert saves == list(range(2, steps + 1, 2)) + [steps]
    assert TrainConfig().save_every_minutes == 10.0  # on in every shipped profile: Ctrl-C loses at most 10 minutes


def test_resume_refuses_other_settings_naming_each(keyword_prep, tmp_path):
    profile, prep = keyword_prep
    _fit(profile, prep, tmp_path / "m", cfg={"epochs": 1})
    with pytest.raises(ckpt.CheckpointError, match="other data or settings") as e:
        _fit(profile, prep, tmp_path / "m", cfg={"epochs": 1, "lr": 0.5, "max_length": 12})
    assert "config.lr: 0.002 -> 0.5" in str(e.value) and "config.max_length: 0 -> 12" in str(e.value)
    # execution-only settings may differ: the same run resumes (here: finished, nothing to do)
    assert _fit(profile, prep, tmp_path / "m", cfg={"epochs": 1, "save_every_steps": 3, "log_with": ""}).best_epoch == 1


def test_resume_refuses_other_data_or_seed(keyword_prep, tmp_path):
    profile, prep = keyword_prep
    _fit(profile, prep, tmp_path / "m", cfg={"epochs": 1})
    other = dataclasses.replace(prep, fingerprint="0" * 64)
    with pytest.raises(ckpt.CheckpointError, match=r"data: [0-9a-f]{64} -> 0{64}"):
        _fit(profile, other, tmp_path / "m", cfg={"epochs": 1})
    seeded = dataclasses.replace(profile, seeds=(7,))
    with pytest.raises(ckpt.CheckpointError, match="seed: 42 -> 7"):
        _fit(seeded, dataclasses.replace(prep, profile=seeded), tmp_path / "m", cfg={"epochs": 1})


def test_resume_refuses_other_model_settings(keyword_prep, tmp_path):
    profile, prep = keyword_prep
    _fit(profile, prep, tmp_path / "m", kind="bilstm", cfg={"epochs": 1})
    _fit(profile, prep, tmp_path / "m", kind="bilstm", cfg={"epochs": 1})  # same settings: resumes (done)
    other = dataclasses.replace(profile, bilstm_model=dataclasses.replace(profile.bilstm_model, input_dropout=0.3))
    with pytest.raises(ckpt.CheckpointError, match=r"bilstm\.input_dropout: 0\.0 -> 0\.3"):
        _fit(other, dataclasses.replace(prep, profile=other), tmp_path / "m", kind="bilstm", cfg={"epochs": 1})
    bert_other = dataclasses.replace(profile, bert_model=dataclasses.replace(profile.bert_model, attention_dropout=0.0))
    _fit(profile, prep, tmp_path / "b", cfg={"epochs": 1})
    with pytest.raises(ckpt.CheckpointError, match=r"bert_model\.attention_dropout: 0\.1 -> 0\.0"):
        _fit(bert_other, dataclasses.replace(prep, profile=bert_other), tmp_path / "b", cfg={"epochs": 1})


@pytest.mark.parametrize("schema", [None, 0, 2])
def test_resume_refuses_a_checkpoint_of_another_schema(keyword_prep, tmp_path, schema):
    """No guessed defaults for keys an older textlab did not write: another schema is refused, with the fix."""
    profile, prep = keyword_prep
    _fit(profile, prep, tmp_path / "m", cfg={"epochs": 1})
    last = ckpt.checkpoint_path(tmp_path / "m", "last") / "meta.json"
    meta = artifacts.read_json(last)
    meta.pop("schema") if schema is None else meta.update(schema=schema)
    artifacts.write_json(last, meta)
    with pytest.raises(ckpt.CheckpointError, match=f"artifact schema {schema!r}; this textlab reads schema 1") as e:
        _fit(profile, prep, tmp_path / "m", cfg={"epochs": 1})
    assert str(last.parent) in str(e.value) and "fresh folder" in str(e.value)


def test_non_finite_loss_names_step_and_precision(keyword_prep, tmp_path, monkeypatch):
    profile, prep = keyword_prep
    model = factory.build_model("bert", prep.backbone, len(prep.label_names), profile.bert_model)
    forward = model.forward

    def nan_forward(*a, **k):
        out = forward(*a, **k)
        out.loss = out.loss * float("nan")
        return out

    model.forward = nan_forward
    with pytest.raises(NonFiniteLossError, match=r"at optimizer step 1 \(epoch 1\) with precision fp32"):
        fit(model, prep.data, prep.tokenizer, profile.bert, tmp_path / "n",
            meta=pipeline.model_meta("bert", prep, profile.seeds[0]))


def test_precision_choices():
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_bf16_path() else "fp32")  # AVX2-only EPYC: fp32
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", "cpu")


def test_auto_precision_on_cpu_is_fp32_without_torch_private_probes(monkeypatch):
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, probe, raising=False)
    assert resolve_precision("auto", "cpu") == "fp32"


def test_no_weight_decay_on_bias_and_layernorm(keyword_prep):
    profile, prep = keyword_prep
    model = factory.build_model("bert", prep.backbone, 3, profile.bert_model)
    decay, no_decay = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01
    assert all(n.endswith("bias") or "LayerNorm" in n for n in (names[id(p)] for p in no_decay["params"]))
    assert all(n.endswith("weight") and "LayerNorm" not in n for n in (names[id(p)] for p in decay["params"]))


def test_two_cpu_processes_end_with_identical_weights(keyword_prep, tmp_path):
    profile, _ = keyword_prep
    script = Path(__file__).parent / "ddp_train.py"
    # The textlab under test (this checkout), not whichever one the interpreter has installed.
    path = os.pathsep.join([str(Path(__file__).parent), str(Path(textlab.__file__).parent.parent)])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # a free port
         str(script), profile.data, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][0].endswith("MULTI_CPU") and ranks[0][1] == "2"
    assert ranks[0][2] == ranks[1][2]


def test_compiled_training_pads_to_buckets_and_matches_eager(keyword_prep, tmp_path):
    """The torch.compile path (Accelerate's dynamo plugin; the cheap "eager" backend here) trains the same
    model: bucket padding is masked, so validation scores equal those of dynamic padding."""
    import torch._dynamo

    profile, prep = keyword_prep
    plain = _fit(profile, prep, tmp_path / "plain", cfg={"epochs": 2})
    torch._dynamo.reset()
    compiled = _fit(profile, prep, tmp_path / "compiled", cfg={"epochs": 2, "compile": "eager", "pad_buckets": (8, 16)})
    assert [h["val_accuracy"] for h in compiled.history] == [h["val_accuracy"] for h in plain.history]
    assert [h["val_loss"] for h in compiled.history] == pytest.approx([h["val_loss"] for h in plain.history], rel=1e-4)
    assert compiled.history[0]["train_loss"] == pytest.approx(plain.history[0]["train_loss"], rel=1e-4)
    assert _weights(tmp_path / "compiled").keys() == _weights(tmp_path / "plain").keys()  # no "_orig_mod." names
    # compile and buckets change speed, not results: a finished plain run re-evaluates under compile
    again = _fit(profile, prep, tmp_path / "plain", cfg={"epochs": 2, "compile": "eager", "pad_buckets": (8, 16)})
    assert again.history == plain.history and again.best_epoch == plain.best_epoch


def test_label_smoothing_changes_the_training_loss_only(keyword_prep, tmp_path, monkeypatch):
    from types import SimpleNamespace

    import torch.nn.functional as F

    from textlab import train

    logits = torch.tensor([[4.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    labels = torch.tensor([0, 1])
    out = SimpleNamespace(loss=F.cross_entropy(logits, labels), logits=logits)
    assert train.train_loss(out, labels) is out.loss
    smoothed = train.train_loss(out, labels, 0.1)
    assert torch.isclose(smoothed, F.cross_entropy(logits, labels, label_smoothing=0.1))
    assert smoothed > out.loss  # confident right answers pay for the mass kept off the other classes
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\), got 1.0"):
        get_profile("smoke", bert__label_smoothing=1.0)

    seen, real = [], train.train_loss
    monkeypatch.setattr(train, "train_loss", lambda o, y, ls=0.0: seen.append(ls) or real(o, y, ls))
    profile, prep = keyword_prep
    result = _fit(profile, prep, tmp_path / "ls", cfg={"label_smoothing": 0.2, "max_steps": 3, "epochs": 1})
    assert seen == [0.2] * 3 and result.history[0]["train_loss"] > 0


def test_tracking_is_off_by_default_and_asks_for_its_package(keyword_prep, tmp_path, monkeypatch):
    from textlab import train

    assert get_profile("cpu").bert.log_with == "" and get_profile("cpu").bilstm.log_with == ""
    with pytest.raises(ValueError, match="unknown log_with 'mlflow'; choose one of: '' \\(off\\), tensorboard, wandb"):
        get_profile("smoke", bert__log_with="mlflow")
    monkeypatch.setattr(train, "_installed", lambda package: False)  # Accelerate alone would only warn
    profile, prep = keyword_prep
    with pytest.raises(ImportError, match="needs the tensorboard package: pip install tensorboard"):
        _fit(profile, prep, tmp_path / "tb", cfg={"log_with": "tensorboard"})
    assert not (tmp_path / "tb").exists() or not any((tmp_path / "tb").iterdir())  # stopped before any work


def test_layer_lr_decay_scales_each_transformer_layer(keyword_prep):
    profile, prep = keyword_prep
    model = factory.build_model("bert", prep.backbone, 3, profile.bert_model)
    layers = model.config.num_hidden_layers
    groups = param_groups(model, 0.01, lr=1e-3, layer_lr_decay=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(lr_of) == len(named)  # every trainable parameter, once
    assert lr_of[id(named["classifier.weight"])] == 1e-3
    assert lr_of[id(named["bert.pooler.dense.weight"])] == 1e-3
    top_layer = f"bert.encoder.layer.{layers - 1}.attention.self.query.weight"
    assert lr_of[id(named[top_layer])] == pytest.approx(5e-4)
    assert lr_of[id(named["bert.encoder.layer.0.output.dense.weight"])] == pytest.approx(1e-3 * 0.5 ** layers)
    assert lr_of[id(named["bert.embeddings.word_embeddings.weight"])] == pytest.approx(1e-3 * 0.5 ** (layers + 1))
    # weight decay grouping is unchanged by the decay
    assert wd_of[id(named["bert.embeddings.LayerNorm.weight"])] == 0.0
    assert wd_of[id(named["bert.encoder.layer.0.output.dense.bias"])] == 0.0
    assert wd_of[id(named[top_layer])] == 0.01
    # 1.0 is off: the two plain groups, no per-group learning rate
    plain = param_groups(model, 0.01, lr=1e-3, layer_lr_decay=1.0)
    assert len(plain) == 2 and all("lr" not in g for g in plain)


def test_layer_lr_decay_refuses_a_model_without_layers(keyword_prep):
    profile, prep = keyword_prep
    model = factory.build_model("bilstm", prep.backbone, 3, profile.bert_model, profile.bilstm_model)
    with pytest.raises(ValueError, match="encoder.layer.N stack.*layer_lr_decay=1.0"):
        param_groups(model, 0.01, lr=1e-3, layer_lr_decay=0.8)
    with pytest.raises(ValueError, match=r"layer_lr_decay must be in \(0, 1\]"):
        TrainConfig(layer_lr_decay=1.5)


def test_fit_trains_with_layer_lr_decay(keyword_prep, tmp_path):
    profile, prep = keyword_prep
    layers = factory.build_model("bert", prep.backbone, 3, profile.bert_model).config.num_hidden_layers
    _fit(profile, prep, tmp_path / "d", cfg={"layer_lr_decay": 0.5, "max_steps": 3, "epochs": 1, "lr": 1e-3})
    groups = ckpt.load_training_state(ckpt.checkpoint_path(tmp_path / "d", "last"))["optimizer"]["param_groups"]
    initial = sorted({g["initial_lr"] for g in groups})
    assert initial == pytest.approx([1e-3 * 0.5 ** k for k in range(layers + 1, -1, -1)])
    assert all(g["lr"] == 0.0 for g in groups)  # the linear schedule ran every group down to zero at max_steps


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (89.4, "89 s"), (95, "2 min"), (24 * 60, "24 min"),
                                           (2.5 * 3600, "2.5 h")])
def test_format_duration(seconds, text):
    assert display.format_duration(seconds) == text


def test_resume_ignores_where_the_backbone_was_read_from(tmp_path):
    """A clone in another folder (another venv's site-packages) resumes the same run; another architecture does not."""
    saved = {"schema": artifacts.SCHEMA, "kind": "bert",
             "model_config": {"_name_or_path": "/a/.venv/minilm", "hidden_size": 384}}
    moved = {**saved, "model_config": {"_name_or_path": "/b/.venv/minilm", "hidden_size": 384}}
    train.check_resumable(saved, moved, tmp_path)
    other = {**saved, "model_config": {"_name_or_path": "/a/.venv/minilm", "hidden_size": 768}}
    with pytest.raises(ckpt.CheckpointError, match="model_config.hidden_size: 384 -> 768"):
        train.check_resumable(saved, other, tmp_path)
