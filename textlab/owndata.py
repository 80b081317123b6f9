"""Your own data: a .csv / .jsonl / .json / .parquet file with `text` and `label` columns read as written (labels are
the text in the file), every problem a DataError naming the file line, and what looks wrong a DataWarning with
counts; and, before any training, whether its validation split can be cross-validated by the ensemble choice."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import DatasetDict

from .dataset import column, from_rows, is_empty, stratified_split
from .errors import DataError, DataWarning
from .stats import stratified_folds

USER_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
# A JSON \\u escape of a high surrogate without a low one after it, or of a low one without a high one before it.
LONE_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})"
                            r"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
UTF8_PIECE = 1 << 24  # bytes checked to be UTF-8 at a time
MIN_TRAIN_PER_CLASS = 5  # fewer training documents than this: a class the model can hardly learn


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
            f"{path}: {int(empty.sum())} rows have an empty label (e.g. file {where[0]}s {rows}); fill or drop them"
            + _lone_cr_hint(path))
    texts = df.pop("text").fillna("").astype(str).tolist()  # popped: the frame's copy is freed (1.2 GB at 1 M)
    labels = _stripped(path, [_label_text(x) for x in df["label"]], where)
    names = sorted(set(labels))
    if not labels:
        raise DataError(f"{path} has columns but no rows: add one row per document (text and label)")
    if len(names) < 2:
        raise DataError(f"{path}: need at least 2 classes, found {names}")
    full = from_rows(texts, labels, [str(i) for i in df.index], names)
    if "split" in df.columns:
        is_test = _test_rows(path, df["split"], test_fraction)
        train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    else:
        train_idx, test_idx = stratified_split(column(full, "label"), test_fraction, seed)
    _warn_duplicates(path, texts, labels, where)
    _warn_splits(path, texts, labels, train_idx, test_idx, where)
    return DatasetDict(train=full.select(train_idx), test=full.select(test_idx))


def _lone_cr_hint(path: Path) -> str:
    """Why a .csv written by pandas can have rows without labels: a text holding a carriage return not followed by
    a line feed is not quoted by to_csv (it quotes texts holding its line end, a line feed), and every reader takes
    that carriage return as the end of the row (seen in documents of 20 Newsgroups)."""
    if path.suffix.lower() != ".csv" or not re.search(rb"\r(?!\n)", path.read_bytes()):
        return ""
    return (". The file holds a carriage return (\\r) without a line feed: a writer that did not quote the text "
            "around it (pandas' to_csv does not) splits that row in two there. Write the file with every text "
            "quoted (to_csv(..., quoting=csv.QUOTE_NONNUMERIC)) or remove the \\r characters.")


def _read_table(path: Path) -> pd.DataFrame:
    """The file's rows. A .csv / .jsonl / .json value is the text written, not pandas' guess at a type (which made
    labels 007 and 7.0 one class "7.0", and "true" "True"); an empty CSV cell is missing, "NA" or "null" is text."""
    suffix = path.suffix.lower()
    if suffix not in USER_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(USER_SUFFIXES)}")
    if suffix != ".parquet":
        _check_utf8(path)  # a DataError naming the line
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":  # from the file: the bytes in memory, or a StringIO of the text (4x), doubled the peak
            return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False, na_values=[""])
        return _read_json(path, path.read_text(encoding="utf-8-sig"), lines=suffix == ".jsonl")
    except DataError:
        raise
    except pd.errors.ParserError as e:  # .csv
        raise DataError(_csv_error(path, path.read_text(encoding="utf-8-sig"), e)) from e
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


def _check_utf8(path: Path) -> None:
    """That the file is UTF-8, checked here, not by pandas, which reports a bad byte by its offset in a read chunk;
    read in pieces, so that no copy of the whole file is held. A BOM (Excel's "CSV UTF-8") is fine: read the file as
    "utf-8-sig"."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as f:
            while piece := f.read(UTF8_PIECE):
                decoder.decode(piece)
        decoder.decode(b"", final=True)
        return
    except UnicodeDecodeError:
        pass
    raw = path.read_bytes()  # only now, for the bad byte's position in the file
    try:
        raw.decode("utf-8")
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


# ---------------------------------------------------------------- warnings


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


def counted(names, counts: Counter, k: int = 5) -> str:
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
            f"{counted(only_test, test)}); the model never sees them in training and cannot predict them. Add "
            "training rows for them, or drop them. They stay in the test set, where every model's answer to them "
            "counts as an error, so test scores stay honest.", DataWarning, stacklevel=2)
    rare = sorted(name for name, n in train.items() if n < MIN_TRAIN_PER_CLASS)
    if rare:
        warnings.warn(
            f"{path}: {len(rare)} class(es) have fewer than {MIN_TRAIN_PER_CLASS} training documents: "
            f"{counted(rare, train)}; the model can hardly learn them, and the validation split may take their "
            "only ones. Add examples, or merge or drop these classes.", DataWarning, stacklevel=2)


def warn_lost_classes(path: Path, names: list[str], before, after, cause: str) -> None:
    """Classes that had training documents in the file but none left in the training set (load_data)."""
    counts = Counter(names[i] for i in before)
    lost = sorted(set(counts) - {names[i] for i in after})
    if lost:
        warnings.warn(
            f"{path}: after {cause}, {len(lost)} class(es) have no training document left (training documents in "
            f"the file: {counted(lost, counts)}); the model never sees them in training. Add training rows for "
            f"them (at least {MIN_TRAIN_PER_CLASS} each).", DataWarning, stacklevel=2)


# ---------------------------------------------------------------- before training: the ensemble's folds


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
            f"{folds} folds ({counted(few, counts)}): some folds hold none of them, so the choice weighs them "
            f"less. More rows, or a larger val_fraction, evens this out.", DataWarning, stacklevel=2)
