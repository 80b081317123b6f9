"""The seed's baseline: frozen BERT embeddings -> 2-layer BiLSTM -> masked attention pooling -> MLP head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
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
        # A one-layer, one-direction LSTM whose own weights are never used: each direction of each layer of
        # self.lstm runs through it with that direction's weights (bilstm). Not a submodule (not in the state dict).
        object.__setattr__(self, "_one_direction", nn.LSTM(d, d // 2, batch_first=True))

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
        h = self.bilstm(x, mask.sum(1))  # (B, T, d)
        scores = self.attention(h).squeeze(-1).float().masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=1).to(h.dtype)
        pooled = torch.einsum("bt,btd->bd", weights, h)  # (B, d)
        logits = self.head(pooled)  # (B, N)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def bilstm(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """self.lstm over a right-padded batch, exactly as over packed sequences at every real position.

        Packed sequences take PyTorch's generic LSTM path on CPU; dense input takes the fused oneDNN kernel, x5-x8
        faster per training step here (2 cores, 32 x 160-256 tokens, bf16; benchmarks/bench_train.py --model
        bilstm). So each direction of each layer runs densely, the backward one on every sequence reversed within
        its own length: padding comes after the real tokens in both directions and never reaches them.
        Outputs at padded positions are arbitrary (the attention pooling masks them).
        """
        rev = _reversal_index(lengths, x.shape[1])  # (B, T)
        h = x
        for layer in range(self.lstm.num_layers):
            if layer:
                h = F.dropout(h, self.lstm.dropout, self.training)  # as nn.LSTM: between layers, training only
            out = []
            for suffix, inputs in (("", h), ("_reverse", _take(h, rev))):
                weights = {f"{name}_l0": getattr(self.lstm, f"{name}_l{layer}{suffix}")
                           for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
                y, _ = functional_call(self._one_direction, weights, (inputs,))  # (B, T, d/2)
                out.append(_take(y, rev) if suffix else y)
            h = torch.cat(out, dim=-1)  # (B, T, d)
        return h


def _reversal_index(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) time index that reverses each row's first lengths[b] steps and leaves its padding in place."""
    t = torch.arange(T, device=lengths.device).unsqueeze(0)  # (1, T)
    n = lengths.unsqueeze(1)  # (B, 1)
    return torch.where(t < n, n - 1 - t, t)


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, t]] for (B, T, C) x: reorders time steps per row."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
