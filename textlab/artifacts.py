"""Artifact I/O, the one home of every file a run writes: atomic writes (temp file, then rename), JSON and .npy
(hashes recorded beside arrays, checked when read), file hashes, the artifact SCHEMA, and exported folders' records."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError

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


def check_schema(obj, source, fix: str = "", error: type[Exception] = CheckpointError) -> None:
    """Refuse an artifact of another SCHEMA with `error`, naming `source` and (`fix`) what to do instead."""
    found = obj.get("schema") if isinstance(obj, dict) else None
    if found != SCHEMA:
        raise error(f"{source} has artifact schema {found!r}; this textlab reads schema {SCHEMA} (it was made by "
                    f"another version of textlab){fix}")


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
