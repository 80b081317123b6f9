"""Ensembles of cached member logits, compared honestly on validation and reported once on test.

The seed's meta-MLP, trained on validation logits, lost to a plain probability average. Here every
variant that fits parameters is scored by out-of-fold cross-validation on validation, the choice is
made from those scores alone, and the seed's exact meta-MLP stays in the table as the reference.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, softmax as sp_softmax
from sklearn.model_selection import StratifiedKFold

from .checkpoint import load_into, read_json, save_weights, write_json
from .config import EnsembleConfig
from .evaluate import metrics
from .models.ensemble import MetaMLP
from .models.tfidf import TfidfSVM
from .stats import softmax

LOG_T_BOUNDS = (np.log(1e-2), np.log(1e2))  # SVM scores need T << 1, over-confident nets T > 1
WEIGHTS_FILE, META_FILE = "model.safetensors", "meta.json"
SPLITS = ("validation", "test")


# ---------------------------------------------------------------- members and calibration


def tfidf_member(train_texts, train_labels, eval_texts: dict[str, list[str]], seed: int = 0) -> dict[str, np.ndarray]:
    """TF-IDF (1-2 grams) + linear SVM fit on the training texts only; decision scores (N, C) per split."""
    model = TfidfSVM(seed=seed).fit(train_texts, train_labels)
    return {split: model.decision_function(texts) for split, texts in eval_texts.items()}


def fit_temperature(logits, y) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T); searched over log T within LOG_T_BOUNDS."""
    z, y = _check_logits([logits])[0], _check_labels(y, len(logits), np.shape(logits)[1])
    rows = np.arange(len(y))
    result = minimize_scalar(lambda t: -log_softmax(z / np.exp(t), axis=1)[rows, y].mean(),
                             bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def _check_logits(member_logits) -> list[np.ndarray]:
    """Members as float arrays of one (N, C) shape; ValueError otherwise."""
    arrays = [np.asarray(z, dtype=float) for z in member_logits]
    if not arrays:
        raise ValueError("no member logits given")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2 or arrays[0].size == 0:
        raise ValueError(f"member logits must be non-empty (N, C) arrays of one shape, got {sorted(shapes)}")
    return arrays


def _check_labels(y, n: int, num_labels: int) -> np.ndarray:
    """Integer labels in [0, num_labels), one per row."""
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_labels:
        raise ValueError(f"labels must be {n} integers in [0, {num_labels}), got shape {y.shape}, dtype {y.dtype}")
    return y


def _nll(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)).mean())


# ---------------------------------------------------------------- variants


class _Variant:
    """Shared naming: "<label> (<tag>, <member+member>)"; `n_fitted` counts parameters fitted on its data."""

    label = ""

    def __init__(self, members: tuple[str, ...] = (), tag: str = ""):
        self.members, self.tag = tuple(members), tag

    @property
    def name(self) -> str:
        inside = ", ".join(s for s in (self.tag, "+".join(self.members)) if s)
        return f"{self.label} ({inside})" if inside else self.label

    def describe(self) -> dict:
        return {"name": self.name, "members": list(self.members), "n_fitted": self.n_fitted}


class ProbAverage(_Variant):
    """Mean of the members' softmax probabilities; nothing is fitted."""

    label = "prob-average"
    n_fitted = 0

    def fit(self, member_logits, y) -> ProbAverage:
        return self

    def predict_proba(self, member_logits) -> np.ndarray:
        return np.mean([softmax(z) for z in _check_logits(member_logits)], axis=0)


class TemperatureAverage(_Variant):
    """Each member temperature-scaled on the fit data, then the probabilities averaged."""

    label = "temp-average"

    def fit(self, member_logits, y) -> TemperatureAverage:
        self.temperatures = [fit_temperature(z, y) for z in _check_logits(member_logits)]
        return self

    @property
    def n_fitted(self) -> int:
        return len(self.temperatures)

    def _member_proba(self, member_logits) -> list[np.ndarray]:
        arrays = _check_logits(member_logits)
        if len(arrays) != len(self.temperatures):
            raise ValueError(f"{self.name} was fitted on {len(self.temperatures)} members, got {len(arrays)}")
        return [softmax(z / t) for z, t in zip(arrays, self.temperatures)]

    def predict_proba(self, member_logits) -> np.ndarray:
        return np.mean(self._member_proba(member_logits), axis=0)

    def describe(self) -> dict:
        return {**super().describe(), "temperatures": self.temperatures}


