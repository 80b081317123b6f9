"""textlab: a reproducible 20 Newsgroups text-classification study (BERT, BiLSTM, learned ensemble)."""

__version__ = "0.1.0"
