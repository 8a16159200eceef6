"""A fresh head starts from a logistic-regression probe plus the label-name prior; a small round
on top of an adapter refits on all its data; old adapters keep their pooling."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from sklearn.linear_model import LogisticRegression

import camel
from camel.features import pooled_vectors
from camel.zero_shot import label_prototypes
from tests.camel.helpers import FAST_ARGS, dataset

# One step at a vanishing learning rate: the head stays (to float16 storage) where it started.
FROZEN = dict(FAST_ARGS, max_epochs=1, max_steps=1, lr_head=1e-12, lr_blocks=1e-12)


@pytest.fixture(scope="module")
def k0_config(tiny_bert_dir) -> camel.CamelConfig:
    return camel.CamelConfig(base_model=str(tiny_bert_dir), trainable_layers=0, bottleneck=16)


def _pooled(adapter: camel.Adapter, texts: list[str]) -> torch.Tensor:
    states = camel.FeatureCache(adapter.base).states(texts, adapter.split_layer, adapter.config.max_length)
    return pooled_vectors(adapter, states)


def test_probe_head_predicts_like_logistic_regression_on_the_pooled_features(k0_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(**FROZEN, prior_weight=0.0, probe_c=10.0)
    adapter = camel.train(texts, labels, config=k0_config, args=args).adapter
    features = _pooled(adapter, texts)
    assert torch.allclose(features.norm(dim=1), torch.ones(len(texts)), atol=1e-5)  # normalize_pooled
    probe = LogisticRegression(C=10.0, max_iter=1000).fit(features.double().numpy(), labels)
    assert list(probe.classes_) == adapter.labels
    assert torch.allclose(adapter.classifier.weight, torch.from_numpy(probe.coef_).float(), atol=2e-2)
    with torch.no_grad():
        logits = adapter.head(features)
    assert [adapter.labels[i] for i in logits.argmax(dim=1)] == list(probe.predict(features.double().numpy()))
    assert adapter.metrics["training"]["head_init"] == "probe"


def test_label_name_prior_is_added_to_the_probe_rows(k0_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    plain = camel.train(texts, labels, config=k0_config, args=camel.TrainingArgs(**FROZEN, prior_weight=0.0)).adapter
    prototypes = label_prototypes(plain.base, plain.labels)
    with_prior = camel.train(
        texts, labels, config=k0_config, args=camel.TrainingArgs(**FROZEN, prior_weight=3.0, prior_decay=0.0)
    ).adapter
    assert torch.allclose(with_prior.classifier.weight - plain.classifier.weight, 3.0 * prototypes, atol=2e-2)
    # With 6 examples per label and decay 0.5 the prior fades to 3 / (1 + 0.5 * 6) = 0.75.
    faded = camel.train(
        texts, labels, config=k0_config, args=camel.TrainingArgs(**FROZEN, prior_weight=3.0, prior_decay=0.5)
    ).adapter
    assert torch.allclose(faded.classifier.weight - plain.classifier.weight, 0.75 * prototypes, atol=2e-2)


def test_prior_only_and_random_heads(k0_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    prior = camel.train(texts, labels, config=k0_config, args=camel.TrainingArgs(**FROZEN, head_init="prior")).adapter
    assert torch.allclose(prior.classifier.weight, 20.0 * label_prototypes(prior.base, prior.labels), atol=2e-2)
    assert torch.count_nonzero(prior.classifier.bias) == 0
    random_head = camel.train(
        texts, labels, config=k0_config, args=camel.TrainingArgs(**FROZEN, head_init="random")
    ).adapter
    assert random_head.classifier.weight.abs().max() < 1.0  # nn.Linear's small uniform start
    assert random_head.metrics["training"]["head_init"] == "random"


def test_validation_sees_the_closed_form_start_as_epoch_zero(k0_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(**{**FAST_ARGS, "val_fraction": 0.25, "min_val_examples": 2, "max_epochs": 3})
    result = camel.train(texts, labels, config=k0_config, args=args)
    assert result.history[0]["epoch"] == 0 and result.history[0]["steps"] == 0
    best = min(row["val_loss"] for row in result.history)
    assert result.val_metrics["loss"] == pytest.approx(best)


def test_probe_start_is_deterministic_and_k1_blocks_see_it(tiny_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(**FAST_ARGS)
    first = camel.train(texts, labels, config=tiny_config, args=args).adapter.state_dict()
    second = camel.train(texts, labels, config=tiny_config, args=args).adapter.state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_small_round_on_an_adapter_refits_on_all_data_keeping_label_order(k0_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    old = camel.train(texts[:12], labels[:12], config=k0_config, args=camel.TrainingArgs(**FAST_ARGS)).adapter
    new_texts, new_labels = texts[12:], labels[12:]
    result = camel.train(
        new_texts, new_labels, init=old, replay=(texts[:12], labels[:12]), args=camel.TrainingArgs(**FAST_ARGS)
    )
    training = result.adapter.metrics["training"]
    assert result.adapter.labels[: len(old.labels)] == old.labels
    assert sorted(result.adapter.labels) == sorted(set(labels))
    assert training["head_init"] == "probe" and training["n_train"] + training["n_val"] == len(texts)
    # Above the threshold the round continues from the adapter with a replay sample instead.
    continued = camel.train(
        new_texts,
        new_labels,
        init=old,
        replay=(texts[:12], labels[:12]),
        args=camel.TrainingArgs(**FAST_ARGS, refit_below=0),
    )
    assert continued.adapter.metrics["training"]["head_init"] == "continued"


def test_refit_keeps_the_adapter_structure(k0_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    old = camel.train(texts, labels, config=k0_config, args=camel.TrainingArgs(**FAST_ARGS)).adapter
    with pytest.raises(camel.CamelError, match="trainable_layers"):
        camel.train(
            texts[:4],
            labels[:4],
            init=old,
            config=dataclasses.replace(k0_config, trainable_layers=1),
            args=camel.TrainingArgs(**FAST_ARGS),
        )


def test_adapters_saved_before_pooled_normalisation_keep_raw_pooling() -> None:
    data = camel.CamelConfig().to_dict()
    data.pop("normalize_pooled")
    assert camel.CamelConfig.from_dict(data).normalize_pooled is False
    assert camel.CamelConfig().normalize_pooled is True


def test_by_default_the_blocks_are_fine_tuned_from_the_probe_start() -> None:
    """The shipped recipe (bench/results/recipe_search.md, `k2_ft_b1e4`): K=2, probe + prior start, then
    a fixed schedule on every example with a slow head."""
    config, args = camel.CamelConfig(), camel.TrainingArgs()
    assert config.trainable_layers == 2
    assert args.head_init == "probe" and args.probe_finetune and args.val_fraction == 0.0
    assert (args.prior_weight, args.prior_decay, args.lr_head, args.lr_blocks) == (8.0, 0.05, 1e-4, 1e-4)
    assert args.max_epochs == 8
    assert args.lr_head < args.lr_new_labels


def test_without_fine_tuning_the_closed_form_head_is_the_result(k0_config: camel.CamelConfig) -> None:
    texts, labels = dataset()
    args = camel.TrainingArgs(num_threads=1, val_fraction=0.25, min_val_examples=2, probe_finetune=False)
    result = camel.train(texts, labels, config=k0_config, args=args)
    assert result.adapter.metrics["training"]["steps"] == 0
    assert [row["epoch"] for row in result.history] == [0]
    assert result.val_metrics["epoch"] == 0
    assert torch.count_nonzero(result.adapter.adapt.up.weight) == 0  # the adaptation layer is still the identity
