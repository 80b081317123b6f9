"""Ensemble variants over cached member logits: what each fits on validation logits, how it predicts, how it is
saved and loaded. Which one to use is decided in textlab.ensemble_choice."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from joblib import Parallel, cpu_count, delayed
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax

from .artifacts import read_json, write_json
from .checkpoint import load_into, save_weights
from .config import EnsembleConfig
from .models.meta_mlp import MetaMLP
from .stats import softmax, stratified_folds

LOG_T_BOUNDS = (np.log(1e-2), np.log(1e2))  # SVM scores need T << 1, over-confident nets T > 1


def fit_temperature(logits, y) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T); searched over log T within LOG_T_BOUNDS."""
    z, y = check_logits([logits])[0], check_labels(y, len(logits), np.shape(logits)[1])
    rows = np.arange(len(y))
    result = minimize_scalar(lambda t: -log_softmax(z / np.exp(t), axis=1)[rows, y].mean(),
                             bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def check_logits(member_logits) -> list[np.ndarray]:
    """Members as float arrays of one (N, C) shape; ValueError otherwise."""
    arrays = [np.asarray(z, dtype=float) for z in member_logits]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2 or arrays[0].size == 0:
        raise ValueError(f"member logits must be non-empty (N, C) arrays of one shape, got {sorted(shapes)}")
    return arrays


def check_labels(y, n: int, num_labels: int) -> np.ndarray:
    """Integer labels in [0, num_labels), one per row."""
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_labels:
        raise ValueError(f"labels must be {n} integers in [0, {num_labels}), got shape {y.shape}, dtype {y.dtype}")
    return y


class Variant:
    """Named "<label> (<tag>, <member+member>)"; `n_fitted` counts the parameters fitted on its data."""

    label = ""
    n_fitted = 0
    FITTED: tuple[str, ...] = ()  # what fit() chooses: recorded by describe(), restored on loading

    def __init__(self, members: tuple[str, ...] = (), tag: str = ""):
        self.members, self.tag = tuple(members), tag

    @property
    def name(self) -> str:
        """"temp-average (bert+bilstm)"; over several seeds' members ("bert@42", "bert@43", ...) each kind once, the
        seeds counted in the tag: "temp-average (deep, 3 seeds, bert+bilstm)"."""
        members = list(dict.fromkeys(m.partition("@")[0] for m in self.members))
        inside = ", ".join(s for s in (self.tag, "+".join(members)) if s)
        return f"{self.label} ({inside})" if inside else self.label

    def fit(self, member_logits, y) -> Variant:
        return self

    def describe(self) -> dict:
        return {"name": self.name, "members": list(self.members), "n_fitted": self.n_fitted,
                **{k: getattr(self, k) for k in self.FITTED}}


class ProbAverage(Variant):
    """Mean of the members' softmax probabilities; nothing is fitted."""

    label = "prob-average"

    def predict_proba(self, member_logits) -> np.ndarray:
        return np.mean([softmax(z) for z in check_logits(member_logits)], axis=0)


class TemperatureAverage(Variant):
    """Each member temperature-scaled on the fit data, then the probabilities averaged."""

    label = "temp-average"
    FITTED = ("temperatures",)

    def fit(self, member_logits, y) -> TemperatureAverage:
        self.temperatures = [fit_temperature(z, y) for z in check_logits(member_logits)]
        return self

    @property
    def n_fitted(self) -> int:
        return len(self.temperatures)

    def _member_proba(self, member_logits) -> list[np.ndarray]:
        arrays = check_logits(member_logits)
        if len(arrays) != len(self.temperatures):
            raise ValueError(f"{self.name} was fitted on {len(self.temperatures)} members, got {len(arrays)}")
        return [softmax(z / t) for z, t in zip(arrays, self.temperatures)]

    def predict_proba(self, member_logits) -> np.ndarray:
        return np.mean(self._member_proba(member_logits), axis=0)


class WeightedAverage(TemperatureAverage):
    """Temperature-scaled members mixed with convex weights that minimise the mixture's NLL."""

    label = "weighted-average"
    FITTED = ("temperatures", "weights")

    def fit(self, member_logits, y) -> WeightedAverage:
        super().fit(member_logits, y)
        probs = self._member_proba(member_logits)
        q = np.stack([p[np.arange(len(y)), y] for p in probs], axis=1)  # (N, M): each member's p(true class)
        result = minimize(_mixture_nll, np.zeros(q.shape[1]), args=(q,), jac=True, method="L-BFGS-B")
        self.weights = softmax(result.x).tolist()
        return self

    @property
    def n_fitted(self) -> int:
        return 2 * len(self.temperatures) - 1  # M temperatures + M - 1 free weights

    def predict_proba(self, member_logits) -> np.ndarray:
        return np.tensordot(self.weights, self._member_proba(member_logits), axes=1)


def _mixture_nll(a: np.ndarray, q: np.ndarray) -> tuple[float, np.ndarray]:
    """NLL of the mixture q @ softmax(a) and its gradient in a (the softmax keeps the weights convex)."""
    w = softmax(a)
    mix = np.clip(q @ w, 1e-12, None)
    g = -(q / mix[:, None]).mean(axis=0)  # d NLL / d w
    return float(-np.log(mix).mean()), w * g - w * (w @ g)


@contextmanager
def _one_thread():
    """torch on one thread meanwhile: the MLP's matmuls are tiny, so thread hand-offs cost more than they save
    (3.4 ms vs 59 ms per epoch measured on 2 busy cores), and one thread gives the same bits on any machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class MetaMLPEnsemble(Variant):
    """The seed's meta-learner: concatenated member softmaxes -> MetaMLP, full-batch AdamW on CPU.

    Weight decay and epoch count are chosen by stratified k-fold CV inside the fit data, then refit on all.
    """

    label = "meta-MLP"
    FITTED = ("weight_decay", "epochs", "cv_accuracy", "cv_nll", "seconds_per_epoch")

    def __init__(self, cfg: EnsembleConfig = EnsembleConfig(), seed: int = 0, members: tuple[str, ...] = (),
                 tag: str = ""):
        super().__init__(members, tag)
        self.cfg, self.seed = cfg, seed

    @staticmethod
    def _inputs(member_logits) -> torch.Tensor:
        probs = np.concatenate([softmax(z) for z in check_logits(member_logits)], axis=1)
        return torch.as_tensor(probs, dtype=torch.float32)

    def _model(self, in_features: int) -> MetaMLP:
        return MetaMLP(in_features, self.num_labels, self.cfg.hidden, self.cfg.dropouts)

    def _train(self, x, y, weight_decay: float, epochs: int, held_out=None):
        """A fresh, seeded MetaMLP trained for `epochs`; with held_out=(x, y) also its per-epoch (acc, nll)."""
        torch.manual_seed(self.seed)  # every run starts from the same weights: the CV compares settings only
        model = self._model(x.shape[1])
        opt = torch.optim.AdamW(model.parameters(), lr=self.cfg.lr, weight_decay=weight_decay)
        curve = np.zeros((epochs, 2))
        for epoch in range(epochs):
            model.train()
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if held_out is not None:
                model.eval()
                with torch.no_grad():
                    out = model(held_out[0])
                accuracy = (out.argmax(1) == held_out[1]).double().mean()
                curve[epoch] = accuracy.item(), F.cross_entropy(out, held_out[1]).item()
        return model.eval(), curve

    def _held_out_curve(self, x, y, weight_decay: float, train_idx, held_idx) -> np.ndarray:
        """Per-epoch held-out (accuracy, NLL) of one inner fold, trained on one thread."""
        with _one_thread():
            return self._train(x[train_idx], y[train_idx], weight_decay, self.cfg.max_epochs,
                               (x[held_idx], y[held_idx]))[1]

    @_one_thread()
    def fit(self, member_logits, y) -> MetaMLPEnsemble:
        x = self._inputs(member_logits)
        self.n_members, self.num_labels = len(member_logits), np.shape(member_logits[0])[1]
        y = torch.as_tensor(check_labels(y, len(x), self.num_labels), dtype=torch.long)
        splits = stratified_folds(y.numpy(), self.cfg.folds, self.seed)
        # The inner trainings (weight decays x folds) are independent, seeded and one-threaded: one process per core
        # gives the same bits in about 1 / cores of the time (nearly all of notebook 04's).
        tasks = [(wd, tr, te) for wd in self.cfg.weight_decays for tr, te in splits]
        curves = Parallel(n_jobs=min(len(tasks), cpu_count()))(
            delayed(self._held_out_curve)(x, y, wd, tr, te) for wd, tr, te in tasks)
        # (weight decays, epochs, 2): mean held-out accuracy and NLL over the inner folds
        curves = np.mean(np.reshape(curves, (len(self.cfg.weight_decays), len(splits), -1, 2)), axis=1)
        best = np.lexsort((curves[..., 1].ravel(), -curves[..., 0].ravel()))[0]  # best accuracy, ties: lower NLL
        w, e = np.unravel_index(best, curves.shape[:2])
        self.weight_decay, self.epochs = float(self.cfg.weight_decays[w]), int(e) + 1
        self.cv_accuracy, self.cv_nll = float(curves[w, e, 0]), float(curves[w, e, 1])
        start = time.perf_counter()
        self.model, _ = self._train(x, y, self.weight_decay, self.epochs)
        self.seconds_per_epoch = (time.perf_counter() - start) / self.epochs
        return self

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    n_fitted = n_params

    def predict_proba(self, member_logits) -> np.ndarray:
        x = self._inputs(member_logits)
        if x.shape[1] != self.n_members * self.num_labels:
            raise ValueError(f"{self.name} expects {self.n_members} members x {self.num_labels} classes, "
                             f"got {len(member_logits)} x {np.shape(member_logits[0])[1]}")
        with _one_thread(), torch.no_grad():
            return torch.softmax(self.model(x), dim=1).double().numpy()

    def describe(self) -> dict:
        settings = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.cfg).items()}
        return {**super().describe(), "in_features": self.n_members * self.num_labels, "num_labels": self.num_labels,
                **settings, "seed": self.seed, "n_params": self.n_params}

    def save(self, path) -> Path:
        """A folder with the weights (safetensors) and meta.json; no pickle."""
        path = Path(path)
        save_weights(path / "model.safetensors", self.model.state_dict())
        write_json(path / "meta.json", {**self.describe(), "tag": self.tag})
        return path

    @classmethod
    def load(cls, path) -> MetaMLPEnsemble:
        path = Path(path)
        meta = read_json(path / "meta.json")
        settings = {f.name: meta[f.name] for f in fields(EnsembleConfig)}
        cfg = EnsembleConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
        ens = cls(cfg, meta["seed"], meta["members"], meta["tag"])
        ens.num_labels, ens.n_members = meta["num_labels"], meta["in_features"] // meta["num_labels"]
        ens.__dict__.update({k: meta[k] for k in cls.FITTED})
        ens.model = ens._model(meta["in_features"])
        load_into(ens.model, path / "model.safetensors")  # strict: a shape mismatch names the file and tensor
        ens.model.eval()
        return ens


def load_variant(info: dict, folder) -> Variant:
    """A fitted variant from its describe() record (ensemble.json) and, for a meta-MLP, its saved folder."""
    kinds = {c.__name__: c for c in (ProbAverage, TemperatureAverage, WeightedAverage, MetaMLPEnsemble)}
    kind = kinds.get(info.get("class"))
    if kind is None:
        raise ValueError(f"{Path(folder) / 'ensemble.json'}: unknown ensemble class {info.get('class')!r}; "
                         f"expected one of {', '.join(kinds)}")
    if kind is MetaMLPEnsemble:
        return kind.load(Path(folder) / info["checkpoint"])
    variant = kind(info["members"])
    variant.__dict__.update({k: list(info[k]) for k in kind.FITTED})
    return variant
