"""The network: embeddings for the categorical inputs, concatenated with the numeric ones, an MLP."""

from __future__ import annotations

import torch
from torch import nn


def embedding_size(cardinality: int) -> int:
    return int(min(16, max(2, round(1.6 * cardinality ** 0.56))))


class TabularNet(nn.Module):
    def __init__(self, cardinalities: list[int], n_numeric: int, hidden: tuple[int, ...] = (128, 64),
                 dropout: float = 0.1, target_scale: tuple[float, float] | None = None):
        super().__init__()
        # `target_scale` (mean, std): a regression network learns the standardized target, and
        # its output is scaled back; None for a binary one, whose output is a logit.
        self.config = {"cardinalities": list(cardinalities), "n_numeric": n_numeric,
                       "hidden": list(hidden), "dropout": dropout,
                       "target_scale": list(target_scale) if target_scale is not None else None}
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_size(c)) for c in cardinalities)
        width = sum(e.embedding_dim for e in self.embeddings) + n_numeric
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.BatchNorm1d(size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        embedded = [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat([*embedded, numeric], dim=1)).squeeze(1)

    @classmethod
    def from_config(cls, config: dict) -> "TabularNet":
        scale = config.get("target_scale")
        return cls(config["cardinalities"], config["n_numeric"], tuple(config["hidden"]), config["dropout"],
                   tuple(scale) if scale else None)
