"""The parent's side of a training round: launch the child, wait for it, make sure its run ends.

Training never runs in the bot process: each round runs `bot.loop.round` in a child with few
threads and lower priority, so a crash or out-of-memory there cannot take the bot down. The
child is forked by the warm worker (`bot.loop.warm_client`), which has already imported torch and
loaded the base, so a round starts at once; when the worker is off (`[model] warm_worker =
false`) or cannot start, the child is a cold `python -m bot.loop.round` (the reason is logged).
If the child dies before recording its end, the run is failed here with the tail of its output.
`recover()` cleans up after a bot that died while a round was running.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import shutil
import threading
from pathlib import Path
from typing import Callable, Protocol

from sqlite_utils import Database

import storage
from bot.errors import LearningError, TaskBusyError
from bot.loop import versions
from bot.loop.options import RoundOptions, summary_path
from bot.loop.store_use import StoreUse
from bot.loop.warm_client import WarmRound, WarmWorker, WarmWorkerError, log_tail
from bot.settings import DataPaths, Settings

log = logging.getLogger(__name__)
NICENESS = 10
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
CHILD_MODULE = "bot.loop.round"
# A worker still loading when a round starts is waited for this long (a cold child would pay the
# same loading); after that the round runs cold and the worker is replaced at the next round.
READY_TIMEOUT_S = 300.0
WARM_LOG = "warm-worker.log"


class RoundProcess(Protocol):
    """A running round: a cold child's `subprocess.Popen` or a `WarmRound` forked by the warm worker."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def child_command(settings: Settings, task: str, trigger: str, run_id: int, engine: str | None = None) -> list[str]:
    """The child's full command line; its flags come from `RoundOptions.to_argv()`."""
    return round_command(RoundOptions.from_settings(settings, task, trigger, run_id, engine).to_argv())


def round_command(argv: list[str]) -> list[str]:
    """The cold child's command line for a round's flags."""
    return [sys.executable, "-m", CHILD_MODULE, *argv]


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT_ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def death_message(returncode: int, log_path: Path, cause: str = "") -> str:
    if cause:
        what = cause
    elif returncode < 0:
        what = f"training process killed by {signal.Signals(-returncode).name}"
    else:
        what = f"training process exited with status {returncode}"
    tail = log_tail(log_path)
    return f"{what}: {tail}" if tail else what


