"""Checkpoints: safetensors weights + JSON metadata (artifact I/O: textlab.artifacts); nothing is ever unpickled.

A checkpoint is a folder `ckpt-<step>/` (model.safetensors, meta.json, and for resuming
training_state.pt, loaded with torch.load(weights_only=True)). It is written under a temporary name and
renamed; `checkpoints.json` (itself replaced atomically) names the `last` and `best` folders. A reader
that follows the pointer never sees half a checkpoint, whenever the writer was killed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .artifacts import atomic_write, check_schema, read_json, write_json
from .errors import CheckpointError

POINTER = "checkpoints.json"


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
