"""Data: 20 Newsgroups (bydate, headers/footers/quotes stripped as scikit-learn does) or your own file,
as a `datasets.DatasetDict` (train / validation / test) with a ClassLabel; tokenization cached on disk."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zlib
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value, load_from_disk
# Private to scikit-learn, but the exact functions fetch_20newsgroups(remove=...) applies; what they strip is pinned
# by tests/test_data.py::test_newsgroup_stripping_is_pinned, so a release that changes them fails loudly.
from sklearn.datasets._twenty_newsgroups import strip_newsgroup_footer, strip_newsgroup_header, strip_newsgroup_quoting
from sklearn.model_selection import train_test_split

from .checkpoint import sha256_file
from .config import PROJECT_ROOT, TRUNCATIONS, Profile
from .errors import DataError, DataWarning
from .runs import dataset_fingerprint
from .stats import stratified_folds

log = logging.getLogger(__name__)

ENV_20NG = "TEXTLAB_20NG"
ENV_CACHE = "TEXTLAB_CACHE"
SPLITS_20NG = {"train": "20news-bydate-train", "test": "20news-bydate-test"}
USER_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
SUPPORTED = ("your own data as a .csv, .jsonl, .json or .parquet file with `text` and `label` columns (optional "
             "`split`: train/test), or 20 Newsgroups as the original 20news-bydate.tar.gz or its extracted folder")
# A JSON \\u escape of a high surrogate without a low one after it, or of a low one without a high one before it.
LONE_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})"
                            r"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
MIN_TRAIN_PER_CLASS = 5  # fewer training documents than this: a class the model can hardly learn
TOKENIZATION_VERSION = 2  # bump when tokenize() or its cache key changes


def cache_dir() -> Path:
    path = Path(os.environ.get(ENV_CACHE) or PROJECT_ROOT / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    from sklearn.datasets import fetch_20newsgroups

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
    cached = _load_cached(target)
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
        dsd[split] = _dataset(texts, labels, [f"{g}/{i}" for g, i, _ in rows], groups)
    _save_atomic(dsd, target)
    return dsd


def _dataset(texts: list[str], labels: list[str], doc_ids: list[str], names: list[str]) -> Dataset:
    """The rows of either source, `labels` given by name, as a ClassLabel over `names`."""
    ids = {name: i for i, name in enumerate(names)}
    features = Features({"text": Value("string"), "label": ClassLabel(names=names), "doc_id": Value("string")})
    return Dataset.from_dict({"text": texts, "label": [ids[x] for x in labels], "doc_id": doc_ids}, features=features)


# ---------------------------------------------------------------- your own data


def load_user_file(path: str | os.PathLike, test_fraction: float = 0.2, seed: int = 42) -> DatasetDict:
    """A .csv / .jsonl / .json / .parquet with `text` and `label` columns (any number of classes), split by its
    optional `split` column (train / test) or else stratified. Usable data that looks wrong gives a DataWarning."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    df = _read_table(path)
    missing = [c for c in ("text", "label") if c not in df.columns]
    if missing:
        raise DataError(f"{path} has no {' / '.join(repr(m) for m in missing)} column; found columns "
                        f"{list(df.columns)}. Rename your columns to `text` (the document) and `label` (its class).")
    where = _positions(path, df)
    empty = df["label"].isna() | (df["label"].astype(str).str.strip() == "")
    if empty.any():
        rows = where[1][np.flatnonzero(empty.to_numpy())[:5]].tolist()
        raise DataError(
            f"{path}: {int(empty.sum())} rows have an empty label (e.g. file {where[0]}s {rows}); fill or drop them")
    texts = df["text"].fillna("").astype(str).tolist()
    labels = _stripped(path, [_label_text(x) for x in df["label"]], where)
    names = sorted(set(labels))
    if not labels:
        raise DataError(f"{path} has columns but no rows: add one row per document (text and label)")
    if len(names) < 2:
        raise DataError(f"{path}: need at least 2 classes, found {names}")
    full = _dataset(texts, labels, [str(i) for i in df.index], names)
    if "split" in df.columns:
        is_test = _test_rows(path, df["split"], test_fraction)
        train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    else:
        train_idx, test_idx = _stratified_split(np.array(full["label"]), test_fraction, seed)
    _warn_duplicates(path, texts, labels, where)
    _warn_splits(path, texts, labels, train_idx, test_idx, where)
    return DatasetDict(train=full.select(train_idx), test=full.select(test_idx))


