"""Random choices of a training round, all driven by one seeded `random.Random`: replay sampling,
the stratified validation split, and the order of micro-batches."""

from __future__ import annotations

import math
import random
from collections import defaultdict

# Batches are cut from windows of this many batches, sorted by length inside the window: texts
# of similar length share a batch (less padding) while every window stays stratified.
BUCKET_WINDOW = 16


def sample_replay(count: int, wanted: int, rng: random.Random) -> list[int]:
    """Indices of up to `wanted` replay examples out of `count`."""
    if wanted >= count:
        return list(range(count))
    return sorted(rng.sample(range(count), wanted))


def stratified_split(
    labels: list[int], fraction: float, minimum: int, rng: random.Random
) -> tuple[list[int], list[int]]:
    """(train, validation) indices; each label with at least 2 examples gives its share to validation."""
    by_label = _group(range(len(labels)), labels)
    train: list[int] = []
    validation: list[int] = []
    for label in sorted(by_label):
        members = by_label[label][:]
        rng.shuffle(members)
        take = min(len(members) - 1, math.floor(fraction * len(members) + 0.5)) if len(members) >= 2 else 0
        validation.extend(members[:take])
        train.extend(members[take:])
    if len(validation) < minimum:
        return sorted(train + validation), []
    return sorted(train), sorted(validation)


def stratified_batches(
    indices: list[int],
    labels: list[int],
    lengths: list[int],
    batch_size: int,
    rng: random.Random,
    bucket_by_length: bool,
) -> list[list[int]]:
    """One epoch of micro-batches in which every label is spread evenly over the epoch."""
    keyed: list[tuple[float, int]] = []
    for members in _group(indices, [labels[i] for i in indices]).values():
        rng.shuffle(members)
        offset = rng.random()
        keyed.extend(((rank + offset) / len(members), index) for rank, index in enumerate(members))
    keyed.sort()
    order = [index for _, index in keyed]
    if not bucket_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    window = batch_size * BUCKET_WINDOW
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def label_group_batches(
    indices: list[int], labels: list[int], per_label: int, batch_size: int, rng: random.Random
) -> list[list[int]]:
    """One epoch of batches built from groups of `per_label` same-label examples, so a contrastive
    term finds positive pairs in every batch."""
    groups: list[list[int]] = []
    for members in _group(indices, [labels[i] for i in indices]).values():
        rng.shuffle(members)
        groups.extend(members[i : i + per_label] for i in range(0, len(members), per_label))
    rng.shuffle(groups)
    batches: list[list[int]] = [[]]
    for group in groups:
        if batches[-1] and len(batches[-1]) + len(group) > batch_size:
            batches.append([])
        batches[-1].extend(group)
    return [batch for batch in batches if batch]


def _group(indices: range | list[int], labels: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for index, label in zip(indices, labels):
        groups[label].append(index)
    return groups
