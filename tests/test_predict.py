"""Tests of textlab.predict: the Python API and `python -m textlab predict` on the tiny trained run."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import torch
import pytest

from textlab import cli, ensemble_build
from textlab.errors import CheckpointError
from textlab.kinds import NEURAL
from textlab.predict import CHARS_PER_TOKEN, Predictor, load_predictor
from textlab.stats import softmax

KINDS = NEURAL
NASTY = {
    "empty": "",
    "whitespace": " \t\n  \r\n ",
    "control": "\x00\x01\x07\x1b[31mred alert\x1b[0m\x7f\x0b\x0c end",
    "emoji": "🚀🛰️ launch 😀🔥👍🏽 the shuttle 🇺🇸",
    "russian": "Космический челнок стартовал с мыса Канаверал. Привет, мир!",
    "chinese": "航天飞机从卡纳维拉尔角发射。你好，世界！",
    "mixed": "GPU driver crash ошибка 错误 \u200b\u202e reversed \ufeff bom",
}


@pytest.fixture(scope="module")
def predictors(trained_run) -> dict[str, Predictor]:
    run, _ = trained_run
    return {kind: load_predictor(run, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def test_texts(tiny_prep) -> list[str]:
    return list(tiny_prep.raw["test"]["text"])


def _check_result(r: dict, label_names: list[str], k: int) -> None:
    probs = [t["probability"] for t in r["top_k"]]
    assert len(probs) == k
    assert probs == sorted(probs, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert r["label"] == r["top_k"][0]["label"] == label_names[r["label_id"]]
    assert isinstance(r["truncated"], bool) and isinstance(r["empty"], bool)


@pytest.mark.parametrize("kind", KINDS)
def test_probabilities_sum_to_one_and_top_k_sorted(predictors, test_texts, kind):
    pred = predictors[kind]
    n_labels = len(pred.label_names)
    results = pred.predict(test_texts[:8], top_k=n_labels)
    for r in results:
        _check_result(r, pred.label_names, n_labels)
        assert sum(t["probability"] for t in r["top_k"]) == pytest.approx(1.0, abs=1e-5)
        assert sorted(t["label"] for t in r["top_k"]) == sorted(pred.label_names)
    assert all(len(r["top_k"]) == 3 for r in pred.predict(test_texts[:2]))  # default top_k
    assert len(pred.predict(test_texts[:1], top_k=10 * n_labels)[0]["top_k"]) == n_labels  # capped


@pytest.mark.parametrize("kind", KINDS)
def test_order_preserved_under_length_sorted_batching(predictors, test_texts, kind):
    pred = predictors[kind]
    texts = sorted(test_texts[:12], key=len)  # shortest first: the batching reorders them longest first
    texts = [texts[0], texts[-1]] + texts[1:-1] + [NASTY["empty"], NASTY["russian"]]
    # Logits, not probabilities: the tiny model's probabilities are all close to 1/20.
    together = pred.predict_logits(texts, batch_size=5)
    alone = np.concatenate([pred.predict_logits([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert np.abs(alone - np.roll(alone, 1, axis=0)).max(axis=1).min() > 1e-4  # a mix-up would show
    a, b = texts[0], texts[1]
    both = pred.predict([a, b], top_k=len(pred.label_names))
    for r, single in zip(both, (pred.predict([a], top_k=len(pred.label_names))[0],
                                 pred.predict([b], top_k=len(pred.label_names))[0])):
        assert r["label_id"] == single["label_id"]
        got = {t["label"]: t["probability"] for t in r["top_k"]}
        want = {t["label"]: t["probability"] for t in single["top_k"]}
        assert got == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_tokenization_matches_training(predictors, tiny_prep, test_texts, kind):
    """Same ids as the cached training tokenization (truncated head, [SEP] last) and the same truncation flag."""
    pred = predictors[kind]
    ids, truncated = pred.encode(test_texts)
    data = tiny_prep.data["test"]
    assert [list(x) for x in data["input_ids"]] == ids
    full = np.asarray(data["full_length"])
    assert truncated == list(full > pred.max_length)
    assert any(truncated) and not all(truncated)  # both branches exercised


@pytest.mark.parametrize("kind", KINDS)
def test_predictions_match_saved_test_logits(predictors, trained_run, tiny_prep, test_texts, kind):
    run, _ = trained_run
    logits = np.load(run / "seed-42" / kind / "logits_test.npy")
    lengths = np.asarray(tiny_prep.data["test"]["full_length"])
    pick = sorted({0, 1, 2, 3, int(lengths.argmax()), int(lengths.argmin())})  # a long and an empty/short one
    want = softmax(logits[pick])
    got = predictors[kind].predict_proba([test_texts[i] for i in pick])
    np.testing.assert_allclose(got, want, atol=1e-4)
    # Stricter, as the tiny model's probabilities are all near 1/20: the logits themselves.
    np.testing.assert_allclose(predictors[kind].predict_logits([test_texts[i] for i in pick]), logits[pick], atol=1e-4)
    results = predictors[kind].predict([test_texts[i] for i in pick])
    for r, p in zip(results, want):
        top2 = np.sort(p)[-2:]
        if top2[1] - top2[0] > 1e-4:  # argmax well defined
            assert r["label_id"] == int(p.argmax())


@pytest.mark.parametrize("kind", KINDS)
def test_nasty_inputs(predictors, kind):
    pred = predictors[kind]
    texts = list(NASTY.values())
    results = pred.predict(texts, top_k=len(pred.label_names))
    assert len(results) == len(texts)
    for name, r in zip(NASTY, results):
        _check_result(r, pred.label_names, len(pred.label_names))
        assert sum(t["probability"] for t in r["top_k"]) == pytest.approx(1.0, abs=1e-5), name
        assert r["empty"] == (name in ("empty", "whitespace")), name
        n_tokens = len(pred.tokenizer(texts[list(NASTY).index(name)], verbose=False)["input_ids"])
        assert r["truncated"] == (n_tokens > pred.max_length), name  # Cyrillic: many word pieces
    # The empty string and whitespace both reduce to [CLS] [SEP]: one and the same prediction.
    assert results[0]["top_k"] == results[1]["top_k"]
    assert pred.predict([]) == []
    with pytest.raises(TypeError, match="list of texts"):
        pred.predict("a single string")
    with pytest.raises(ValueError, match="top_k"):
        pred.predict(["x"], top_k=0)
    with pytest.raises(ValueError, match="batch_size"):
        pred.predict(["x"], batch_size=0)
    # Lone surrogates (what undecodable argv bytes become) must not crash the tokenizer.
    assert pred.predict(["caf\udce9 ok"])[0]["label"] in pred.label_names


@pytest.mark.parametrize("kind", KINDS)
def test_one_megabyte_text_is_truncated_fast(predictors, kind, monkeypatch):
    """Only a head of a long text is tokenized (all of 1 MB takes seconds), and it gives the whole text's ids."""
    pred = predictors[kind]
    words = "the shuttle launch was delayed by a faulty sensor on the pad and rescheduled for orbit "
    big = (words * (1_000_000 // len(words) + 1))[:1_000_000]
    tokenizer, seen = pred.tokenizer, []

    def counting(texts, **kw):
        seen.extend(len(t) for t in texts)
        return tokenizer(texts, **kw)

    monkeypatch.setattr(pred, "tokenizer", counting)
    ids, truncated = pred.encode([big])
    assert truncated == [True] and max(seen) <= CHARS_PER_TOKEN * pred.max_length
    monkeypatch.setattr(pred, "tokenizer", tokenizer)
    whole = tokenizer([big], truncation=True, max_length=pred.max_length)["input_ids"][0]
    assert ids == [whole]
    r = pred.predict([big], top_k=len(pred.label_names))[0]
    assert r["truncated"] and not r["empty"]
    head = pred.predict([words * 10], top_k=len(pred.label_names))[0]  # > max_length tokens: same kept head
    assert head["truncated"]
    assert {t["label"]: t["probability"] for t in r["top_k"]} == pytest.approx(
        {t["label"]: t["probability"] for t in head["top_k"]}, abs=1e-6)


def test_long_text_without_a_cut_point_falls_back_to_whole_text(predictors):
    pred = predictors["bert"]
    tok = pred.tokenizer
    cases = [" " * 5000 + "orbit " * 100,  # the head is all whitespace: the words are further on
             "\x00" * 3000 + " " + "orbit " * 100,  # control characters produce no token
             "x" * 200_000]  # one enormous "word": a single [UNK]
    ids, truncated = pred.encode(cases)
    for text, x, cut in zip(cases, ids, truncated):
        full = tok(text, truncation=False, verbose=False)["input_ids"]
        assert cut == (len(full) > pred.max_length)
        assert x == tok(text, truncation=True, max_length=pred.max_length)["input_ids"]
    assert truncated == [True, True, False]


def test_load_predictor_errors(tmp_path, trained_run, monkeypatch):
    run, _ = trained_run
    with pytest.raises(ValueError, match="bert, bilstm, ensemble"):
        load_predictor(run, "svm")
    (tmp_path / "seed-42").mkdir()  # a run folder with nothing trained yet
    with pytest.raises(CheckpointError, match="03_bilstm") as e:
        load_predictor(tmp_path, "bilstm")
    assert str(tmp_path / "seed-42" / "bilstm") in str(e.value)
    with pytest.raises(CheckpointError, match="02_bert"):
        load_predictor(tmp_path, "bert")
    with pytest.raises(CheckpointError, match="notebook 04") as e:
        load_predictor(tmp_path, "ensemble")
    assert "ensemble" in str(e.value)
    (tmp_path / "ensemble").mkdir()
    (tmp_path / "ensemble" / "ensemble.json").write_text('{"class": "Stacker", "members": ["bert"]}')
    with pytest.raises(ValueError, match="unknown ensemble class 'Stacker'"):
        load_predictor(tmp_path, "ensemble")


def test_ensemble_predictor_reproduces_the_chosen_ensemble(trained_run, tiny_run, tiny_prep):
    from textlab.artifacts import read_npy

    run, _ = trained_run
    ensemble_build.build_ensemble(tiny_run)
    pred = load_predictor(run, "ensemble")
    texts = list(tiny_prep.raw["test"]["text"][:8])
    out = pred.predict(texts + ["", "🚀 орбита 火箭"], top_k=2)
    assert len(out) == 10 and out[-2]["empty"] and all(len(r["top_k"]) == 2 for r in out)
    expected = read_npy(run / "ensemble" / "proba_test_chosen.npy")[:8]
    got = np.array([[t["probability"] for t in r["top_k"]] for r in out[:8]])
    np.testing.assert_allclose(got, -np.sort(-expected, axis=1)[:, :2], atol=1e-4)
    assert [r["label_id"] for r in out[:8]] == expected.argmax(1).tolist()


# ---------------------------------------------------------------- command line


def _predict(*argv) -> int:
    return cli.main(["predict", *map(str, argv)])


def test_cli_text_output(trained_run, capsys):
    run, _ = trained_run
    assert _predict("--run", run, "--model", "bilstm", "--top-k", "2", "the shuttle reached orbit", "",
                    NASTY["chinese"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    out = captured.out.splitlines()
    assert len(out) == 3
    names = set(json.loads((run / "seed-42" / "bilstm" / "metrics.json").read_text())["label_names"])
    for line in out:
        label, rest = line.split("  (p=", 1)
        assert label in names
        assert "| top-2: " in rest
        assert 0.0 <= float(rest.split(")", 1)[0]) <= 1.0
    assert out[1].endswith("[empty input]")


def test_cli_argument_with_undecodable_bytes(trained_run, capsys):
    """On POSIX, argv bytes that are not UTF-8 arrive as surrogate escapes (PEP 383)."""
    run, _ = trained_run
    assert _predict("--run", run, "--json", "ok", b"caf\xe9".decode("utf-8", "surrogateescape")) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["text"] for line in captured.out.splitlines()] == ["ok", "caf\ufffd"]
    assert "argument 2: 1 undecodable byte(s)" in captured.err


def test_cli_json_lines(trained_run, capsys):
    run, _ = trained_run
    texts = ["the shuttle reached orbit " * 40, "Привет, мир", NASTY["emoji"]]
    assert _predict("--run", run, "--json", "--top-k", "4", *texts) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert [r["text"] for r in rows] == [t[:60] for t in texts]
    assert all(len(r["top_k"]) == 4 and r["label"] == r["top_k"][0]["label"] for r in rows)
    assert [r["truncated"] for r in rows] == [True, False, False]


def test_cli_file_with_undecodable_bytes(trained_run, tmp_path, capsys):
    run, _ = trained_run
    f = tmp_path / "docs.txt"
    f.write_bytes(b"caf\xe9\xff\nspace shuttle launch\r\n\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\n"
                  b"\n\x00 control \x07 chars\n")
    assert _predict("--run", run, "--json", "--file", f) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["text"] for r in rows] == ["caf\ufffd\ufffd", "space shuttle launch", "Привет", "",
                                        "\x00 control \x07 chars"]
    assert [r["empty"] for r in rows] == [False, False, False, True, False]
    assert str(f) in captured.err and "2 undecodable byte(s) on 1 line(s) (line 1)" in captured.err
    # A clean file: no warning.
    g = tmp_path / "clean.txt"
    g.write_text("orbit\n", encoding="utf-8")
    assert _predict("--run", run, "--file", g) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and len(captured.out.splitlines()) == 1


@pytest.mark.parametrize("how", ["dash", "file-dash"])
def test_cli_stdin(trained_run, monkeypatch, capsys, how):
    run, _ = trained_run
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"first doc\nsecond \xff doc\n")))
    args = ["-"] if how == "dash" else ["--file", "-"]
    assert _predict("--run", run, "--json", *args) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["text"] for line in captured.out.splitlines()] == ["first doc", "second \ufffd doc"]
    assert "<stdin>" in captured.err and "1 undecodable byte(s)" in captured.err