def _read_table(path: Path) -> pd.DataFrame:
    """The file's rows. A .csv / .jsonl / .json value is the text written, not pandas' guess at a type (which made
    labels 007 and 7.0 one class "7.0", and "true" "True"); an empty CSV cell is missing, "NA" or "null" is text."""
    suffix = path.suffix.lower()
    if suffix not in USER_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(USER_SUFFIXES)}")
    text = None if suffix == ".parquet" else _read_utf8(path)  # a DataError naming the line
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
        return _read_json(path, text, lines=suffix == ".jsonl")
    except DataError:
        raise
    except pd.errors.ParserError as e:  # .csv
        raise DataError(_csv_error(path, text, e)) from e
    except pd.errors.EmptyDataError:  # .csv of zero bytes or only blank lines
        raise DataError(f"{path} is empty: it needs a header line (text,label) and one row per document") from None
    except Exception as e:
        raise DataError(f"{path} could not be read as {suffix}: {type(e).__name__}: {' '.join(str(e).split())}") from e


def _csv_error(path: Path, text: str, e: pd.errors.ParserError) -> str:
    """pandas' CSV error as one line naming the file line (pandas numbers lines without the breaks inside quotes)."""
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
    if fields:
        return (f"{path}: line {_csv_file_line(text, int(fields[2]))} has {fields[3]} fields, the header {fields[1]}. "
                'A value holding a comma must be in double quotes ("one, two"), a double quote inside one written '
                'twice ("say ""hi"""); correct that line.')
    quote = re.search(r"EOF inside string starting at row (\d+)", str(e))  # row: 0-based
    if quote:
        return (f"{path}: line {_csv_file_line(text, int(quote[1]) + 1)} opens a double-quoted value that is never "
                'closed, so the rest of the file became part of it. Close it, or write a double quote inside a value '
                'twice ("say ""hi""").')
    return f"{path} could not be read as .csv: ParserError: {' '.join(str(e).split())}"


def _csv_file_line(text: str, line: int) -> int:
    """The file line where pandas' CSV line `line` starts: pandas, like Python's csv reader, counts blank lines but
    not the line breaks inside quoted values."""
    reader = csv.reader(io.StringIO(text, newline=""))
    limit = csv.field_size_limit(2**31 - 1)  # a long document is one field
    try:
        for _ in range(line - 1):
            next(reader)
    except (csv.Error, StopIteration):  # not expected: pandas' count is right when no quoted value spans lines
        return line
    finally:
        csv.field_size_limit(limit)
    return reader.line_num + 1


def _read_json(path: Path, text: str, lines: bool) -> pd.DataFrame:
    """A .jsonl (one object per line; blank lines skipped) or a .json (records or columns, as pandas writes them),
    with its numbers as written: a label 1.0 stays "1.0". `attrs["lines"]`: each .jsonl record's line."""
    if not lines:
        return pd.DataFrame(_parse_json(path, text, 1))
    records, numbers = [], []
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): a JSON string may hold U+2028
        if not line.strip():
            continue
        record = _parse_json(path, line, number)
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number} is not a JSON object; each line of a .jsonl file must be one "
                            'object such as {"text": "...", "label": "..."}')
        records.append(record)
        numbers.append(number)
    df = pd.DataFrame(records)
    df.attrs["lines"] = np.array(numbers, dtype=int)
    return df


def _parse_json(path: Path, text: str, line: int):
    """`text` (starting at file line `line`) parsed, numbers kept as their text; a syntax error names the line, and
    so does a \\u escape of half a surrogate pair (e.g. an emoji's \\ud83d cut from its \\ude80), no character."""
    try:
        value = json.loads(text, parse_int=str, parse_float=str)
        if "\\u" in text:  # pandas writes every non-ASCII character so
            json.dumps(value, ensure_ascii=False).encode()
        return value
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {line + e.lineno - 1} could not be read as JSON: {e.msg} (column {e.colno}). "
                        "Correct or remove that line.") from e
    except UnicodeEncodeError as e:
        lone = LONE_SURROGATE.search(text)
        line, escape = (line + text.count("\n", 0, lone.start()), lone[0]) if lone else (line, "a \\u escape")
        raise DataError(f"{path}: line {line} holds {escape}, half of a UTF-16 surrogate pair without its other half: "
                        "no character. Correct or remove that line.") from e


