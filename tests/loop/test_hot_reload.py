"""Hot reload: swaps while threads predict, a broken version never replaces a working one."""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient

import camel
import storage
from bot.demo.local_slack import FakeSlackAPI
from bot.loop.registry import PredictorRegistry
from bot.slack.publisher import SlackPublisher
from tests.loop.conftest import BOTH_BASES, TASK, WORDS, install_adapter


@BOTH_BASES
def test_versions_swap_while_threads_predict_without_a_failed_prediction(loop_env, new_loop) -> None:
    settings, db = loop_env
    for version in range(1, 6):
        install_adapter(settings, db, version, seed=version, activate=version == 1)
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    assert loop.sync() == [] and predictors.version(TASK) == 1
    stop, failures, answers = threading.Event(), [], []

    def predict_forever(n: int) -> None:
        while not stop.is_set():
            try:
                answers.extend(p.label for p in predictors.get(TASK).answer([f"refund fee {n}", "card come"]))
            except Exception as exc:  # any failure during a swap is what this test looks for
                failures.append(repr(exc))

    threads = [threading.Thread(target=predict_forever, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        for version in range(2, 6):
            before = len(answers)
            storage.adapters.activate_adapter(db, TASK, version, reason="test promotion")
            assert loop.sync() == []
            assert predictors.version(TASK) == version
            deadline = time.monotonic() + 10
            while len(answers) < before + 6 and time.monotonic() < deadline:
                time.sleep(0.01)  # let predictions run on the new adapter before the next swap
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert answers and set(answers) <= set(WORDS)
    assert predictors.get(TASK).adapter is not None and predictors.version(TASK) == 5


def test_a_version_that_fails_to_load_leaves_the_old_one_serving_and_is_reported(loop_env, new_loop) -> None:
    settings, db = loop_env
    install_adapter(settings, db, 1)
    broken = install_adapter(settings, db, 2, activate=False)
    (broken / camel.WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    with FakeSlackAPI() as slack:
        loop = new_loop(
            settings, predictors, publisher=SlackPublisher(WebClient(token="xoxb-test", base_url=slack.url))
        )
        assert loop.sync() == [] and predictors.version(TASK) == 1
        storage.adapters.activate_adapter(db, TASK, 2, reason="promoted by a round")
        errors = loop.sync()
        assert len(errors) == 1 and "v2 does not load" in errors[0] and "Now serving v1" in errors[0]
        assert predictors.version(TASK) == 1
        assert predictors.get(TASK).answer(["refund charged twice"])[0].label in WORDS
        assert loop.sync() == []  # the fallback is recorded: v1 is active again, v2 rejected
        warning = slack.wait_for("chat.postMessage", 1)
        time.sleep(0.2)
        assert len(slack.calls_of("chat.postMessage")) == 1
        assert warning[0].params["text"] == errors[0]
