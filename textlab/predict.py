"""Classify new text with a trained run, tokenized and cut exactly as in training: `load_predictor(run,
model).predict(texts)` and `python -m textlab predict --run runs/cpu [--model M] [--file F | -] [TEXTS ...]`."""

from __future__ import annotations

import codecs
import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .backbones import get_backbone, quiet_transformers
from .batching import Collator, LengthGroupedBatchSampler
from .artifacts import EXPORT, read_export, read_json
from .checkpoint import POINTER, checkpoint_path
from .errors import CheckpointError
from .tokenization import truncate_ids
from .ensemble import load_variant
from .kinds import NEURAL, SERVED
from .models.tfidf import TfidfSVM
from .pipeline import load_model, seed_dir
from .runs import read_manifest, run_seeds, train_first
from .stats import softmax

# Arithmetic of the forward pass: fp32 (as evaluated in training's reports); bf16 autocast (AMX / AVX512-BF16 CPUs,
# recent GPUs); int8: dynamic quantization of every nn.Linear (CPU). Speed and accuracy of each:
# benchmarks/bench_predict.py, docs/speed.md.
INFERENCE_PRECISIONS = ("fp32", "bf16", "int8")
CHARS_PER_TOKEN = 16  # a WordPiece token spans >= 1 character: a head of 16 x max_length characters is ample