def _label_text(value) -> str:
    """A label as text: text as it is; a Parquet number as written (a float column's whole numbers without ".0":
    pandas stores a column of 1 and 1.5 as floats); booleans (Parquet, JSON true/false) as "True" / "False"."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _read_utf8(path: Path) -> str:
    """The file's text. Decoded here, not by pandas, which reports a bad byte by its offset in a read chunk."""
    raw = path.read_bytes()
    try:
        # A BOM (Excel's "CSV UTF-8") is fine; pandas' JSON reader would choke on it.
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - raw.rfind(b"\n", 0, e.start)  # 1-based byte within the line
        raise DataError(f"{path}: line {line} is not UTF-8 (byte 0x{raw[e.start]:02x} at byte {column} of the line; "
                        "the first such byte in the file). Save the file as UTF-8 (e.g. Excel: Save As > CSV UTF-8, "
                        "or iconv -f cp1252 -t utf-8) and load it again.") from e


def _positions(path: Path, df: pd.DataFrame) -> tuple[str, np.ndarray]:
    """How to find each row in the file: ("line", 1-based line) for .csv / .jsonl, else ("row", 1-based record)."""
    n = len(df)
    suffix = path.suffix.lower()
    if "lines" in df.attrs:  # .jsonl
        return "line", df.attrs["lines"]
    if suffix == ".csv":  # line 1 is the header; a quoted value with line breaks spans several lines
        breaks = sum(df[c].astype(str).str.count("\n").fillna(0).to_numpy(dtype=int) for c in df.columns)
        return "line", 2 + np.arange(n) + np.concatenate([[0], np.cumsum(breaks)])[:n]
    return "row", 1 + np.arange(n)


def _test_rows(path: Path, split: pd.Series, test_fraction: float) -> np.ndarray:
    """The `split` column as a boolean test mask; both splits must be present."""
    split = split.astype(str).str.lower()
    bad = sorted(set(split) - {"train", "test"})
    if bad:
        raise DataError(f"{path}: column `split` must hold train or test, found {bad}")
    is_test = (split == "test").to_numpy()
    if is_test.all() or not is_test.any():
        have, lack = ("test", "train") if is_test.all() else ("train", "test")
        raise DataError(f"{path}: column `split` marks all {len(split)} rows {have} and none {lack}. Add rows with "
                        f"split={lack}, or drop the `split` column to let textlab carve a stratified test split "
                        f"({test_fraction:.0%} of the rows).")
    return is_test


# ---------------------------------------------------------------- warnings on your own data


def _stripped(path: Path, labels: list[str], where) -> list[str]:
    """Labels without leading/trailing whitespace (" spam" and "spam" are one class); a DataWarning if any had it."""
    out = [x.strip() for x in labels]
    firsts: dict[str, int] = {}  # changed label -> its first row
    changed = [firsts.setdefault(a, i) for i, (a, b) in enumerate(zip(labels, out)) if a != b]
    if changed:
        unit, numbers = where
        eg = "; ".join(f"{unit} {numbers[i]} {labels[i]!r} -> {out[i]!r}" for i in list(firsts.values())[:3])
        warnings.warn(
            f"{path}: {len(changed)} label(s) had leading/trailing whitespace, stripped (e.g. {eg}). A label is its "
            "text without the spaces around it; strip them in the file to silence this warning.", DataWarning,
            stacklevel=2)
    return out


def _counted(names, counts: Counter, k: int = 5) -> str:
    """e.g. "'spam' (2), 'ham' (1)"."""
    return ", ".join(f"{n!r} ({counts[n]})" for n in names[:k]) + (", ..." if len(names) > k else "")


