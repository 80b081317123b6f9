"""A run's data: 20 Newsgroups (bydate, headers/footers/quotes stripped as scikit-learn does, cached on disk) or your
own file (owndata.py), as a `datasets.DatasetDict` (train / validation / test) with a ClassLabel."""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from pathlib import Path

from datasets import Dataset, DatasetDict
from sklearn.datasets import fetch_20newsgroups
# Private to scikit-learn, but the exact functions fetch_20newsgroups(remove=...) applies; what they strip is pinned
# by tests/test_data.py::test_newsgroup_stripping_is_pinned, so a release that changes them fails loudly.
from sklearn.datasets._twenty_newsgroups import strip_newsgroup_footer, strip_newsgroup_header, strip_newsgroup_quoting

from .cache import cache_dir, load_cached, save_atomic
from .artifacts import sha256_file
from .config import Profile
from .dataset import column, from_rows, stratified_split
from .errors import DataError
from .owndata import USER_SUFFIXES, check_validation_folds, load_user_file, warn_lost_classes

ENV_20NG = "TEXTLAB_20NG"
SPLITS_20NG = {"train": "20news-bydate-train", "test": "20news-bydate-test"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
SUPPORTED = ("your own data as a .csv, .jsonl, .json or .parquet file with `text` and `label` columns (optional "
             "`split`: train/test), or 20 Newsgroups as the original 20news-bydate.tar.gz or its extracted folder")


# ---------------------------------------------------------------- 20 Newsgroups


def _strip(text: str) -> str:
    # same order as sklearn.datasets.fetch_20newsgroups(remove=("headers", "footers", "quotes"))
    return strip_newsgroup_quoting(strip_newsgroup_footer(strip_newsgroup_header(text)))


def _read_archive(path: Path) -> dict[str, list[tuple[str, str, str]]]:
    """(group, message id, raw text) per split from the original tar.gz."""
    out: dict[str, list] = {split: [] for split in SPLITS_20NG}
    folder_to_split = {v: k for k, v in SPLITS_20NG.items()}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                parts = member.name.strip("/").split("/")
                if member.isfile() and len(parts) == 3 and parts[0] in folder_to_split:
                    raw = tar.extractfile(member).read()
                    out[folder_to_split[parts[0]]].append((parts[1], parts[2], raw.decode("latin-1")))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"20 Newsgroups archive {path} is truncated or corrupt ({type(e).__name__}: {e}). Replace it "
                        f"with the original 20news-bydate.tar.gz, or point {ENV_20NG} to the extracted folder.") from e
    return out


def _read_folder(path: Path | None) -> dict[str, list[tuple[str, str, str]]]:
    """(group, message id, raw text) per split from the extracted folder or (path None) scikit-learn's download."""
    out = {}
    for split, name in SPLITS_20NG.items():
        if path is None:
            try:
                bunch = fetch_20newsgroups(subset=split, shuffle=False)
            except Exception as e:  # network errors come in many types
                raise DataError(
                    f"20 Newsgroups is not available: no path was given and scikit-learn could not download it "
                    f"({type(e).__name__}: {e}). Pass the path of 20news-bydate.tar.gz or its extracted folder as "
                    f"data_path (or set {ENV_20NG}), or connect to the internet for fetch_20newsgroups.") from e
            out[split] = [(bunch.target_names[t], Path(f).name, text)
                          for t, f, text in zip(bunch.target, bunch.filenames, bunch.data)]
        elif (path / name).is_dir():  # files only: a sub-folder (e.g. an editor's .ipynb_checkpoints) is skipped
            out[split] = [(group.name, f.name, f.read_bytes().decode("latin-1"))
                          for group in sorted((path / name).iterdir()) if group.is_dir()
                          for f in sorted(group.iterdir()) if f.is_file()]
        else:
            raise DataError(f"{path} has no folder {name}/: expected the bydate layout {name}/<group>/<id>")
    return out


def _source_key(path: Path | None) -> str:
    if path is None:
        return "sklearn"
    if path.is_file():
        return sha256_file(path)
    listing = sorted(f"{p.relative_to(path)}:{p.stat().st_size}" for p in path.rglob("*") if p.is_file())
    return hashlib.sha256("\n".join(listing).encode()).hexdigest()[:16]


