"""Review scores: how useful a label would be on each unlabelled message, computed in
the background for the version serving a task, so `/camel review` and the daily questions
answer from one indexed query.

A score is the margin uncertainty (`camel.uncertainty`) of the calibrated probabilities; the
embedding stored with it (for diversity among picks, `camel.select_for_review`) is the base's
own mean-pooled hidden state at the adapter's split layer, read from the feature cache the
serving predictor already fills, so it costs no extra encoder pass. Only the best
`KEEP_PER_CHANNEL` scores of each channel are stored: a review asks for a handful, and this
keeps the table small with 100k messages. Scores are recomputed after every change of the
serving version (stale by at most one round) and skipped when the stored ones are already of it.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from sqlite_utils import Database

import camel
import storage
from camel.answers import calibrated
from bot.loop.registry import PredictorRegistry

log = logging.getLogger(__name__)
BATCH = 64
KEEP_PER_CHANNEL = 2000


def score_texts(
    predictor: camel.Predictor, adapter: camel.Adapter, texts: list[str], floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities [n, labels] and base embeddings [n, hidden] (float32) of `texts`."""
    probabilities = np.empty((len(texts), len(adapter.labels)))
    embeddings = np.empty((len(texts), adapter.base.hidden_size), dtype=np.float32)
    for start in range(0, len(texts), BATCH):
        chunk = texts[start : start + BATCH]
        hidden, mask = predictor.cache.batch(chunk, adapter.split_layer, adapter.config.max_length)
        with torch.inference_mode():
            raw = adapter.probabilities(adapter(hidden, mask).float())
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        probabilities[start : start + len(chunk)] = raw.numpy()
        embeddings[start : start + len(chunk)] = pooled.float().numpy()
        predictor.flush_if_due()  # bounds the cache's pending entries over 100k messages
    calibrated_probabilities, _ = calibrated(adapter, probabilities, floor)
    return calibrated_probabilities, embeddings


def score_task(db: Database, predictors: PredictorRegistry, task_name: str, *, force: bool = False) -> int:
    """Score the task's unlabelled messages with the version serving now; returns rows stored."""
    serving, task = predictors.serving(task_name), storage.tasks.get_task(db, task_name)
    if serving is None or task is None:
        return 0
    predictor, version = serving.predictor, serving.version  # one snapshot: the scores are of this version
    if not force and storage.review.review_scores_version(db, task_name) == version:
        return 0
    adapter = predictor.adapter
    messages = storage.review.unlabelled_messages(db, task_name)
    rows: list[tuple[int, float, list[tuple[str, float]], bytes]] = []
    if messages:
        probabilities, embeddings = score_texts(predictor, adapter, [m.text for m in messages], task.abstain_threshold)
        scores = camel.uncertainty(probabilities)
        by_channel: dict[str, list[int]] = defaultdict(list)
        for i, message in enumerate(messages):
            by_channel[message.channel].append(i)
        for indices in by_channel.values():
            best = sorted(indices, key=lambda i: -float(scores[i]))[:KEEP_PER_CHANNEL]
            for i in best:
                top = np.argsort(-probabilities[i], kind="stable")[:3]
                top3 = [(adapter.labels[int(j)], round(float(probabilities[i, j]), 6)) for j in top]
                rows.append((messages[i].id, float(scores[i]), top3, embeddings[i].tobytes()))
        try:
            predictor.flush()
        except camel.CamelError as exc:
            log.warning("feature cache not flushed after review scoring: %s", exc)
    stored = storage.review.store_review_scores(db, task_name, version, rows)
    log.info("review scores for %s v%s: %d of %d unlabelled messages stored", task_name, version, stored, len(messages))
    return stored


STOP_WAIT_S = 60.0  # one scoring pass over a task's unlabelled messages


class ReviewScorer:
    """One background worker that scores tasks whose serving version changed (one pass at a time)."""

    def __init__(self, db: Database, predictors: PredictorRegistry) -> None:
        self.db, self.predictors = db, predictors
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._worker: threading.Thread | None = None
        self._stopped = False

    def schedule(self, tasks: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            self._pending.update(tasks)
            if not self._pending or (self._worker is not None and self._worker.is_alive()):
                return
            self._idle.clear()
            self._worker = threading.Thread(target=self._run, name="review-scores", daemon=True)
            self._worker.start()

    def stop(self, timeout: float = STOP_WAIT_S) -> bool:
        """Take no more work and wait for the pass under way: it uses the store, which the caller
        closes next. True when it finished in time."""
        with self._lock:
            self._stopped = True
            self._pending.clear()
        return self._idle.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """True when no scoring pass is running or queued (for tests and shutdown)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._idle.set()
                    return
                task = self._pending.pop()
            try:
                score_task(self.db, self.predictors, task)
            except Exception:  # a failed pass leaves the older scores; the next promotion retries
                log.exception("review scoring of %s failed", task)
