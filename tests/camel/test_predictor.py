"""Predictor: answers (top 3, calibration, floor, out of scope, abstention), and swaps under concurrent threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

import camel
from camel.errors import IncompatibleAdapterError
from tests.camel.helpers import FAST_ARGS, dataset
from tests.tiny_model import make_tiny_bert

TEXTS = ["my card has not arrived", "refund please", "top up failed", "card lost"]


def test_predictions_have_top3_confidence_and_latency(trained: camel.TrainResult) -> None:
    predictions = camel.Predictor(trained.adapter).answer(TEXTS)
    assert len(predictions) == len(TEXTS)
    for prediction in predictions:
        assert prediction.label == prediction.top3[0][0]
        assert len(prediction.top3) == 3 and prediction.top3[0][1] >= prediction.top3[1][1] >= prediction.top3[2][1]
        assert prediction.abstained == (prediction.confidence < trained.adapter.config.abstain_threshold)
        assert prediction.latency_ms > 0
    assert camel.Predictor(trained.adapter).answer([]) == []


def test_abstains_below_the_threshold(trained: camel.TrainResult) -> None:
    import copy

    strict = copy.deepcopy(trained.adapter)
    strict.config.abstain_threshold = 1.0
    assert all(p.abstained for p in camel.Predictor(strict).answer(TEXTS))


def _calibrated_copy(adapter: camel.Adapter, threshold: float, temperature: float) -> camel.Adapter:
    import copy

    calibrated = copy.deepcopy(adapter)
    calibration = camel.Calibration(
        temperature=temperature,
        threshold=threshold,
        target_precision=0.9,
        floor=0.0,
        fitted_on_n=50,
        checked_on_n=50,
        precision=0.9,
        coverage=0.8,
        status="fitted",
    )
    calibrated.extra_files = {camel.CALIBRATION_FILE: calibration.to_json().encode()}
    return calibrated


def test_answers_follow_the_adapters_calibration_and_the_floor(trained: camel.TrainResult) -> None:
    plain = camel.Predictor(trained.adapter).answer(TEXTS)
    assert {a.threshold for a in plain} == {trained.adapter.config.abstain_threshold}  # no calibration: its own
    calibrated = camel.Predictor(_calibrated_copy(trained.adapter, threshold=0.2, temperature=5.0))
    answers = calibrated.answer(TEXTS)
    assert {a.threshold for a in answers} == {0.2}  # the calibration's threshold, not the config's 0.5
    assert all(a.confidence < p.confidence for a, p in zip(answers, plain))  # a temperature of 5 flattens
    assert all(a.outcome == ("abstain" if a.confidence < 0.2 else "label") for a in answers)
    floored = calibrated.answer(TEXTS, floor=0.9)
    assert {a.threshold for a in floored} == {0.9} and all(a.abstained for a in floored)
    assert [a.confidence for a in floored] == [a.confidence for a in answers]
    assert {a.threshold for a in calibrated.answer(TEXTS, floor=0.0)} == {0.2}  # the floor only raises it


def test_the_out_of_scope_label_is_stated_when_it_is_the_most_likely(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    top = predictor.answer(TEXTS[:1])[0].label
    [answer] = predictor.answer(TEXTS[:1], floor=0.0, out_of_scope_label=top)
    assert answer.outcome == "out_of_scope" and answer.stated == top and not answer.abstained
    assert answer.label != top and answer.label == answer.top3[1][0]  # the best in-scope label, for the menu
    [unknown] = predictor.answer(TEXTS[:1], floor=0.0, out_of_scope_label="not_a_label_yet")
    assert unknown.outcome == "label" and unknown.stated == unknown.label == top


def test_batch_order_does_not_change_results(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    forward = predictor.answer(TEXTS)
    backward = predictor.answer(TEXTS[::-1])[::-1]
    assert [p.label for p in forward] == [p.label for p in backward]
    assert all(abs(a.confidence - b.confidence) < 1e-5 for a, b in zip(forward, backward))


def test_swap_under_four_predicting_threads_never_fails(
    trained: camel.TrainResult, tiny_config: camel.CamelConfig
) -> None:
    texts, labels = dataset()
    other = camel.train(texts, labels, config=tiny_config, args=camel.TrainingArgs(**{**FAST_ARGS, "seed": 5})).adapter
    adapters = [trained.adapter, other]
    expected = {id(a): [(p.label, round(p.confidence, 5)) for p in camel.Predictor(a).answer(TEXTS)] for a in adapters}
    predictor = camel.Predictor(trained.adapter)
    errors: list[BaseException] = []
    outcomes: list[list[tuple[str, float]]] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                outcomes.append([(p.label, round(p.confidence, 5)) for p in predictor.answer(TEXTS)])
            except BaseException as exc:  # the test is that nothing at all escapes
                errors.append(exc)

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for swap in range(40):
        predictor.swap(adapters[swap % 2])
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert outcomes and all(result in expected.values() for result in outcomes)


def test_threads_predicting_new_texts_at_once_all_succeed(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    words = "card refund top up lost money account balance transfer fee atm pin".split()
    errors: list[BaseException] = []

    def serve(worker: int) -> None:
        try:
            for round_ in range(15):
                texts = [
                    f"{words[(worker + round_ + i) % len(words)]} {words[i % len(words)]} {worker} {round_} {i}"
                    for i in range(1 + (worker + round_) % 5)
                ]
                assert len(predictor.answer(texts)) == len(texts)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=serve, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_swap_refuses_an_adapter_of_another_base(trained: camel.TrainResult, tmp_path: Path) -> None:
    other_base = camel.load_base(str(make_tiny_bert(tmp_path / "base-b", seed=3)))
    foreign = camel.new_adapter(other_base, trained.adapter.config, ["a", "b"])
    predictor = camel.Predictor(trained.adapter)
    with pytest.raises(IncompatibleAdapterError, match="does not match the serving base"):
        predictor.swap(foreign)
    assert predictor.adapter is trained.adapter
    with pytest.raises(IncompatibleAdapterError, match="feature cache is for base"):
        camel.Predictor(foreign, cache=predictor.cache)


def test_swap_returns_the_old_adapter(trained: camel.TrainResult) -> None:
    import copy

    predictor = camel.Predictor(trained.adapter)
    replacement = copy.deepcopy(trained.adapter)
    assert predictor.swap(replacement) is trained.adapter
    assert predictor.adapter is replacement
    assert torch.equal(replacement.classifier.weight, trained.adapter.classifier.weight)
