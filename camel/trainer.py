"""Micro-training of one task's adapter on the cached hidden states of the frozen bottom."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch

from camel.base import BaseEncoder, load_base
from camel.cache import FeatureCache
from camel.config import CamelConfig, TrainingArgs
from camel.data_split import label_group_batches, sample_replay, stratified_batches, stratified_split
from camel.errors import ConfigError, IncompatibleAdapterError, TrainingDataError
from camel.features import TrainingFeatures, pooled_vectors
from camel.losses import classification_loss, round_loss
from camel.model import Adapter, new_adapter
from camel.probe import fit_probe, prior_weight_for
from camel.zero_shot import label_prototypes

ProgressCallback = Callable[[int, int, dict[str, Any]], None]
_Best = tuple[float, dict[str, torch.Tensor], dict[str, Any]]  # (score, tensors, history row) of the best epoch
# Fields that change the adapter's tensors or inputs; continuing from an adapter keeps them.
STRUCTURAL_FIELDS = ("trainable_layers", "bottleneck", "pooling", "multi_label", "max_length", "normalize_pooled")
# logit scale of a head built from the label-name prototypes alone (cosine / 0.05)
PRIOR_ONLY_SCALE = 20.0


@dataclass
class TrainResult:
    adapter: Adapter
    history: list[dict[str, Any]] = field(default_factory=list)
    val_metrics: dict[str, Any] = field(default_factory=dict)


def train(
    texts: list[str],
    labels: list[str],
    *,
    config: CamelConfig | None = None,
    args: TrainingArgs | None = None,
    init: Adapter | None = None,
    replay: tuple[list[str], list[str]] | None = None,
    cache: FeatureCache | None = None,
    progress: ProgressCallback | None = None,
    label_descriptions: dict[str, str] | None = None,
) -> TrainResult:
    """Train a fresh adapter, or continue from `init` (new labels extend it), on texts + replay.

    A fresh head starts from a probe on the pooled features plus the label-name prototypes
    (`args.head_init`); `label_descriptions` ({label: one line}) sharpen those prototypes. A round
    on top of `init` given `replay` and at most `args.refit_below` examples (new + all replay) trains afresh on
    all of them, keeping init's structure and label order: it then learns exactly what a fresh
    round learns and forgets nothing.
    """
    args = args or TrainingArgs()
    texts, labels = _checked_examples(texts, labels, "training")
    if init is not None and _refits(texts, replay, args):
        _check_structure(init, config)  # same structural checks as a continuation
        if replay is not None:
            old_texts, old_labels = _checked_examples(replay[0], replay[1], "replay")
            texts, labels = old_texts + texts, old_labels + labels
        fresh_config = copy.deepcopy(config if config is not None else init.config)
        order = list(init.labels) + sorted(set(labels) - set(init.labels))
        return _train_fresh(texts, labels, fresh_config, args, cache, progress, label_descriptions, order, init.base)
    if replay is not None:
        texts, labels = _with_replay(texts, labels, replay, args)
    if init is None:
        return _train_fresh(texts, labels, config or CamelConfig(), args, cache, progress, label_descriptions)
    with _seeded(args.seed), _threads(args.num_threads):
        adapter = _starting_adapter(labels, config, init, args.seed)
        cache = _checked_cache(cache, adapter)
        args = _continuation_args(args, extends_labels=len(adapter.labels) > len(init.labels))
        return _Round(adapter, texts, labels, args, cache, progress).run()


def _train_fresh(
    texts: list[str],
    labels: list[str],
    config: CamelConfig,
    args: TrainingArgs,
    cache: FeatureCache | None,
    progress: ProgressCallback | None,
    descriptions: dict[str, str] | None,
    order: list[str] | None = None,
    base: BaseEncoder | None = None,
) -> TrainResult:
    with _seeded(args.seed), _threads(args.num_threads):
        names = order or sorted(set(labels))
        if len(set(labels)) < 2:
            raise TrainingDataError(f"training needs at least 2 different labels, found 1 ({labels[0]})")
        adapter = new_adapter(base or load_base(config.resolved_base_model()), config, names)
        cache = _checked_cache(cache, adapter)
        return _Round(adapter, texts, labels, args, cache, progress, fresh_head=(descriptions or {})).run()


def _refits(texts: list[str], replay: tuple[list[str], list[str]] | None, args: TrainingArgs) -> bool:
    """Refit only when the caller hands over the older data: without replay a fresh head would know
    nothing of it."""
    if replay is None or args.head_init == "random":
        return False
    return len(texts) + len(replay[0]) <= args.refit_below


def _checked_cache(cache: FeatureCache | None, adapter: Adapter) -> FeatureCache:
    if cache is not None and cache.base.fingerprint != adapter.base.fingerprint:
        raise IncompatibleAdapterError(
            f"feature cache is for base {cache.base.path} but the adapter uses {adapter.base.path}"
        )
    # A float32 bottom by default, like the Predictor's: training sees what serving computes.
    return cache if cache is not None else FeatureCache(adapter.base)


class _Round:
    """State of one training round: data, batches, optimizer, early stopping."""

    def __init__(
        self,
        adapter: Adapter,
        texts: list[str],
        labels: list[str],
        args: TrainingArgs,
        cache: FeatureCache,
        progress: ProgressCallback | None,
        fresh_head: dict[str, str] | None = None,
    ) -> None:
        """`fresh_head` (label descriptions, maybe empty) marks a fresh head to initialise per args.head_init."""
        self.adapter, self.args, self.progress = adapter, args, progress
        self.cache, self.fresh_head = cache, fresh_head
        self.rng = random.Random(args.seed)
        self.targets = [adapter.labels.index(label) for label in labels]
        self.features = TrainingFeatures(adapter, cache, texts, args.bf16)
        self.train_idx, self.val_idx = stratified_split(
            self.targets, args.val_fraction, args.min_val_examples, self.rng
        )
        steps_per_epoch = self._steps_per_epoch()
        planned = steps_per_epoch * args.max_epochs
        self.main_steps = min(planned, args.max_steps) if args.max_steps else planned
        self.warmup_epochs = args.head_warmup_epochs if len(adapter.blocks) else 0
        self.total_steps = self.main_steps + self.warmup_epochs * steps_per_epoch
        self.loss_fn = classification_loss(adapter.config.multi_label, args.label_smoothing)
        self.batch_loss = round_loss(adapter.config.multi_label, args)
        self.step = 0

    def run(self) -> TrainResult:
        history: list[dict[str, Any]] = []
        best: _Best | None = None
        if self.fresh_head is not None and self.args.head_init != "random":
            self._initialise_head(self.fresh_head)
            if self.val_idx:  # the closed-form start is a candidate too: fine-tuning may only improve on it
                start: dict[str, Any] = {"epoch": 0, "train_loss": None, "steps": 0}
                start.update(self.features.validate(self.val_idx, self.targets, self.loss_fn))
                best = (self._score(start), _snapshot(self.adapter), dict(start))
                history.append(start)
            if not self.args.probe_finetune:
                if self.progress is not None:  # the closed-form fit is the round's one step
                    self.progress(1, 1, history[-1] if history else {"epoch": 0, "head_init": self.args.head_init})
                return self._finish(history, best)
        elif self.warmup_epochs:
            self._head_warmup()
        optimizer = _optimizer(self.adapter, self.args)
        scheduler = _warmup_then_linear_decay(optimizer, self.main_steps, self.args.warmup_fraction)
        stop_at = self.step + self.main_steps
        stale = 0
        for epoch in range(1, self.args.max_epochs + 1):
            started = time.perf_counter()
            train_loss = self._epoch(epoch, self.features.outputs, optimizer, scheduler, stop_at)
            row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "steps": self.step}
            if self.val_idx:
                row.update(self.features.validate(self.val_idx, self.targets, self.loss_fn))
                score = self._score(row)
                if best is None or score < best[0] - 1e-6:
                    best, stale = (score, _snapshot(self.adapter), dict(row)), 0
                else:
                    stale += 1
            row["seconds"] = round(time.perf_counter() - started, 3)
            history.append(row)
            self._report(row)
            if stale >= self.args.patience or self.step >= stop_at:
                break
        return self._finish(history, best)

    def _score(self, row: dict[str, Any]) -> float:
        return float(row["val_loss"] if self.args.early_stopping_metric == "loss" else -row["val_accuracy"])

    def _initialise_head(self, descriptions: dict[str, str]) -> None:
        """Linear probe (closed form on the training split) plus the label-name prior, or the prior alone."""
        adapter, n_labels = self.adapter, len(self.adapter.labels)
        prototypes = label_prototypes(adapter.base, adapter.labels, descriptions, self.cache, adapter.config.max_length)
        if self.args.head_init == "prior":
            adapter.set_classifier(PRIOR_ONLY_SCALE * prototypes, torch.zeros(n_labels))
            return
        # The probe sees every example (a few-shot round cannot spare a tenth of its data); the
        # validation split then only judges whether fine-tuning improves on this start.
        seen = sorted(self.train_idx + self.val_idx)
        pooled = self.features.pooled
        if pooled is None:
            # In the round's precision: the probe fits the features the steps then start from.
            pooled = pooled_vectors(adapter, [self.features.states[i] for i in seen], self.args.bf16)
        else:
            pooled = pooled[seen]
        weight, bias = fit_probe(pooled, [self.targets[i] for i in seen], n_labels, self.args.probe_c)
        per_label = len(seen) / max(1, len(set(self.targets)))
        prior = prior_weight_for(self.args.prior_weight, self.args.prior_decay, per_label)
        adapter.set_classifier(weight + prior * prototypes, bias)

    def _head_warmup(self) -> None:
        """Fit the head on the pooled output of the untouched top blocks first (linear probe, then
        fine-tune): a random head's early gradients would otherwise distort the copied blocks."""
        pooled = pooled_vectors(self.adapter, self.features.states, self.args.bf16)
        optimizer = _adamw(
            [{"params": self.adapter.head_parameters(), "lr": self.args.lr_head}], self.args.weight_decay
        )
        for epoch in range(1, self.warmup_epochs + 1):
            self._epoch(
                -epoch, lambda batch: self.adapter.embed_and_classify(pooled[batch]), optimizer, None, self.total_steps
            )

    def _epoch(
        self,
        epoch: int,
        outputs_of: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        stop_at: int,
    ) -> float:
        """One pass over the training split; epoch < 0 marks the head warm-up (no contrastive term)."""
        self.adapter.train()
        losses: list[float] = []
        for batch in self._batches():
            if self.step >= stop_at:
                break
            loss = self.batch_loss(*outputs_of(batch), torch.tensor([self.targets[i] for i in batch]), epoch > 0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            self.step += 1
            losses.append(float(loss.detach()))
            self._report({"epoch": epoch, "loss": losses[-1]})
        self.adapter.eval()
        return float(np.mean(losses)) if losses else 0.0

    def _steps_per_epoch(self) -> int:
        if not self.args.examples_per_label:
            return math.ceil(len(self.train_idx) / self.args.batch_size)
        probe = random.Random()
        probe.setstate(self.rng.getstate())  # count the batches without consuming the round's randomness
        return len(
            label_group_batches(self.train_idx, self.targets, self.args.examples_per_label, self.args.batch_size, probe)
        )

    def _batches(self) -> list[list[int]]:
        if self.args.examples_per_label:
            return label_group_batches(
                self.train_idx, self.targets, self.args.examples_per_label, self.args.batch_size, self.rng
            )
        return stratified_batches(
            self.train_idx,
            self.targets,
            self.features.lengths,
            self.args.batch_size,
            self.rng,
            self.args.length_bucketing,
        )

    def _report(self, metrics: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(self.step, self.total_steps, metrics)

    def _finish(self, history: list[dict[str, Any]], best: _Best | None) -> TrainResult:
        val_metrics: dict[str, Any] = {}
        if best is not None:
            self.adapter.load_state_dict(best[1])
            val_metrics = {
                "loss": best[2]["val_loss"],
                "accuracy": best[2]["val_accuracy"],
                "epoch": best[2]["epoch"],
                "n": len(self.val_idx),
            }
        self.adapter.eval()
        self.adapter.round_to_storage()
        self.adapter.metrics = {
            "training": {
                "n_train": len(self.train_idx),
                "n_val": len(self.val_idx),
                "steps": self.step,
                "epochs": len(history),
                "head_warmup_epochs": self.warmup_epochs,
                "head_init": self.args.head_init if self.fresh_head is not None else "continued",
                "described_labels": sorted(self.fresh_head or {}),
                "args": self.args.to_dict(),
            },
            "validation": val_metrics,
        }
        return TrainResult(adapter=self.adapter, history=history, val_metrics=val_metrics)


def _starting_adapter(labels: list[str], config: CamelConfig | None, init: Adapter, seed: int) -> Adapter:
    """A continuation's adapter: a copy of `init`, extended by the round's new labels."""
    new_labels = sorted(set(labels))
    adapter = _continued(init, config)
    generator = torch.Generator().manual_seed(seed)
    adapter.extend_labels([label for label in new_labels if label not in adapter.labels], generator)
    if len(adapter.labels) < 2:
        raise TrainingDataError(f"training needs at least 2 different labels, found 1 ({adapter.labels[0]})")
    return adapter


def _continued(init: Adapter, config: CamelConfig | None) -> Adapter:
    """A deep copy of `init` (the serving adapter is never touched), with `config`'s non-structural fields."""
    _check_structure(init, config)
    adapter = copy.deepcopy(init)  # BaseEncoder.__deepcopy__ keeps the one shared base
    adapter.metrics = {}
    if config is not None:
        adapter.config = copy.deepcopy(config)
    return adapter


def _check_structure(init: Adapter, config: CamelConfig | None) -> None:
    """A round on top of `init` keeps the fields that shape its tensors and inputs."""
    if config is None:
        return
    for name in STRUCTURAL_FIELDS:
        if getattr(config, name) != getattr(init.config, name):
            raise ConfigError(
                f"cannot continue training with {name}={getattr(config, name)!r}: "
                f"the adapter was built with {name}={getattr(init.config, name)!r}"
            )


def _continuation_args(args: TrainingArgs, extends_labels: bool) -> TrainingArgs:
    """A round on top of a serving adapter takes smaller, fewer steps, so what it knew stays; the
    head takes `lr_new_labels` when the round adds labels, or their random new rows would barely move."""
    lr_head = args.lr_new_labels if extends_labels else args.lr_head * args.continue_lr_scale
    return dataclasses.replace(
        args,
        lr_head=lr_head,
        lr_blocks=args.lr_blocks * args.continue_lr_scale,
        max_epochs=args.continue_max_epochs or args.max_epochs,
    )


def _optimizer(adapter: Adapter, args: TrainingArgs) -> torch.optim.Optimizer:
    groups = [{"params": adapter.head_parameters(), "lr": args.lr_head}]
    if adapter.block_parameters():
        groups.append({"params": adapter.block_parameters(), "lr": args.lr_blocks})
    return _adamw(groups, args.weight_decay)


def _adamw(params: Any, weight_decay: float) -> torch.optim.AdamW:
    """AdamW in one fused kernel: on CPU torch's default loops over the parameters, a dozen small
    ops each (K=2: 40 tensors, about 480 ops a step); the fused step does the same arithmetic (the
    weights agree to float32 rounding: 9e-8 after 100 steps) in about a sixth of the time (3.3 ms
    instead of 22 ms at 1 thread on the 2-core AMD EPYC, bench/method/retrain_profile.py)."""
    return torch.optim.AdamW(params, weight_decay=weight_decay, fused=True)


def _warmup_then_linear_decay(
    optimizer: torch.optim.Optimizer, total: int, warmup_fraction: float
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(1, int(warmup_fraction * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _snapshot(adapter: Adapter) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in adapter.state_dict().items()}


def _checked_examples(texts: list[str], labels: list[str], what: str) -> tuple[list[str], list[str]]:
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise TrainingDataError(f"{what} data has {len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise TrainingDataError(f"{what} data is empty")
    for row, (text, label) in enumerate(zip(texts, labels)):
        if not isinstance(text, str) or not text.strip():
            raise TrainingDataError(f"{what} example {row}: text is empty or not a string")
        if not isinstance(label, str) or not label.strip():
            raise TrainingDataError(f"{what} example {row}: label is empty or not a string")
    return texts, labels


def _with_replay(
    texts: list[str], labels: list[str], replay: tuple[list[str], list[str]], args: TrainingArgs
) -> tuple[list[str], list[str]]:
    old_texts, old_labels = _checked_examples(replay[0], replay[1], "replay")
    wanted = max(args.replay_min, math.ceil(args.replay_ratio * len(texts)))
    chosen = sample_replay(len(old_texts), wanted, random.Random(args.seed + 1))
    return texts + [old_texts[i] for i in chosen], labels + [old_labels[i] for i in chosen]


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed every generator for the round without disturbing the caller's random state."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


@contextmanager
def _threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