class WeightedAverage(TemperatureAverage):
    """Temperature-scaled members mixed with convex weights that minimise the mixture's NLL."""

    label = "weighted-average"

    def fit(self, member_logits, y) -> WeightedAverage:
        super().fit(member_logits, y)
        probs = self._member_proba(member_logits)
        q = np.stack([p[np.arange(len(y)), y] for p in probs], axis=1)  # (N, M): each member's p(true class)
        result = minimize(_mixture_nll, np.zeros(q.shape[1]), args=(q,), jac=True, method="L-BFGS-B")
        self.weights = sp_softmax(result.x).tolist()
        return self

    @property
    def n_fitted(self) -> int:
        return 2 * len(self.temperatures) - 1  # M temperatures + M - 1 free weights

    def predict_proba(self, member_logits) -> np.ndarray:
        return np.tensordot(self.weights, self._member_proba(member_logits), axes=1)

    def describe(self) -> dict:
        return {**super().describe(), "weights": self.weights}


def _mixture_nll(a: np.ndarray, q: np.ndarray) -> tuple[float, np.ndarray]:
    """NLL of the mixture q @ softmax(a) and its gradient in a (the softmax keeps the weights convex)."""
    w = sp_softmax(a)
    mix = np.clip(q @ w, 1e-12, None)
    g = -(q / mix[:, None]).mean(axis=0)  # d NLL / d w
    return float(-np.log(mix).mean()), w * g - w * (w @ g)


@contextmanager
def _one_thread():
    """Run torch on one thread, then restore the setting.

    The MLP's matmuls are tiny: thread hand-offs cost more than they save (measured 3.4 ms vs 59 ms per
    epoch on 2 busy cores), and one thread gives the same bits on any machine.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class MetaMLPEnsemble(_Variant):
    """The seed's meta-learner: concatenated member softmaxes -> MetaMLP, full-batch AdamW on CPU.

    Weight decay and epoch count are chosen by stratified k-fold CV inside the fit data, then refit on all.
    """

    label = "meta-MLP"

    def __init__(self, hidden=(80, 40), dropouts=(0.15, 0.10), weight_decays=(0.0, 1e-3, 1e-2, 1e-1),
                 max_epochs: int = 300, lr: float = 3e-3, folds: int = 5, seed: int = 0,
                 members: tuple[str, ...] = (), tag: str = ""):
        super().__init__(members, tag)
        self.hidden, self.dropouts = tuple(hidden), tuple(dropouts)
        self.weight_decays, self.max_epochs, self.lr = tuple(weight_decays), max_epochs, lr
        self.folds, self.seed = folds, seed

    @classmethod
    def from_config(cls, cfg: EnsembleConfig, seed: int = 0, members: tuple[str, ...] = (),
                    tag: str = "") -> MetaMLPEnsemble:
        """The settings of a profile's EnsembleConfig."""
        return cls(cfg.hidden, cfg.dropouts, cfg.weight_decays, cfg.max_epochs, cfg.lr, cfg.folds, seed, members, tag)

    @staticmethod
    def _inputs(member_logits) -> torch.Tensor:
        probs = np.concatenate([softmax(z) for z in _check_logits(member_logits)], axis=1)
        return torch.as_tensor(probs, dtype=torch.float32)

    def _train(self, x, y, weight_decay: float, epochs: int, held_out=None):
        """A fresh, seeded MetaMLP trained for `epochs`; with held_out=(x, y) also its per-epoch (acc, nll)."""
        torch.manual_seed(self.seed)  # every run starts from the same weights: the CV compares settings only
        model = MetaMLP(x.shape[1], self.num_labels, self.hidden, self.dropouts)
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=weight_decay)
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

    def _cv_curves(self, x, y) -> np.ndarray:
        """(weight decays, epochs, 2): mean held-out accuracy and NLL over the inner folds."""
        kfold = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        splits = list(kfold.split(np.zeros(len(y)), y.numpy()))
        return np.stack([
            np.mean([self._train(x[tr], y[tr], wd, self.max_epochs, (x[te], y[te]))[1] for tr, te in splits], axis=0)
            for wd in self.weight_decays
        ])

    @_one_thread()
    def fit(self, member_logits, y) -> MetaMLPEnsemble:
        x = self._inputs(member_logits)
        self.n_members, self.num_labels = len(member_logits), np.shape(member_logits[0])[1]
        y = torch.as_tensor(_check_labels(y, len(x), self.num_labels), dtype=torch.long)
        curves = self._cv_curves(x, y)
        best = np.lexsort((curves[..., 1].ravel(), -curves[..., 0].ravel()))[0]  # best accuracy, ties: lower NLL
        w, e = np.unravel_index(best, curves.shape[:2])
        self.weight_decay, self.epochs = float(self.weight_decays[w]), int(e) + 1
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
        return {
            **super().describe(), "in_features": self.n_members * self.num_labels, "num_labels": self.num_labels,
            "hidden": list(self.hidden), "dropouts": list(self.dropouts), "lr": self.lr, "folds": self.folds,
            "seed": self.seed, "max_epochs": self.max_epochs, "weight_decays": list(self.weight_decays),
            "weight_decay": self.weight_decay, "epochs": self.epochs, "cv_accuracy": self.cv_accuracy,
            "cv_nll": self.cv_nll, "n_params": self.n_params, "seconds_per_epoch": self.seconds_per_epoch,
        }

    def save(self, path) -> Path:
        """A folder with the weights (safetensors) and meta.json; no pickle."""
        path = Path(path)
        save_weights(path / WEIGHTS_FILE, self.model.state_dict())
        write_json(path / META_FILE, {**self.describe(), "tag": self.tag})
        return path

    @classmethod
    def load(cls, path) -> MetaMLPEnsemble:
        path = Path(path)
        meta = read_json(path / META_FILE)
        ens = cls(meta["hidden"], meta["dropouts"], meta["weight_decays"], meta["max_epochs"], meta["lr"],
                  meta["folds"], meta["seed"], meta["members"], meta["tag"])
        ens.num_labels, ens.n_members = meta["num_labels"], meta["in_features"] // meta["num_labels"]
        for key in ("weight_decay", "epochs", "cv_accuracy", "cv_nll", "seconds_per_epoch"):
            setattr(ens, key, meta[key])
        ens.model = MetaMLP(meta["in_features"], ens.num_labels, ens.hidden, ens.dropouts)
        load_into(ens.model, path / WEIGHTS_FILE)  # strict: a shape mismatch names the file and tensor
        ens.model.eval()
        return ens


