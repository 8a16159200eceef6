"""The promotion gate's rules, on metric dicts shaped like camel.evaluate's."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import f1_score

from bot.loop.gate import PairedOutcomes, _macro_f1, decide, decide_first, majority_baseline, per_label_changes
from camel.evaluation import metrics_from_predictions


def metrics(macro_f1: float, accuracy: float = 0.8, **recalls: tuple[float, int]) -> dict:
    per_label = {label: {"precision": r, "recall": r, "f1": r, "support": n} for label, (r, n) in recalls.items()}
    return {"macro_f1": macro_f1, "accuracy": accuracy, "per_label": per_label}


def test_promotes_when_as_good_within_epsilon_and_no_recall_drop() -> None:
    active = metrics(0.80, a=(0.8, 10), b=(0.8, 10))
    decision = decide(metrics(0.795, a=(0.75, 10), b=(0.85, 10)), active, epsilon=0.01, max_recall_drop=0.1)
    assert decision.promote and "0.795" in decision.reason
    assert [(c.label, round(c.change, 2)) for c in decision.per_label_changes] == [("a", -0.05), ("b", 0.05)]


def test_rejects_lower_macro_f1() -> None:
    decision = decide(metrics(0.70, a=(0.9, 5)), metrics(0.80, a=(0.9, 5)), epsilon=0.05, max_recall_drop=0.5)
    assert not decision.promote and decision.reason.startswith("macro-F1 0.700 is below active 0.800")


def test_rejects_a_label_whose_recall_collapses_even_if_macro_f1_rises() -> None:
    active = metrics(0.60, a=(0.9, 10), b=(0.3, 10))
    candidate = metrics(0.70, a=(0.5, 10), b=(0.9, 10))
    decision = decide(candidate, active, epsilon=0.01, max_recall_drop=0.1)
    assert not decision.promote and "recall of 'a' drops 0.90 -> 0.50" in decision.reason


def test_labels_without_heldout_support_do_not_count() -> None:
    active = metrics(0.8, a=(1.0, 0), b=(0.8, 4))
    candidate = metrics(0.8, a=(0.0, 0), b=(0.8, 4))
    decision = decide(candidate, active, epsilon=0.0, max_recall_drop=0.0)
    assert decision.promote and [c.label for c in decision.per_label_changes] == ["b"]


def test_new_label_counts_from_zero_recall() -> None:
    changes = per_label_changes(metrics(0.8, new=(0.6, 3)), metrics(0.8))
    assert [(c.label, c.old_recall, c.new_recall) for c in changes] == [("new", 0.0, 0.6)]


def test_first_adapter_must_beat_the_majority_baseline() -> None:
    baseline = majority_baseline(["x", "x", "y"], ["x", "y", "y", "x"])
    assert baseline == {"label": "x", "accuracy": 0.5, "macro_f1": pytest.approx(1 / 3)}
    assert decide_first(metrics(0.6, accuracy=0.75), baseline).promote
    tie = decide_first(metrics(0.6, accuracy=0.5), baseline)
    assert not tie.promote and "does not beat the majority baseline ('x')" in tie.reason
    assert not decide_first(metrics(0.3, accuracy=0.9), baseline).promote


def test_baseline_needs_data() -> None:
    with pytest.raises(ValueError, match="needs training and held-out labels"):
        majority_baseline([], ["x"])


def test_a_label_with_too_few_heldout_messages_is_judged_by_macro_f1_only() -> None:
    # One of four held-out messages flipping moves recall by 0.25: noise, not forgetting.
    active = metrics(0.80, a=(1.0, 4), b=(0.8, 20))
    candidate = metrics(0.82, a=(0.75, 4), b=(0.85, 20))
    assert not decide(candidate, active, epsilon=0.01, max_recall_drop=0.1).promote
    decision = decide(candidate, active, epsilon=0.01, max_recall_drop=0.1, min_support=10)
    assert decision.promote and [c.label for c in decision.per_label_changes] == ["a", "b"]
    # A label with enough support still blocks.
    collapsed = metrics(0.82, a=(1.0, 4), b=(0.5, 20))
    assert not decide(collapsed, active, epsilon=0.01, max_recall_drop=0.1, min_support=10).promote


def test_a_macro_f1_drop_from_one_flipped_message_of_a_small_heldout_set_is_noise() -> None:
    # 30 held-out messages over 15 labels (the 20-intent loop's early rounds): the candidate gets
    # one message wrong that the active got right.
    gold = [f"l{i % 15}" for i in range(30)]
    active_answers = list(gold)
    candidate_answers = list(gold)
    candidate_answers[0] = "l1"
    new = metrics_from_predictions(gold, candidate_answers)
    old = metrics_from_predictions(gold, active_answers)
    assert new["macro_f1"] < old["macro_f1"] - 0.01  # the plain rule would reject
    assert not decide(new, old, epsilon=0.01, max_recall_drop=1.0).promote
    paired = PairedOutcomes(gold, candidate_answers, active_answers)
    decision = decide(new, old, epsilon=0.01, max_recall_drop=1.0, paired=paired)
    assert decision.promote and "within held-out noise" in decision.reason


def test_a_real_drop_still_rejects_with_paired_answers() -> None:
    gold = [f"l{i % 5}" for i in range(200)]
    candidate_answers = ["l0" if i % 3 == 0 else g for i, g in enumerate(gold)]  # a third collapses to l0
    new = metrics_from_predictions(gold, candidate_answers)
    old = metrics_from_predictions(gold, gold)
    decision = decide(new, old, epsilon=0.01, max_recall_drop=1.0, paired=PairedOutcomes(gold, candidate_answers, gold))
    assert not decision.promote and decision.reason.startswith("macro-F1")


def test_the_resampled_macro_f1_is_sklearns() -> None:
    rng = random.Random(4)
    gold = [rng.choice("abcdef") for _ in range(60)]
    predicted = [g if rng.random() < 0.6 else rng.choice("abcdefg") for g in gold]
    names = sorted(set(gold) | set(predicted))
    as_ints = [np.array([names.index(x) for x in seq]) for seq in (gold, predicted)]
    expected = f1_score(gold, predicted, labels=sorted(set(gold)), average="macro", zero_division=0)
    assert _macro_f1(*as_ints, len(names)) == pytest.approx(expected)