def test_cli_errors(trained_run, tmp_path, monkeypatch, capsys):
    run, _ = trained_run
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert _predict("--run", run) == 2
    assert "no input" in capsys.readouterr().err
    assert _predict("--run", run, "-") == 2  # empty stdin
    assert "no input" in capsys.readouterr().err
    assert _predict("--run", run, "--model", "svm", "x") == 2
    assert "bert, bilstm, ensemble" in capsys.readouterr().err
    (tmp_path / "seed-42").mkdir()  # a run folder with nothing trained yet
    assert _predict("--run", tmp_path, "x") == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "seed-42" / "bert") in err and "02_bert" in err
    assert _predict("--run", run, "--file", tmp_path / "absent.txt") == 2
    assert "absent.txt" in capsys.readouterr().err


def test_cli_file_that_is_a_folder_or_missing(trained_run, tmp_path, capsys):
    run, _ = trained_run
    assert _predict("--run", run, "--file", tmp_path) == 2
    assert capsys.readouterr().err == (f"error: --file {tmp_path} is a folder; "
                                       "give a text file with one document per line\n")
    missing = tmp_path / "absent.txt"
    assert _predict("--run", run, "--file", missing) == 2
    assert capsys.readouterr().err == f"error: --file {missing} does not exist\n"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_run_folder_that_does_not_exist_lists_its_trained_siblings(tmp_path, capsys):
    for name, kind in (("cpu", "bert"), ("gpu", "bilstm")):  # trained (a checkpoint pointer), and not
        (tmp_path / name / "seed-42" / kind).mkdir(parents=True)
        (tmp_path / name / "seed-42" / kind / "checkpoints.json").write_text("{}")
    (tmp_path / "notes").mkdir()
    (tmp_path / "untrained" / "bert").mkdir(parents=True)
    missing = tmp_path / "smoke"
    for model in ("bert", "bilstm", "ensemble"):
        with pytest.raises(CheckpointError) as e:
            load_predictor(missing, model)
        assert str(e.value) == (f"run folder {missing} does not exist; run folders with a trained model beside it: "
                                f"{tmp_path / 'cpu'}, {tmp_path / 'gpu'}")
    assert _predict("--run", missing, "x") == 2
    assert capsys.readouterr().err == f"error: {e.value}\n"
    lonely = tmp_path / "notes" / "run"
    with pytest.raises(CheckpointError, match=f"^run folder {lonely} does not exist, and no folder beside it "
                                              f"\\(in {tmp_path / 'notes'}\\) holds a trained model$"):
        load_predictor(lonely)
    with pytest.raises(CheckpointError, match="does not exist, and no folder beside it"):
        load_predictor(tmp_path / "nowhere" / "deeper" / "run")
    assert not missing.exists() and not lonely.exists() and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_faster_precisions_agree_with_fp32(trained_run, tiny_prep, precision):
    """The opt-in faster paths change the arithmetic, not the model: logits close to fp32's, same shape, and int8
    really quantizes the linear layers."""
    run, _ = trained_run
    texts = list(tiny_prep.raw["test"]["text"][:16])
    fp32 = load_predictor(run, "bert", device="cpu").predict_logits(texts)
    fast = load_predictor(run, "bert", device="cpu", precision=precision)
    got = fast.predict_logits(texts)
    assert got.shape == fp32.shape and np.abs(got - fp32).max() < 0.1 * np.abs(fp32).max()
    linear = [m for m in fast.model.modules() if type(m).__name__ == "Linear"]
    assert linear and (precision == "int8") == (not any(type(m) is torch.nn.Linear for m in linear))


def test_unknown_precision_lists_the_valid_ones(trained_run):
    with pytest.raises(ValueError, match="unknown precision 'fp8'; choose one of: fp32, bf16, int8"):
        load_predictor(trained_run[0], "bert", precision="fp8")


def test_a_file_or_a_plain_folder_is_not_a_run(tmp_path):
    (tmp_path / "reviews.csv").write_text("text,label\nx,a\n")
    (tmp_path / "plain").mkdir()
    for path in (tmp_path / "reviews.csv", tmp_path / "plain"):
        with pytest.raises(CheckpointError, match=f"^{path} is not a run folder .*give --run the folder of a trained"):
            load_predictor(path, "bert")


def test_runs_root_that_is_a_file_says_so(tmp_path, monkeypatch):
    from textlab import runs

    (tmp_path / "f").write_text("")
    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path / "f"))
    with pytest.raises(runs.RunError, match=r"TEXTLAB_RUNS .*f is a file, not a folder: "
                                            r"point TEXTLAB_RUNS at a folder"):
        runs.runs_root()
