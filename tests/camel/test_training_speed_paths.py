"""What a round runs its work with (issue 22): the probe's top pass in the round's precision, the
probe's BLAS on the round's threads, a fused optimizer step. How fast they run is measured in
bench/method/retrain_profile.py, never here."""

from __future__ import annotations

import copy

import pytest
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info

import camel
from camel import trainer
from camel.features import pooled_vectors
from tests.camel.helpers import FAST_ARGS, dataset


def test_the_probe_start_runs_the_top_blocks_in_the_rounds_precision(
    tiny_config: camel.CamelConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    pool = camel.Adapter.pool

    def spy(self: camel.Adapter, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        seen.append(torch.is_autocast_enabled("cpu"))
        return pool(self, hidden, mask)

    monkeypatch.setattr(camel.Adapter, "pool", spy)
    texts, labels = dataset()
    args = camel.TrainingArgs(**{**FAST_ARGS, "probe_finetune": False})  # the probe start only
    for bf16 in (True, False):
        seen.clear()
        camel.train(texts, labels, config=tiny_config, args=camel.TrainingArgs(**{**args.to_dict(), "bf16": bf16}))
        assert seen and all(enabled == bf16 for enabled in seen)


def test_pooled_vectors_in_bf16_are_float32_and_close(trained: camel.TrainResult) -> None:
    adapter = trained.adapter
    texts, _ = dataset()
    states = camel.FeatureCache(adapter.base).states(texts, adapter.split_layer, adapter.config.max_length)
    full, half = pooled_vectors(adapter, states), pooled_vectors(adapter, states, bf16=True)
    assert full.dtype == half.dtype == torch.float32
    assert float(torch.nn.functional.cosine_similarity(full, half).min()) > 0.99


def test_the_probe_fit_uses_the_rounds_thread_count_for_blas(
    tiny_config: camel.CamelConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts: list[int] = []
    fit = LogisticRegression.fit

    def spy(self: LogisticRegression, *args: object, **kwargs: object) -> LogisticRegression:
        counts.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    texts, labels = dataset()
    camel.train(texts, labels, config=tiny_config, args=camel.TrainingArgs(**{**FAST_ARGS, "num_threads": 1}))
    assert counts and set(counts) == {1}


def test_the_optimizer_step_is_fused_and_does_what_the_plain_one_does(trained: camel.TrainResult) -> None:
    args = camel.TrainingArgs(**FAST_ARGS)
    fused_adapter, plain_adapter = copy.deepcopy(trained.adapter), copy.deepcopy(trained.adapter)
    fused = trainer._optimizer(fused_adapter, args)
    assert fused.defaults["fused"] is True
    plain = torch.optim.AdamW(
        [
            {"params": plain_adapter.head_parameters(), "lr": args.lr_head},
            {"params": plain_adapter.block_parameters(), "lr": args.lr_blocks},
        ],
        weight_decay=args.weight_decay,
    )
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        for one, other in zip(fused_adapter.parameters(), plain_adapter.parameters()):
            one.grad = torch.randn(one.shape, generator=generator)
            other.grad = one.grad.clone()
        fused.step()
        plain.step()
    for one, other in zip(fused_adapter.parameters(), plain_adapter.parameters()):
        assert torch.allclose(one, other, atol=1e-6)
