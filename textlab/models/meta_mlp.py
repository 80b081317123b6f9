"""The seed's meta-learner: softmax of each member's logits, concatenated -> small MLP."""

from __future__ import annotations

import torch
from torch import nn


class MetaMLP(nn.Module):
    """(B, M*N) probabilities -> Linear(M*N, 80) -> GELU -> Dropout(.15) -> Linear(80, 40) -> GELU
    -> Dropout(.10) -> Linear(40, N). For M=2 members and N=20 classes: 7,340 parameters."""

    def __init__(self, in_features: int, num_labels: int, hidden=(80, 40), dropouts=(0.15, 0.10)):
        super().__init__()
        layers, width = [], in_features
        for h, p in zip(hidden, dropouts):
            layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(p)]
            width = h
        layers.append(nn.Linear(width, num_labels))
        self.net = nn.Sequential(*layers)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        return self.net(probs)  # (B, N) logits
