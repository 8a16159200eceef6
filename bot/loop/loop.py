"""LearningLoop: the facade the bot uses for self-improvement (triggers, rounds, reports, reload, rollback).

Three parts do the work: `Triggers` decides when a round starts, `RoundRunner` runs it in a
child process, `Reporter` tells the channel through the `Publisher` the loop is given (neutral
reports, no Slack). The child writes the new version and its status to storage; the loop notices
the new active version (right after the child exits, and by polling, which also catches rounds
started elsewhere) and swaps it into the live `Predictor`.

The loop works on the bot's one database connection (`db`, shared with the Slack side; storage
guards it for threads); `stop()` waits for the loop's own threads to finish their work on it,
because the connection's owner closes it next (`bot.loop.store_use`).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlite_utils import Database

import storage
from bot import erasure
from bot.errors import LoopStoppedError, RollbackError
from bot.loop import asking, digest, reading_alert
from bot.loop.interim import InterimRefitter
from bot.loop.publisher import Publisher
from bot.loop.registry import PredictorRegistry
from bot.loop import retention
from bot.loop.reporter import Reporter
from bot.loop.retention import RetentionSummary
from bot.loop.review_scoring import ReviewScorer
from bot.loop.runner import RoundProcess, RoundRunner
from bot.loop.store_use import StoreUse
from bot.loop.triggers import Triggers
from bot.settings import Settings

log = logging.getLogger(__name__)
STOP_WAIT_S = 60.0  # a round's bookkeeping under way at stop: read its run, serve the version, report


class LearningLoop:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        predictors: PredictorRegistry,
        publisher: Publisher | None = None,
    ) -> None:
        self.settings, self.db, self.predictors = settings, db, predictors
        self.store_use = StoreUse()  # the loop's own threads' work on `db`, which stop() waits for
        self.triggers = Triggers(settings, self.db)
        self.runner = RoundRunner(settings, self.db, self.store_use, engine=lambda: predictors.engine().name)
        self.publisher = publisher  # reports, digests and questions reach the channels through it; None: silent
        self.reporter = Reporter(settings, self.db, publisher)
        self.review = ReviewScorer(self.db, predictors)  # review scores for each newly served version
        self.reload_errors: list[str] = []
        self._guard = threading.Lock()
        self._reload_lock = threading.Lock()
        self._queued: set[str] = set()
        # Head refits served between rounds, right after a correction (bot/loop/interim.py).
        self.interim = InterimRefitter(settings, self.db, predictors, self._reload_lock)
        # Erasures finished on each poll; the interim refit's features of an erased text go with them.
        self.sweeper = erasure.Sweeper(settings, db, stores=[self.interim.features])

    @property
    def children(self) -> dict[str, RoundProcess]:
        """Training processes running now, by task."""
        return self.runner.children

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the warm training worker (it loads meanwhile), clean up after a crash, serve the
        active versions, then let the schedule run."""
        self.runner.start_warm()
        self.recover()
        self.sync()
        self.triggers.start(self.task_names(), self.request_round, self.poll, self.apply_retention)
        if self.publisher is not None and any(t.ask_per_day > 0 for t in self.settings.tasks):
            self.triggers.add_interval("ask", self.ask_now, asking.ASK_EVERY_S)
        if self.publisher is not None and any(t.digest for t in self.settings.tasks):
            self.triggers.add_cron("digest", self.digest_now, digest.DIGEST_CRON)
        if self.publisher is not None:
            self.triggers.add_interval("reading", self.reading_now, reading_alert.CHECK_EVERY_S)

    def stop(self) -> None:
        """Stop scheduling and wait for the loop's work on the store under way; a round already
        training finishes in its own process, and the next start does its bookkeeping."""
        self.triggers.stop()
        if not self.interim.stop(STOP_WAIT_S):
            log.warning("an interim refit was still running at stop")
        if not self.store_use.close(STOP_WAIT_S):
            log.warning("a round's bookkeeping was still running at stop")
        if not self.review.stop():
            log.warning("a review scoring pass was still running at stop")
        self.runner.stop_warm()

    def task_names(self) -> list[str]:
        names = {t.name for t in storage.tasks.list_tasks(self.db)} | {t.name for t in self.settings.tasks}
        return sorted(names)

    def recover(self) -> list[str]:
        """Fail runs whose process died and delete half-written folders (tasks nobody trains now)."""
        return self.runner.recover(self.task_names())

    # triggers --------------------------------------------------------------------------
    def note_new_labels(self, task: str) -> bool:
        """A correction was stored: refit the serving head now (an interim version, without waiting
        for the threshold or the debounce), and count it for the threshold round (debounced);
        True if a round was scheduled (see `Triggers`)."""
        if self.settings.learning.interim and self.triggers.running:
            self.interim.request(task)
        return self.triggers.note_new_labels(task)

    def run_now(self, task: str, actor: str) -> int:
        """Start a manual round in the background; returns its run id at once."""
        run_id = storage.runs.start_run(self.db, task, "manual")
        storage.events.audit(self.db, actor=actor, action="retrain", detail={"task": task, "run_id": run_id})
        threading.Thread(
            target=self._round_in_background, args=(task, run_id), name=f"round-{run_id}", daemon=True
        ).start()
        return run_id

    def _round_in_background(self, task: str, run_id: int) -> None:
        try:
            self.run_round(task, "manual", run_id)
        except LoopStoppedError:
            log.info("the loop stopped while round %s of %s trained; the next start records its end", run_id, task)

    def next_run_time(self, task: str) -> datetime | None:
        return self.triggers.next_run_time(task)

    def ask_now(self) -> list[int]:
        """One asking pass (also run every `asking.ASK_EVERY_S`); returns the message ids asked about."""
        return asking.ask_pass(self.db, self.settings, self.publisher) if self.publisher is not None else []

    def digest_now(self) -> list[str]:
        """Post the daily digest of the tasks that have one (also run daily at `digest.DIGEST_CRON`)."""
        if self.publisher is None:
            return []
        return digest.digest_pass(self.db, self.settings, self.publisher)

    def reading_now(self) -> list[str]:
        """Tell admins of channels the base cannot read (also run every `reading_alert.CHECK_EVERY_S`)."""
        if self.publisher is None:
            return []
        try:
            with self.store_use.using():
                return reading_alert.alert_pass(self.db, self.settings, self.predictors.base(), self.publisher)
        except LoopStoppedError:
            return []
        except Exception:  # a failed check is tried again at the next one; it must not stop the scheduler
            log.exception("reading check failed")
            return []

    # one round -------------------------------------------------------------------------
    def request_round(self, task: str, trigger: str) -> bool:
        """What scheduled jobs call: queue a round and return at once.

        A job that blocked for the whole round would make APScheduler skip ("max instances")
        the next threshold job of the same id if labels keep coming while it trains. One
        queued round per task is enough: it starts after the running one and sees every label.
        """
        with self._guard:
            if task in self._queued:
                return False
            self._queued.add(task)
        threading.Thread(target=self._queued_round, args=(task, trigger), name=f"round-{task}", daemon=True).start()
        return True

    def _queued_round(self, task: str, trigger: str) -> None:
        try:
            with self.runner.lock_for(task):
                with self._guard:
                    self._queued.discard(task)
                if not self.triggers.running:
                    return  # stopped while waiting
                run = self.runner.run_locked(task, trigger, None)
            self._after(task, run)
        except LoopStoppedError:
            log.info("the loop stopped while a round of %s trained; the next start records its end", task)
        except Exception:
            log.exception("training round of %s could not run", task)

    def run_round(self, task: str, trigger: str, run_id: int | None = None) -> storage.TrainingRun:
        """Run one round in a child process and wait for it (one round per task at a time).
        Raises LoopStoppedError when the loop stops meanwhile."""
        with self.runner.lock_for(task):
            run = self.runner.run_locked(task, trigger, run_id)
        self._after(task, run)
        return run

    def _after(self, task: str, run: storage.TrainingRun) -> None:
        with self.store_use.using():
            self.sync()
            self.reporter.round_done(task, run)

    # hot reload, erased texts and rollback ---------------------------------------------
    def poll(self) -> None:
        """What the reload poll runs every `reload_poll_s`: serve new versions, forget erased texts."""
        self.sync()
        self.forget_deleted()

    def apply_retention(self) -> RetentionSummary | None:
        """The nightly retention pass (`bot.loop.retention`); a failure is logged, never raised
        into the scheduler, and the next night tries again."""
        try:
            with self._reload_lock:
                return retention.apply(
                    self.settings, self.db, self.predictors.cache, keep_bases=self.predictors.bases_in_use()
                )
        except Exception:
            log.exception("retention pass failed")
            return None

    def forget_deleted(self) -> int:
        """Finish erasures on the poll (`bot.erasure.Sweeper`): texts newly on storage's deletion
        list leave the memory of every base's cache (a previous base may still be serving) and
        every shard that holds them, and the WAL is truncated; returns how many newly listed
        hashes it handled."""
        derived = self.sweeper.sweep(self.predictors.caches())
        return derived.text_hashes if derived is not None else 0

    def sync(self) -> list[str]:
        """Serve each task's active version (or the newest that loads); tell admins each new fallback once."""
        with self._reload_lock:
            before = self._serving()
            notices = self.predictors.sync_notices(self.db)
            changed = [task for task, version in self._serving().items() if version != before.get(task)]
        self.review.schedule(changed)
        self.reload_errors = [notice.text for notice in notices]
        self.reporter.reload_failures(notices)
        return self.reload_errors

    def _serving(self) -> dict[str, int | None]:
        return {task: self.predictors.version(task) for task in self.task_names()}

    def rollback(self, task: str, version: int | None, actor: str) -> storage.AdapterVersion:
        """Serve `version` (default: the newest retired one) now, and make it the active one."""
        with self._reload_lock:
            target = self._rollback_target(task, version)
            previous = self.predictors.version(task)
            self.predictors.load(task, target.version, target.path)  # raises before any change if broken
            activated = storage.adapters.activate_adapter(self.db, task, target.version, reason=f"rollback by {actor}")
        self.review.schedule([task])
        storage.events.audit(
            self.db,
            actor=actor,
            action="rollback",
            detail={"task": task, "version": target.version, "previous": previous},
        )
        return activated

    def _rollback_target(self, task: str, version: int | None) -> storage.AdapterVersion:
        versions = storage.adapters.list_adapters(self.db, task)
        if version is None:
            active = storage.tasks.get_task(self.db, task)
            newest = active.active_version if active and active.active_version else 10**9
            retired = [v for v in versions if v.status == "retired" and v.version < newest]
            if not retired:
                raise RollbackError(f"task {task!r} has no earlier version to roll back to")
            return retired[-1]
        found = next((v for v in versions if v.version == version), None)
        if found is None:
            raise RollbackError(f"task {task!r} has no adapter version {version}")
        return found