def _warn_duplicates(path: Path, texts: list[str], labels: list[str], where) -> None:
    """Rows repeating an earlier row, and texts given several labels. Empty texts are not compared: they carry
    no content (20 Newsgroups has 300 by design)."""
    label_rows: dict[str, dict[str, int]] = {}  # text -> label -> first row
    repeats = []
    for i, (text, label) in enumerate(zip(texts, labels)):
        if is_empty(text):
            continue
        j = label_rows.setdefault(text, {}).setdefault(label, i)
        if j != i:
            repeats.append((i, j))
    unit, numbers = where
    if repeats:
        eg = "; ".join(f"{unit} {numbers[i]} repeats {unit} {numbers[j]}" for i, j in repeats[:3])
        warnings.warn(
            f"{path}: {len(repeats)} duplicate row(s) (the same text and label as an earlier row; e.g. {eg}). They "
            "weigh more in training and, split across train and test, inflate the test score; drop them "
            "(e.g. pandas drop_duplicates(['text', 'label'])).", DataWarning, stacklevel=2)
    conflicts = [rows for rows in label_rows.values() if len(rows) > 1]
    if conflicts:
        eg = "; ".join(" vs ".join(f"{unit} {numbers[i]} {label!r}" for label, i in rows.items())
                       for rows in conflicts[:3])
        warnings.warn(
            f"{path}: {len(conflicts)} text(s) appear with different labels (e.g. {eg}); at most one label can be "
            "right for each: correct or drop them.", DataWarning, stacklevel=2)


def _warn_splits(path: Path, texts: list[str], labels: list[str], train_idx, test_idx, where) -> None:
    """Test documents also in train, labels never trained on, and classes with too few training documents."""
    seen = {texts[i] for i in train_idx if not is_empty(texts[i])}
    overlap = [i for i in test_idx if texts[i] in seen]
    if overlap:
        unit, numbers = where
        shown = ", ".join(str(numbers[i]) for i in overlap[:5]) + (", ..." if len(overlap) > 5 else "")
        warnings.warn(
            f"{path}: {len(overlap)} of {len(test_idx)} test documents also appear verbatim in train (e.g. {unit}"
            f"{'s' if len(overlap) > 1 else ''} {shown}); the test score counts them as unseen. Remove them from "
            "train or from test.", DataWarning, stacklevel=2)
    train = Counter(labels[i] for i in train_idx)
    test = Counter(labels[i] for i in test_idx)
    only_test = sorted(set(test) - set(train))
    if only_test:
        warnings.warn(
            f"{path}: {len(only_test)} label(s) occur only in test, never in train (test documents: "
            f"{_counted(only_test, test)}); the model never sees them in training and cannot predict them. Add "
            "training rows for them, or drop them. They stay in the test set, where every model's answer to them "
            "counts as an error, so test scores stay honest.", DataWarning, stacklevel=2)
    rare = sorted(name for name, n in train.items() if n < MIN_TRAIN_PER_CLASS)
    if rare:
        warnings.warn(
            f"{path}: {len(rare)} class(es) have fewer than {MIN_TRAIN_PER_CLASS} training documents: "
            f"{_counted(rare, train)}; the model can hardly learn them, and the validation split may take their "
            "only ones. Add examples, or merge or drop these classes.", DataWarning, stacklevel=2)


def _warn_lost_classes(path: Path, names: list[str], before, after, cause: str) -> None:
    """Classes that had training documents in the file but none left in the training set (load_data)."""
    counts = Counter(names[i] for i in before)
    lost = sorted(set(counts) - {names[i] for i in after})
    if lost:
        warnings.warn(
            f"{path}: after {cause}, {len(lost)} class(es) have no training document left (training documents in "
            f"the file: {_counted(lost, counts)}); the model never sees them in training. Add training rows for "
            f"them (at least {MIN_TRAIN_PER_CLASS} each).", DataWarning, stacklevel=2)


# ---------------------------------------------------------------- splits


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(labels))
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 and round(fraction * len(labels)) >= len(counts) else None
    keep, held = train_test_split(idx, test_size=fraction, stratify=stratify, random_state=seed)
    return np.sort(keep), np.sort(held)


def _cuts(y: np.ndarray, folds: int, seed: int) -> bool:
    """Whether the ensemble choice can cross-validate on labels `y`: `folds` stratified folds, and `folds` again
    inside each fold's training part (the meta-learner's own CV), seeded as ensemble_choice and ensemble cut them."""
    try:
        for train_part, _ in stratified_folds(y, folds, seed):
            stratified_folds(y[train_part], folds, seed)
    except ValueError:  # "n_splits=F cannot be greater than the number of members in each class"
        return False
    return True


