"""Watches the bot hot-reload adapters and measures each new version on the fixed held-out sample."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from sqlite_utils import Database

import camel
import storage
from bot.demo.data import DemoTask
from bot.errors import DemoStalledError
from bot.demo.report import RoundResult
from bot.loop.registry import PredictorRegistry
from bot.serving import Serving

POLL_S = 0.05


@dataclass(frozen=True)
class Reload:
    task: str
    version: int
    at: float  # time.monotonic() when the new version was seen serving
    during_traffic: bool  # the team was in the middle of posting when it happened
    messages_before: int  # messages the team had posted by then


class ReloadMonitor:
    """A thread that notices every version change of every task and evaluates the new adapter."""

    def __init__(
        self,
        db: Database,
        predictors: PredictorRegistry,
        tasks: list[DemoTask],
        traffic: Callable[[], tuple[bool, int]],
        echo: Callable[[str], None],
    ) -> None:
        self.db, self.predictors, self.tasks = db, predictors, tasks
        self.traffic, self.echo = traffic, echo  # traffic(): (team talking?, messages posted)
        self.reloads: list[Reload] = []
        self.results: list[RoundResult] = []
        # Interim versions (the serving head refitted seconds after a correction) go live between
        # rounds; the demo's rounds, its curve and its pace are the rounds', so they are kept apart.
        self.interims: list[Reload] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="demo-reload-monitor", daemon=True)

    def start(self) -> "ReloadMonitor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _watch(self) -> None:
        seen: dict[str, int | None] = {task.name: None for task in self.tasks}
        while not self._stop.is_set():
            for task in self.tasks:
                serving = self.predictors.serving(task.name)
                if serving is not None and serving.version != seen[task.name]:
                    seen[task.name] = serving.version
                    self._on_reload(task, serving)
            self._stop.wait(POLL_S)

    def _on_reload(self, task: DemoTask, serving: Serving) -> None:
        version, predictor = serving.version, serving.predictor  # evaluated is what was reloaded
        reload = Reload(task.name, version, time.monotonic(), *self.traffic())
        record = storage.adapters.get_adapter(self.db, task.name, version)
        if record is not None and "interim" in record.metrics:
            self.echo(f"  interim v{version} of {task.name} hot-reloaded: its head refitted on the labels so far")
            with self._changed:
                self.interims.append(reload)
                self._changed.notify_all()
            return
        texts = [text for text, _ in task.heldout]
        truths = [label for _, label in task.heldout]
        metrics = camel.evaluate(predictor.adapter, texts, truths, predictor.cache)
        result = RoundResult(
            task.name,
            len([r for r in self.results if r.task == task.name]) + 1,
            version,
            self._labels_used(task.name, version),
            float(metrics["accuracy"]),
            float(metrics["macro_f1"]),
            len(texts),
        )
        when = "while the team was posting" if reload.during_traffic else "while the channels were quiet"
        # Printed before waiters wake, so the transcript keeps the order in which things happened.
        self.echo(
            f"  round {result.round} of {task.name}: adapter v{version} hot-reloaded {when}; "
            f"trained on {result.labels_seen} labels, held-out accuracy {result.accuracy:.1%}"
        )
        with self._changed:
            self.reloads.append(reload)
            self.results.append(result)
            self._changed.notify_all()

    def _labels_used(self, task: str, version: int) -> int:
        record = storage.adapters.get_adapter(self.db, task, version)
        run = next(
            (r for r in storage.runs.list_runs(self.db, task, limit=1000) if record and r.id == record.run_id), None
        )
        return (run.n_train + run.n_heldout) if run else 0

    def reloaded_while_talking(self) -> set[str]:
        """Tasks that have swapped in a new adapter while the team was posting."""
        with self._changed:
            return {r.task for r in self.reloads if r.during_traffic}

    def version_count(self, task: str) -> int:
        with self._changed:
            return len([r for r in self.results if r.task == task])

    def wait_for_version(self, task: str, version: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(r.task == task and r.version == version for r in self.results) and not any(
                r.task == task and r.version == version for r in self.interims
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DemoStalledError(f"{task} adapter v{version} was not hot-reloaded within {timeout:.0f}s")
                self._changed.wait(min(remaining, 1.0))

    def wait_for_rounds(self, task: str, count: int, timeout: float) -> None:
        """Block until `task` has `count` measured versions, or fail with a one-line message."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len([r for r in self.results if r.task == task]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DemoStalledError(f"no new adapter for {task} within {timeout:.0f}s")
                self._changed.wait(min(remaining, 1.0))
