"""The supervised contrastive term and the label-group batches it needs."""

from __future__ import annotations

import random

import torch

import camel
from camel.data_split import label_group_batches, stratified_batches, stratified_split
from camel.losses import supervised_contrastive
from tests.camel.helpers import FAST_ARGS, dataset


def test_contrastive_loss_prefers_clustered_embeddings() -> None:
    targets = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert supervised_contrastive(clustered, targets, 0.1) < supervised_contrastive(mixed, targets, 0.1)
    assert float(supervised_contrastive(clustered, torch.tensor([0, 1, 2, 3]), 0.1)) == 0.0


def test_label_group_batches_cover_the_split_once_with_pairs() -> None:
    labels = [i % 5 for i in range(40)]
    batches = label_group_batches(list(range(40)), labels, 4, 16, random.Random(0))
    assert sorted(i for batch in batches for i in batch) == list(range(40))
    assert all(len(batch) <= 16 for batch in batches)
    for batch in batches:
        counts = [sum(1 for i in batch if labels[i] == label) for label in set(labels[i] for i in batch)]
        assert all(count >= 4 for count in counts)


def test_stratified_split_and_batches_spread_labels() -> None:
    labels = [i % 4 for i in range(40)]
    train, validation = stratified_split(labels, 0.2, 4, random.Random(1))
    assert sorted(train + validation) == list(range(40)) and len(validation) == 8
    assert sorted(labels[i] for i in validation) == [0, 0, 1, 1, 2, 2, 3, 3]
    batches = stratified_batches(train, labels, [1] * 40, 8, random.Random(2), bucket_by_length=False)
    assert all(len({labels[i] for i in batch}) == 4 for batch in batches)
    assert stratified_split(labels, 0.05, 8, random.Random(1))[1] == []  # too few for a validation split


def test_contrastive_training_runs_deterministically(tiny_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(**{**FAST_ARGS, "contrastive_weight": 0.5, "examples_per_label": 3, "max_epochs": 2})
    seen: list[tuple[int, int]] = []
    first = camel.train(texts, labels, config=tiny_config, args=args, progress=lambda s, t, m: seen.append((s, t)))
    second = camel.train(texts, labels, config=tiny_config, args=args)
    assert all(
        torch.equal(a, b) for a, b in zip(first.adapter.state_dict().values(), second.adapter.state_dict().values())
    )
    assert seen[-1][0] == seen[-1][1]
