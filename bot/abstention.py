"""What the bot says about a text: a label, "not one of mine", or "not sure".

The adapter serving a task carries its calibration (`calibration.json`, covered by the adapter's
integrity manifest); confidences are rescaled with it and a label is stated only when its
calibrated confidence reaches max(calibrated threshold, the task's `abstain_threshold` floor).
An adapter saved without a calibration serves with the identity scale and the floor alone, as
adapters trained before calibration did. The probabilities and the calibration always come
from the same adapter, even while a new version is swapped in.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import numpy as np

import camel

log = logging.getLogger(__name__)
OUT_OF_SCOPE_FILE = "out_of_scope.json"  # next to camel.CALIBRATION_FILE, also under the manifest


@dataclass(frozen=True)
class Answer:
    """outcome: "label" (state `label`), "out_of_scope" (the task's out-of-scope label wins) or
    "abstain"; label: the best in-scope label; confidence: its calibrated probability;
    top3: the best three labels with calibrated probabilities; stated: the label to store
    (the out-of-scope label for "out_of_scope")."""

    outcome: str
    label: str
    confidence: float
    top3: list[tuple[str, float]]
    threshold: float
    latency_ms: float
    stated: str

    @property
    def abstained(self) -> bool:
        return self.outcome == "abstain"


def calibration_of(adapter: camel.Adapter, floor: float) -> camel.Calibration:
    """The adapter's stored calibration, or the identity scale with the floor as threshold."""
    raw = adapter.extra_files.get(camel.CALIBRATION_FILE)
    if raw is None:
        return camel.Calibration.identity(floor)
    try:
        return camel.Calibration.from_json(raw.decode("utf-8"))
    except (camel.CamelError, UnicodeDecodeError) as exc:
        # The manifest vouches for the bytes, so this is a file saved broken: serve uncalibrated.
        log.error("adapter calibration unusable (%s); serving uncalibrated", exc)
        return camel.Calibration.identity(floor)


def detector_of(adapter: camel.Adapter) -> camel.OutOfScopeDetector | None:
    """The adapter's stored out-of-scope detector (fitted only for tasks with an out-of-scope label)."""
    raw = adapter.extra_files.get(OUT_OF_SCOPE_FILE)
    if raw is None:
        return None
    try:
        return camel.OutOfScopeDetector.from_dict(json.loads(raw.decode("utf-8")))
    except (camel.CamelError, ValueError) as exc:
        log.error("adapter out-of-scope detector unusable (%s); serving without it", exc)
        return None


def serving_threshold(calibration: camel.Calibration, floor: float) -> float:
    """The task's floor is a lower bound the calibrated threshold never goes below (0 = calibrated only)."""
    return max(float(calibration.threshold), float(floor))


def calibrated(adapter: camel.Adapter, probabilities: np.ndarray, floor: float) -> tuple[np.ndarray, float]:
    """Calibrated probabilities [n, labels] and the threshold, from the adapter's own calibration."""
    calibration = calibration_of(adapter, floor)
    if adapter.config.multi_label:  # sigmoid outputs: the softmax temperature does not apply
        return np.asarray(probabilities, dtype=np.float64), float(floor)
    return calibration.rescale(probabilities), serving_threshold(calibration, floor)


def answers(
    predictor: camel.Predictor, texts: list[str], *, floor: float, out_of_scope_label: str | None = None
) -> list[Answer]:
    """One Answer per text from the adapter serving now."""
    started = time.perf_counter()
    adapter, raw = predictor.probabilities(texts)
    probabilities, threshold = calibrated(adapter, raw.numpy(), floor)
    latency_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(texts))
    flush_if_due(predictor)
    return decide(adapter.labels, probabilities, threshold, out_of_scope_label, latency_ms, detector_of(adapter))


def decide(
    labels: list[str],
    probabilities: np.ndarray,
    threshold: float,
    out_of_scope_label: str | None,
    latency_ms: float,
    detector: camel.OutOfScopeDetector | None = None,
) -> list[Answer]:
    """Answers from calibrated probabilities. With an out-of-scope label, the label itself wins when
    it is the most likely one, and the detector (if any) turns away messages unlike every label."""
    if len(probabilities) == 0:
        return []
    oos_index = labels.index(out_of_scope_label) if out_of_scope_label in labels else None
    flags = None
    if oos_index is not None and detector is not None and detector.method == "max_probability":
        flags = detector.flags(camel.max_probability_score(probabilities, oos_index))
    decisions = camel.decide(probabilities, threshold, oos_index, flags)
    result = []
    for row, decision in zip(probabilities, decisions):
        best = np.argsort(-row, kind="stable")[:3]
        top3 = [(labels[int(i)], round(float(row[int(i)]), 6)) for i in best]
        label = labels[decision.label_index]
        stated = labels[oos_index] if decision.outcome == "out_of_scope" and oos_index is not None else label
        result.append(Answer(decision.outcome, label, float(decision.confidence), top3, threshold, latency_ms, stated))
    return result


def flush_if_due(predictor: camel.Predictor) -> None:
    # Predictor.predict flushes the feature cache as it goes; this path must do the same.
    cache = predictor.cache
    if cache.directory and cache.pending >= predictor.flush_every:
        try:
            predictor.flush()
        except camel.CamelError as exc:
            log.warning("%s (entries stay in memory and are retried)", exc)
