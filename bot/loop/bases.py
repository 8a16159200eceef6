"""The base models the serving registry holds: the configured one, and others while tasks migrate.

After `[model] base_model` changes, a task's active adapter was trained on the previous base and
only means something on it. Until a round on the new base passes the gate, the task keeps being
served by that adapter on its own base, loaded from the folder its config.json records (checked
by fingerprint): so for a while two bases are in memory (bench.system.second_base measures what
the second one costs). When that folder is gone, there is nothing to serve it with and the task
answers with zero-shot guesses on the new base. A base no served adapter uses any more is
released, and the nightly compaction drops its feature-cache states.

Each base has its own FeatureCache on the one cache folder: keys carry the base's tag, so states
of two bases never mix. The engine that runs each base's bottom is chosen (and checked against
torch-fp32) when that base loads, by the registry's `choose`; keys carry the engine too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import camel
from camel.base import compute_fingerprint, release_base
from camel.cache import DEFAULT_MAX_ENTRIES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedBase:
    base: camel.BaseEncoder
    cache: camel.FeatureCache
    engine: camel.EngineChoice


# Picks (and checks) the engine that runs a freshly loaded base's bottom.
EngineChooser = Callable[[camel.BaseEncoder], camel.EngineChoice]


def _torch_fp32(base: camel.BaseEncoder) -> camel.EngineChoice:
    return camel.choose_engine(base, "torch-fp32", check=False)


class Bases:
    def __init__(
        self,
        configured_path: str,
        cache_dir: str | None,
        choose: EngineChooser = _torch_fp32,
        memory_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.configured_path = configured_path
        self.cache_dir = cache_dir
        self.memory_entries = memory_entries  # [model] cache_memory_entries, for every base's cache
        self.choose = choose
        self._current: LoadedBase | None = None
        self._others: dict[str, LoadedBase] = {}  # fingerprint -> a previous base still serving
        self._lock = threading.Lock()
        self._reported_failure = ""
        self._failure: camel.CamelError | None = None

    def current(self) -> LoadedBase:
        """The configured base and its cache, loaded on first use (camel.CamelError if it cannot be).

        A failure is kept: the settings name the folder, so it is fixed by a restart, and trying
        again on every message that wants a guess would cost a model load each time."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._current is None:
                try:
                    base = camel.load_base(self.configured_path)
                except camel.CamelError as exc:
                    self._failure = exc
                    raise
                self._current = self._loaded(base)
            return self._current

    def _loaded(self, base: camel.BaseEncoder) -> LoadedBase:
        choice = self.choose(base)
        cache = camel.FeatureCache(base, self.cache_dir, engine=choice.engine, max_entries=self.memory_entries)
        return LoadedBase(base, cache, choice)

    def current_or_none(self) -> LoadedBase | None:
        """The configured base, or None (with one clear log line per reason) when it does not load."""
        try:
            return self.current()
        except camel.CamelError as exc:
            reason = " ".join(str(exc).split())
            if reason != self._reported_failure:
                self._reported_failure = reason
                log.error(
                    "the configured base model does not load (%s); tasks keep serving on the base their "
                    "adapter was trained on, and no round can train until [model] base_model is fixed",
                    reason,
                )
            return None

    def loaded_current(self) -> LoadedBase | None:
        """The configured base if it was loaded already (never loads it)."""
        with self._lock:
            return self._current

    def for_ref(self, ref: camel.BaseRef) -> LoadedBase | None:
        """The base an adapter was trained on: the configured one, or its own recorded folder while
        tasks migrate; None when that folder is gone or now holds another model."""
        current = self.current_or_none()
        if current is not None and current.base.fingerprint == ref.fingerprint:
            return current
        with self._lock:
            if ref.fingerprint in self._others:
                return self._others[ref.fingerprint]
        if not os.path.isdir(ref.path):
            return None
        try:
            if compute_fingerprint(ref.path) != ref.fingerprint:
                return None
            base = camel.load_base(ref.path)
        except (camel.CamelError, OSError) as exc:
            log.warning("the previous base model %s does not load: %s", ref.path, " ".join(str(exc).split()))
            return None
        loaded = self._loaded(base)
        with self._lock:
            loaded = self._others.setdefault(ref.fingerprint, loaded)
        log.info("holding a second base model, %s, for tasks whose adapter was trained on it", ref.path)
        return loaded

    def others(self) -> list[LoadedBase]:
        with self._lock:
            return list(self._others.values())

    def caches(self) -> list[camel.FeatureCache]:
        """Every loaded base's cache (the configured one first)."""
        with self._lock:
            loaded = ([self._current] if self._current else []) + list(self._others.values())
        return [item.cache for item in loaded]

    def release_unused(self, in_use: set[str]) -> list[str]:
        """Let go of every previous base no served adapter uses (fingerprints `in_use`); their paths."""
        with self._lock:
            doomed = [fingerprint for fingerprint in self._others if fingerprint not in in_use]
            released = [self._others.pop(fingerprint) for fingerprint in doomed]
        for item in released:
            item.cache.flush()
            release_base(item.base.path)
            log.info("released the previous base model %s: no task uses it any more", item.base.path)
        return [item.base.path for item in released]
