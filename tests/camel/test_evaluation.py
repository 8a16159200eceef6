"""evaluate(): the documented keys, JSON-serialisable, with the most confused pairs first."""

from __future__ import annotations

import json

import camel
from camel.evaluation import metrics_from_predictions
from tests.camel.helpers import dataset


def test_metrics_from_known_predictions() -> None:
    gold = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", "b", "b", "a"]
    metrics = metrics_from_predictions(gold, predicted)
    assert metrics["n"] == 6
    assert metrics["accuracy"] == 3 / 6
    assert metrics["per_label"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 2}
    assert metrics["per_label"]["c"]["f1"] == 0.0
    assert metrics["confused_pairs"] == [
        {"true": "a", "predicted": "b", "count": 2},
        {"true": "c", "predicted": "a", "count": 1},
    ]
    assert abs(metrics["macro_f1"] - (0.4 + 2 / 3 + 0.0) / 3) < 1e-9
    assert abs(metrics["macro_recall"] - (1 / 3 + 1.0 + 0.0) / 3) < 1e-9
    assert "weighted avg" in metrics["report"] and "weighted_f1" in metrics


def test_evaluate_adapter_and_predictor_agree_and_serialise(trained: camel.TrainResult) -> None:
    texts, labels = dataset()
    from_adapter = camel.evaluate(trained.adapter, texts, labels)
    from_predictor = camel.evaluate(camel.Predictor(trained.adapter), texts, labels)
    assert from_adapter == from_predictor
    assert json.loads(json.dumps(from_adapter)) == from_adapter
    assert set(from_adapter) >= {"accuracy", "macro_f1", "weighted_f1", "report", "per_label", "confused_pairs", "n"}


def test_unknown_gold_labels_count_as_errors(trained: camel.TrainResult) -> None:
    metrics = camel.evaluate(trained.adapter, ["refund please"], ["never_seen"])
    assert metrics["accuracy"] == 0.0 and metrics["per_label"]["never_seen"]["recall"] == 0.0
