"""Held-out evaluation: accuracy, macro/weighted F1, per-label report and the most confused pairs."""

from __future__ import annotations

from collections import Counter
from typing import Any

from camel.cache import FeatureCache
from camel.errors import TrainingDataError
from camel.model import Adapter
from camel.predictor import Predictor

TOP_CONFUSED = 20


def evaluate(
    adapter_or_predictor: Adapter | Predictor, texts: list[str], labels: list[str], cache: FeatureCache | None = None
) -> dict[str, Any]:
    """Metrics of the adapter's top-1 predictions against `labels` (JSON-serialisable)."""
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise TrainingDataError(f"evaluation data has {len(texts)} texts but {len(labels)} labels")
    return metrics_from_predictions(labels, top1_labels(adapter_or_predictor, texts, cache))


def top1_labels(
    adapter_or_predictor: Adapter | Predictor, texts: list[str], cache: FeatureCache | None = None
) -> list[str]:
    """The adapter's most probable label for each text (what `evaluate` scores)."""
    if not texts:
        raise TrainingDataError("evaluation data is empty")
    predictor = (
        adapter_or_predictor if isinstance(adapter_or_predictor, Predictor) else Predictor(adapter_or_predictor, cache)
    )
    adapter, probabilities = predictor.probabilities(list(texts))
    return [adapter.labels[int(i)] for i in probabilities.argmax(dim=1)]


def metrics_from_predictions(gold: list[str], predicted: list[str]) -> dict[str, Any]:
    """The evaluation dict for gold vs predicted labels (labels the model never knew count as errors)."""
    # Imported here: sklearn takes about a third of `import camel`, and a serving process never evaluates.
    from sklearn.metrics import accuracy_score, classification_report, f1_score, recall_score

    names = sorted(set(gold) | set(predicted))
    report = classification_report(gold, predicted, labels=names, output_dict=True, zero_division=0)
    per_label = {
        name: {
            "precision": float(report[name]["precision"]),
            "recall": float(report[name]["recall"]),
            "f1": float(report[name]["f1-score"]),
            "support": int(report[name]["support"]),
        }
        for name in names
    }
    known = sorted(set(gold))  # averages over the classes that occur, as the benchmarks report them
    confused = Counter((g, p) for g, p in zip(gold, predicted) if g != p)
    most_confused = sorted(confused.items(), key=lambda item: (-item[1], item[0]))[:TOP_CONFUSED]
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, labels=known, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(gold, predicted, labels=known, average="weighted", zero_division=0)),
        "macro_recall": float(recall_score(gold, predicted, labels=known, average="macro", zero_division=0)),
        "report": _plain(report),
        "per_label": per_label,
        "confused_pairs": [{"true": g, "predicted": p, "count": n} for (g, p), n in most_confused],
    }


def _plain(value: Any) -> Any:
    """sklearn's report with numpy scalars turned into plain floats for json.dumps."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return float(value)
