"""A tiny random XLM-RoBERTa with a sentencepiece-style (Unigram) tokenizer: the same camel paths
as the tiny BERT (bottom, training, serving, cache, zero-shot) on Chinese text."""

from __future__ import annotations

import random
from pathlib import Path

import torch

import camel
from camel.zero_shot import ZeroShotClassifier
from tests.camel.helpers import FAST_ARGS
from tests.tiny_model import ZH_INTENT_WORDS, zh_sentence


def zh_dataset(per_label: int = 12, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for label in sorted(ZH_INTENT_WORDS):
        for _ in range(per_label):
            texts.append(zh_sentence(label, rng))
            labels.append(label)
    return texts, labels


def test_the_bottom_equals_the_full_encoder_on_chinese(tiny_xlmr_dir: Path) -> None:
    base = camel.load_base(str(tiny_xlmr_dir))
    texts = ["我的卡还没到", "退款失败了吗", "card arrived"]
    full = base.model(**base.tokenize(texts, 32))
    split = base.bottom(texts, base.num_layers - 1, 32)
    top = base.run_blocks(base.blocks[base.num_layers - 1 :], split.hidden, split.mask)
    real = split.mask.bool()
    assert torch.allclose(top[real], full.last_hidden_state[real], atol=1e-5)


def test_chinese_labels_train_serve_and_fill_the_cache(tiny_xlmr_dir: Path, tmp_path: Path) -> None:
    texts, labels = zh_dataset()
    config = camel.CamelConfig(base_model=str(tiny_xlmr_dir), trainable_layers=1, bottleneck=8)
    result = camel.train(texts, labels, config=config, args=camel.TrainingArgs(**{**FAST_ARGS, "max_epochs": 6}))
    folder = tmp_path / "v0001"
    camel.save_adapter(result.adapter, str(folder))
    cache = camel.FeatureCache(result.adapter.base, str(tmp_path / "cache"))
    served = camel.Predictor(camel.load_adapter(str(folder), result.adapter.base), cache)
    answers = served.answer(texts)
    accuracy = sum(a.label == label for a, label in zip(answers, labels)) / len(labels)
    assert accuracy > 0.8  # the words of each intent are its own: a working base learns them
    assert len(cache) >= len(set(texts))


def test_zero_shot_from_chinese_label_descriptions(tiny_xlmr_dir: Path) -> None:
    base = camel.load_base(str(tiny_xlmr_dir))
    labels = sorted(ZH_INTENT_WORDS)
    descriptions = {label: "".join(ZH_INTENT_WORDS[label][:3]) for label in labels}
    classifier = ZeroShotClassifier(base, labels, descriptions)
    # A message that is a label's own prompt is nearest to that label's prototype.
    prompts = [camel.zero_shot.label_prompt(label, descriptions[label]) for label in labels]
    assert [guess.label for guess in classifier.predict(prompts)] == labels
