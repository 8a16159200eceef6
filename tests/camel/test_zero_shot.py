"""Zero-shot prototypes from label names (and descriptions), on the tiny random BERT."""

from __future__ import annotations

import pytest
import torch

import camel
from camel.errors import TrainingDataError
from camel.zero_shot import ZeroShotClassifier, humanise, label_prompt, label_prototypes, sentence_embeddings

LABELS = ["card_arrival", "lost_or_stolen_card", "top_up", "refund"]


@pytest.mark.parametrize(
    "label, expected",
    [
        ("card_arrival", "card arrival"),
        ("CardArrival", "card arrival"),
        ("top-up", "top up"),
        ("  lost_or_stolen_card ", "lost or stolen card"),
        ("beneficiary_not_allowed", "beneficiary not allowed"),
        ("negative", "negative"),
    ],
)
def test_humanise_turns_identifiers_into_words(label: str, expected: str) -> None:
    assert humanise(label) == expected


def test_prompt_adds_the_description_after_the_name() -> None:
    assert label_prompt("card_arrival") == "card arrival"
    assert label_prompt("card_arrival", " my card has not come ") == "card arrival: my card has not come"


def test_prototypes_are_the_base_sentence_embeddings_of_the_prompts(tiny_base: camel.BaseEncoder) -> None:
    prototypes = label_prototypes(tiny_base, LABELS)
    assert prototypes.shape == (len(LABELS), tiny_base.hidden_size)
    assert torch.allclose(prototypes.norm(dim=1), torch.ones(len(LABELS)), atol=1e-5)
    output = tiny_base.bottom(["top up"], tiny_base.num_layers)
    by_hand = torch.nn.functional.normalize(output.hidden[0, : output.lengths[0]].mean(dim=0), dim=0)
    assert torch.allclose(prototypes[LABELS.index("top_up")], by_hand, atol=1e-5)
    # The feature cache (float16 states) gives nearly the same vectors.
    cached = label_prototypes(tiny_base, LABELS, cache=camel.FeatureCache(tiny_base))
    assert torch.allclose(cached, prototypes, atol=1e-2)


def test_descriptions_change_only_their_own_prototype(tiny_base: camel.BaseEncoder) -> None:
    plain = label_prototypes(tiny_base, LABELS)
    described = label_prototypes(tiny_base, LABELS, {"refund": "money back for a charge"})
    changed = [not torch.allclose(a, b) for a, b in zip(plain, described)]
    assert changed == [False, False, False, True]


def test_classifier_ranks_by_cosine_and_returns_three_guesses(tiny_base: camel.BaseEncoder) -> None:
    classifier = ZeroShotClassifier(tiny_base, LABELS)
    guesses = classifier.predict(["card arrival", "lost or stolen card"])
    assert [g.label for g in guesses] == ["card_arrival", "lost_or_stolen_card"]
    for guess in guesses:
        assert guess.score == pytest.approx(1.0, abs=1e-4)  # the message is the label's own prompt
        assert len(guess.top3) == 3 and len({label for label, _ in guess.top3}) == 3
        assert [s for _, s in guess.top3] == sorted((s for _, s in guess.top3), reverse=True)
    scores = classifier.scores(["refund please"])
    expected = sentence_embeddings(tiny_base, ["refund please"]) @ classifier.prototypes.T
    assert torch.allclose(scores, expected)


def test_no_labels_is_a_clear_error(tiny_base: camel.BaseEncoder) -> None:
    with pytest.raises(TrainingDataError, match="at least one label"):
        label_prototypes(tiny_base, [])
