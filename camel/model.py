"""The per-task trainable part: copies of the top K blocks, pooling, adaptation layer, classifier.

An Adapter keeps a plain (unregistered) reference to its BaseEncoder, so `state_dict()` holds
only the task's own tensors and many adapters share one frozen base in memory.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from camel.base import BaseEncoder, mean_pool
from camel.config import CamelConfig
from camel.errors import ConfigError, TrainingDataError


class AdaptationLayer(nn.Module):
    """LayerNorm -> down-projection -> GELU -> up-projection, added back to its input, then dropout."""

    def __init__(self, hidden_size: int, bottleneck: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.down = nn.Linear(hidden_size, bottleneck)
        self.up = nn.Linear(bottleneck, hidden_size)
        self.dropout = nn.Dropout(dropout)
        # Starting the residual branch at zero makes a fresh adapter pass pooled features through
        # unchanged, so early training is as stable as a plain linear probe.
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        residual = self.up(nn.functional.gelu(self.down(self.norm(pooled))))
        adapted: torch.Tensor = self.dropout(pooled + residual)
        return adapted


class Adapter(nn.Module):
    """One task's adaptation of a shared base encoder (top K block copies + head) with its metadata."""

    def __init__(self, base: BaseEncoder, config: CamelConfig, labels: list[str]) -> None:
        super().__init__()
        if config.trainable_layers > base.num_layers:
            raise ConfigError(
                f"CamelConfig.trainable_layers must be <= {base.num_layers} (layers in {base.path}), "
                f"got {config.trainable_layers}"
            )
        _check_labels(labels)
        self.base = base  # BaseEncoder is not an nn.Module, so it stays out of state_dict
        self.config = config
        self.labels: list[str] = list(labels)
        self.metrics: dict[str, Any] = {}
        # Verified extra files of a loaded adapter (e.g. a calibration), by file name.
        self.extra_files: dict[str, bytes] = {}
        self.split_layer = base.num_layers - config.trainable_layers
        self.blocks = nn.ModuleList(copy.deepcopy(block) for block in base.blocks[self.split_layer :])
        for parameter in self.blocks.parameters():
            parameter.requires_grad_(True)
        self.adapt = AdaptationLayer(base.hidden_size, config.bottleneck, config.dropout)
        self.classifier = nn.Linear(base.hidden_size, len(self.labels))

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Top blocks then pooling: from the bottom's hidden states to one vector per text."""
        if len(self.blocks):
            hidden = self.base.run_blocks(self.blocks, hidden, mask)
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = mean_pool(hidden, mask)
        return nn.functional.normalize(pooled, dim=-1) if self.config.normalize_pooled else pooled

    def head(self, pooled: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.adapt(pooled))
        return logits

    def embed_and_classify(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The adaptation layer's output (what a contrastive loss shapes) and the logits."""
        embedding = self.adapt(pooled)
        return embedding, self.classifier(embedding)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits [batch, labels] from the bottom's hidden states."""
        return self.head(self.pool(hidden, mask))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.config.multi_label else torch.softmax(logits, dim=-1)

    @property
    def storage_dtype(self) -> torch.dtype:
        dtype: torch.dtype = getattr(torch, self.config.storage_dtype)
        return dtype

    @torch.no_grad()
    def round_to_storage(self) -> None:
        """Round every weight to what adapter.safetensors can hold, so the adapter that serves after
        training is exactly the one a later load_adapter() gives back."""
        for tensor in self.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(self.storage_dtype).to(tensor.dtype))

    @torch.no_grad()
    def set_classifier(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Start the classifier from given rows (a probe, label prototypes), one per label in order."""
        if tuple(weight.shape) != tuple(self.classifier.weight.shape) or tuple(bias.shape) != tuple(
            self.classifier.bias.shape
        ):
            raise ConfigError(
                f"classifier init of shape {tuple(weight.shape)} does not fit {tuple(self.classifier.weight.shape)}"
            )
        self.classifier.weight.copy_(weight)
        self.classifier.bias.copy_(bias)

    def block_parameters(self) -> list[nn.Parameter]:
        return list(self.blocks.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.adapt.parameters()) + list(self.classifier.parameters())

    def extend_labels(self, new_labels: list[str], generator: torch.Generator | None = None) -> None:
        """Append labels to the classifier; old rows are copied so what it knew stays."""
        added = [label for label in new_labels if label not in self.labels]
        if not added:
            return
        _check_labels(self.labels + added)
        old = self.classifier
        grown = nn.Linear(old.in_features, old.out_features + len(added))
        with torch.no_grad():
            nn.init.normal_(grown.weight, std=0.02, generator=generator)
            grown.bias.fill_(float(old.bias.mean()) if old.out_features else 0.0)
            grown.weight[: old.out_features] = old.weight
            grown.bias[: old.out_features] = old.bias
        self.classifier = grown
        self.labels.extend(added)


def new_adapter(base: BaseEncoder, config: CamelConfig, labels: list[str]) -> Adapter:
    """A fresh adapter: the top K blocks copied from `base`, a new head for `labels`."""
    adapter = Adapter(base, config, labels)
    adapter.round_to_storage()
    adapter.eval()
    return adapter


def _check_labels(labels: list[str]) -> None:
    if not labels:
        raise TrainingDataError("an adapter needs at least one label")
    if any(not isinstance(label, str) or not label.strip() for label in labels):
        raise TrainingDataError("every label must be a non-empty string")
    if len(set(labels)) != len(labels):
        raise TrainingDataError("labels must be unique")
