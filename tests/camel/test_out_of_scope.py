"""camel.out_of_scope: scores that rank out-of-scope messages above in-scope ones, and decisions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from camel.calibration import softmax
from camel.out_of_scope import (
    OutOfScopeDetector,
    OutOfScopeError,
    centroid_score,
    class_centroids,
    decide,
    fit_out_of_scope,
    max_probability_score,
    nearest_neighbour_score,
)


def toy(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three in-scope clusters and out-of-scope messages in other directions; probabilities from a
    softmax over similarity to the in-scope cluster centres."""
    rng = np.random.default_rng(seed)
    centres = np.eye(12)[:3] * 4.0
    labels = rng.integers(0, 3, 300)
    in_scope = centres[labels] + rng.normal(0, 0.5, (300, 12))
    out_scope = np.eye(12)[3:9][rng.integers(0, 6, 100)] * 4.0 + rng.normal(0, 0.5, (100, 12))
    embeddings = np.vstack([in_scope, out_scope])
    is_oos = np.r_[np.zeros(300, dtype=bool), np.ones(100, dtype=bool)]
    probabilities = softmax(embeddings @ centres.T / 2.0)
    return embeddings, labels, probabilities, is_oos


def test_scores_rank_out_of_scope_above_in_scope() -> None:
    embeddings, labels, probabilities, is_oos = toy()
    assert roc_auc_score(is_oos, max_probability_score(probabilities)) > 0.95
    centroids = class_centroids(embeddings[:300], labels, 3)
    assert roc_auc_score(is_oos, centroid_score(embeddings, centroids)) > 0.95


def test_explicit_out_of_scope_label() -> None:
    p = np.array(
        [
            [0.7, 0.2, 0.1],  # label 0 stated
            [0.3, 0.2, 0.5],  # out-of-scope label (2) is the most probable
            [0.45, 0.4, 0.15],
        ]
    )  # below the threshold: abstain
    decisions = decide(p, threshold=0.5, out_of_scope_index=2)
    assert [d.outcome for d in decisions] == ["label", "out_of_scope", "abstain"]
    assert [d.label_index for d in decisions] == [0, 0, 0]
    assert decisions[2].confidence == pytest.approx(0.45)
    # the out-of-scope column never counts as an in-scope label's confidence
    assert max_probability_score(p, 2) == pytest.approx([0.3, 0.7, 0.55])
    # without an out-of-scope label the third column is an ordinary label
    assert [(d.outcome, d.label_index) for d in decide(p, threshold=0.5)] == [
        ("label", 0),
        ("label", 2),
        ("abstain", 0),
    ]


def test_centroids_skip_the_out_of_scope_label_and_unseen_labels() -> None:
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0]])
    centroids = class_centroids(embeddings, np.array([0, 1]), 3)  # label 2 has no examples
    assert np.allclose(centroids[2], 0.0)
    scores = centroid_score(np.array([[0.0, 1.0]]), centroids, out_of_scope_index=1)
    assert scores[0] == pytest.approx(1.0)  # nearest in-scope centroid is label 0, orthogonal
    with pytest.raises(OutOfScopeError, match="labels must be in"):
        class_centroids(embeddings, np.array([0, 5]), 3)
    with pytest.raises(OutOfScopeError, match="out_of_scope_index"):
        decide(np.array([[0.5, 0.5]]), 0.5, out_of_scope_index=4)


def test_detector_turns_away_the_chosen_share_of_in_scope_and_catches_out_of_scope() -> None:
    embeddings, labels, probabilities, is_oos = toy(seed=4)
    train_rows, held_rows = np.arange(0, 200), np.arange(200, 300)  # in-scope only
    reference = embeddings[train_rows]
    probability = max_probability_score(probabilities)
    neighbour = nearest_neighbour_score(embeddings, reference)
    detector = fit_out_of_scope(probability[held_rows], neighbour[held_rows], max_inscope_rejection=0.1)
    assert detector.status == "fitted" and detector.fitted_on_n == 100
    held_flags = detector.flags(probability[held_rows], neighbour[held_rows])
    assert 0.05 <= held_flags.mean() <= 0.11
    flags = detector.flags(probability, neighbour)
    assert flags[is_oos].mean() > 0.9  # the out-of-scope directions are far from every in-scope message
    decisions = decide(probabilities, threshold=0.0, out_of_scope=flags)
    assert all(d.outcome == "out_of_scope" for d, flag in zip(decisions, flags) if flag)
    assert OutOfScopeDetector.from_dict(json.loads(json.dumps(detector.to_dict()))) == detector


def test_detector_off_and_too_few_examples_never_flag() -> None:
    off = fit_out_of_scope(np.linspace(0, 1, 100), np.linspace(0, 1, 100), max_inscope_rejection=0.0)
    assert off.status == "off" and not off.flags(np.ones(3), np.ones(3)).any()
    assert OutOfScopeDetector.from_dict(json.loads(json.dumps(off.to_dict()))) == off  # inf survives JSON
    tiny = fit_out_of_scope(np.ones(5), np.ones(5))
    assert tiny.status == "too_few_examples" and not tiny.flags(np.ones(5), np.ones(5)).any()
    with pytest.raises(OutOfScopeError, match="nearest-neighbour distance"):
        fit_out_of_scope(np.ones(50))
    only_probability = fit_out_of_scope(np.linspace(0, 1, 101), method="max_probability")
    assert only_probability.threshold == pytest.approx(0.9)
    with pytest.raises(OutOfScopeError, match="fields"):
        OutOfScopeDetector.from_dict({"method": "combined"})
