"""Atomic artifacts and checkpoints: safetensors + JSON; nothing is ever unpickled.

A checkpoint is a folder `ckpt-<step>/` (model.safetensors, meta.json, and for resuming
training_state.pt, loaded with torch.load(weights_only=True)). It is written under a temporary name and
renamed; `checkpoints.json` (itself replaced atomically) names the `last` and `best` folders. A reader
that follows the pointer never sees half a checkpoint, whenever the writer was killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError

POINTER = "checkpoints.json"
# The layout of every artifact (run manifest, checkpoint meta, metrics, tuning records). An artifact of another
# schema is refused with a message instead of being read with guessed defaults: bump this when a key is added.
SCHEMA = 1


# ---------------------------------------------------------------- atomic files


def atomic_write(path: Path, write) -> Path:
    """The one writer of artifact files: write(tmp) fills a temporary file beside `path`, renamed over it only once
    complete, so a reader never sees half a file, whenever the writer dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's file is private (0600); an artifact is as readable as any file written
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=jsonable) + "\n")


def read_json(path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON (truncated or corrupt?): {e}") from e


ARTIFACTS = "artifacts.json"  # beside .npy artifacts: the SHA-256 of each, recorded when written, checked when read


def write_npy(path, array: np.ndarray) -> Path:
    """An array written atomically, its hash recorded in the folder's artifacts.json (writers hold the run's lock)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))
    path = atomic_write(path, write)
    index = path.parent / ARTIFACTS
    write_json(index, {**(read_json(index) if index.exists() else {}), path.name: sha256_file(path, 64)})
    return path


def read_npy(path) -> np.ndarray:
    """An array, refused if it is not the file that was written there (artifacts.json records another hash): a
    zeroed, swapped or foreign file is never used. Files written before hashes were recorded are read unchecked."""
    path = Path(path)
    index = path.parent / ARTIFACTS
    want = read_json(index).get(path.name) if index.exists() and path.exists() else None
    if want is not None and sha256_file(path, 64) != want:
        raise CheckpointError(f"{path} is not the file this run wrote there (its SHA-256 differs from the one "
                              f"recorded in {index}): it was changed or copied in; "
                              "run the notebook that makes it again")
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, EOFError, OSError) as e:
        raise CheckpointError(f"{path} is not a readable .npy array (truncated or corrupt?): {e}") from e


def write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def jsonable(x):
    if isinstance(x, (np.integer, np.floating, np.ndarray)):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def sha256_file(path, n: int = 16) -> str:
    """First n hex digits of a file's SHA-256 (cache keys)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:n]


# ---------------------------------------------------------------- weights


def save_weights(path, state_dict: dict[str, torch.Tensor]) -> Path:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp))


def load_weights(path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"weights file {path} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {e}") from e


