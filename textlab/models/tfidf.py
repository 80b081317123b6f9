"""TF-IDF (1-2 grams, sublinear) + linear SVM: the lexical member and baseline, saved without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from ..artifacts import read_json, read_npy, write_json, write_npy
from ..errors import CheckpointError

# Fixed, never tuned on validation or test: a usual value for sublinear TF-IDF features, so this member
# brings no selection bias of its own into the validation comparison.
TFIDF_C = 0.5
VECTORIZER = {"sublinear_tf": True, "ngram_range": (1, 2), "min_df": 2, "dtype": np.float32}
# The score of a class without training documents (own data: a label only in test): far below any learned score
# (LinearSVC's are O(1)), so its softmax probability is 0 to float precision and the member never predicts it, yet
# finite, so temperatures and averages stay numbers. Every member then scores the whole label space.
UNSEEN_SCORE = -1e4


class TfidfSVM:
    def __init__(self, C: float = TFIDF_C, seed: int = 0):
        self.C, self.seed = C, seed

    def fit(self, texts, labels, num_classes: int | None = None) -> "TfidfSVM":
        """`texts`: an iterable of str, read once (e.g. dataset.iter_texts); `labels`: class indices; `num_classes`:
        the label space (default: up to the largest index trained on)."""
        self.vectorizer = TfidfVectorizer(**VECTORIZER)
        # float64 here, not in LinearSVC: it copies float32 input to float64 while the float32 matrix stays alive
        # (8 bytes per stored value more at the peak; 0.21 GiB of 1.41 at 100 k documents). Same values, same model.
        features = self.vectorizer.fit_transform(texts).astype(np.float64)
        svm = LinearSVC(C=self.C, random_state=self.seed).fit(features, np.asarray(labels))
        self.coef, self.intercept = svm.coef_.astype(np.float32), svm.intercept_.astype(np.float32)
        self.classes = svm.classes_.tolist()  # the label indices it learned, in the order of its scores
        self.num_classes = num_classes or self.classes[-1] + 1
        return self

    @property
    def n_params(self) -> int:
        return int(self.coef.size + self.intercept.size)

    def decision_function(self, texts) -> np.ndarray:
        """(N, num_classes) scores; a class it never trained on scores UNSEEN_SCORE."""
        scores = np.asarray(self.vectorizer.transform(texts) @ self.coef.T) + self.intercept  # (N, learned) or (N, 1)
        scores = np.column_stack([-scores[:, 0], scores[:, 0]]) if scores.shape[1] == 1 else scores
        if self.classes == list(range(self.num_classes)):
            return scores
        out = np.full((len(scores), self.num_classes), UNSEEN_SCORE, dtype=scores.dtype)
        out[:, self.classes] = scores
        return out

    def save(self, path) -> Path:
        path = Path(path)
        write_json(path / "vocabulary.json", {term: int(i) for term, i in self.vectorizer.vocabulary_.items()})
        for name, array in (("idf", self.vectorizer.idf_.astype(np.float32)), ("coef", self.coef),
                            ("intercept", self.intercept)):
            write_npy(path / f"{name}.npy", array)
        write_json(path / "meta.json", {"kind": "tfidf", "C": self.C, "seed": self.seed, "classes": self.classes,
                                        "num_classes": self.num_classes})  # last: marks it complete
        return path

    @classmethod
    def load(cls, path) -> "TfidfSVM":
        path = Path(path)
        if not (path / "meta.json").exists():
            raise CheckpointError(f"{path / 'meta.json'} is missing: the TF-IDF model was not saved (run notebook 04)")
        meta = read_json(path / "meta.json")
        model = cls(meta["C"], meta["seed"])
        model.vectorizer = TfidfVectorizer(**VECTORIZER, vocabulary=read_json(path / "vocabulary.json"))
        model.vectorizer.idf_ = read_npy(path / "idf.npy")
        model.coef, model.intercept = read_npy(path / "coef.npy"), read_npy(path / "intercept.npy")
        # Saved before "classes" was recorded: only a model that learned every class (0 .. C-1) could be used then.
        learned = 2 if len(model.intercept) == 1 else len(model.intercept)
        model.classes = meta.get("classes", list(range(learned)))
        model.num_classes = meta.get("num_classes", learned)
        if model.coef.shape[1] != len(model.vectorizer.vocabulary):
            raise CheckpointError(f"{path / 'coef.npy'} has {model.coef.shape[1]} features, vocabulary "
                                  f"{len(model.vectorizer.vocabulary)}")
        return model
