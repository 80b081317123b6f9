"""The on-disk cache of derived data (.cache/ or $TEXTLAB_CACHE): parsed 20 Newsgroups and tokenized splits, each
entry a `datasets` folder keyed by what made it, written atomically, rebuilt when unreadable."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import datasets
from datasets import DatasetDict, load_from_disk

from .config import PROJECT_ROOT
from .errors import DataWarning

ENV_CACHE = "TEXTLAB_CACHE"


def cache_dir() -> Path:
    path = Path(os.environ.get(ENV_CACHE) or PROJECT_ROOT / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_cached(target: Path) -> DatasetDict | None:
    """The cache entry at `target`, or None: none yet, or unreadable (a full disk, a copy or a crash can still
    truncate an Arrow file written atomically): it is only a cache, so removed and rebuilt, not fatal."""
    if not target.exists():
        return None
    try:
        return load_from_disk(str(target))
    except (OSError, ValueError, KeyError) as e:  # pyarrow: OSError / ArrowInvalid; a bad state.json: ValueError
        warnings.warn(f"cache entry {target} is unreadable, rebuilt ({type(e).__name__}: {e})", DataWarning,
                      stacklevel=2)
        shutil.rmtree(target, ignore_errors=True)
        return None


def save_atomic(dsd: DatasetDict, target: Path) -> None:
    # A folder written by datasets, where another process may win the race: not artifacts.atomic_write (one file).
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    bars = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # a cache written in seconds: no "Saving the dataset" bars in the terminal
    try:
        dsd.save_to_disk(str(tmp))
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.exists():  # another process may have won the race: fine
            raise
    finally:
        if bars:
            datasets.enable_progress_bars()
