import codecs
import csv
import io
import json
import re
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from datasets import DatasetDict

from textlab import data, dataset, owndata, tokenization
from textlab.backbones import get_backbone
from textlab.errors import DataError, DataWarning


@pytest.fixture(scope="module")
def nga(archive):
    return data.load_20newsgroups(archive)


@pytest.fixture(scope="module")
def tokenizer():
    return get_backbone("tiny").tokenizer()


def test_archive_has_exact_bydate_sizes_and_20_classes(nga):
    assert len(nga["train"]) == 11_314
    assert len(nga["test"]) == 7_532
    names = nga["train"].features["label"].names
    assert len(names) == 20 and names[0] == "alt.atheism" and names[-1] == "talk.religion.misc"
    assert len(set(nga["test"]["label"])) == 20


def test_headers_footers_quotes_are_stripped(nga):
    # Counts measured independently with scikit-learn's fetch_20newsgroups(remove=(...)) on this data.
    assert sum(dataset.is_empty(t) for t in nga["train"]["text"]) == 300
    assert sum(dataset.is_empty(t) for t in nga["test"]["text"]) == 215
    texts = nga["train"]["text"][:500]
    assert not any(t.startswith("From:") for t in texts)  # headers gone
    assert not any(line.startswith(">") for t in texts for line in t.splitlines())  # quoted lines gone


def test_validation_split_is_stratified_disjoint_and_reproducible(archive):
    a = data.load_data(archive, val_fraction=0.1, seed=42)
    b = data.load_data(archive, val_fraction=0.1, seed=42)
    c = data.load_data(archive, val_fraction=0.1, seed=7)
    assert len(a["train"]) + len(a["validation"]) == 11_314
    assert len(a["validation"]) == 1_132 and len(a["test"]) == 7_532
    assert not set(a["train"]["doc_id"]) & set(a["validation"]["doc_id"])
    assert list(a["validation"]["doc_id"]) == list(b["validation"]["doc_id"])
    assert list(a["validation"]["doc_id"]) != list(c["validation"]["doc_id"])
    full = np.bincount(list(a["train"]["label"]) + list(a["validation"]["label"]), minlength=20)
    val = np.bincount(a["validation"]["label"], minlength=20)
    assert np.all(np.abs(val - 0.1 * full) <= 1.5)  # stratified: each class keeps ~10 %


def test_extracted_folder_gives_the_same_data(archive, tmp_path, monkeypatch, nga):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    group = next((tmp_path / "x" / "20news-bydate-train").iterdir())
    (group / ".ipynb_checkpoints").mkdir()  # what an editor leaves beside a file it opened: not a message
    folder = data.load_20newsgroups(tmp_path / "x")
    assert list(folder["test"]["text"]) == list(nga["test"]["text"])
    assert list(folder["train"]["label"]) == list(nga["train"]["label"])


def test_missing_path_names_it_and_both_ways(tmp_path):
    missing = tmp_path / "nowhere.tar.gz"
    with pytest.raises(DataError) as e:
        data.load_data(missing)
    msg = str(e.value)
    assert str(missing) in msg and "TEXTLAB_20NG" in msg and "fetch_20newsgroups" in msg


