"""What the bot says about a text: a label, "not one of mine", or "not sure".

The adapter carries its calibration (`CALIBRATION_FILE`) and, for a task with an out-of-scope
label, its out-of-scope detector (`OUT_OF_SCOPE_FILE`), both covered by its integrity manifest.
Confidences are rescaled with the calibration, and a label is stated only when its calibrated
confidence reaches max(calibrated threshold, the task's floor). An adapter saved without a
calibration serves with the identity scale and the floor alone. `Predictor.answer` is the one
call that turns texts into answers; the functions here are its parts, public for the loop,
which measures a new adapter's calibration and out-of-scope recall with the same rules.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass

import numpy as np

from camel.calibration import CALIBRATION_FILE, Calibration
from camel.errors import CamelError
from camel.model import Adapter
from camel.out_of_scope import OUT_OF_SCOPE_FILE, OutOfScopeDetector, Outcome, decide, max_probability_score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What the bot says about one text.

    outcome: "label" (state `label`), "out_of_scope" (the task's out-of-scope label wins, or the
    detector turned the text away) or "abstain" (below `threshold`); label: the best in-scope
    label (also when abstaining, for the top-3 menu); confidence: its calibrated probability;
    top3: the best three labels with calibrated probabilities; threshold: the calibrated
    confidence a label needed; stated: the label to store (the out-of-scope label for
    "out_of_scope", else `label`).
    """

    outcome: Outcome
    label: str
    confidence: float
    top3: list[tuple[str, float]]
    threshold: float
    latency_ms: float
    stated: str

    @property
    def abstained(self) -> bool:
        return self.outcome == "abstain"


def calibration_of(adapter: Adapter, floor: float) -> Calibration:
    """The adapter's stored calibration, or the identity scale with the floor as threshold."""
    raw = adapter.extra_files.get(CALIBRATION_FILE)
    if raw is None:
        return Calibration.identity(floor)
    parsed = _parsed_calibration(raw)
    if isinstance(parsed, str):
        # The manifest vouches for the bytes, so this is a file saved broken: serve uncalibrated.
        log.error("adapter calibration unusable (%s); serving uncalibrated", parsed)
        return Calibration.identity(floor)
    return parsed


# Every answer needs its adapter's calibration and detector: parsed once per file content (the
# bytes' hash is computed once and kept by Python), not on every call.
@functools.lru_cache(maxsize=64)
def _parsed_calibration(raw: bytes) -> Calibration | str:
    try:
        return Calibration.from_json(raw.decode("utf-8"))
    except (CamelError, UnicodeDecodeError) as exc:
        return str(exc)


@functools.lru_cache(maxsize=64)
def _parsed_detector(raw: bytes) -> OutOfScopeDetector | str:
    try:
        return OutOfScopeDetector.from_dict(json.loads(raw.decode("utf-8")))
    except (CamelError, ValueError) as exc:
        return str(exc)


def detector_of(adapter: Adapter) -> OutOfScopeDetector | None:
    """The adapter's stored out-of-scope detector (fitted only for tasks with an out-of-scope label)."""
    raw = adapter.extra_files.get(OUT_OF_SCOPE_FILE)
    if raw is None:
        return None
    parsed = _parsed_detector(raw)
    if isinstance(parsed, str):
        log.error("adapter out-of-scope detector unusable (%s); serving without it", parsed)
        return None
    return parsed


def serving_threshold(calibration: Calibration, floor: float) -> float:
    """The task's floor is a lower bound the calibrated threshold never goes below (0 = calibrated only)."""
    return max(float(calibration.threshold), float(floor))


def calibrated(adapter: Adapter, probabilities: np.ndarray, floor: float | None) -> tuple[np.ndarray, float]:
    """Calibrated probabilities [n, labels] and the threshold, from the adapter's own calibration.

    `floor` None means the adapter's own setting: its calibration's threshold as fitted, or
    without a calibration its config's `abstain_threshold` (what an adapter used outside a task
    serves with).
    """
    own = float(adapter.config.abstain_threshold) if floor is None else float(floor)
    if adapter.config.multi_label:  # sigmoid outputs: the softmax temperature does not apply
        return np.asarray(probabilities, dtype=np.float64), own
    calibration = calibration_of(adapter, own)
    threshold = float(calibration.threshold) if floor is None else serving_threshold(calibration, floor)
    return calibration.rescale(probabilities), threshold


def answers_from(
    labels: list[str],
    probabilities: np.ndarray,
    threshold: float,
    out_of_scope_label: str | None,
    latency_ms: float,
    detector: OutOfScopeDetector | None = None,
) -> list[Answer]:
    """Answers from calibrated probabilities. With an out-of-scope label, the label itself wins when
    it is the most likely one, and the detector (if any) turns away messages unlike every label.
    An out-of-scope label the adapter does not know yet is no label at all."""
    if len(probabilities) == 0:
        return []
    oos_index = labels.index(out_of_scope_label) if out_of_scope_label in labels else None
    flags = None
    if oos_index is not None and detector is not None and detector.method == "max_probability":
        flags = detector.flags(max_probability_score(probabilities, oos_index))
    result = []
    for row, decision in zip(probabilities, decide(probabilities, threshold, oos_index, flags)):
        best = np.argsort(-row, kind="stable")[:3]
        top3 = [(labels[int(i)], round(float(row[int(i)]), 6)) for i in best]
        label = labels[decision.label_index]
        stated = labels[oos_index] if decision.outcome == "out_of_scope" and oos_index is not None else label
        result.append(Answer(decision.outcome, label, float(decision.confidence), top3, threshold, latency_ms, stated))
    return result