class RoundRunner:
    """Runs rounds in child processes, one at a time per task; `children` are the ones running now."""

    def __init__(
        self, settings: Settings, db: Database, store_use: StoreUse, engine: Callable[[], str] | None = None
    ) -> None:
        self.settings, self.db, self.store_use = settings, db, store_use
        # The engine serving runs (a round fills the cache serving reads, so both use one engine).
        self.engine = engine
        self.children: dict[str, RoundProcess] = {}
        self._task_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.warm: WarmWorker | None = None
        self._warm_guard = threading.Lock()
        self._stopping = False

    def lock_for(self, task: str) -> threading.Lock:
        """Held for the whole round, so a second round of the task waits for the first."""
        with self._guard:
            return self._task_locks.setdefault(task, threading.Lock())

    def run_locked(self, task: str, trigger: str, run_id: int | None) -> storage.TrainingRun:
        """One round; the caller holds `lock_for(task)`. The store is not in use while the child
        trains, so a stop meanwhile does not wait for it (LoopStoppedError afterwards)."""
        with self.store_use.using():
            run_id = run_id or storage.runs.start_run(self.db, task, trigger)
        log_path = summary_path(self.settings.data_dir, run_id).with_suffix(".log")
        returncode, cause = self._spawn_and_wait(task, trigger, run_id, log_path)
        with self.store_use.using():
            return self._finished_run(task, run_id, returncode, log_path, cause)

    def _spawn_and_wait(self, task: str, trigger: str, run_id: int, log_path: Path) -> tuple[int, str]:
        """The child's exit status, and why it died when only the warm worker could have said."""
        storage.files.make_private_dirs(log_path.parent)
        # The same flags for a warm and a cold child, with the engine serving runs.
        engine = self.engine() if self.engine else None
        argv = RoundOptions.from_settings(self.settings, task, trigger, run_id, engine).to_argv()
        child = self._start_warm_round(argv, run_id, log_path) or self._start_cold_round(argv, log_path)
        self.children[task] = child
        try:
            returncode = child.wait()
        finally:
            self.children.pop(task, None)
        return returncode, child.lost if isinstance(child, WarmRound) else ""

    def _start_cold_round(self, argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        threads = self.settings.model.training_threads
        # Owner-only whatever the umask: the child's output may quote users' messages.
        with os.fdopen(storage.files.open_private(log_path), "wb") as output:
            return subprocess.Popen(
                round_command(argv),
                env=child_env(threads),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=functools.partial(os.nice, NICENESS),
            )

    def _start_warm_round(self, argv: list[str], run_id: int, log_path: Path) -> WarmRound | None:
        """The round forked by the warm worker, or None: run it cold."""
        worker = self._warm_for_round()
        if worker is None:
            return None
        try:
            return worker.start_round(argv, log_path, self.settings.model.training_threads)
        except WarmWorkerError as exc:
            log.warning("training round %s runs cold: %s", run_id, exc)
            return None

    # the warm worker ----------------------------------------------------------------
    def start_warm(self) -> None:
        """Start the warm worker now (it loads in its own process while the bot starts)."""
        self._stopping = False
        if self.settings.model.warm_worker:
            with self._warm_guard:
                if self.warm is None:
                    self.warm = self._new_warm()

    def stop_warm(self) -> None:
        """Stop the warm worker; a round it is running finishes, as a cold child's does."""
        self._stopping = True
        with self._warm_guard:
            worker, self.warm = self.warm, None
        if worker is not None:
            worker.close()

    def _new_warm(self) -> WarmWorker:
        model = self.settings.model
        log_path = Path(DataPaths(self.settings.data_dir).runs) / WARM_LOG
        storage.files.make_private_dirs(log_path.parent)  # 0700 whatever the umask, as the rounds' logs
        return WarmWorker(
            model.base_model,
            model.training_threads,
            log_path,
            child_env(model.training_threads),
            NICENESS,
            on_exit=self._warm_exited,
        )

    def _warm_exited(self, worker: WarmWorker) -> None:
        """Replace a worker that died while in use at once, so the next round is warm too. One that
        never became ready is not restarted here (the next round tries once more, then runs cold)."""
        if self._stopping or not worker.timings:
            return
        with self._warm_guard:
            if self.warm is worker and not self._stopping:
                log.warning("replacing the warm training worker: %s", worker.failure)
                self.warm = self._new_warm()

    def _warm_for_round(self) -> WarmWorker | None:
        """A warm worker that answers, for this round's settings; None (with the reason logged)
        when the setting is off or no worker could be made ready."""
        model = self.settings.model
        if not model.warm_worker or self._stopping:
            return None
        with self._warm_guard:
            worker = self.warm
            if worker is not None and (worker.base_model, worker.threads) != (model.base_model, model.training_threads):
                log.info("the base model or training threads changed: restarting the warm training worker")
                self.warm = None
                worker.close(timeout=0)
                worker = None
            if worker is not None and worker.ready_event.is_set() and not worker.ping():
                log.warning(
                    "warm training worker pid %d is dead or stuck (%s): replacing it", worker.pid, worker.failure
                )
                self.warm = None
                worker.kill()
                worker = None
            if worker is None:
                worker = self.warm = self._new_warm()
        if worker.wait_ready(READY_TIMEOUT_S):
            return worker
        reason = worker.failure or f"not ready within {READY_TIMEOUT_S:.0f} s"
        log.warning(
            "training round runs cold: the warm training worker could not start (%s): %s",
            reason,
            log_tail(worker.log_path),
        )
        with self._warm_guard:
            if self.warm is worker:
                self.warm = None
        worker.kill()
        return None

    def _finished_run(
        self, task: str, run_id: int, returncode: int, log_path: Path, cause: str = ""
    ) -> storage.TrainingRun:
        run = self._run(task, run_id)
        if run.finished_at is None:  # the child died before it could record its end
            error = death_message(returncode, log_path, cause)
            storage.runs.finish_run(self.db, run_id, outcome="failed", error=error)
            run = self._run(task, run_id)
        log.info("round %s of %s: %s %s", run_id, task, run.outcome, run.error or "")
        return run

    def _run(self, task: str, run_id: int) -> storage.TrainingRun:
        run = storage.runs.get_run(self.db, run_id)
        if run is None or run.task != task:
            raise LearningError(f"training run {run_id} of {task} is not in the database")
        return run

    def recover(self, tasks: list[str]) -> list[str]:
        """Make records and folders agree after a crash (tasks nobody trains now): delete hidden
        temp folders, reconcile runs with versions (`storage.rounds.reconcile_task`) and delete version
        folders whose round never committed."""
        notes = []
        for task in tasks:
            try:
                with versions.task_lock(self.settings.data_dir, task):
                    notes += [f"removed {p}" for p in versions.remove_temp_folders(self.settings.data_dir, task)]
                    notes += self._reconcile(task)
            except TaskBusyError:
                continue  # a round from before our restart is still running and owns its files
        for note in notes:
            log.warning("recovery: %s", note)
        return notes

    def _reconcile(self, task: str) -> list[str]:
        if storage.tasks.get_task(self.db, task) is None:
            return []  # configured but not stored yet: nothing to reconcile
        on_disk = versions.versions_on_disk(self.settings.data_dir, task)
        found = storage.rounds.reconcile_task(self.db, task, version_folders=on_disk)
        notes = list(found.notes)
        for version in found.orphan_versions:
            folder = versions.version_dir(self.settings.data_dir, task, version)
            shutil.rmtree(folder, ignore_errors=True)
            notes.append(f"removed {folder} (no record: its round never committed)")
        return notes