def check_validation_folds(labels, names: list[str], folds: int, seeds, val_fraction: float, where: str,
                           max_eval_samples: int = 0) -> None:
    """Before any training (notebook 01): refuse a validation split the ensemble choice (notebook 04) cannot
    cross-validate on, naming the minimum and the settings that fix it; warn about classes some folds lack."""
    y = np.asarray(labels)
    counts = Counter(names[i] for i in y)
    if not all(_cuts(y, folds, seed) for seed in seeds):
        # the fewest documents per class that cut for a balanced split of these classes
        need = next(c for c in range(folds, 10 * folds) if _cuts(np.repeat(np.arange(len(counts)), c), folds, seeds[0]))
        largest = max(counts.values())
        share = min(0.5, -(-val_fraction * need / largest // 0.05) * 0.05)
        capped = max_eval_samples and len(y) * share / val_fraction > max_eval_samples  # the cap would bite
        lift = f" --set max_eval_samples=0, lifting the cap of {max_eval_samples} documents" if capped else ""
        fixes = [f"give it a larger share of train (--set val_fraction={share:.2f}{lift})"]
        fixes += ["cut fewer folds (--set ensemble.folds=2)"] if folds > 2 else []
        raise DataError(
            f"{where}: the validation split ({len(y)} documents, val_fraction={val_fraction}) is too small for the "
            f"ensemble choice's {folds}-fold cross-validation (and {folds} folds again inside each meta-learner fit): "
            f"its largest class has {largest} document{'s' * (largest != 1)}, {need} in each class would do. "
            f"Any of these helps: {'; '.join(fixes)}; or more rows.")
    few = sorted((n for n in names if counts[n] < folds), key=lambda n: (counts[n], n))
    if few:
        warnings.warn(
            f"{where}: {len(few)} of {len(names)} classes have fewer validation documents than the ensemble choice's "
            f"{folds} folds ({_counted(few, counts)}): some folds hold none of them, so the choice weighs them "
            f"less. More rows, or a larger val_fraction, evens this out.", DataWarning, stacklevel=2)


def _subset(ds: Dataset, n: int, seed: int) -> Dataset:
    if not n or n >= len(ds):
        return ds
    _, idx = _stratified_split(np.array(ds["label"]), n / len(ds), seed)
    return ds.select(idx)


def load_data(source: str | os.PathLike | None = None, *, val_fraction: float = 0.1, seed: int = 42,
              max_train_samples: int = 0, max_eval_samples: int = 0) -> DatasetDict:
    """train / validation / test from None or a 20NG archive/folder, or your own .csv/.jsonl/.json/.parquet.
    Validation: a stratified `val_fraction` of train; test is only ever cut by the debug knob `max_eval_samples`."""
    path = Path(source).expanduser() if source else None
    own = path is not None and path.suffix.lower() in USER_SUFFIXES and not path.is_dir()
    # Anything else goes to 20 Newsgroups, whose resolver refuses files that are not archives.
    dsd = load_user_file(path, seed=seed) if own else load_20newsgroups(path)
    labels = np.array(dsd["train"]["label"])
    train_idx, val_idx = _stratified_split(labels, val_fraction, seed)
    out = DatasetDict(
        train=_subset(dsd["train"].select(train_idx), max_train_samples, seed),
        validation=_subset(dsd["train"].select(val_idx), max_eval_samples, seed),
        test=_subset(dsd["test"], max_eval_samples, seed),
    )
    if own:  # 20 Newsgroups is known to be fine: no warnings there
        cause = "the validation split" + (f" and max_train_samples={max_train_samples}" if max_train_samples else "")
        _warn_lost_classes(path, dsd["train"].features["label"].names, labels, out["train"]["label"], cause)
    return out


def load_for_profile(profile: Profile) -> DatasetDict:
    """The profile's splits; own data is checked against the ensemble's folds here, before any training."""
    dsd = load_data(profile.data or None, val_fraction=profile.val_fraction, seed=profile.split_seed,
                    max_train_samples=profile.max_train_samples, max_eval_samples=profile.max_eval_samples)
    if profile.data:  # 20 Newsgroups' validation split is known to be fine
        check_validation_folds(dsd["validation"]["label"], dsd["train"].features["label"].names,
                               profile.ensemble.folds, profile.seeds, profile.val_fraction, profile.data,
                               profile.max_eval_samples)
    return dsd


def class_list(names: list[str], first: int = 3) -> str:
    """e.g. "20 classes: alt.atheism, comp.graphics, comp.os.ms-windows.misc, ..., talk.religion.misc"; every name
    when at most `first` + 2 (an ellipsis never stands for one name)."""
    shown = list(names) if len(names) <= first + 2 else [*names[:first], "...", names[-1]]
    return f"{len(names)} {'class' if len(names) == 1 else 'classes'}: {', '.join(map(str, shown))}"


def is_empty(text: str) -> bool:
    return not text.strip()


# ---------------------------------------------------------------- tokenization


def _content_key(dsd: DatasetDict, tokenizer, max_length: int, truncation: str, fingerprint: str = "") -> str:
    # Our own key, not datasets' fingerprint: hashing a tokenizer object is not stable across processes.
    vocab = hashlib.sha256(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode()).hexdigest()
    special = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id]
    lower = getattr(tokenizer, "do_lower_case", None)
    tok = json.dumps({"class": type(tokenizer).__name__, "vocab": vocab, "lower": lower, "special": special},
                     sort_keys=True)
    fingerprint = fingerprint or dataset_fingerprint(dsd)  # hashing 20NG's texts takes ~0.6 s: pass it when known
    ident = f"v{TOKENIZATION_VERSION}|{max_length}|{truncation}|{tok}|{fingerprint}"
    return hashlib.sha256(ident.encode()).hexdigest()[:20]


def _load_cached(target: Path) -> DatasetDict | None:
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


def _save_atomic(dsd: DatasetDict, target: Path) -> None:
    # A folder written by datasets, where another process may win the race: not checkpoint's one-file writer.
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


def truncate_ids(ids: list[int], max_length: int, truncation: str, sep: int) -> list[int]:
    """Cut one [CLS] ... [SEP] sequence to max_length tokens. "head": the first max_length - 1 and [SEP], as the
    tokenizer's truncation=True; "head_tail": the first max_length // 4 and the last max_length - max_length // 4."""
    if len(ids) <= max_length:
        return list(ids)
    if truncation == "head":
        return list(ids[: max_length - 1]) + [sep]
    if truncation == "head_tail":
        head = max_length // 4
        return list(ids[:head]) + list(ids[len(ids) - (max_length - head):])
    raise ValueError(f"unknown truncation {truncation!r}; choose one of: {', '.join(TRUNCATIONS)}")


def tokenize(dsd: DatasetDict, tokenizer, max_length: int = 256, num_proc: int | None = None,
             truncation: str = "head", fingerprint: str = "") -> DatasetDict:
    """Add `input_ids` (cut by truncate_ids), `length`, `full_length`, `labels`, `idx`; cached under .cache/tok-<key>
    for the same texts, tokenizer, max_length and truncation. `fingerprint`: runs.dataset_fingerprint(dsd), if known."""
    if truncation not in TRUNCATIONS:
        raise ValueError(f"unknown truncation {truncation!r}; choose one of: {', '.join(TRUNCATIONS)}")
    target = cache_dir() / f"tok-{_content_key(dsd, tokenizer, max_length, truncation, fingerprint)}"
    cached = _load_cached(target)
    if cached is not None:
        log.info("tokenization cache hit: %s", target)
        return cached
    sep = tokenizer.sep_token_id

    def encode(batch, indices):
        # No truncation by the tokenizer, so the untruncated length is known; then cut (truncate_ids).
        ids = tokenizer(batch["text"], add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        cut = [truncate_ids(x, max_length, truncation, sep) for x in ids]
        return {"input_ids": cut, "length": [len(x) for x in cut], "full_length": [len(x) for x in ids],
                "labels": batch["label"], "idx": indices}

    added = {"input_ids": Sequence(Value("int32")), "length": Value("int32"), "full_length": Value("int32"),
             "labels": Value("int64"), "idx": Value("int64")}
    out = DatasetDict()
    for split, ds in dsd.items():
        out[split] = ds.map(encode, batched=True, with_indices=True, batch_size=512, num_proc=num_proc,
                            desc=f"tokenize {split}", load_from_cache_file=False,
                            features=Features({**ds.features, **added}))
    _save_atomic(out, target)
    return load_from_disk(str(target))
