"""Day-one guesses: before a task has a trained adapter, its label names (and descriptions) guess.

One `camel.zero_shot.ZeroShotClassifier` per task, on the serving registry's shared base and
feature cache. A classifier is keyed by the task's labels and descriptions as they are now, so a
label added or a description changed (in the settings file or with `/camel describe`) rebuilds
the prototypes at the next guess; nothing has to tell the guesser.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import camel
import storage
from camel.zero_shot import ZeroShotClassifier, ZeroShotGuess

log = logging.getLogger(__name__)
PrototypeKey = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


def prototype_key(task: storage.Task) -> PrototypeKey:
    """What the prototypes are built from: the labels in order and their descriptions."""
    return tuple(task.labels), tuple(sorted(task.descriptions.items()))


class ZeroShotGuesser:
    """Guesses the top 3 labels of a text by cosine similarity with the task's label prototypes."""

    def __init__(self, shared: Callable[[], tuple[camel.BaseEncoder, camel.FeatureCache]]) -> None:
        self._shared = shared  # the registry's base and cache, loaded on first use
        self._classifiers: dict[str, tuple[PrototypeKey, ZeroShotClassifier]] = {}
        self._lock = threading.Lock()

    def classifier(self, task: storage.Task) -> ZeroShotClassifier:
        """The task's classifier, rebuilt when its labels or descriptions changed."""
        key = prototype_key(task)
        with self._lock:
            found = self._classifiers.get(task.name)
            if found is not None and found[0] == key:
                return found[1]
        base, cache = self._shared()
        built = ZeroShotClassifier(base, list(task.labels), dict(task.descriptions), cache)
        with self._lock:
            self._classifiers[task.name] = (key, built)
        log.info("task %s: zero-shot prototypes built for %d labels", task.name, len(task.labels))
        return built

    def guess(self, task: storage.Task, text: str) -> ZeroShotGuess:
        return self.classifier(task).predict([text], k=3)[0]

    def built_for(self, task: str) -> PrototypeKey | None:
        """The labels and descriptions the task's prototypes were last built from (None: not yet)."""
        with self._lock:
            found = self._classifiers.get(task)
            return found[0] if found else None
