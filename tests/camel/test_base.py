"""The frozen bottom: one shared object per folder, equal to the full encoder, for three families."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import camel
from tests.camel.helpers import FAST_ARGS, dataset


def test_same_path_gives_the_same_base_object(tiny_bert_dir: Path) -> None:
    first = camel.load_base(str(tiny_bert_dir))
    assert camel.load_base(str(tiny_bert_dir) + "/") is first
    assert all(not p.requires_grad for p in first.model.parameters())
    assert not first.model.training


def test_two_adapters_share_one_base(tiny_base: camel.BaseEncoder, tiny_config: camel.CamelConfig) -> None:
    one = camel.new_adapter(tiny_base, tiny_config, ["a", "b"])
    two = camel.new_adapter(tiny_base, tiny_config, ["c", "d", "e"])
    assert one.base is two.base is tiny_base
    assert not any(name.startswith("base") for name in one.state_dict())


def test_fingerprint_is_stable_and_depends_on_the_weights(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    from camel.base import compute_fingerprint
    from tests.tiny_model import make_tiny_bert

    assert compute_fingerprint(tiny_base.path) == tiny_base.fingerprint
    other = make_tiny_bert(tmp_path / "other", seed=5)
    assert compute_fingerprint(str(other)) != tiny_base.fingerprint


@pytest.mark.parametrize("folder_fixture", ["tiny_bert_dir", "tiny_roberta_dir", "tiny_distilbert_dir"])
def test_bottom_plus_top_blocks_equals_the_full_encoder(folder_fixture: str, request: pytest.FixtureRequest) -> None:
    base = camel.load_base(str(request.getfixturevalue(folder_fixture)))
    texts = ["my card has not arrived", "hello"]
    full = base.model(**{k: v for k, v in base.tokenize(texts, 32).items() if k != "token_type_ids"})
    split = base.bottom(texts, base.num_layers - 1, 32)
    top = base.run_blocks(base.blocks[base.num_layers - 1 :], split.hidden, split.mask)
    real = split.mask.bool()
    assert torch.allclose(top[real], full.last_hidden_state[real], atol=1e-5)


@pytest.mark.parametrize("folder_fixture", ["tiny_roberta_dir", "tiny_distilbert_dir"])
def test_roberta_and_distilbert_folders_train_and_predict(folder_fixture: str, request: pytest.FixtureRequest) -> None:
    folder = request.getfixturevalue(folder_fixture)
    texts, labels = dataset()
    config = camel.CamelConfig(base_model=str(folder), trainable_layers=1, bottleneck=8)
    result = camel.train(texts, labels, config=config, args=camel.TrainingArgs(**FAST_ARGS))
    predictions = camel.Predictor(result.adapter).answer(["top up failed"])
    assert predictions[0].label in labels
    assert result.adapter.base.model_type in ("roberta", "distilbert")