def load_variant(info: dict, folder) -> _Variant:
    """A fitted variant from its describe() record (ensemble.json) and, for a meta-MLP, its saved folder."""
    kinds = {"ProbAverage": ProbAverage, "TemperatureAverage": TemperatureAverage, "WeightedAverage": WeightedAverage}
    name = info.get("class")
    if name == "MetaMLPEnsemble":
        return MetaMLPEnsemble.load(Path(folder) / info["checkpoint"])
    if name not in kinds:
        raise ValueError(f"{Path(folder) / 'ensemble.json'}: unknown ensemble class {name!r}; "
                         f"expected one of {', '.join([*kinds, 'MetaMLPEnsemble'])}")
    variant = kinds[name](info["members"])
    if "temperatures" in info:
        variant.temperatures = list(info["temperatures"])
    if "weights" in info:
        variant.weights = list(info["weights"])
    return variant


# ---------------------------------------------------------------- honest comparison


def _oof_proba(make_variant: Callable[[], _Variant], member_logits, y, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold probabilities: each validation fold predicted by a variant fit on the other folds."""
    arrays = _check_logits(member_logits)
    y = _check_labels(y, len(arrays[0]), arrays[0].shape[1])
    proba = np.zeros(arrays[0].shape)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(arrays[0], y):
        variant = make_variant().fit([z[tr] for z in arrays], y[tr])
        proba[te] = variant.predict_proba([z[te] for z in arrays])
    return proba


def _scores(proba: np.ndarray, y) -> dict:
    return {**{k: v for k, v in metrics(proba, y, full=False).items() if k != "n"}, "nll": _nll(proba, np.asarray(y))}


def cross_val_accuracy(make_variant, member_logits, y, folds: int = 5, seed: int = 0) -> dict:
    """Out-of-fold accuracy, macro-F1 and NLL of a variant on (validation) data, for honest comparison."""
    return _scores(_oof_proba(make_variant, member_logits, y, folds, seed), y)


@dataclass
class EnsembleReport:
    """The comparison table, the chosen ensemble's row name, and the probabilities and fits behind it."""

    table: pd.DataFrame
    chosen: str
    test_proba: dict[str, np.ndarray] = field(default_factory=dict)
    val_oof_proba: dict[str, np.ndarray] = field(default_factory=dict)
    fitted: dict[str, _Variant] = field(default_factory=dict)
    seed_meta_mlp: MetaMLPEnsemble | None = None


def _validate(members: dict, y_val, y_test) -> None:
    """Every member has both splits, one class count, and one row per label; else name who and what."""
    if not members:
        raise ValueError("no members given")
    want = {"validation": len(y_val), "test": len(y_test)}
    classes = {}  # (member, split) -> number of classes
    for name, splits in members.items():
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ValueError(f"member {name!r} lacks the {' and '.join(missing)} logits")
        for split in SPLITS:
            shape = np.shape(splits[split])
            if len(shape) != 2 or shape[0] != want[split]:
                raise ValueError(f"member {name!r}: {split} logits have shape {shape}, expected ({want[split]}, C)")
            if not np.isfinite(splits[split]).all():
                raise ValueError(f"member {name!r}: {split} logits hold NaN or infinite values")
            classes[name, split] = shape[1]
    first = next(iter(classes.values()))
    for (name, split), c in classes.items():
        if c != first:
            raise ValueError(f"member {name!r} has {c} classes in its {split} logits, the first member {first}")
    _check_labels(y_val, len(y_val), first)
    _check_labels(y_test, len(y_test), first)


def _row(name: str, members, kind: str, oof, y_val, test, y_test, n_fitted: int) -> dict:
    val, tst = _scores(oof, y_val), _scores(test, y_test)
    return {"variant": name, "members": "+".join(members), "kind": kind, "val_fitted_params": n_fitted,
            "val_cv_accuracy": val["accuracy"], "val_cv_macro_f1": val["macro_f1"], "val_cv_nll": val["nll"],
            "test_accuracy": tst["accuracy"], "test_macro_f1": tst["macro_f1"]}


def compare(members: dict[str, dict[str, np.ndarray]], y_val, y_test, cfg: EnsembleConfig, seed: int = 0,
            seed_members=("bert", "bilstm")) -> EnsembleReport:
    """Singles and every variant over the seed's members and over all members; choose by validation CV only."""
    _validate(members, y_val, y_test)
    absent = [m for m in seed_members if m not in members]
    if absent:
        raise ValueError(f"seed members {absent} are not among the members {list(members)}")
    y_val, y_test = np.asarray(y_val), np.asarray(y_test)
    report = EnsembleReport(table=pd.DataFrame(), chosen="")
    rows = []
    for name, splits in members.items():
        val, test = softmax(splits["validation"]), softmax(splits["test"])
        report.val_oof_proba[name], report.test_proba[name] = val, test
        rows.append(_row(name, (name,), "single", val, y_val, test, y_test, 0))
    groups = [tuple(seed_members)] + ([tuple(members)] if set(members) != set(seed_members) else [])
    for group in groups:
        seed_group = group == tuple(seed_members)
        val = [members[m]["validation"] for m in group]
        test = [members[m]["test"] for m in group]
        for make in _makers(group, cfg, seed, "seed-exact" if seed_group else ""):
            oof = _oof_proba(make, val, y_val, cfg.folds, seed)
            variant = make().fit(val, y_val)  # refit on the whole validation split before its one look at test
            proba = variant.predict_proba(test)
            report.val_oof_proba[variant.name], report.test_proba[variant.name] = oof, proba
            report.fitted[variant.name] = variant
            rows.append(_row(variant.name, group, "ensemble", oof, y_val, proba, y_test, variant.n_fitted))
            if seed_group and isinstance(variant, MetaMLPEnsemble):
                report.seed_meta_mlp = variant
    report.table = _mark_chosen(pd.DataFrame(rows))
    report.chosen = report.table.loc[report.table["chosen"], "variant"].item()
    return report


def _makers(group: tuple[str, ...], cfg: EnsembleConfig, seed: int, tag: str) -> list[Callable[[], _Variant]]:
    """Fresh-variant factories, one per kind, so each CV fold and the final refit start unfitted."""
    return [lambda: ProbAverage(group), lambda: TemperatureAverage(group), lambda: WeightedAverage(group),
            lambda: MetaMLPEnsemble.from_config(cfg, seed, group, tag)]


def _mark_chosen(table: pd.DataFrame) -> pd.DataFrame:
    """Flag the ensemble with the best validation CV accuracy; ties go to fewer fitted parameters, then members."""
    ens = table[table["kind"] == "ensemble"].assign(n_members=lambda t: t["members"].str.count(r"\+") + 1)
    best = ens.sort_values(["val_cv_accuracy", "val_fitted_params", "n_members"], ascending=[False, True, True],
                           kind="stable").index[0]
    return table.assign(chosen=table.index == best)
