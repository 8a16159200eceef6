"""A round's calibration: fitted on the held-out labels with the new adapter's logits.

`camel.fit_calibration` cross-fits on the held-out set (the stored precision and coverage are
out-of-fold), then refits temperature and threshold on all of it. The result is saved in the
version folder through `save_adapter(extra_files=...)`, so the integrity manifest covers it,
and the serving side (`camel.Predictor.answer`) reads it back from `Adapter.extra_files`.

Out of scope, for a task that declares an out-of-scope label: a max-probability detector is
fitted on the held-out in-scope messages (`camel.fit_out_of_scope`) and saved beside the
calibration, and the out-of-scope recall is the share of held-out messages labelled with it on
which the adapter states no in-scope label (it says "not one of mine" or abstains), at the
calibrated threshold; reported with the gate's metrics.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

import camel
from camel.calibration import logits_from_probabilities
from camel.answers import calibrated


def heldout_probabilities(adapter: camel.Adapter, texts: Sequence[str], cache: camel.FeatureCache) -> np.ndarray:
    """Uncalibrated probabilities [n, labels] of the adapter on the held-out texts."""
    adapter.eval()  # no dropout: the same outputs it will serve
    _, probabilities = camel.Predictor(adapter, cache).probabilities(list(texts))
    return np.asarray(probabilities.numpy(), dtype=np.float64)


def fit(
    adapter: camel.Adapter,
    texts: Sequence[str],
    labels: Sequence[str],
    cache: camel.FeatureCache,
    *,
    target_precision: float,
    floor: float,
) -> camel.Calibration:
    """Temperature and threshold for `adapter` from held-out (text, label) pairs.

    Held-out labels the adapter does not know (no training example yet) cannot be predicted by
    it; they are left out here, and they count as errors in the gate's evaluation.
    """
    known = [i for i, label in enumerate(labels) if label in adapter.labels]
    if adapter.config.multi_label or not known:
        return camel.Calibration.identity(floor, target_precision)
    probabilities = heldout_probabilities(adapter, [texts[i] for i in known], cache)
    indices = np.array([adapter.labels.index(labels[i]) for i in known], dtype=np.int64)
    logits = logits_from_probabilities(probabilities)
    return camel.fit_calibration(logits, indices, target_precision=target_precision, floor=floor)


def fit_detector(
    adapter: camel.Adapter,
    texts: Sequence[str],
    labels: Sequence[str],
    cache: camel.FeatureCache,
    *,
    out_of_scope_label: str,
    floor: float,
) -> camel.OutOfScopeDetector | None:
    """For a task with an out-of-scope label: a detector (1 - the best in-scope calibrated
    probability, the out-of-scope label's mass counting against every in-scope label) whose
    threshold turns away camel's default share of held-out IN-SCOPE messages. None when the
    adapter does not know the label yet."""
    if out_of_scope_label not in adapter.labels or adapter.config.multi_label:
        return None
    in_scope = [t for t, label in zip(texts, labels) if label != out_of_scope_label and label in adapter.labels]
    if not in_scope:
        return camel.OutOfScopeDetector.off("max_probability")
    probabilities, _ = calibrated(adapter, heldout_probabilities(adapter, in_scope, cache), floor)
    score = camel.max_probability_score(probabilities, adapter.labels.index(out_of_scope_label))
    return camel.fit_out_of_scope(score, method="max_probability")


def detector_file(detector: camel.OutOfScopeDetector) -> dict[str, bytes]:
    return {camel.OUT_OF_SCOPE_FILE: (json.dumps(detector.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")}


def calibration_file(calibration: camel.Calibration) -> dict[str, bytes]:
    """`extra_files` for `camel.save_adapter`."""
    return {camel.CALIBRATION_FILE: calibration.to_json().encode("utf-8")}


def out_of_scope_recall(
    adapter: camel.Adapter,
    texts: Sequence[str],
    labels: Sequence[str],
    cache: camel.FeatureCache,
    *,
    out_of_scope_label: str,
    floor: float,
) -> dict[str, Any]:
    """{"label", "support", "recall"} of the held-out messages labelled out of scope (recall None without any)."""
    chosen = [text for text, label in zip(texts, labels) if label == out_of_scope_label]
    result: dict[str, Any] = {"label": out_of_scope_label, "support": len(chosen), "recall": None}
    if not chosen:
        return result
    adapter.eval()  # no dropout: the same outputs it will serve
    # Measured with the call that answers users, so the recall is what the bot will do.
    answers = camel.Predictor(adapter, cache).answer(chosen, floor=floor, out_of_scope_label=out_of_scope_label)
    result["recall"] = sum(a.outcome != "label" for a in answers) / len(answers)
    return result
