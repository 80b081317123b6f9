"""textlab: a reproducible 20 Newsgroups text-classification study (BERT, BiLSTM, learned ensemble)."""

__version__ = "0.1.0"


def __getattr__(name):  # lazy, so that `import textlab` stays light
    if name == "load_predictor":
        from .predict import load_predictor

        return load_predictor
    raise AttributeError(f"module 'textlab' has no attribute {name!r}")
