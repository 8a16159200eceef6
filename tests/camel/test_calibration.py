"""camel.calibration: temperature scaling, the target-precision threshold, tiny sets, storage form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from camel.calibration import (
    Calibration,
    CalibrationError,
    choose_threshold,
    fit_calibration,
    fit_temperature,
    nll,
    softmax,
)


def synthetic(n: int, labels: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True logits and labels drawn from their softmax, so softmax(true logits) is calibrated."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0.0, 1.6, (n, labels))
    p = softmax(true_logits)
    y = np.array([rng.choice(labels, p=row) for row in p])
    return true_logits, y


def test_temperature_scaling_improves_nll_on_held_out_miscalibrated_logits() -> None:
    true_logits, y = synthetic(3000)
    overconfident = 3.0 * true_logits
    temperature = fit_temperature(overconfident[:1500], y[:1500])
    assert 2.5 < temperature < 3.6  # recovers the factor the logits were inflated by
    before, after = nll(overconfident[1500:], y[1500:]), nll(overconfident[1500:], y[1500:], temperature)
    assert after < before - 0.3
    underconfident = 0.4 * true_logits
    assert fit_temperature(underconfident, y) < 0.55


def test_threshold_meets_target_precision_on_a_check_split() -> None:
    true_logits, y = synthetic(6000, seed=1)
    logits = 2.0 * true_logits
    calibration = fit_calibration(logits[:3000], y[:3000], target_precision=0.9)
    assert calibration.status == "fitted" and calibration.fitted_on_n == 3000
    check = calibration.probabilities(logits[3000:])
    stated = calibration.states(check.max(axis=1))
    hits = check.argmax(axis=1) == y[3000:]
    assert hits.mean() < 0.8  # the target needs abstention on this data...
    assert 0.0 < calibration.threshold < 1.0 and 0.05 < stated.mean() < 0.95  # ...and gets it
    assert abs(hits[stated].mean() - 0.9) < 0.03
    assert calibration.precision is not None and abs(calibration.precision - 0.9) < 0.03  # cross-fitted figure
    assert calibration.coverage is not None and abs(calibration.coverage - stated.mean()) < 0.05


def test_lowest_threshold_that_meets_the_target_and_the_floor() -> None:
    confidence = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    hits = np.array([True, True, True, False, True, False])
    # precision of the top k: 1, 1, 1, .75, .8, .667 -> the deepest cut with >= .8 is 0.6
    assert choose_threshold((confidence, hits), 0.8) == (0.6, True)
    assert choose_threshold((confidence, hits), 0.8, floor=0.75) == (0.75, True)
    assert choose_threshold((confidence, hits), 1.0) == (0.8, True)
    tied = np.array([0.9, 0.9, 0.8])
    # the two 0.9s are stated together (precision .5), so the first alone (precision 1) is no cut;
    # unreachable, the best-precision cut (0.8: .667) is returned
    assert choose_threshold((tied, np.array([True, False, True])), 0.9) == (0.8, False)


def test_target_unreachable_is_reported() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(200, 4))
    labels = rng.integers(0, 4, 200)  # no relation to the logits: about 25 % precision everywhere
    calibration = fit_calibration(logits, labels, target_precision=0.95)
    assert calibration.status == "target_unreachable"
    assert calibration.precision is not None and calibration.precision < 0.6


def test_tiny_held_out_set_gives_identity_temperature_and_the_floor() -> None:
    true_logits, y = synthetic(12)
    calibration = fit_calibration(5.0 * true_logits, y, floor=0.5)
    assert calibration.status == "too_few_examples"
    assert calibration.temperature == 1.0 and calibration.threshold == 0.5
    assert calibration.fitted_on_n == 12 and calibration.checked_on_n == 0 and calibration.precision is None


def test_storage_form_round_trips_and_rejects_bad_data() -> None:
    true_logits, y = synthetic(400)
    calibration = fit_calibration(true_logits, y, floor=0.2)
    text = calibration.to_json()
    assert json.loads(text)["target_precision"] == 0.9
    assert Calibration.from_json(text) == calibration
    probabilities = softmax(true_logits)
    assert np.allclose(calibration.rescale(probabilities), calibration.probabilities(true_logits), atol=1e-9)
    with pytest.raises(CalibrationError, match="missing fields"):
        Calibration.from_dict({"temperature": 1.0})
    with pytest.raises(CalibrationError, match="not valid JSON"):
        Calibration.from_json("{")
    with pytest.raises(CalibrationError, match="temperature"):
        Calibration.from_dict({**calibration.to_dict(), "temperature": 0.0})
    assert Calibration.identity(0.3).threshold == 0.3


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(CalibrationError, match="logit rows"):
        fit_calibration(np.zeros((10, 3)), np.zeros(9, dtype=int))
    with pytest.raises(CalibrationError, match="integer indices"):
        fit_calibration(np.zeros((10, 3)), np.full(10, 3))
    with pytest.raises(CalibrationError, match="NaN"):
        fit_calibration(np.full((50, 3), np.nan), np.zeros(50, dtype=int))
    with pytest.raises(CalibrationError, match="target_precision"):
        fit_calibration(np.zeros((50, 3)), np.zeros(50, dtype=int), target_precision=0.0)
