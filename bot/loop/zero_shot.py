"""Day-one guesses: before a task has a trained adapter, its label names (and descriptions) guess.

One `camel.zero_shot.ZeroShotClassifier` per task, on the serving registry's shared base and
feature cache. A classifier is keyed by the task's labels and descriptions as they are now, so a
label added or a description changed (in the settings file or with `/camel describe`) rebuilds
the prototypes at the next guess; nothing has to tell the guesser. Once the task's channels hold
enough messages, the classifier also centres on them (rebuilt each time their number doubles).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import camel
import storage
from camel.zero_shot import ZeroShotClassifier, ZeroShotGuess

log = logging.getLogger(__name__)
PrototypeKey = tuple[tuple[str, ...], tuple[tuple[str, str], ...], int]
Background = Callable[[storage.Task], list[str]]
# Centring on the task's own messages needs enough of them to estimate their mean direction; the
# centre is refreshed each time the stored messages double, up to MAX_BACKGROUND of the newest.
MIN_BACKGROUND = 50
MAX_BACKGROUND = 1000


def background_tier(count: int) -> int:
    """0 below MIN_BACKGROUND, then MIN_BACKGROUND doubled while it fits (capped at MAX_BACKGROUND)."""
    if count >= MAX_BACKGROUND:
        return MAX_BACKGROUND
    if count < MIN_BACKGROUND:
        return 0
    tier = MIN_BACKGROUND
    while tier * 2 <= count:
        tier *= 2
    return tier


def prototype_key(task: storage.Task, tier: int = 0) -> PrototypeKey:
    """What the classifier is built from: the labels in order, their descriptions, the background tier."""
    return tuple(task.labels), tuple(sorted(task.descriptions.items())), tier


class ZeroShotGuesser:
    """Guesses the top 3 labels of a text by cosine similarity with the task's label prototypes."""

    def __init__(
        self,
        shared: Callable[[], tuple[camel.BaseEncoder, camel.FeatureCache]],
        background: Background | None = None,
    ) -> None:
        """`background(task)`: the task's newest stored messages (at most MAX_BACKGROUND). MiniLM's
        embeddings share a common direction; comparing what is specific to a message and to a
        label, once enough messages are stored, puts the right label first more often
        (camel.zero_shot.ZeroShotClassifier; bench/results/day_one.md)."""
        self._shared = shared  # the registry's base and cache, loaded on first use
        self._background = background
        self._classifiers: dict[str, tuple[PrototypeKey, ZeroShotClassifier]] = {}
        self._lock = threading.Lock()

    def classifier(self, task: storage.Task) -> ZeroShotClassifier:
        """The task's classifier, rebuilt when its labels or descriptions changed."""
        messages = self._background(task)[:MAX_BACKGROUND] if self._background is not None else []
        tier = background_tier(len(messages))
        key = prototype_key(task, tier)
        with self._lock:
            found = self._classifiers.get(task.name)
            if found is not None and found[0] == key:
                return found[1]
        base, cache = self._shared()
        centre_on = messages[:tier] if tier else None
        built = ZeroShotClassifier(base, list(task.labels), dict(task.descriptions), cache, background=centre_on)
        with self._lock:
            self._classifiers[task.name] = (key, built)
        log.info(
            "task %s: zero-shot prototypes built for %d labels, centred on %d messages",
            task.name,
            len(task.labels),
            tier,
        )
        return built

    def guess(self, task: storage.Task, text: str) -> ZeroShotGuess:
        return self.classifier(task).predict([text], k=3)[0]

    def built_for(self, task: str) -> PrototypeKey | None:
        """The labels, descriptions and background tier the task's classifier was last built from (None: not yet)."""
        with self._lock:
            found = self._classifiers.get(task)
            return found[0] if found else None
