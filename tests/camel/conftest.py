"""Fixtures of the camel tests: a tiny random BERT, a small labelled set and a trained adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import camel
from tests.camel.helpers import FAST_ARGS, copy_tokenizer, dataset, vocab_size

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_base(tiny_bert_dir: Path) -> camel.BaseEncoder:
    return camel.load_base(str(tiny_bert_dir))


@pytest.fixture(scope="session")
def tiny_config(tiny_bert_dir: Path) -> camel.CamelConfig:
    return camel.CamelConfig(base_model=str(tiny_bert_dir), trainable_layers=1, bottleneck=16)


@pytest.fixture(scope="session")
def trained(tiny_config: camel.CamelConfig) -> camel.TrainResult:
    texts, labels = dataset()
    return camel.train(texts, labels, config=tiny_config, args=camel.TrainingArgs(**FAST_ARGS))


@pytest.fixture(scope="session")
def tiny_roberta_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import RobertaConfig, RobertaModel

    folder = tmp_path_factory.mktemp("tiny-roberta")
    copy_tokenizer(tiny_bert_dir, folder)
    torch.manual_seed(1)
    config = RobertaConfig(
        vocab_size=vocab_size(tiny_bert_dir),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=0,
    )
    RobertaModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def tiny_distilbert_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import DistilBertConfig, DistilBertModel

    folder = tmp_path_factory.mktemp("tiny-distilbert")
    copy_tokenizer(tiny_bert_dir, folder)
    torch.manual_seed(2)
    config = DistilBertConfig(
        vocab_size=vocab_size(tiny_bert_dir),
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    DistilBertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder
