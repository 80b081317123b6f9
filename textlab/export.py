"""Take a trained model away from its run folder: `python -m textlab export --run RUN --model M OUT`.

- bert: a standard transformers folder (config.json with the run's id2label / label2id, model.safetensors of the
  selected checkpoint, the tokenizer files with model_max_length = the length it was trained at), which
  `transformers.pipeline("text-classification", model=OUT)` loads offline.
- bilstm, ensemble: a self-contained textlab folder (the selected checkpoints, TF-IDF members and the fitted ensemble
  in the run's own layout, and the tokenizer), which `load_predictor(OUT)` and `textlab predict --run OUT` load
  without the run folder or its cache.

Every export holds README.md, a model card generated from the run's artifacts (card.py), and textlab_export.json:
what it was made from and the SHA-256 of every file, checked by the loader. It is written into a temporary folder
beside OUT and renamed into place only when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

from .artifacts import EXPORT, SCHEMA, folder_hashes, read_json, write_json, write_text
from . import checkpoint as ckpt
from .backbones import get_backbone, quiet_transformers
from .card import model_card
from .errors import ExportError, ExportWarning
from .kinds import NEURAL, SERVED
from .pipeline import load_model, seed_dir
from .predict import check_run_folder, choose_seed
from .runs import read_manifest, run_seeds, train_first

TOKENIZER = "tokenizer"  # the tokenizer's folder in a bilstm / ensemble export (a bert export has it at the top)


def export(run, model: str, out, seed: int | None = None, force: bool = False) -> Path:
    """Export `model` of run folder `run` (of training seed `seed`, default the run's first; the ensemble: the one
    the run chose) into the new folder `out`; `force`: replace what `out` holds. Returns `out`."""
    run, out = Path(run), Path(out)
    if model not in SERVED:
        raise ValueError(f"unknown model {model!r}; choose one of: {', '.join(SERVED)}")
    check_run_folder(run)
    if (run / EXPORT).exists():
        raise ExportError(f"{run} is an exported model, not a run folder: export from the run it came from")
    manifest = read_manifest(run)
    if manifest is None:
        raise ExportError(f"{run} has no manifest.json: only a run made by `python -m textlab run` can be exported")
    seed, seeds = choose_seed(run, model, seed), run_seeds(run)
    folders = _model_folders(run, model, seed)
    _check_target(out, force)
    tmp = _temporary_folder(out)
    try:
        info = {"schema": SCHEMA, "model": model, "seed": seed, "seeds": seeds, "run": str(run.resolve()),
                "run_manifest": manifest, "tokenizer": "." if model == "bert" else TOKENIZER}
        tokenizer = _tokenizer(folders)
        if model == "bert":
            info.update(_write_transformers_folder(folders[0], tmp, tokenizer))
        else:
            _copy_run_files(run, folders, model, tmp)
            tokenizer.save_pretrained(tmp / TOKENIZER)
            info["folder"] = folders[0].relative_to(run).as_posix() if model == "bilstm" else "ensemble"
        card, notes = model_card(run, model, seed, manifest)
        for note in notes:
            warnings.warn(note, ExportWarning, stacklevel=2)
        write_text(tmp / "README.md", card)
        write_json(tmp / EXPORT, {**info, "notes": notes, "files": folder_hashes(tmp)})
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _model_folders(run: Path, model: str, seed: int | None) -> list[Path]:
    """The run's folders the export copies: the model's own; the ensemble's members. Refused unless finished."""
    if model != "ensemble":
        folder = seed_dir(run, seed) / model
        if not (folder / "metrics.json").exists():  # evaluated on test: the training finished
            raise ExportError(f"{folder} holds no finished {model} training (no metrics.json): "
                              f"{train_first(run, model)}")
        return [folder]
    if not (run / "ensemble" / "metrics.json").exists():
        raise ExportError(f"{run / 'ensemble'} holds no chosen ensemble (no metrics.json): "
                          f"{train_first(run, 'ensemble')}")
    info = read_json(run / "ensemble" / "ensemble.json")
    return [run / f for f in info["member_folders"]]


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file: give export a folder to create")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ExportError(f"{out} is not empty: give a new folder, or --force to replace the export it holds")
        if not (out / EXPORT).exists():  # --force replaces an earlier export, never a folder of other files
            raise ExportError(f"{out} is not empty and holds no earlier export ({EXPORT}): --force replaces "
                              "only an export; give a new folder")


def _temporary_folder(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise ExportError(f"cannot write into {out.parent}: {e.strerror}; export into a folder you can write") from None


def _publish(tmp: Path, out: Path) -> None:
    """Rename the complete export into place; an existing `out` (--force) is moved aside first and deleted after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.replaced.{os.getpid()}")
        os.replace(out, old)
    for path in [tmp, *tmp.rglob("*")]:  # mkdtemp's folder is private, and so are some files written into it
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _tokenizer(folders: list[Path]):
    """The tokenizer every neural member was trained with, its model_max_length the length the model reads."""
    metas = [read_json(ckpt.checkpoint_path(f, "best") / "meta.json") for f in folders if f.name in NEURAL]
    tokenizer = get_backbone(metas[0]["backbone"]).tokenizer()
    tokenizer.model_max_length = max(int(m["max_length"]) for m in metas)
    return tokenizer


def _write_transformers_folder(folder: Path, out: Path, tokenizer) -> dict:
    """config.json (label names as id2label / label2id), model.safetensors and the tokenizer files."""
    net, meta = load_model(folder)
    names = list(meta["label_names"])
    net.config.id2label = dict(enumerate(names))
    net.config.label2id = {name: i for i, name in enumerate(names)}
    net.config.max_length = None  # a generation setting, not the input length; the tokenizer holds that
    with quiet_transformers():
        net.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"meta": {k: meta[k] for k in ("backbone", "label_names", "max_length", "truncation")},
            "checkpoint": ckpt.checkpoint_path(folder, "best").name}


def _copy_run_files(run: Path, folders: list[Path], model: str, out: Path) -> None:
    """The files a predictor reads, at the same paths relative to `out` as to the run: each neural member's
    selected checkpoint (weights and meta.json, not the training state) with a pointer to it, each TF-IDF member,
    and the ensemble's ensemble.json (and meta-MLP)."""
    for folder in folders:
        target = out / folder.relative_to(run)
        if folder.name == "tfidf":
            shutil.copytree(folder / "model", target / "model")
            continue
        best = ckpt.checkpoint_path(folder, "best")
        (target / best.name).mkdir(parents=True)
        for name in ("model.safetensors", "meta.json"):
            shutil.copy2(best / name, target / best.name / name)
        write_json(target / ckpt.POINTER, {"last": best.name, "best": best.name})
    if model == "ensemble":
        info = read_json(run / "ensemble" / "ensemble.json")
        write_json(out / "ensemble" / "ensemble.json", info)
        if info.get("checkpoint"):  # a meta-MLP's weights, beside ensemble.json (ensemble_build.build_ensemble)
            shutil.copytree(run / "ensemble" / info["checkpoint"], out / "ensemble" / info["checkpoint"])