def load_into(model: torch.nn.Module, path, meta: dict | None = None) -> None:
    """Load weights strictly; a shape or key mismatch says which checkpoint and what differs."""
    state = load_weights(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    found = {"tensors of another shape": wrong, "tensors missing": missing, "unexpected tensors": unexpected}
    detail = [f"{len(keys)} {what} (e.g. {keys[0]})" for what, keys in found.items() if keys]
    if detail:
        hint = (f" The checkpoint was made for backbone {meta.get('backbone')!r} with {meta.get('num_labels')} classes."
                if meta else "")
        raise CheckpointError(f"{path} does not fit this model: {'; '.join(detail)}.{hint}")
    model.load_state_dict(state)


# ---------------------------------------------------------------- checkpoint folders


def save_checkpoint(out_dir, step: int, model_state: dict, meta: dict, training_state: dict | None = None,
                    role: tuple[str, ...] = ("last",)) -> Path:
    """Write ckpt-<step>/ atomically, point `role` ("last", "best") at it, and prune unreferenced folders."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{step:08d}"
    final = out_dir / name
    if not final.exists():
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
        try:
            save_weights(tmp / "model.safetensors", model_state)
            write_json(tmp / "meta.json", {**meta, "step": step})
            if training_state is not None:
                torch.save(training_state, tmp / "training_state.pt")
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    pointer = read_pointer(out_dir)
    pointer.update({r: name for r in role})
    write_json(out_dir / POINTER, pointer)
    for old in [*out_dir.glob("ckpt-*"), *out_dir.glob(".ckpt-*")]:  # .ckpt-*: leftovers of a killed writer
        if old.name not in pointer.values():
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_pointer(out_dir) -> dict:
    path = Path(out_dir) / POINTER
    if not path.exists():
        return {}
    pointer = read_json(path)
    if not isinstance(pointer, dict) or not all(isinstance(v, str) for v in pointer.values()):
        raise CheckpointError(f'{path} is not a checkpoint pointer {{"last": "ckpt-...", "best": "ckpt-..."}} '
                              f"(corrupt?): found {str(pointer)[:80]}")
    return pointer


def checkpoint_path(out_dir, role: str = "best") -> Path:
    out_dir = Path(out_dir)
    pointer_file = out_dir / POINTER
    if not pointer_file.exists():
        raise CheckpointError(f"{out_dir} holds no checkpoint ({POINTER} is missing): train this model first")
    name = read_pointer(out_dir).get(role)
    if not name or not (out_dir / name).is_dir():
        raise CheckpointError(f"{pointer_file} names no existing {role!r} checkpoint (found {name!r})")
    return out_dir / name


def load_training_state(ckpt: Path) -> dict:
    path = Path(ckpt) / "training_state.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain containers only
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: this checkpoint cannot resume training") from None
    except Exception as e:
        raise CheckpointError(f"{path} could not be loaded safely (truncated or corrupt?): {e}") from e


# ---------------------------------------------------------------- exported models (textlab.export)

EXPORT = "textlab_export.json"  # in an exported model's folder: what made it, and the SHA-256 of every file in it


def folder_hashes(folder) -> dict[str, str]:
    """{relative path: full SHA-256} of every file under `folder` (hidden temporary files aside), sorted."""
    folder = Path(folder)
    return {f.relative_to(folder).as_posix(): sha256_file(f, 64) for f in sorted(folder.rglob("*"))
            if f.is_file() and not f.name.startswith(".")}


def read_export(folder) -> dict:
    """The export record of an exported model folder, once every file it lists is checked against its recorded
    SHA-256: a changed, truncated or missing file is refused by name (nothing is loaded from an altered export)."""
    folder = Path(folder)
    info = read_json(folder / EXPORT)
    check_schema(info, folder / EXPORT, ": export the model again with this textlab")
    for name, want in info.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: the export {folder} is incomplete; export the model again")
        if sha256_file(path, 64) != want:
            raise CheckpointError(f"{path} was changed after export (its SHA-256 differs from the one {EXPORT} "
                                  f"records): export the model again, or restore the file")
    return info


def check_schema(obj, source, fix: str = "", error: type[Exception] = CheckpointError) -> None:
    """Refuse an artifact of another SCHEMA with `error`, naming `source` and (`fix`) what to do instead."""
    found = obj.get("schema") if isinstance(obj, dict) else None
    if found != SCHEMA:
        raise error(f"{source} has artifact schema {found!r}; this textlab reads schema {SCHEMA} (it was made by "
                    f"another version of textlab){fix}")


def validate_meta(meta: dict, path) -> dict:
    """`meta` read from `path` if of this schema with consistent classes, else a CheckpointError naming the file
    (an edited or corrupt meta.json would otherwise fail much later, as a numpy broadcast error naming no file)."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a checkpoint's metadata (a JSON object): found {str(meta)[:80]}")
    check_schema(meta, path, ": train the model anew")
    n = meta.get("num_labels")
    if type(n) is not int or n < 2:  # type(): True is an int too
        raise CheckpointError(f"{path}: num_labels must be an integer >= 2, found {n!r}")
    names = meta.get("label_names")  # optional here; a predictor, which needs them, says so itself
    if names is not None and not (isinstance(names, list) and all(isinstance(x, str) for x in names)):
        raise CheckpointError(f"{path}: label_names must be a list of strings, found {str(names)[:80]}")
    if names is not None and len(names) != n:
        raise CheckpointError(f"{path}: label_names has {len(names)} names but num_labels is {n}: edited or corrupt")
    return meta