def resolve_20ng_path(data_path: str | os.PathLike | None = None) -> Path | None:
    """Explicit path, else $TEXTLAB_20NG, else None (scikit-learn's download)."""
    given = data_path or os.environ.get(ENV_20NG)
    if not given:
        return None
    path = Path(given).expanduser()
    origin = "data_path" if data_path else f"${ENV_20NG}"
    if not data_path and path.suffix.lower() in USER_SUFFIXES:
        raise DataError(f"${ENV_20NG}={path} names your own {path.suffix} file, but ${ENV_20NG} is only for the 20 "
                        "Newsgroups archive: unset it and pass your file as data (python -m textlab run "
                        f"--data {path}, or data = \"...\" in a notebook's parameters cell)")
    if not (path.is_dir() or path.name.lower().endswith(ARCHIVE_SUFFIXES)) and (path.exists() or path.suffix):
        # e.g. a .txt (the tar reader would call it corrupt; if missing, the 20 Newsgroups advice would mislead)
        state = "is not a data file textlab can read; it reads" if path.exists() else "does not exist; textlab reads"
        raise DataError(f"{path} (from {origin}) {state} {SUPPORTED}.")
    if not path.exists():
        raise DataError(f"20 Newsgroups not found at {path} (from {origin}). Pass data_path= / set {ENV_20NG} to the "
                        "original 20news-bydate.tar.gz or its extracted folder (20news-bydate-train/<group>/<id>), "
                        "or unset both to let scikit-learn's fetch_20newsgroups download it (needs internet).")
    return path


def load_20newsgroups(data_path: str | os.PathLike | None = None) -> DatasetDict:
    """train (11,314) / test (7,532), stripped of headers, footers and quotes; cached as Arrow."""
    path = resolve_20ng_path(data_path)
    target = cache_dir() / f"20ng-{_source_key(path)}"
    cached = load_cached(target)
    if cached is not None:
        return cached
    raw = _read_folder(path) if path is None or path.is_dir() else _read_archive(path)
    groups = sorted({g for rows in raw.values() for g, _, _ in rows})
    if len(groups) != 20 or not raw["train"] or not raw["test"]:
        raise DataError(f"{path or 'scikit-learn download'} does not hold 20 Newsgroups bydate: found {len(groups)} "
                        f"groups, {len(raw['train'])} train / {len(raw['test'])} test documents (expected 20, "
                        "11,314 / 7,532).")
    dsd = DatasetDict()
    for split, rows in raw.items():
        rows = sorted(rows)  # the order of sklearn's load_files: group, then file name
        texts, labels = [_strip(t) for _, _, t in rows], [g for g, _, _ in rows]
        dsd[split] = from_rows(texts, labels, [f"{g}/{i}" for g, i, _ in rows], groups)
    save_atomic(dsd, target)
    return dsd


# ---------------------------------------------------------------- splits


def _subset(ds: Dataset, n: int, seed: int) -> Dataset:
    if not n or n >= len(ds):
        return ds
    _, idx = stratified_split(column(ds, "label"), n / len(ds), seed)
    return ds.select(idx)


def load_data(source: str | os.PathLike | None = None, *, val_fraction: float = 0.1, seed: int = 42,
              max_train_samples: int = 0, max_eval_samples: int = 0) -> DatasetDict:
    """train / validation / test from None or a 20NG archive/folder, or your own .csv/.jsonl/.json/.parquet.
    Validation: a stratified `val_fraction` of train; test is only ever cut by the debug knob `max_eval_samples`."""
    path = Path(source).expanduser() if source else None
    own = path is not None and path.suffix.lower() in USER_SUFFIXES and not path.is_dir()
    # Anything else goes to 20 Newsgroups, whose resolver refuses files that are not archives.
    dsd = load_user_file(path, seed=seed) if own else load_20newsgroups(path)
    labels = column(dsd["train"], "label")
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    out = DatasetDict(
        train=_subset(dsd["train"].select(train_idx), max_train_samples, seed),
        validation=_subset(dsd["train"].select(val_idx), max_eval_samples, seed),
        test=_subset(dsd["test"], max_eval_samples, seed),
    )
    if own:  # 20 Newsgroups is known to be fine: no warnings there
        cause = "the validation split" + (f" and max_train_samples={max_train_samples}" if max_train_samples else "")
        warn_lost_classes(path, dsd["train"].features["label"].names, labels, column(out["train"], "label"), cause)
    return out


def load_for_profile(profile: Profile) -> DatasetDict:
    """The profile's splits; own data is checked against the ensemble's folds here, before any training."""
    dsd = load_data(profile.data or None, val_fraction=profile.val_fraction, seed=profile.split_seed,
                    max_train_samples=profile.max_train_samples, max_eval_samples=profile.max_eval_samples)
    if profile.data:  # 20 Newsgroups' validation split is known to be fine
        check_validation_folds(column(dsd["validation"], "label"), dsd["train"].features["label"].names,
                               profile.ensemble.folds, profile.seeds, profile.val_fraction, profile.data,
                               profile.max_eval_samples)
    return dsd


def class_list(names: list[str], first: int = 3) -> str:
    """e.g. "20 classes: alt.atheism, comp.graphics, comp.os.ms-windows.misc, ..., talk.religion.misc"; every name
    when at most `first` + 2 (an ellipsis never stands for one name)."""
    shown = list(names) if len(names) <= first + 2 else [*names[:first], "...", names[-1]]
    return f"{len(names)} {'class' if len(names) == 1 else 'classes'}: {', '.join(map(str, shown))}"