class Predictor:
    """A trained BERT or BiLSTM checkpoint with its tokenizer, in eval mode on `device`."""

    def __init__(self, model: torch.nn.Module, meta: dict, tokenizer, device: str | None = None,
                 precision: str = "fp32"):
        if precision not in INFERENCE_PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(INFERENCE_PRECISIONS)}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if precision == "int8":
            if self.device != "cpu":
                raise ValueError("precision int8 (dynamic quantization) runs on the CPU: use device='cpu', or bf16")
            with warnings.catch_warnings():  # torch.ao's notice that this API moves to torchao; it works as documented
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model.eval(), {torch.nn.Linear}, dtype=torch.qint8)
        self.precision = precision
        self.model = model.to(self.device).eval()
        self.meta = meta
        self.label_names: list[str] = list(meta["label_names"])
        self.max_length: int = int(meta["max_length"])
        self.truncation: str = meta["truncation"]
        self.tokenizer = tokenizer
        self.collator = Collator(tokenizer)  # the training loader's padding (dynamic, multiple of 8)
        self._n_special = tokenizer.num_special_tokens_to_add(pair=False)  # [CLS] ... [SEP]
        self._sep = tokenizer.sep_token_id

    def encode(self, texts: list[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids cut as in training (truncate_ids) and whether each text was longer than max_length.

        A 1 MB text takes ~0.5 s to tokenize whole, its head 2 ms. With truncation "head", only a head cut at a space
        is tokenized (WordPiece never joins across spaces, so its tokens are a prefix of the whole text's), and the
        whole text only when that head is too short to fill max_length; "head_tail" needs the whole text.
        """
        texts = [_valid_str(t) for t in texts]
        heads = [_head(t, CHARS_PER_TOKEN * self.max_length) if self.truncation == "head" else t for t in texts]
        ids = self._tokenize(heads)
        redo = [i for i, (h, t) in enumerate(zip(heads, texts)) if len(h) < len(t) and len(ids[i]) <= self.max_length]
        for i, x in zip(redo, self._tokenize([texts[i] for i in redo])):
            ids[i] = x
        return ([truncate_ids(x, self.max_length, self.truncation, self._sep) for x in ids],
                [len(x) > self.max_length for x in ids])

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        # Not truncated by the tokenizer, so the whole length is known (as in tokenization.tokenize).
        return self.tokenizer(texts, truncation=False, verbose=False)["input_ids"] if texts else []

    def predict_logits(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Logits (N, num_labels), float32, rows in input order."""
        return self.logits_and_flags(texts, batch_size)[0]

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities (N, num_labels), float32, rows in input order."""
        return softmax(self.predict_logits(texts, batch_size)).astype(np.float32)

    @torch.inference_mode()
    def logits_and_flags(self, texts: list[str], batch_size: int = 32) -> tuple[np.ndarray, list[bool], list[bool]]:
        """Logits in input order, and per text whether it was truncated and whether it was empty."""
        ids, truncated = self.encode(_check_texts(texts))
        logits = np.zeros((len(ids), len(self.label_names)), dtype=np.float32)
        # shuffle=False: the rows sorted longest first (least padding), as in evaluation
        for rows in LengthGroupedBatchSampler(map(len, ids), batch_size, shuffle=False):
            batch = self.collator([{"input_ids": ids[i]} for i in rows])
            with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                out = self.model(input_ids=batch["input_ids"].to(self.device),
                                 attention_mask=batch["attention_mask"].to(self.device))
            logits[rows] = out.logits.float().cpu().numpy()  # (B, N)
        return logits, truncated, [len(x) <= self._n_special for x in ids]

    def predict(self, texts: list[str], top_k: int = 3, batch_size: int = 32) -> list[dict]:
        """One dict per text, in input order (see results): truncated = longer than max_length tokens, empty = no
        token besides [CLS]/[SEP]."""
        _check_top_k(top_k)
        logits, truncated, empty = self.logits_and_flags(texts, batch_size)
        return results(softmax(logits), self.label_names, top_k, truncated, empty)


class EnsemblePredictor:
    """The run's ensemble, chosen in notebook 04 (within a seed, or a deep ensemble over every seed's members): its
    members' predictions combined by the fitted variant."""

    def __init__(self, run, device: str | None = None, precision: str = "fp32", tokenizer=None):
        """`run`: a run folder, or an exported ensemble (the same layout); `tokenizer`: None = each member's
        backbone's."""
        run = Path(run)
        info_path = run / "ensemble" / "ensemble.json"
        info = read_json(info_path)
        self.variant = load_variant(info, run / "ensemble")
        self.members = list(info["members"])
        folders = dict(zip(self.members, info["member_folders"]))  # e.g. "bert@43" -> "seed-43/bert"
        self.neural = {m: _model_predictor(run / f, device, precision, tokenizer) for m, f in folders.items()
                       if Path(f).name in NEURAL}
        self.tfidf = {m: TfidfSVM.load(run / f / "model") for m, f in folders.items() if Path(f).name == "tfidf"}
        if not self.neural:
            raise CheckpointError(f"{info_path} names no neural member ({self.members})")
        self.label_names = next(iter(self.neural.values())).label_names

    def predict(self, texts: list[str], top_k: int = 3, batch_size: int = 32) -> list[dict]:
        _check_top_k(top_k)
        texts = _check_texts(texts)
        neural = {m: p.logits_and_flags(texts, batch_size) for m, p in self.neural.items()}
        clean = [_valid_str(t) for t in texts] if self.tfidf else []
        logits = [neural[m][0] if m in neural else self.tfidf[m].decision_function(clean) for m in self.members]
        # members may read different lengths: truncated if any member did not read the whole text
        truncated = [any(flags) for flags in zip(*(v[1] for v in neural.values()))]
        empty = neural[next(iter(neural))][2]  # the same for every member: no token besides [CLS]/[SEP]
        return results(self.variant.predict_proba(logits), self.label_names, top_k, truncated, empty)


def results(proba: np.ndarray, label_names: list[str], top_k: int, truncated: list[bool],
            empty: list[bool]) -> list[dict]:
    """One dict per text: label, label_id, top_k [{label, probability}] (most probable first), truncated, empty."""
    best = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]  # (N, min(top_k, C))
    return [{"label": label_names[b[0]], "label_id": int(b[0]),
             "top_k": [{"label": label_names[j], "probability": float(p[j])} for j in b],
             "truncated": bool(cut), "empty": bool(void)} for p, b, cut, void in zip(proba, best, truncated, empty)]


def _check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")


def _check_texts(texts) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("predict takes a list of texts; wrap a single text in a list: predict([text])")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be str; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    return texts


def _valid_str(text: str) -> str:
    """Lone surrogates (e.g. undecodable bytes in sys.argv) cannot reach the tokenizer: make them U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def _head(text: str, n: int) -> str:
    """The first ~n characters, cut at a space; the whole text if it is short or has no space to cut at."""
    if len(text) <= n:
        return text
    cut = max(text.rfind(" ", 0, n), text.rfind("\n", 0, n))
    return text[:cut] if cut > 0 else text


def load_predictor(run, model: str | None = None, device: str | None = None, precision: str = "fp32",
                   seed: int | None = None):
    """The predictor of `model` (one of kinds.SERVED; default bert) trained in run folder `run` (e.g.
    runs/cpu), or of the model exported to folder `run` by `textlab export` (default: the one it holds);
    `precision` (INFERENCE_PRECISIONS) of its forward pass. bert / bilstm: the model of training seed `seed`
    (default: the run's first); ensemble: the one the run chose (seed must be None)."""
    if model is not None and model not in SERVED:
        raise ValueError(f"unknown model {model!r}; choose one of: {', '.join(SERVED)}")
    run = Path(run)
    check_run_folder(run)
    if (run / EXPORT).exists():
        return _exported(run, model, device, precision, seed)
    model = model or "bert"
    seed = choose_seed(run, model, seed)
    if model == "ensemble":
        if not (run / model / "ensemble.json").exists():
            raise CheckpointError(f"{run / model} holds no trained ensemble (ensemble.json is missing): "
                                  f"{train_first(run, model)}")
        return EnsemblePredictor(run, device, precision)
    folder = seed_dir(run, seed) / model if seed is not None else run / model
    if not (folder / POINTER).exists():
        raise CheckpointError(f"{folder} holds no trained {model} model ({POINTER} is missing): "
                              f"{train_first(run, model)}")
    return _model_predictor(folder, device, precision)


def choose_seed(run: Path, model: str, seed: int | None) -> int | None:
    """The training seed whose `model` is meant: `seed`, if the run has it, else the run's first; None for the
    ensemble, which is the run's choice (a ValueError if a seed is given for it)."""
    if model == "ensemble":
        if seed is not None:
            raise ValueError("--seed picks a BERT or BiLSTM of one training seed; the ensemble is the run's choice")
        return None
    seeds = run_seeds(run)
    if seed is not None and seeds and seed not in seeds:
        raise ValueError(f"run {run} has no training seed {seed}; its seeds: {', '.join(map(str, seeds))}")
    return seed if seed is not None else (seeds[0] if seeds else None)


def check_run_folder(run: Path) -> None:
    """A CheckpointError unless `run` is a run folder or an exported model's folder."""
    if not run.exists():
        raise CheckpointError(_no_run_folder(run))
    if not run.is_dir() or not ((run / EXPORT).exists() or read_manifest(run) or any(run.glob("seed-*"))):
        raise CheckpointError(f"{run} is not a run folder (one made by `python -m textlab run`, holding manifest.json "
                              f"and seed-*/) nor an exported model ({EXPORT}): give --run the folder of a trained "
                              f"run, e.g. runs/cpu")


def _model_predictor(folder: Path, device: str | None, precision: str, tokenizer=None) -> Predictor:
    net, meta = load_model(folder)
    missing = [k for k in ("backbone", "label_names", "max_length") if k not in meta]
    if missing:
        raise CheckpointError(f"{checkpoint_path(folder, 'best') / 'meta.json'} lacks {', '.join(missing)}: "
                              "it cannot serve predictions")
    return Predictor(net, meta, tokenizer or get_backbone(meta["backbone"]).tokenizer(), device, precision)


def _exported(folder: Path, model: str | None, device: str | None, precision: str, seed: int | None):
    """The predictor of an exported model (textlab.export), its files checked against the export's hashes first;
    nothing of the run folder it came from is read."""
    info = read_export(folder)
    kind = info["model"]
    if model not in (None, kind):
        raise ValueError(f"{folder} holds the exported {kind} model, not {model}: give --model {kind} or leave it out")
    if seed is not None and seed != info.get("seed"):
        raise ValueError(f"{folder} holds the {kind} model of training seed {info.get('seed')}; export seed {seed} "
                         "from its run to predict with it")
    tokenizer = AutoTokenizer.from_pretrained(folder / info["tokenizer"])
    if kind == "ensemble":
        return EnsemblePredictor(folder, device, precision, tokenizer)
    if kind == "bilstm":
        return _model_predictor(folder / info["folder"], device, precision, tokenizer)
    with quiet_transformers():
        net = AutoModelForSequenceClassification.from_pretrained(folder)  # the transformers folder itself
    return Predictor(net, info["meta"], tokenizer, device, precision)


def _no_run_folder(run: Path) -> str:
    """The message for a run folder that does not exist, with the run folders beside it (likely meant instead)."""
    beside = sorted(run.parent.iterdir()) if run.parent.is_dir() else []
    trained = [str(d) for d in beside if any(d.glob(f"seed-*/*/{POINTER}"))]
    if not trained:
        return f"run folder {run} does not exist, and no folder beside it (in {run.parent}) holds a trained model"
    return f"run folder {run} does not exist; run folders with a trained model beside it: {', '.join(trained)}"


# ---------------------------------------------------------------- command line


def _decode(raw: bytes, source: str) -> str:
    """UTF-8 (a BOM dropped) with undecodable bytes replaced by U+FFFD; a warning names the source and the lines."""
    lost = [len(line) - len(line.decode("utf-8", "ignore").encode("utf-8")) for line in raw.split(b"\n")]
    lines = [i + 1 for i, n in enumerate(lost) if n]
    if lines:
        shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
        print(f"warning: {source}: {sum(lost)} undecodable byte(s) on {len(lines)} line(s) (line {shown}) are not "
              f"UTF-8; replaced by U+FFFD", file=sys.stderr)
    return raw.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="replace")


def _read_lines(name: str) -> list[str]:
    """The documents of --file NAME or of standard input (-), one per line (only \\n and \\r\\n end a line)."""
    path = Path(name)
    if name == "-":
        buffer = getattr(sys.stdin, "buffer", None)  # None: a text stream in place of stdin
        text = _decode(buffer.read(), "<stdin>") if buffer is not None else sys.stdin.read()
    elif not path.exists():  # this and the next are printed as one line by cli.main; IsADirectoryError would not be
        raise FileNotFoundError(f"--file {name} does not exist")
    elif path.is_dir():
        raise ValueError(f"--file {name} is a folder; give a text file with one document per line")
    else:
        text = _decode(path.read_bytes(), name)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines[-1] == "" else lines


def _format(result: dict) -> str:
    p = result["top_k"][0]["probability"]
    ranked = ", ".join(f"{t['label']} {t['probability']:.2f}" for t in result["top_k"])
    flags = [flag for flag, on in (("[empty input]", result["empty"]), ("[truncated]", result["truncated"])) if on]
    return "  ".join([f"{result['label']}  (p={p:.2f})  | top-{len(result['top_k'])}: {ranked}", *flags])


def main(args) -> int:
    """`python -m textlab predict`: args.run, args.model, args.file, args.top_k, args.json, args.texts."""
    texts: list[str] = []
    for i, t in enumerate(args.texts or []):  # invalid UTF-8 arrives with surrogate escapes (PEP 383)
        texts += _read_lines(t) if t == "-" else [_decode(t.encode("utf-8", "surrogateescape"), f"argument {i + 1}")]
    if args.file:
        texts += _read_lines(args.file)
    if not texts:
        print("error: no input: give TEXTS, --file F (one document per line) or - to read standard input",
              file=sys.stderr)
        return 2
    predictor = load_predictor(args.run, args.model, precision=args.precision, seed=args.seed)
    results = predictor.predict(texts, top_k=args.top_k)
    for i, (text, result) in enumerate(zip(texts, results)):
        print(json.dumps({"index": i, "text": text[:60], **result}) if args.json else _format(result))
    return 0
