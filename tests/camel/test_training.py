"""Micro-training: frozen bottom, determinism, continuation, label extension, replay, progress."""

from __future__ import annotations

import copy

import pytest
import torch

import camel
from camel.errors import ConfigError, TrainingDataError
from tests.camel.helpers import FAST_ARGS, dataset


def _tensors(adapter: camel.Adapter) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in adapter.state_dict().items()}


def test_bottom_stays_bit_identical(tiny_base: camel.BaseEncoder, tiny_config: camel.CamelConfig) -> None:
    before = {name: tensor.clone() for name, tensor in tiny_base.model.state_dict().items()}
    texts, labels = dataset()
    result = camel.train(texts, labels, config=tiny_config, args=camel.TrainingArgs(**FAST_ARGS))
    after = tiny_base.model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    # The trained copy of the top block moved away from the base's own block.
    copied = result.adapter.blocks[0].state_dict()
    original = tiny_base.blocks[tiny_base.num_layers - 1].state_dict()
    assert any(not torch.equal(copied[name], original[name]) for name in copied)


def test_same_seed_gives_bit_identical_tensors(tiny_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(**{**FAST_ARGS, "val_fraction": 0.25, "min_val_examples": 2})
    first = _tensors(camel.train(texts, labels, config=tiny_config, args=args).adapter)
    second = _tensors(camel.train(texts, labels, config=tiny_config, args=args).adapter)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    other = _tensors(
        camel.train(texts, labels, config=tiny_config, args=camel.TrainingArgs(**{**FAST_ARGS, "seed": 99})).adapter
    )
    assert any(not torch.equal(first[name], other[name]) for name in first)


def test_training_fits_the_training_data(tiny_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(**{**FAST_ARGS, "max_epochs": 30, "lr_head": 5e-3, "lr_blocks": 1e-3})
    result = camel.train(texts, labels, config=tiny_config, args=args)
    assert camel.evaluate(result.adapter, texts, labels)["accuracy"] >= 0.75
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_label_extension_keeps_old_rows_and_learns_new_labels(trained: camel.TrainResult) -> None:
    old = trained.adapter
    old_weights = old.classifier.weight.detach().clone()
    texts = ["exchange rate fee", "what is the exchange rate", "cash withdrawal atm", "atm cash withdrawal failed"] * 2
    labels = ["exchange_rate", "exchange_rate", "atm", "atm"] * 2
    grown = camel.train(
        texts,
        labels,
        init=old,
        args=camel.TrainingArgs(
            **{
                **FAST_ARGS,
                "max_epochs": 1,
                "max_steps": 1,
                "lr_head": 1e-9,
                "lr_new_labels": 1e-9,
                "lr_blocks": 1e-9,
                "refit_below": 0,
            }
        ),
    )
    assert grown.adapter.labels == old.labels + ["atm", "exchange_rate"]
    assert grown.adapter.classifier.weight.shape[0] == len(old.labels) + 2
    assert torch.allclose(grown.adapter.classifier.weight[: len(old.labels)], old_weights, atol=1e-6)
    # The serving adapter was not modified by training from it.
    assert old.labels == trained.adapter.labels and torch.equal(old.classifier.weight, old_weights)
    assert grown.adapter.base is old.base


def test_continuation_mixes_in_replay_and_reports_progress(trained: camel.TrainResult) -> None:
    texts, labels = dataset()
    calls: list[tuple[int, int, dict]] = []
    args = camel.TrainingArgs(**{**FAST_ARGS, "max_epochs": 2, "replay_min": 8, "replay_ratio": 1.0, "refit_below": 0})
    result = camel.train(
        texts[:4],
        labels[:4],
        init=trained.adapter,
        replay=(texts, labels),
        args=args,
        progress=lambda step, total, metrics: calls.append((step, total, metrics)),
    )
    assert result.adapter.metrics["training"]["n_train"] == 4 + 8
    assert calls and calls[-1][0] == calls[-1][1] == result.adapter.metrics["training"]["steps"]
    assert any("train_loss" in metrics for _, _, metrics in calls)


def test_early_stopping_restores_the_best_validation_epoch(tiny_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(
        **{**FAST_ARGS, "max_epochs": 40, "val_fraction": 0.34, "min_val_examples": 4, "patience": 2, "lr_head": 0.05}
    )
    result = camel.train(texts, labels, config=tiny_config, args=args)
    losses = [row["val_loss"] for row in result.history]
    assert result.val_metrics["loss"] == min(losses)
    assert result.val_metrics["n"] == 8
    assert len(result.history) < 40


@pytest.mark.parametrize("overrides", [dict(trainable_layers=0), dict(pooling="cls", multi_label=True)])
def test_variants_train(tiny_config: camel.CamelConfig, overrides: dict) -> None:
    texts, labels = dataset()
    config = camel.CamelConfig(**{**tiny_config.to_dict(), **overrides})
    result = camel.train(texts, labels, config=config, args=camel.TrainingArgs(**FAST_ARGS))
    assert len(result.adapter.blocks) == config.trainable_layers
    prediction = camel.Predictor(result.adapter).answer(["refund please"])[0]
    assert 0.0 <= prediction.confidence <= 1.0


def test_bf16_training_is_deterministic_too(tiny_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(**{**FAST_ARGS, "bf16": True, "max_epochs": 2})
    first = _tensors(camel.train(texts, labels, config=tiny_config, args=args).adapter)
    second = _tensors(camel.train(texts, labels, config=tiny_config, args=args).adapter)
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_head_warmup_trains_the_head_first_and_counts_its_steps(tiny_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    totals: set[int] = set()
    # The warm-up is for a random head; a probe-initialised head needs none.
    args = camel.TrainingArgs(**{**FAST_ARGS, "head_warmup_epochs": 2, "max_epochs": 1, "head_init": "random"})
    result = camel.train(
        texts, labels, config=tiny_config, args=args, progress=lambda step, total, metrics: totals.add(total)
    )
    steps_per_epoch = 3  # 24 examples in batches of 8
    assert totals == {3 * steps_per_epoch}
    assert result.adapter.metrics["training"]["steps"] == 3 * steps_per_epoch
    assert result.adapter.metrics["training"]["head_warmup_epochs"] == 2


def test_thread_count_is_restored(tiny_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    before = torch.get_num_threads()
    camel.train(
        texts, labels, config=tiny_config, args=camel.TrainingArgs(**{**FAST_ARGS, "num_threads": 2, "max_epochs": 1})
    )
    assert torch.get_num_threads() == before


def test_bad_training_data_is_refused(tiny_config: camel.CamelConfig) -> None:
    with pytest.raises(TrainingDataError, match="2 texts but 1 labels"):
        camel.train(["a", "b"], ["x"], config=tiny_config)
    with pytest.raises(TrainingDataError, match=r"at least 2 different labels, found 1 \(x\)"):
        camel.train(["a", "b"], ["x", "x"], config=tiny_config)
    with pytest.raises(TrainingDataError, match="example 1: text is empty"):
        camel.train(["a", "  "], ["x", "y"], config=tiny_config)


def test_continuing_with_a_different_structure_is_refused(trained: camel.TrainResult) -> None:
    config = copy.deepcopy(trained.adapter.config)
    config.trainable_layers = 0
    with pytest.raises(ConfigError, match="trainable_layers=0"):
        camel.train(["refund please"], ["refund"], init=trained.adapter, config=config)


def test_continuing_uses_fewer_epochs_and_steps_are_capped(
    trained: camel.TrainResult, tiny_config: camel.CamelConfig
) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(**{**FAST_ARGS, "max_epochs": 6, "continue_max_epochs": 2})
    assert len(camel.train(texts, labels, init=trained.adapter, args=args).history) == 2
    capped = camel.train(texts, labels, config=tiny_config, args=camel.TrainingArgs(**{**FAST_ARGS, "max_steps": 4}))
    assert capped.adapter.metrics["training"]["steps"] == 4 and len(capped.history) == 2


def test_continuation_scales_learning_rates_but_gives_new_labels_their_own_head_rate(
    trained: camel.TrainResult,
) -> None:
    args = camel.TrainingArgs(**{**FAST_ARGS, "max_epochs": 1, "continue_lr_scale": 0.1, "lr_new_labels": 3e-3})
    same = camel.train(["refund please", "card lost"], ["refund", "lost_card"], init=trained.adapter, args=args)
    grown = camel.train(["refund please", "atm cash"], ["refund", "atm"], init=trained.adapter, args=args)
    assert same.adapter.metrics["training"]["args"]["lr_head"] == pytest.approx(args.lr_head * 0.1)
    assert grown.adapter.metrics["training"]["args"]["lr_head"] == pytest.approx(3e-3)  # random new rows must move
    assert grown.adapter.metrics["training"]["args"]["lr_blocks"] == pytest.approx(args.lr_blocks * 0.1)
