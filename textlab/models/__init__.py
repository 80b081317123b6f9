"""The three models: BERT classifier (transformers), BiLSTM over frozen BERT embeddings, ensemble meta-MLP."""

from .bilstm import BiLSTMClassifier
from .meta_mlp import MetaMLP

__all__ = ["BiLSTMClassifier", "MetaMLP"]
