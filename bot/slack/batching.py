"""Predictions batched across concurrent messages.

Each inbox worker handles one message, but one forward pass over 16 texts costs far less than
16 passes over one (and 16 threads each starting torch's own threads would only fight over
two cores). A worker hands its text to `PredictionBatcher.run`; the first caller of a
round becomes its leader and waits for the forward pass before it to finish (no timer: an
idle bot predicts at once); texts that arrive meanwhile join the round, the leader runs one
call (`camel.Predictor.answer`) over all of them and each caller gets its own result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

MAX_BATCH = 32


@dataclass
class _Round:
    texts: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    results: list[Any] = field(default_factory=list)
    error: BaseException | None = None


class PredictionBatcher:
    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._open: dict[Hashable, _Round] = {}  # (predictor, settings) -> the round still taking texts
        self._running = threading.Lock()  # one forward pass at a time: the cores are shared

    def run(self, key: Hashable, text: str, over_texts: Callable[[list[str]], list[Any]]) -> Any:
        """`over_texts(texts)[i]` for this text, computed in one call with the texts of every
        concurrent caller that passes the same `key` (same predictor, same settings)."""
        with self._lock:
            round_ = self._open.get(key)
            leader = round_ is None or len(round_.texts) >= self.max_batch
            if leader:
                round_ = self._open[key] = _Round()
            assert round_ is not None
            index = len(round_.texts)
            round_.texts.append(text)
        if not leader:
            round_.done.wait()
        else:
            try:
                with self._running:  # while the pass before runs, others' texts join this round
                    with self._lock:
                        if self._open.get(key) is round_:
                            del self._open[key]
                    round_.results = over_texts(round_.texts)
            except BaseException as exc:
                round_.error = exc
            finally:
                round_.done.set()
        if round_.error is not None:
            raise round_.error
        return round_.results[index]
