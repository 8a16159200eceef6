"""Training losses: the classification loss and an optional supervised contrastive term."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from camel.config import TrainingArgs

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def classification_loss(multi_label: bool, label_smoothing: float) -> LossFunction:
    """Softmax cross-entropy, or one sigmoid per label (the method's multi-label form)."""
    if multi_label:
        bce = nn.BCEWithLogitsLoss()
        return lambda logits, targets: bce(logits, nn.functional.one_hot(targets, logits.shape[1]).float())
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


def supervised_contrastive(embeddings: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """SupCon (Khosla et al. 2020): pull same-label texts of a batch together, push the others away.

    Anchors without a same-label partner in the batch contribute nothing; a batch without any
    pair gives zero, so the term only needs batches that hold several examples per label.
    """
    normalised = nn.functional.normalize(embeddings, dim=-1)
    similarity = normalised @ normalised.T / temperature
    self_mask = torch.eye(len(targets), dtype=torch.bool)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    log_probability = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positives = (targets.unsqueeze(0) == targets.unsqueeze(1)) & ~self_mask
    counts = positives.sum(dim=1)
    anchors = counts > 0
    if not bool(anchors.any()):
        return embeddings.sum() * 0.0
    per_anchor = log_probability.masked_fill(~positives, 0.0).sum(dim=1)[anchors] / counts[anchors]
    return -per_anchor.mean()


BatchLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], torch.Tensor]


def round_loss(multi_label: bool, args: TrainingArgs) -> BatchLoss:
    """(embeddings, logits, targets, with_contrastive) -> loss of one micro-batch."""
    classify = classification_loss(multi_label, args.label_smoothing)
    weight, temperature = args.contrastive_weight, args.contrastive_temperature

    def loss(embeddings: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, contrastive: bool) -> torch.Tensor:
        value = classify(logits, targets)
        if contrastive and weight > 0:
            value = value + weight * supervised_contrastive(embeddings, targets, temperature)
        return value

    return loss
