"""The seed's baseline: frozen BERT embeddings -> 2-layer BiLSTM -> masked attention pooling -> MLP head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertEmbeddings


class BiLSTMClassifier(nn.Module):
    """d = the backbone's hidden size (768 for bert-base, 384 for MiniLM).

    The embedding module (word + position + token-type + LayerNorm) is frozen and always runs in eval
    mode: frozen features are then identical in training and inference. Input noise, where wanted, is a
    separate `input_dropout` on the embedding outputs (no parameters; 0 = off).
    """

    def __init__(self, embeddings: BertEmbeddings, num_labels: int, num_layers: int = 2, dropout: float = 0.3,
                 lstm_dropout: float = 0.2, input_dropout: float = 0.0):
        super().__init__()
        d = embeddings.word_embeddings.embedding_dim
        self.embeddings = embeddings.requires_grad_(False)
        self.input_dropout = nn.Dropout(input_dropout)
        self.lstm = nn.LSTM(d, d // 2, num_layers=num_layers, batch_first=True, bidirectional=True,
                            dropout=lstm_dropout if num_layers > 1 else 0.0)
        self.attention = nn.Linear(d, 1)  # one learned score per time step
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d // 2), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(d // 2, num_labels))
        self.num_labels = num_labels

    @classmethod
    def from_config(cls, config, num_labels: int, **kw) -> "BiLSTMClassifier":
        return cls(BertEmbeddings(config), num_labels, **kw)

    def train(self, mode: bool = True):
        super().train(mode)
        self.embeddings.eval()
        return self

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.bool().clone()  # (B, T)
        mask[:, 0] |= ~mask.any(1)  # a row with no token at all still gets one step (no NaN softmax)
        with torch.no_grad():
            x = self.embeddings(input_ids=input_ids)  # (B, T, d)
        x = self.input_dropout(x)
        lengths = mask.sum(1).cpu()  # pack_padded_sequence wants CPU lengths
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=input_ids.shape[1])  # (B, T, d)
        scores = self.attention(h).squeeze(-1).float().masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=1).to(h.dtype)
        pooled = torch.einsum("bt,btd->bd", weights, h)  # (B, d)
        logits = self.head(pooled)  # (B, N)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)