def test_missing_env_path_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLAB_20NG", str(tmp_path / "gone"))
    with pytest.raises(DataError, match="TEXTLAB_20NG"):
        data.load_20newsgroups()


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_truncated_or_corrupt_archive_is_a_clear_error(archive, tmp_path, monkeypatch, how):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "20news-bydate.tar.gz"
    raw = archive.read_bytes()
    bad.write_bytes(raw[: len(raw) // 3] if how == "truncated" else b"\x1f\x8b" + bytes(range(256)) * 100)
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load_20newsgroups(bad)


def test_archive_without_20_groups_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "small.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for split in ("20news-bydate-train", "20news-bydate-test"):
            info = tarfile.TarInfo(f"{split}/sci.space/1")
            body = b"Subject: x\n\nhello"
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    with pytest.raises(DataError, match="found 1 groups"):
        data.load_20newsgroups(path)


def _frame(n=90, classes=("neg", "neu", "pos")):
    rng = np.random.default_rng(0)
    labels = [classes[i % len(classes)] for i in range(n)]
    return pd.DataFrame({"text": [f"doc {i} about {lab} " + "w" * int(rng.integers(1, 5))
                                  for i, lab in enumerate(labels)],
                         "label": labels})


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_own_file_with_three_classes(tmp_path, suffix):
    df = _frame()
    path = tmp_path / f"mine{suffix}"
    {".csv": lambda: df.to_csv(path, index=False), ".jsonl": lambda: df.to_json(path, orient="records", lines=True),
     ".parquet": lambda: df.to_parquet(path)}[suffix]()
    dsd = data.load_data(path, val_fraction=0.2, seed=1)
    assert dsd["train"].features["label"].names == ["neg", "neu", "pos"]
    assert len(dsd["train"]) + len(dsd["validation"]) + len(dsd["test"]) == 90
    assert len(dsd["test"]) == 18  # 20 % carved for test
    assert set(dsd["test"]["label"]) == {0, 1, 2}


def test_own_file_split_column_is_honoured(tmp_path):
    df = _frame()
    df["split"] = ["test" if i < 30 else "train" for i in range(len(df))]
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    dsd = data.load_data(path)
    assert len(dsd["test"]) == 30 and len(dsd["train"]) + len(dsd["validation"]) == 60


def test_csv_without_text_column(tmp_path):
    path = tmp_path / "bad.csv"
    _frame().rename(columns={"text": "body"}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"no 'text' column; found columns \['body', 'label'\]"):
        data.load_data(path)


def test_csv_with_empty_labels(tmp_path):
    df = _frame()
    df.loc[[3, 7], "label"] = ""
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"2 rows have an empty label \(e.g. file lines \[5, 9\]\)"):
        data.load_data(path)


# ---------------------------------------------------------------- labels are the text in the file

NUMBERLIKE = ["007", "7", "7.0", "1.0", "1", "1e3", "-0"]  # all numbers to pandas' type guessing
BOOLLIKE = ["true", "True", "TRUE", "false"]  # all booleans to its guessing
NALIKE = ["NA", "nan", "null", "None", "n/a", "#N/A"]  # missing values to pandas (CSV: keep_default_na)


def _write(df: pd.DataFrame, path: Path) -> Path:
    {".csv": lambda: df.to_csv(path, index=False), ".jsonl": lambda: df.to_json(path, orient="records", lines=True),
     ".json": lambda: df.to_json(path, orient="records"), ".parquet": lambda: df.to_parquet(path)}[path.suffix]()
    return path


def _labels_by_row(dsd: DatasetDict) -> dict[int, str]:
    """Each row's label name, by its row in the file (doc_id)."""
    return {int(d): ds.features["label"].int2str(y) for ds in dsd.values() for d, y in zip(ds["doc_id"], ds["label"])}


@pytest.mark.parametrize("names", [NUMBERLIKE, BOOLLIKE, NALIKE], ids=["numbers", "booleans", "na"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet"])
def test_number_like_labels_stay_as_written(tmp_path, suffix, names):
    labels = names * 6
    df = pd.DataFrame({"text": [f"doc {i}" for i in range(len(labels))], "label": labels})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        dsd = owndata.load_user_file(_write(df, tmp_path / f"mine{suffix}"))
    assert dsd["train"].features["label"].names == sorted(names)  # e.g. "007", "7", "7.0": three classes
    assert _labels_by_row(dsd) == dict(enumerate(labels))


def test_json_numbers_are_labelled_by_their_text(tmp_path):
    values = ["1", "2", "1.5", "1.0", "1e3", "-0", "true", "false", "12345678901234567890", '"1"']
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(f'{{"text": "doc {i}", "label": {v}}}\n' for i, v in enumerate(values * 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        dsd = owndata.load_user_file(path)
    want = ["1", "2", "1.5", "1.0", "1e3", "-0", "True", "False", "12345678901234567890", "1"]  # booleans as Python's
    assert _labels_by_row(dsd) == dict(enumerate(want * 3))


def test_parquet_numbers_are_labelled_without_a_stray_decimal(tmp_path):
    df = pd.DataFrame({"text": [f"doc {i}" for i in range(24)], "label": [1, 2, 3] * 8,
                       "fraction": [1, 2, 1.5] * 8, "flag": [True, False, True] * 8})
    wanted = {"label": ["1", "2", "3"], "fraction": ["1", "2", "1.5"], "flag": ["True", "False", "True"]}
    for column, want in wanted.items():
        path = tmp_path / f"{column}.parquet"
        df[["text", column]].rename(columns={column: "label"}).to_parquet(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            dsd = owndata.load_user_file(path)
        assert _labels_by_row(dsd) == dict(enumerate(want * 8)), column


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_whitespace_around_labels_is_stripped_with_one_warning(tmp_path, suffix):
    labels = ["spam", " spam", "ham", "ham ", "\tspam\n", " spam", "h am"] * 4
    df = pd.DataFrame({"text": [f"doc {i}" for i in range(len(labels))], "label": labels})
    path = _write(df, tmp_path / f"mine{suffix}")
    dsd, warned = _load(path)
    assert dsd["train"].features["label"].names == ["h am", "ham", "spam"]
    unit, first = ("row", 1) if suffix == ".parquet" else ("line", 1 + (suffix == ".csv"))
    assert [w for w in warned if "leading/trailing" in w] == [
        f"{path}: 16 label(s) had leading/trailing whitespace, stripped (e.g. {unit} {first + 1} ' spam' -> 'spam'; "
        f"{unit} {first + 3} 'ham ' -> 'ham'; {unit} {first + 4} '\\tspam\\n' -> 'spam'). A label is its text "
        "without the spaces around it; strip them in the file to silence this warning."]


# ---------------------------------------------------------------- malformed files name the line


def test_malformed_jsonl_line_is_named_by_its_line(tmp_path):
    path = _write(_frame(12), tmp_path / "mine.jsonl")
    lines = path.read_text().split("\n")
    lines[6] = lines[6].replace('","label"', '" "label"')  # line 7: a comma missing
    path.write_text("\n".join(lines[:2] + [""] + lines[2:]))  # a blank line before: skipped, but counted
    with pytest.raises(DataError) as e:
        owndata.load_user_file(path)
    assert str(e.value).startswith(f"{path}: line 8 could not be read as JSON: Expecting ',' delimiter (column ")
    path.write_text('{"text": "a", "label": "x"}\n["b", "y"]\n')
    with pytest.raises(DataError, match=f"^{path}: line 2 is not a JSON object; each line of a .jsonl file"):
        owndata.load_user_file(path)


def test_malformed_csv_row_is_named_by_its_file_line(tmp_path):
    path = tmp_path / "mine.csv"
    rows = ["text,label", '"spans\nthree\nlines",a', "", "fine,b", "one, too many,a", "fine again,b"]
    path.write_text("\n".join(rows) + "\n")  # the bad row is on line 7 (pandas: "line 5")
    with pytest.raises(DataError) as e:
        owndata.load_user_file(path)
    assert str(e.value) == (
        f"{path}: line 7 has 3 fields, the header 2. A value holding a comma must be in double quotes "
        '("one, two"), a double quote inside one written twice ("say ""hi"""); correct that line.')
    rows[4:6] = ['"one, two",a', '"never closed,b']  # pandas: "EOF inside string starting at row 5"
    path.write_text("\r\n".join(rows) + "\r\n")
    with pytest.raises(DataError) as e:
        owndata.load_user_file(path)
    assert str(e.value) == (
        f"{path}: line 8 opens a double-quoted value that is never closed, so the rest of the file became part of "
        'it. Close it, or write a double quote inside a value twice ("say ""hi""").')


def test_malformed_json_is_named_by_its_line(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text('[\n  {"text": "a", "label": "x"},\n  {"text": "b", "label": "y"}\n  {"text": "c"}\n]\n')
    with pytest.raises(DataError, match=f"^{path}: line 4 could not be read as JSON: Expecting ',' delimiter"):
        owndata.load_user_file(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_half_an_emoji_escape_is_named_by_its_line(tmp_path, suffix):
    # pandas writes 🚀 as \\ud83d\\ude80; a line cut after the first half holds no character (pyarrow would fail)
    rows = [{"text": "launch 🚀", "label": "a"}, {"text": "b", "label": "b"}, {"text": "half 🚀", "label": "a"}]
    path = tmp_path / f"mine{suffix}"
    lines = [json.dumps(r) for r in rows]
    lines[2] = lines[2].replace("\\ude80", "")
    path.write_text("\n".join(lines) + "\n" if suffix == ".jsonl" else "[\n" + ",\n".join(lines) + "\n]\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: line {3 + (suffix == '.json')} holds \\ud83d, half of")):
        owndata.load_user_file(path)


def test_jsonl_blank_lines_do_not_shift_the_lines_warnings_name(tmp_path):
    rows = [{"text": f"doc {i}", "label": "ab"[i % 2]} for i in range(20)] + [{"text": "doc 3", "label": "b"}]
    path = tmp_path / "mine.jsonl"
    lines = [json.dumps(r) for r in rows]
    path.write_text("\n".join(lines[:10] + ["", "  "] + lines[10:]) + "\n")  # lines 11 and 12 blank
    _, warned = _load(path)
    assert any("e.g. line 23 repeats line 4)" in w for w in warned)


def test_unsupported_own_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="could not be read"):
        owndata.load_user_file(path)


def test_tokenize_truncates_like_the_tokenizer_and_is_cached(tmp_path, monkeypatch, tokenizer):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path))
    df = _frame(30)
    df.loc[0, "text"] = "word " * 200  # longer than max_length
    df.loc[1, "text"] = "   "  # empty after stripping
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    dsd = data.load_data(path, seed=0)
    tok = tokenization.tokenize(dsd, tokenizer, max_length=16)
    for split in tok:
        for ids, text, n, full in zip(tok[split]["input_ids"], tok[split]["text"], tok[split]["length"],
                                      tok[split]["full_length"]):
            assert ids == tokenizer(text, truncation=True, max_length=16)["input_ids"]
            assert n == len(ids) <= 16 and full >= n
    assert len(list(tmp_path.glob("tok-*"))) == 2  # the texts tokenized whole, and their cut to 16

    def boom(*a, **k):
        raise AssertionError("tokenizer called: cache not used")

    monkeypatch.setattr(type(tokenizer), "__call__", boom)
    again = tokenization.tokenize(dsd, tokenizer, max_length=16)  # must come from the cache
    assert list(again["train"]["input_ids"]) == list(tok["train"]["input_ids"])
    longer = tokenization.tokenize(dsd, tokenizer, max_length=20)  # another cut of the whole: no tokenizer call
    assert len(list(tmp_path.glob("tok-*"))) == 3 and not list(tmp_path.glob(".cut-*"))
    for a, b, n in zip(longer["train"]["input_ids"], tok["train"]["input_ids"], longer["train"]["full_length"]):
        assert len(a) == min(n, 20) and (a == b if n <= 16 else a[:15] == b[:15])


def test_cut_lists_is_truncate_ids_on_every_row():
    rng = np.random.default_rng(0)
    rows = pa.array([rng.integers(1000, 2000, size=k).tolist() for k in rng.integers(0, 60, size=300)],
                    pa.list_(pa.int32()))
    for ids in (rows, rows.slice(37, 200)):  # a slice's offsets point into the whole child array
        for max_length in (1, 2, 4, 5, 16, 17, 59, 64):
            for truncation in ("head", "head_tail"):
                want = [tokenization.truncate_ids(r, max_length, truncation, 102) for r in ids.to_pylist()]
                assert tokenization.cut_lists(ids, max_length, truncation, 102).to_pylist() == want


def test_truncate_ids_head_and_head_tail():
    ids = [101] + list(range(1000, 1030)) + [102]  # [CLS] 30 tokens [SEP]
    assert tokenization.truncate_ids(ids, 64, "head_tail", 102) == ids  # short sequences are never cut
    head = tokenization.truncate_ids(ids, 16, "head", 102)
    assert head == [101] + list(range(1000, 1014)) + [102]
    both = tokenization.truncate_ids(ids, 16, "head_tail", 102)  # 16 // 4 = 4 from the head, 12 from the tail
    assert both == [101, 1000, 1001, 1002] + list(range(1019, 1030)) + [102]
    with pytest.raises(ValueError, match="unknown truncation 'middle'; choose one of: head, head_tail"):
        tokenization.truncate_ids(ids, 16, "middle", 102)


def test_tokenize_head_tail_is_its_own_cache_entry(tmp_path, monkeypatch, tokenizer):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path))
    df = _frame(30)
    df.loc[0, "text"] = " ".join(f"w{i}" for i in range(200))  # longer than max_length
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    dsd = data.load_data(path, seed=0)
    head = tokenization.tokenize(dsd, tokenizer, max_length=16)
    both = tokenization.tokenize(dsd, tokenizer, max_length=16, truncation="head_tail")
    assert len(list(tmp_path.glob("tok-*"))) == 3  # whole, head, head_tail
    cut = 0
    for split in both:
        for text, h, b in zip(both[split]["text"], head[split]["input_ids"], both[split]["input_ids"]):
            full = tokenizer(text, truncation=False, verbose=False)["input_ids"]
            assert b == tokenization.truncate_ids(full, 16, "head_tail", tokenizer.sep_token_id) and len(b) <= 16
            assert h[:4] == b[:4]
            if len(full) > 16:
                assert b[-12:] == full[-12:] and h != b
                cut += 1
    assert cut >= 1
    with pytest.raises(ValueError, match="unknown truncation"):
        tokenization.tokenize(dsd, tokenizer, max_length=16, truncation="tail")


def test_no_path_and_no_download_says_both_ways(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.delenv("TEXTLAB_20NG", raising=False)
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(data, "fetch_20newsgroups", offline)
    with pytest.raises(DataError, match=r"TEXTLAB_20NG.*internet.*fetch_20newsgroups|TEXTLAB_20NG.*fetch_20newsgroups"):
        data.load_20newsgroups()


# ---------------------------------------------------------------- what load_data accepts


@pytest.mark.parametrize("name", ["notes.txt", "table.tsv", "mine.csv.gz"])
def test_other_file_types_are_refused_naming_the_file_and_the_types(tmp_path, monkeypatch, name):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    path = tmp_path / name
    path.write_text("text\tlabel\nhello\tgreeting\n")
    with pytest.raises(DataError) as e:
        data.load_data(path)
    msg = str(e.value)
    assert f"{path} (from data_path) is not a data file textlab can read" in msg
    assert ".csv, .jsonl, .json or .parquet file with `text` and `label` columns" in msg
    assert "the original 20news-bydate.tar.gz or its extracted folder" in msg
    assert "truncated or corrupt" not in msg
    assert list((tmp_path / "cache").glob("*")) == []  # nothing cached
    assert path.read_text() == "text\tlabel\nhello\tgreeting\n"


def test_missing_paths_are_reported_by_kind(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=f"^{tmp_path / 'gone.txt'} \\(from data_path\\) does not exist; textlab reads "
                                        "your own data as a .csv"):
        data.load_data(tmp_path / "gone.txt")
    with pytest.raises(DataError, match=f"^data file {tmp_path / 'gone.jsonl'} does not exist$"):
        data.load_data(tmp_path / "gone.jsonl")
    with pytest.raises(DataError, match=f"20 Newsgroups not found at {tmp_path / 'gone'} .*TEXTLAB_20NG"):
        data.load_data(tmp_path / "gone")  # no suffix: perhaps the extracted folder
    monkeypatch.setenv("TEXTLAB_20NG", str(tmp_path / "notes.txt"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes.txt \(from \$TEXTLAB_20NG\) is not a data file"):
        data.load_data()
    assert list((tmp_path / "cache").glob("*")) == []


def test_folders_and_every_archive_suffix_go_to_20_newsgroups(archive, tmp_path):
    with pytest.raises(DataError, match="has no folder 20news-bydate-train/"):
        data.load_data(tmp_path)  # a folder: the extracted-archive reader
    for suffix in (".tgz", ".tar", ".tar.bz2", ".tar.xz"):  # tarfile opens any of them whatever the name
        link = tmp_path / f"20news{suffix}"
        link.symlink_to(archive)
        dsd = data.load_data(link)  # the archive's cache entry (same bytes)
        assert len(dsd["train"]) + len(dsd["validation"]) == 11_314 and len(dsd["test"]) == 7_532


# ---------------------------------------------------------------- encoding


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_non_utf8_file_names_the_line_and_the_byte(tmp_path, suffix):
    df = _frame(12)
    path = tmp_path / f"mine{suffix}"
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_json(path, orient="records", lines=True)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[6] = lines[6].replace(b"doc", "café".encode("cp1252"), 1)  # line 7: Windows-1252, as Excel writes
    path.write_bytes(b"".join(lines))
    before = path.read_bytes()
    with pytest.raises(DataError) as e:
        data.load_data(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: line 7 is not UTF-8 (byte 0xe9 at byte ")
    assert "Save the file as UTF-8" in msg
    assert path.read_bytes() == before


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_utf8_with_bom_is_read(tmp_path, suffix):
    df = _frame()
    df.loc[0, "text"] = "café naïve 🚀"
    path = tmp_path / f"mine{suffix}"
    text = {".csv": lambda: df.to_csv(index=False), ".jsonl": lambda: df.to_json(orient="records", lines=True),
            ".json": lambda: df.to_json(orient="records")}[suffix]()
    path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dsd = owndata.load_user_file(path)
    assert _data_warnings(record) == []
    assert "café naïve 🚀" in list(dsd["train"]["text"]) + list(dsd["test"]["text"])
    assert len(dsd["train"]) + len(dsd["test"]) == 90 and "text" in dsd["train"].column_names


# ---------------------------------------------------------------- the split column


@pytest.mark.parametrize("only, lacking", [("train", "test"), ("test", "train")])
def test_split_column_with_one_side_only(tmp_path, monkeypatch, only, lacking):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    df = _frame()
    df["split"] = only
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError) as e:
        data.load_data(path)
    assert str(e.value) == (
        f"{path}: column `split` marks all 90 rows {only} and none {lacking}. Add rows with split={lacking}, or "
        "drop the `split` column to let textlab carve a stratified test split (20% of the rows).")
    assert list((tmp_path / "cache").glob("*")) == []


# ---------------------------------------------------------------- warnings on your own data


def _data_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, DataWarning)]


def _load(path, **kw) -> tuple[DatasetDict, list[str]]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dsd = data.load_data(path, **kw)
    return dsd, _data_warnings(record)


def test_20_newsgroups_gives_no_data_warning(archive):
    dsd, warned = _load(archive)
    assert warned == []
    assert sum(dataset.is_empty(t) for t in dsd["train"]["text"]) > 200  # identical empty documents: no "duplicates"


@pytest.mark.parametrize("split", [False, True])
def test_clean_file_gives_no_data_warning(tmp_path, split):
    df = _frame()
    if split:
        df["split"] = ["test" if i % 5 == 0 else "train" for i in range(len(df))]
    df.loc[[1, 4, 7], "text"] = ""  # empty documents (same label) are not duplicates
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    _, warned = _load(path)
    assert warned == []


def test_duplicates_and_conflicting_labels(tmp_path):
    rows = [("first\nspans two lines", "a")] + [(f"doc {i}", "ab"[i % 2]) for i in range(20)]
    rows += [("doc 2", "a"), ("doc 3", "b"), ("doc 3", "b"), ("doc 4", "b"), ("", "a"), ("", "a")]
    path = tmp_path / "mine.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    # File lines: header 1, the two-line text 2-3, "doc i" at line i + 4, the extra rows from line 24 on.
    _, warned = _load(path)
    dup = [w for w in warned if " duplicate row(s) " in w]
    conflict = [w for w in warned if "different labels" in w]
    assert dup == [f"{path}: 3 duplicate row(s) (the same text and label as an earlier row; e.g. line 24 repeats "
                   "line 6; line 25 repeats line 7; line 26 repeats line 7). They weigh more in training and, split "
                   "across train and test, inflate the test score; drop them (e.g. pandas "
                   "drop_duplicates(['text', 'label']))."]
    assert conflict == [f"{path}: 1 text(s) appear with different labels (e.g. line 8 'a' vs line 27 'b'); at most "
                        "one label can be right for each: correct or drop them."]
    jsonl = tmp_path / "mine.jsonl"  # one record per line
    pd.DataFrame(rows, columns=["text", "label"]).to_json(jsonl, orient="records", lines=True)
    _, warned = _load(jsonl)
    assert any("e.g. line 22 repeats line 4;" in w for w in warned)
    parquet = tmp_path / "mine.parquet"  # no lines: 1-based rows
    pd.DataFrame(rows, columns=["text", "label"]).to_parquet(parquet)
    _, warned = _load(parquet)
    assert any("e.g. row 22 repeats row 4;" in w for w in warned)


def test_overlap_and_labels_only_in_test(tmp_path):
    rows = [(f"doc {i}", "ab"[i % 2], "train") for i in range(20)]
    rows += [("doc 0", "a", "test"), ("doc 1", "b", "test"), ("new", "a", "test"), ("odd", "c", "test"),
             ("odder", "c", "test"), ("", "a", "train"), ("", "a", "test")]  # empty texts: no overlap
    path = tmp_path / "mine.jsonl"
    pd.DataFrame(rows, columns=["text", "label", "split"]).to_json(path, orient="records", lines=True)
    dsd, warned = _load(path)
    assert f"{path}: 2 of 6 test documents also appear verbatim in train (e.g. lines 21, 22); the test score " \
           "counts them as unseen. Remove them from train or from test." in warned
    assert f"{path}: 1 label(s) occur only in test, never in train (test documents: 'c' (2)); the model never " \
           "sees them in training and cannot predict them. Add training rows for them, or drop them. They stay in " \
           "the test set, where every model's answer to them counts as an error, so test scores stay honest." in warned
    assert len(warned) == 3  # and the duplicates "doc 0" / "doc 1"
    assert dsd["train"].features["label"].names == ["a", "b", "c"]  # usable: the data still loads


def test_classes_with_few_training_documents(tmp_path):
    assert owndata.MIN_TRAIN_PER_CLASS == 5
    labels = ["big"] * 30 + ["four"] * 4 + ["five"] * 5 + ["one"]
    df = pd.DataFrame({"text": [f"doc {i}" for i in range(len(labels))], "label": labels, "split": "train"})
    df = pd.concat([df, pd.DataFrame({"text": ["t1", "t2", "t3"], "label": ["big", "four", "one"], "split": "test"})])
    path = tmp_path / "mine.parquet"
    df.to_parquet(path)
    _, warned = _load(path, val_fraction=0.1, seed=0)
    rare = [w for w in warned if "fewer than" in w]
    assert rare == [f"{path}: 2 class(es) have fewer than 5 training documents: 'four' (4), 'one' (1); the model can "
                    "hardly learn them, and the validation split may take their only ones. Add examples, or merge "
                    "or drop these classes."]


def test_class_whose_only_training_document_goes_to_validation(tmp_path):
    labels = ["a"] * 20 + ["b"] * 20 + ["solo"]
    df = pd.DataFrame({"text": [f"doc {i}" for i in range(len(labels))], "label": labels, "split": "train"})
    df = pd.concat([df, pd.DataFrame({"text": ["t1", "t2", "t3"], "label": ["a", "b", "solo"], "split": "test"})])
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    lost = {}
    for seed in range(12):  # the split is random (no stratifying with a class of 1): "solo" lands either side
        dsd, warned = _load(path, val_fraction=0.3, seed=seed)
        solo = dsd["train"].features["label"].str2int("solo")
        lost[seed] = [w for w in warned if "no training document left" in w]
        assert bool(lost[seed]) == (solo not in dsd["train"]["label"]), seed
    assert any(lost.values()) and not all(lost.values())
    assert next(w for w in lost.values() if w) == [
        f"{path}: after the validation split, 1 class(es) have no training document left (training documents in "
        "the file: 'solo' (1)); the model never sees them in training. Add training rows for them (at least 5 each)."]
    _, warned = _load(path, val_fraction=0.3, seed=next(s for s, w in lost.items() if w), max_train_samples=20)
    assert any("after the validation split and max_train_samples=20, " in w for w in warned)


# ---------------------------------------------------------------- the data cache


def _tiny_20ng(path: Path) -> Path:
    """A bydate-layout archive with 20 groups and one document per group and split."""
    with tarfile.open(path, "w:gz") as tar:
        for split in ("20news-bydate-train", "20news-bydate-test"):
            for g in range(20):
                body = f"Subject: s\n\ngroup {g} {split}".encode()
                info = tarfile.TarInfo(f"{split}/group{g:02d}/{g}")
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return path


def _truncate_arrow(entry: Path) -> Path:
    arrow = sorted(entry.rglob("*.arrow"))[0]
    raw = arrow.read_bytes()
    arrow.write_bytes(raw[: len(raw) // 2])
    return arrow


def test_unreadable_20ng_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    archive = _tiny_20ng(tmp_path / "tiny.tar.gz")
    first = data.load_20newsgroups(archive)
    (entry,) = (tmp_path / "cache").glob("20ng-*")
    _truncate_arrow(entry)
    with pytest.warns(DataWarning, match=f"cache entry {entry} is unreadable, rebuilt") as record:
        again = data.load_20newsgroups(archive)
    assert len(_data_warnings(record)) == 1
    assert list(again["train"]["text"]) == list(first["train"]["text"]) and len(again["test"]) == 20
    with warnings.catch_warnings(record=True) as record:  # the rebuilt entry is sound
        warnings.simplefilter("always")
        assert list(data.load_20newsgroups(archive)["test"]["label"]) == list(first["test"]["label"])
    assert _data_warnings(record) == [] and [p.name for p in (tmp_path / "cache").iterdir()] == [entry.name]


def test_unreadable_tokenization_cache_entry_is_rebuilt(tmp_path, monkeypatch, tokenizer):
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "t.csv"
    _frame(30).to_csv(path, index=False)
    dsd = data.load_data(path, seed=0)
    tok = tokenization.tokenize(dsd, tokenizer, max_length=16)
    want = {split: list(tok[split]["input_ids"]) for split in tok}  # read now: tok is memory-mapped from the entry
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    for entry in (tmp_path / "cache").glob("tok-*"):  # the whole and the cut
        _truncate_arrow(entry)
    with pytest.warns(DataWarning, match="cache entry .*tok-.* is unreadable, rebuilt"):
        again = tokenization.tokenize(dsd, tokenizer, max_length=16)
    assert {split: list(again[split]["input_ids"]) for split in again} == want
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == entries


def test_textlab_20ng_naming_your_own_file_says_where_it_goes(tmp_path, monkeypatch):
    own = tmp_path / "my.csv"
    own.write_text("text,label\na,x\nb,y\n")
    monkeypatch.setenv("TEXTLAB_20NG", str(own))
    with pytest.raises(DataError, match=r"\$TEXTLAB_20NG=.*my.csv names your own .csv file.*--data .*my.csv"):
        data.load_data(None)


POST = ("From: ann@b.edu (Ann)\nSubject: Re: orbits\nOrganization: B University\nLines: 9\n\n"
        "In article <1@b.edu> joe@c.com (Joe) writes:\n> Is the orbit stable?\n|> yes it is\n"
        "Joe: it decays in a year.\nSee you.\n\n-- \nAnn, B University\n")


def test_newsgroup_stripping_is_pinned():
    """data.py imports scikit-learn's private strip functions (what fetch_20newsgroups(remove=...) applies): a release
    that changes what they strip would silently change every document; this fails loudly instead."""
    body = POST.split("\n\n", 1)[1]
    assert data.strip_newsgroup_header(POST) == body
    assert data.strip_newsgroup_footer(POST) == POST[: POST.index("\n\n-- ")] + "\n"
    assert data.strip_newsgroup_quoting(POST) == POST.replace(
        "In article <1@b.edu> joe@c.com (Joe) writes:\n> Is the orbit stable?\n|> yes it is\n", "")
    assert data._strip(POST) == "Joe: it decays in a year.\nSee you.\n"


def test_class_list_elides_only_more_than_two_names():
    from textlab.data import class_list

    assert class_list(["0", "1"]) == "2 classes: 0, 1"
    assert class_list(list("abcde")) == "5 classes: a, b, c, d, e"
    assert class_list(list("abcdef")) == "6 classes: a, b, c, ..., f"


def test_validation_folds_the_ensemble_cannot_cut_are_refused_with_the_minimum():
    from textlab.owndata import check_validation_folds

    names = ["a", "b", "c"]
    check_validation_folds(np.repeat([0, 1, 2], 4), names, 3, (42, 43), 0.1, "f.csv")  # 4 each: cuts, no warning
    with pytest.raises(DataError, match=r"f.csv: the validation split \(9 documents, val_fraction=0.1\) is too small "
                                        r"for the ensemble choice's 3-fold cross-validation .* its largest class has 3 "
                                        r"documents, 4 in each class would do\. Any of these helps: give it a larger "
                                        r"share of train \(--set val_fraction=0.15\); cut fewer folds "
                                        r"\(--set ensemble.folds=2\); or more rows\."):
        check_validation_folds(np.repeat([0, 1, 2], 3), names, 3, (42,), 0.1, "f.csv")
    with pytest.raises(DataError, match=r"\(--set val_fraction=0.15 --set max_eval_samples=0, lifting the cap of 9 "
                                        r"documents\)"):
        check_validation_folds(np.repeat([0, 1, 2], 3), names, 3, (42,), 0.1, "f.csv", max_eval_samples=9)
    with pytest.warns(DataWarning, match=r"1 of 3 classes have fewer validation documents than the ensemble "
                                         r"choice's 3 folds \('c' \(1\)\)"):
        check_validation_folds(np.array([0] * 6 + [1] * 6 + [2]), names, 3, (42,), 0.1, "f.csv")


@pytest.mark.parametrize("content, message", [
    ("", "is empty: it needs a header line (text,label) and one row per document"),
    ("\n\n", "is empty: it needs a header line (text,label) and one row per document"),
    ("text,label\n", "has columns but no rows: add one row per document (text and label)"),
    ("text,label\nhello,only\n", "need at least 2 classes, found ['only']")])
def test_files_without_documents_or_classes_say_so(tmp_path, content, message):
    path = tmp_path / "mine.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=re.escape(f"{path}") + ".*" + re.escape(message)):
        data.load_data(path)


def test_utf8_is_checked_in_pieces_that_may_split_a_character(tmp_path, monkeypatch):
    monkeypatch.setattr(owndata, "UTF8_PIECE", 5)  # every piece boundary, somewhere inside a multi-byte character
    df = _frame(30)
    df.loc[3, "text"] = "café naïve 🚀 ünïcödé"
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    dsd = owndata.load_user_file(path)
    assert "café naïve 🚀 ünïcödé" in list(dsd["train"]["text"]) + list(dsd["test"]["text"])
    lines = path.read_bytes().splitlines(keepends=True)
    lines[20] = lines[20].replace(b"doc", b"d\xe9c", 1)  # line 21, far past the first piece
    path.write_bytes(b"".join(lines))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: line 21 is not UTF-8 \(byte 0xe9 at byte 2 "):
        owndata.load_user_file(path)


def test_column_reads_a_selected_dataset_in_its_order(tmp_path):
    path = tmp_path / "mine.csv"
    _frame(40).to_csv(path, index=False)
    train = data.load_data(path, seed=0)["train"]  # a selection (indices mapping) of the file's rows
    assert dataset.column(train, "text") == list(train["text"])
    labels = dataset.column(train, "label")
    assert isinstance(labels, np.ndarray) and labels.tolist() == list(train["label"])

    texts = dataset.iter_texts(train, batch_size=7)  # 32 training rows: batch edges inside the selection
    assert not isinstance(texts, list) and list(texts) == list(train["text"])


def test_overview_counts_what_notebook_01_shows(tmp_path, monkeypatch, tokenizer):
    from textlab.overview import overview

    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    df = _frame(60)
    df.loc[0, "text"], df.loc[1, "text"] = "   ", "\n"  # two empty documents
    long = " ".join(f"w{i}" for i in range(30))  # more than 20 words: an example
    df.loc[7, "text"], df.loc[10, "text"] = long, long + " again"  # rows 7 and 10: classes neu and neg
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    raw = data.load_data(path, seed=0)
    tok = tokenization.tokenize(raw, tokenizer, max_length=8)
    view = overview(raw, tok, {"bert": 8, "bilstm": 4})
    assert view.sizes.loc["train", "documents"] == len(raw["train"]) and set(view.sizes["classes"]) <= {1, 2, 3}
    for s in raw:
        full = np.array([len(tokenizer(t)["input_ids"]) for t in raw[s]["text"]])
        assert view.full_lengths[s].tolist() == full.tolist()
        assert view.lengths.loc[s, "truncated at 4"] == pytest.approx((full > 4).mean())
        assert view.lengths.loc[s, "truncated at 8"] == pytest.approx((full > 8).mean())
        assert view.empty.loc[s, "empty"] == sum(not t.strip() for t in raw[s]["text"])
    assert view.empty["empty"].sum() == 2 and view.empty["documents"].sum() == 60
    train = list(zip(raw["train"]["text"], raw["train"]["label"]))
    names = raw["train"].features["label"].names
    want = [{"class": n, "text": next(t for t, y in train if y == c and len(t.split()) > 20)}
            for c, n in enumerate(names) if any(y == c and len(t.split()) > 20 for t, y in train)]
    assert view.examples.to_dict("records") == want and len(want) >= 1


def test_a_row_split_by_an_unquoted_carriage_return_says_so(tmp_path):
    df = _frame(30)
    df.loc[4, "text"] = "a signature line\r"  # pandas' to_csv leaves it unquoted: every reader ends the row there
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"1 rows have an empty label .*carriage return \(\\r\) without a line feed"):
        owndata.load_user_file(path)
    df.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)  # the fix the message gives
    dsd = owndata.load_user_file(path)
    assert len(dsd["train"]) + len(dsd["test"]) == 30
