"""Which adapter serves each task, swapped in place while the bot keeps answering.

A new version is loaded and checked completely before `Predictor.swap`, so a broken adapter
folder raises `CamelError` and the previous adapter keeps serving.
"""

from __future__ import annotations

import logging
import threading
from sqlite_utils import Database

import camel
import storage
from bot.loop.zero_shot import Background, ZeroShotGuesser
from bot.metrics import BotMetrics
from camel.zero_shot import ZeroShotGuess

log = logging.getLogger(__name__)


class PredictorRegistry:
    def __init__(
        self,
        base_model_path: str,
        cache_dir: str | None = None,
        metrics: BotMetrics | None = None,
        *,
        zero_shot: bool = True,
        background: Background | None = None,
    ) -> None:
        self.base_model_path = base_model_path or camel.default_base_model_path()
        self.cache_dir = cache_dir
        self._base: camel.BaseEncoder | None = None
        self._cache: camel.FeatureCache | None = None
        self._predictors: dict[str, camel.Predictor] = {}
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self.metrics = metrics
        # Before a task's first adapter: guesses from its label names (None when turned off).
        self.guesser = ZeroShotGuesser(self._shared, background) if zero_shot else None

    def _shared(self) -> tuple[camel.BaseEncoder, camel.FeatureCache]:
        """The frozen base and its feature cache, loaded on first use and shared by every task."""
        with self._lock:
            if self._base is None or self._cache is None:
                self._base = camel.load_base(self.base_model_path)
                self._cache = camel.FeatureCache(self._base, self.cache_dir)
            return self._base, self._cache

    def get(self, task: str) -> camel.Predictor | None:
        with self._lock:
            return self._predictors.get(task)

    def version(self, task: str) -> int | None:
        with self._lock:
            return self._versions.get(task)

    def guess(self, task: storage.Task, text: str) -> ZeroShotGuess | None:
        """The top 3 by label-name similarity, for a task no trained adapter serves yet (else None)."""
        if self.guesser is None or self.get(task.name) is not None:
            return None
        return self.guesser.guess(task, text)

    def load(self, task: str, version: int, folder: str) -> None:
        """Load `folder` as `task`'s adapter `version` and start serving it."""
        base, cache = self._shared()
        try:
            adapter = camel.load_adapter(folder, base)
        except camel.CamelError:
            self._count(task, "failed")
            raise
        with self._lock:
            predictor = self._predictors.get(task)
            if predictor is None:
                self._predictors[task] = camel.Predictor(adapter, cache)
            else:
                predictor.swap(adapter)
            self._versions[task] = version
        self._count(task, "ok")
        log.info("task %s now serves adapter v%s", task, version)

    def _count(self, task: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.reloads.labels(task=task, result=result).inc()

    def sync(self, db: Database) -> list[str]:
        """Serve every task's active version; returns one error line per version that failed."""
        errors: list[str] = []
        for task in storage.list_tasks(db):
            active = task.active_version
            if active is None or self.version(task.name) == active:
                continue
            record = storage.get_adapter(db, task.name, active)
            if record is None:
                errors.append(f"{task.name}: active adapter v{active} is not registered")
                continue
            try:
                self.load(task.name, active, record.path)
            except camel.CamelError as exc:
                errors.append(f"{task.name} v{active}: {exc}")
        for line in errors:
            log.error("adapter reload failed: %s", line)
        return errors
