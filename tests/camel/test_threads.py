"""A small prediction runs on one intra-op thread in its own thread; the count comes back after."""

from __future__ import annotations

import threading

import torch

import camel
from camel.hardware import SMALL_BATCH_TEXTS, threads_for


def test_small_batches_use_one_thread_and_restore_the_count() -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads_for(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with threads_for(SMALL_BATCH_TEXTS + 1):
            assert torch.get_num_threads() == 2  # a real batch keeps every thread
    finally:
        torch.set_num_threads(previous)


def test_one_threads_small_batch_leaves_another_threads_count_alone() -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    inside, release = threading.Event(), threading.Event()

    def small_prediction() -> None:
        with threads_for(1):
            inside.set()
            release.wait(timeout=30)

    worker = threading.Thread(target=small_prediction)
    worker.start()
    try:
        assert inside.wait(timeout=30)
        assert torch.get_num_threads() == 2  # this thread's large batches still use both
    finally:
        release.set()
        worker.join()
        torch.set_num_threads(previous)


def test_a_single_message_predicts_the_same_with_the_small_batch_path(trained: camel.TrainResult) -> None:
    predictor = camel.Predictor(trained.adapter)
    texts = ["refund charged twice", "my card has not arrived yet", "love it"] * 3  # 9: the batch path
    batched = predictor.answer(texts)
    single = [predictor.answer([text])[0] for text in texts]
    assert [a.label for a in single] == [a.label for a in batched]
    for one, many in zip(single, batched):
        assert abs(one.confidence - many.confidence) < 1e-5
