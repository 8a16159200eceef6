"""Calibrated abstention: a temperature for the confidence scale and a threshold that meets a target precision.

Both are fitted on a task's held-out labels (logits the model was not trained on). The figures
stored with them are out-of-fold: with k-fold cross-fitting, every held-out example is checked
by a temperature and threshold fitted on the other folds, so `precision` and `coverage` say what
the procedure does on labels it did not see. The stored temperature and threshold are then
refitted on all held-out labels. Held-out sets too small for that give the identity temperature
and the floor threshold, and say so in `status`.

The result is a small JSON-serialisable dataclass meant to be saved next to an adapter
(`CALIBRATION_FILE`) and covered by its integrity manifest. Numpy only: no torch needed here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from camel.errors import CamelError

CALIBRATION_FILE = "calibration.json"
DEFAULT_TARGET_PRECISION = 0.9
# Below this many held-out labels neither the temperature nor the threshold can be estimated
# with any confidence (two folds of 20); the floor is used as is.
MIN_EXAMPLES = 40
DEFAULT_FOLDS = 2
# Temperatures are searched in [1/20, 20]: wide enough for badly over- or under-confident heads.
LOG_T_BOUNDS = (math.log(0.05), math.log(20.0))
# When no threshold reaches the target, the best-precision threshold must still answer this share.
MIN_STATED_SHARE = 0.05
STATUSES = ("fitted", "too_few_examples", "target_unreachable", "identity")


class CalibrationError(CamelError):
    """Logits, labels or a stored calibration are unusable."""


@dataclass(frozen=True)
class Calibration:
    """How a task's confidences are rescaled and where it stops stating a label.

    temperature: logits are divided by it before the softmax (1.0 = unchanged).
    threshold: a prediction is stated when its calibrated confidence is >= threshold.
    target_precision / floor: what the threshold was chosen for; it never goes below `floor`.
    fitted_on_n: held-out labels the stored temperature and threshold were fitted on.
    checked_on_n: held-out labels checked out-of-fold (0 when nothing could be checked).
    precision / coverage: out-of-fold precision of stated predictions and share stated (None = not checked).
    status: "fitted", "too_few_examples" (identity temperature, floor threshold), "target_unreachable"
        (no threshold met the target; the best-precision one is used) or "identity" (never fitted).
    """

    temperature: float
    threshold: float
    target_precision: float
    floor: float
    fitted_on_n: int
    checked_on_n: int
    precision: float | None
    coverage: float | None
    status: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise CalibrationError(f"calibration temperature must be a number > 0, got {self.temperature!r}")
        for name in ("threshold", "target_precision", "floor"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise CalibrationError(f"calibration {name} must be in [0, 1], got {value!r}")
        if self.status not in STATUSES:
            raise CalibrationError(f"calibration status must be one of {STATUSES}, got {self.status!r}")

    @classmethod
    def identity(cls, floor: float = 0.0, target_precision: float = DEFAULT_TARGET_PRECISION) -> "Calibration":
        """No rescaling and the floor as threshold: what an adapter without calibration serves with."""
        return cls(
            temperature=1.0,
            threshold=floor,
            target_precision=target_precision,
            floor=floor,
            fitted_on_n=0,
            checked_on_n=0,
            precision=None,
            coverage=None,
            status="identity",
        )

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated softmax probabilities [n, labels] of raw logits."""
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature)

    def rescale(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from uncalibrated softmax probabilities (what Predictor returns)."""
        return self.probabilities(logits_from_probabilities(probabilities))

    def states(self, confidence: np.ndarray | float) -> np.ndarray:
        """True where a calibrated confidence is high enough to state the label."""
        return np.asarray(confidence) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibration":
        if not isinstance(data, dict):
            raise CalibrationError("a stored calibration must be a JSON object")
        names = {f.name for f in fields(cls)}
        missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise CalibrationError(f"stored calibration has missing fields {missing} / unknown fields {unknown}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Calibration":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CalibrationError(f"stored calibration is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    target_precision: float = DEFAULT_TARGET_PRECISION,
    floor: float = 0.0,
    folds: int = DEFAULT_FOLDS,
    min_examples: int = MIN_EXAMPLES,
    seed: int = 0,
) -> Calibration:
    """Temperature and threshold from held-out logits [n, labels] and gold label indices [n].

    Out-of-fold check: the examples are shuffled (seeded) into `folds` parts; each part is
    predicted with a temperature and threshold fitted on the others, and the pooled results give
    `precision` and `coverage`. The stored temperature and threshold are fitted on all examples.
    """
    logits, labels = _checked(logits, labels)
    if not 0.0 < target_precision <= 1.0:
        raise CalibrationError(f"target_precision must be in (0, 1], got {target_precision!r}")
    if not 0.0 <= floor <= 1.0:
        raise CalibrationError(f"floor must be in [0, 1], got {floor!r}")
    if folds < 2:
        raise CalibrationError(f"folds must be >= 2, got {folds!r}")
    n = len(labels)
    if n < max(min_examples, folds):
        return Calibration(
            temperature=1.0,
            threshold=floor,
            target_precision=target_precision,
            floor=floor,
            fitted_on_n=n,
            checked_on_n=0,
            precision=None,
            coverage=None,
            status="too_few_examples",
        )
    order = np.random.default_rng(seed).permutation(n)
    stated = correct = 0
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part, assume_unique=True)
        temperature = fit_temperature(logits[rest], labels[rest])
        threshold, _ = choose_threshold(
            _confidence_and_hits(logits[rest], labels[rest], temperature), target_precision, floor
        )
        confidence, hits = _confidence_and_hits(logits[part], labels[part], temperature)
        answered = confidence >= threshold
        stated += int(answered.sum())
        correct += int(hits[answered].sum())
    temperature = fit_temperature(logits, labels)
    threshold, reached = choose_threshold(_confidence_and_hits(logits, labels, temperature), target_precision, floor)
    return Calibration(
        temperature=temperature,
        threshold=threshold,
        target_precision=target_precision,
        floor=floor,
        fitted_on_n=n,
        checked_on_n=n,
        precision=correct / stated if stated else None,
        coverage=stated / n,
        status="fitted" if reached else "target_unreachable",
    )


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of `labels` (golden-section search on log T)."""
    logits, labels = _checked(logits, labels)
    low, high = LOG_T_BOUNDS
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    nll_a, nll_b = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    while high - low > 1e-4:  # NLL is convex in 1/T, unimodal in log T
        if nll_a < nll_b:
            high, b, nll_b = b, a, nll_a
            a = high - ratio * (high - low)
            nll_a = nll(logits, labels, math.exp(a))
        else:
            low, a, nll_a = a, b, nll_b
            b = low + ratio * (high - low)
            nll_b = nll(logits, labels, math.exp(b))
    return float(math.exp((low + high) / 2.0))


def choose_threshold(
    confidence_and_hits: tuple[np.ndarray, np.ndarray], target_precision: float, floor: float = 0.0
) -> tuple[float, bool]:
    """(threshold, target reached): the lowest confidence whose stated predictions meet the target.

    Stated predictions at threshold t are those with confidence >= t; their precision is the
    share of hits among them. Only confidences present in the data are candidates, so the
    threshold is never placed between ties. When no candidate reaches the target, the one with
    the best precision that still states MIN_STATED_SHARE of the examples is returned with False.
    The result is never below `floor`.
    """
    confidence, hits = confidence_and_hits
    if len(confidence) == 0:
        return floor, False
    order = np.argsort(-confidence, kind="stable")
    sorted_conf, sorted_hits = confidence[order], hits[order].astype(np.float64)
    precision = np.cumsum(sorted_hits) / np.arange(1, len(sorted_hits) + 1)
    # Only the last position of a run of tied confidences is a real cut.
    cut = np.r_[sorted_conf[1:] != sorted_conf[:-1], True]
    meets = cut & (precision >= target_precision - 1e-12)
    if meets.any():
        last = int(np.flatnonzero(meets)[-1])  # deepest cut = lowest threshold
        return max(float(sorted_conf[last]), floor), True
    allowed = cut & (np.arange(1, len(sorted_conf) + 1) >= max(1, math.ceil(MIN_STATED_SHARE * len(sorted_conf))))
    best = int(np.flatnonzero(allowed)[np.argmax(precision[allowed])])
    return max(float(sorted_conf[best]), floor), False


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold labels under softmax(logits / temperature)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    log_norm = _logsumexp(scaled)
    return float(np.mean(log_norm - scaled[np.arange(len(labels)), labels]))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-1 confidence in equal-width bins (a report figure, not used to fit)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    hits = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        member = which == b
        if member.any():
            total += member.mean() * abs(hits[member].mean() - confidence[member].mean())
    return float(total)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def logits_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Logits equivalent to softmax probabilities (up to a per-row constant, which softmax ignores)."""
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0))


def _confidence_and_hits(logits: np.ndarray, labels: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    probabilities = softmax(logits / temperature)
    return probabilities.max(axis=1), probabilities.argmax(axis=1) == labels


def _logsumexp(values: np.ndarray) -> np.ndarray:
    top = values.max(axis=1)
    return np.asarray(top + np.log(np.exp(values - top[:, None]).sum(axis=1)))


def _checked(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise CalibrationError(f"logits must be [examples, labels >= 2], got shape {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise CalibrationError(f"{logits.shape[0]} logit rows but labels of shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or (
        len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1])
    ):
        raise CalibrationError(f"labels must be integer indices in [0, {logits.shape[1]})")
    if not np.isfinite(logits).all():
        raise CalibrationError("logits contain NaN or infinity")
    return logits, labels.astype(np.int64)
