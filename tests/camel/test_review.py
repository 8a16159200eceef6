"""camel.review: uncertainty scores and a ranking that prefers unsure messages but not near-duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from camel.review import ReviewError, select_for_review, uncertainty


def test_uncertainty_kinds_order_unsure_rows_first() -> None:
    p = np.array([[0.9, 0.05, 0.05], [0.45, 0.45, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.2, 0.2]])
    margin = uncertainty(p, "margin")
    assert margin[1] == pytest.approx(1.0) and margin[0] == pytest.approx(0.15)
    assert margin[1] > margin[3] > margin[0]
    entropy = uncertainty(p, "entropy")
    assert entropy[2] == pytest.approx(1.0) and entropy.argmin() == 0
    assert uncertainty(p, "least_confident")[0] == pytest.approx(0.1)
    with pytest.raises(ReviewError, match="uncertainty kind"):
        uncertainty(p, "random")


def test_ranking_prefers_uncertain_messages() -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(50, 16))  # random directions: no near-duplicates
    scores = rng.uniform(0.0, 0.5, 50)
    scores[[7, 21, 33]] = [0.9, 0.95, 0.99]
    assert select_for_review(scores, embeddings, 3) == [33, 21, 7]
    assert select_for_review(scores, embeddings, 3, diversity=0.0) == [33, 21, 7]


def test_ranking_does_not_ask_near_duplicates_together() -> None:
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(40, 16))
    copies = embeddings[0] + rng.normal(0, 0.01, (4, 16))  # five near-copies of message 0
    embeddings[1:5] = copies
    scores = np.full(40, 0.2)
    scores[:5] = [0.99, 0.98, 0.97, 0.96, 0.95]
    scores[10], scores[20] = 0.9, 0.85
    picked = select_for_review(scores, embeddings, 3)
    assert picked == [0, 10, 20]
    # without the diversity penalty the near-duplicate cut-off still keeps copies apart
    assert select_for_review(scores, embeddings, 3, diversity=0.0) == [0, 10, 20]
    # and a pure score ranking would have asked the copies
    assert list(np.argsort(-scores)[:3]) == [0, 1, 2]


def test_excluded_messages_never_appear_and_small_pools() -> None:
    rng = np.random.default_rng(2)
    embeddings = rng.normal(size=(30, 8))
    scores = rng.uniform(size=30)
    exclude = np.zeros(30, dtype=bool)
    exclude[np.argsort(-scores)[:10]] = True  # the ten most uncertain are already labelled
    picked = select_for_review(scores, embeddings, 5, exclude=exclude)
    assert len(picked) == 5 and not exclude[picked].any()
    assert select_for_review(scores, embeddings, 0) == []
    everything = select_for_review(scores, embeddings, 100, duplicate_similarity=1.1, candidates=30)
    assert sorted(everything) == list(range(30))
    nan_scores = scores.copy()
    nan_scores[3] = np.nan  # a message without a score (not yet predicted) is skipped
    assert 3 not in select_for_review(nan_scores, embeddings, 30, duplicate_similarity=1.1)


def test_bad_shapes_are_one_line_errors() -> None:
    with pytest.raises(ReviewError, match="embeddings must be"):
        select_for_review(np.zeros(5), np.zeros((4, 3)), 2)
    with pytest.raises(ReviewError, match="exclude must be"):
        select_for_review(np.zeros(5), np.zeros((5, 3)), 2, exclude=np.zeros(4, dtype=bool))
    with pytest.raises(ReviewError, match="probabilities must be"):
        uncertainty(np.zeros(5))


def test_diversity_weight_trades_score_for_spread() -> None:
    base = np.zeros(8)
    base[0] = 1.0
    similar = base.copy()
    similar[1] = 0.484  # cosine ~0.9 with `base`: alike, but not a near-duplicate
    distinct = np.zeros(8)
    distinct[2] = 1.0
    embeddings = np.vstack([base, similar, distinct])
    scores = np.array([0.99, 0.98, 0.85])
    assert select_for_review(scores, embeddings, 2, diversity=0.0) == [0, 1]
    assert select_for_review(scores, embeddings, 2, diversity=0.5) == [0, 2]
