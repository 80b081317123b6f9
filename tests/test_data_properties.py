"""Property-based tests of the own-data reader (owndata.load_user_file): whatever labels and texts a user writes with
pandas as .csv, .jsonl or .parquet come back as written, and any file, however damaged, either loads or stops with
a one-line DataError, never another exception."""

import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textlab import owndata
from textlab.errors import DataError, DataWarning

SUFFIXES = [".csv", ".jsonl", ".parquet"]
# Labels pandas' type guessing would turn into numbers, booleans or missing values; all are labels as written.
LOOKALIKES = ["007", "7", "7.0", "1.0", "1", "1e3", "-0", "0x1F", "nan", "NaN", "NA", "N/A", "null", "None", "inf",
              "True", "false", "TRUE", "#N/A", "-"]
# Characters that stress the writers and readers: delimiters, quotes, line breaks, escapes, non-ASCII.
TRICKY = ",;\"'\\\n\r\t {}[]:#ab1.é漢🚀\u2028\x00"
PADDING = ["", "", "", " ", "\t", "  ", "\n"]  # around a label: stripped (with a warning)
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

labels = st.one_of(st.sampled_from(LOOKALIKES), st.text(TRICKY, max_size=6),
                   st.text(max_size=6)).map(str.strip).filter(bool)
texts = st.one_of(st.text(max_size=20), st.text(TRICKY, max_size=20))


@st.composite
def tables(draw) -> tuple[pd.DataFrame, list[str]]:
    """A text / label table of 1 to 50 classes, each used at least once (labels padded with whitespace on some
    rows), and the label each row must come back as."""
    names = draw(st.lists(labels, min_size=1, max_size=50, unique=True))
    extra = draw(st.lists(st.integers(0, len(names) - 1), max_size=20))
    order = draw(st.permutations(list(range(len(names))) + extra))
    written = [draw(st.sampled_from(PADDING)) + names[i] + draw(st.sampled_from(PADDING)) for i in order]
    df = pd.DataFrame({"text": [draw(texts) for _ in order], "label": written})
    return df, [names[i] for i in order]


def write(df: pd.DataFrame, path: Path) -> Path:
    # pandas' CSV writer ends lines with "\n" and then leaves a lone "\r" in a value unquoted, which every CSV reader
    # (pandas, Python's csv, Excel) takes for a line break: such values need the "\r\n" of Excel and RFC 4180.
    cr = df.map(lambda v: "\r" in v).to_numpy().any()
    {".csv": lambda: df.to_csv(path, index=False, lineterminator="\r\n" if cr else "\n"),
     ".jsonl": lambda: df.to_json(path, orient="records", lines=True), ".parquet": lambda: df.to_parquet(path)}[
        path.suffix]()
    return path


def load(path: Path):
    """load_user_file's result (or its DataError) and the DataWarnings it gave; any other exception propagates."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            out = owndata.load_user_file(path)
        except DataError as e:
            assert "\n" not in str(e), f"a DataError must be one line: {e}"
            out = e
    return out, [str(w.message) for w in record if issubclass(w.category, DataWarning)]


@pytest.mark.parametrize("suffix", SUFFIXES)
@SETTINGS
@given(table=tables())
def test_labels_and_rows_come_back_as_written(suffix, table):
    df, want = table
    with tempfile.TemporaryDirectory() as tmp:
        dsd, warned = load(write(df, Path(tmp) / f"mine{suffix}"))
    if len(set(want)) < 2:
        assert isinstance(dsd, DataError) and "need at least 2 classes" in str(dsd)
        return
    assert not isinstance(dsd, DataError), str(dsd)
    names = dsd["train"].features["label"].names
    assert names == sorted(set(want))  # "007", "7" and "7.0" are three classes, "nan" and "NA" labels
    rows = sorted((int(d), text, names[y]) for ds in dsd.values()
                  for d, text, y in zip(ds["doc_id"], ds["text"], ds["label"]))
    assert [d for d, _, _ in rows] == list(range(len(df)))  # every row, once (doc_id: its row in the file)
    assert [label for _, _, label in rows] == want  # each row's label, as written less surrounding whitespace
    assert [text for _, text, _ in rows] == df["text"].tolist()  # texts too ("" for an empty one)
    padded = sum(a != b for a, b in zip(df["label"], want))
    stripped = [w for w in warned if "leading/trailing whitespace" in w]
    assert len(stripped) == (padded > 0) and all(f": {padded} label(s) had leading" in w for w in stripped)


@st.composite
def damaged(draw, suffix: str) -> bytes:
    """A file pandas wrote, then damaged: a slice cut out, syntax characters put in, or cut short."""
    df, _ = draw(tables())
    with tempfile.TemporaryDirectory() as tmp:
        raw = write(df, Path(tmp) / f"x{suffix}").read_bytes()
    at = draw(st.integers(0, len(raw)))
    how = draw(st.sampled_from(["cut", "insert", "truncate"]))
    if how == "cut":
        return raw[:at] + raw[at + draw(st.integers(1, 8)):]
    if how == "insert":
        return raw[:at] + draw(st.text(TRICKY, min_size=1, max_size=4)).encode() + raw[at:]
    return raw[:at]


@pytest.mark.parametrize("suffix", SUFFIXES + [".json"])
@SETTINGS
@given(st.data())
def test_any_damaged_file_loads_or_is_a_one_line_data_error(suffix, data_):
    raw = data_.draw(damaged(".jsonl" if suffix == ".json" else suffix))
    if suffix == ".json":  # a .jsonl's lines as one array: a .json file's records
        raw = b"[" + b",".join(raw.splitlines()) + b"]"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"mine{suffix}"
        path.write_bytes(raw)
        load(path)  # returns a DatasetDict or a DataError; anything else fails the test
