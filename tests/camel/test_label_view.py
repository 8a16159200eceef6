"""camel.label_view: today's labels over a trained adapter, inside Predictor.answer (rename, merge,
retire, new label by prototype row), and retarget (the same plan written into an adapter)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import camel
from camel.label_view import LabelView, retarget

TEXTS = ["my card has not arrived", "refund please", "top up failed", "card lost", "stolen card please help"]


def _probabilities(predictor: camel.Predictor) -> dict[str, np.ndarray]:
    """Each served label's uncalibrated probability per text, as answer() sees them."""
    label_plan = predictor.label_plan()
    matrix = predictor._probabilities(predictor.adapter, TEXTS, label_plan).numpy()
    return {label: matrix[:, i] for i, label in enumerate(label_plan.labels)}


def test_no_change_serves_the_adapter_itself(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    before = predictor.answer(TEXTS)
    predictor.set_label_view(LabelView(labels=tuple(trained.adapter.labels)))
    assert predictor.label_plan().identity
    after = predictor.answer(TEXTS)
    assert [(a.label, a.top3, a.outcome) for a in after] == [(b.label, b.top3, b.outcome) for b in before]


def test_rename_serves_the_same_probabilities_under_the_new_name(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    before = _probabilities(predictor)
    labels = tuple("card_delivery" if label == "card_arrival" else label for label in trained.adapter.labels)
    predictor.set_label_view(LabelView(labels=labels, renamed={"card_arrival": "card_delivery"}, mark=1))
    after = _probabilities(predictor)
    assert "card_arrival" not in after
    np.testing.assert_allclose(after["card_delivery"], before["card_arrival"], atol=1e-6)
    answers = predictor.answer(TEXTS)
    assert all("card_arrival" not in [label for label, _ in a.top3] for a in answers)


def test_merge_sums_the_two_columns_and_retire_masks_one(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    before = _probabilities(predictor)
    labels = tuple(label for label in trained.adapter.labels if label != "lost_card")
    predictor.set_label_view(LabelView(labels=labels, renamed={"lost_card": "card_arrival"}, mark=1))
    merged = _probabilities(predictor)
    np.testing.assert_allclose(merged["card_arrival"], before["card_arrival"] + before["lost_card"], atol=1e-6)
    assert "lost_card" not in merged

    retired = tuple(label for label in trained.adapter.labels if label != "refund")
    predictor.set_label_view(LabelView(labels=retired, retired=frozenset({"refund"}), mark=2))
    masked = _probabilities(predictor)
    assert "refund" not in masked
    rest = before["card_arrival"] + before["lost_card"] + before["top_up"]
    np.testing.assert_allclose(masked["top_up"], before["top_up"] / rest, rtol=1e-4)
    assert all(a.label != "refund" for a in predictor.answer(["refund please", "i need a refund"]))


def test_a_new_label_is_predictable_at_once_through_its_prototype_row(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    labels = (*trained.adapter.labels, "crypto_withdrawal")
    view = LabelView(labels=labels, descriptions={"crypto_withdrawal": "sending bitcoin out of the account"}, mark=3)
    predictor.set_label_view(view)
    label_plan = predictor.label_plan()
    assert label_plan.labels[-1] == "crypto_withdrawal" and tuple(label_plan.extra_weight.shape) == (1, 32)
    shares = _probabilities(predictor)
    assert set(shares) == set(labels)
    total = sum(shares.values())
    np.testing.assert_allclose(total, np.ones(len(TEXTS)), atol=1e-5)
    # as long as the trained rows on average (centred), with their mean bias
    trained_rows = predictor.adapter.classifier.weight.detach()
    centred = trained_rows - trained_rows.mean(dim=0)
    assert float(label_plan.extra_weight.norm()) == pytest.approx(float(centred.norm(dim=1).mean()), rel=1e-4)
    assert float(label_plan.extra_bias[0]) == pytest.approx(
        float(predictor.adapter.classifier.bias.detach().mean()), rel=1e-4
    )
    # its own words are what it is most likely for
    prompt = "crypto withdrawal: sending bitcoin out of the account"
    first = predictor._probabilities(predictor.adapter, [prompt, *TEXTS], label_plan).numpy()[:, -1]
    assert int(first.argmax()) == 0


def test_retarget_writes_the_plan_into_an_adapter(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    renamed = ("card_delivery", "lost_card", "refund", "top_up", "crypto")
    predictor.set_label_view(LabelView(labels=renamed, renamed={"card_arrival": "card_delivery"}, mark=4))
    served = _probabilities(predictor)
    adapter = retarget(trained.adapter, predictor.label_plan())
    assert adapter.labels == list(renamed)
    assert trained.adapter.labels == ["card_arrival", "lost_card", "refund", "top_up"]  # the original is untouched
    plain = camel.Predictor(adapter)._probabilities(adapter, TEXTS).numpy()
    for i, name in enumerate(adapter.labels):  # renamed and prototype rows serve exactly what the plan served
        np.testing.assert_allclose(plain[:, i], served[name], atol=1e-5)

    merged = ("card_delivery", "refund", "top_up", "crypto")
    predictor.set_label_view(
        LabelView(labels=merged, renamed={"card_arrival": "card_delivery", "lost_card": "card_delivery"}, mark=5)
    )
    assert retarget(trained.adapter, predictor.label_plan()).labels == list(merged)
    assert retarget(trained.adapter, predictor.label_plan(), keep_new=set()).labels == list(merged[:3])


def test_a_view_set_while_answering_applies_to_the_next_batch(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    first = predictor.label_plan()
    predictor.set_label_view(
        LabelView(labels=("card_arrival", "lost_card", "refund", "top_up", "fees"), descriptions={}, mark=5)
    )
    assert predictor.label_plan() is not first and "fees" in predictor.label_plan().labels
    predictor.set_label_view(None)
    assert predictor.label_plan().labels == trained.adapter.labels
    assert torch.equal(predictor.label_plan().targets, torch.arange(4))
