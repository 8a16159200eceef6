"""The bot's side of the warm training worker (`bot.loop.warm_worker`): start it, check it, ask it
for rounds, and replace it when it dies or stops answering.

A round it forks is handed back as a `WarmRound`, which behaves like the `subprocess.Popen` of a
cold child (pid, wait, poll, kill), so the runner's waiting, killing and failing are the same for
both. The worker is the round's parent, so the round's exit status comes from the worker; if the
worker dies meanwhile the round dies with it (the kernel kills it) and the round is `lost`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable

from bot.errors import LearningError
from storage.files import open_private

log = logging.getLogger(__name__)
WORKER_MODULE = "bot.loop.warm_worker"
PING_TIMEOUT_S = 5.0  # a worker that does not answer a ping within this is stuck: it is replaced
START_TIMEOUT_S = 10.0  # to fork a round and say its pid
OUTPUT_TAIL = 800  # characters of a log quoted in a failure


class WarmWorkerError(LearningError):
    """The warm worker could not start or run a round; the runner falls back to a cold child."""


class WarmRound:
    """A round forked by the warm worker, waited on like a `subprocess.Popen`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.lost = ""  # why the exit status is unknown (the worker died), or ""
        self._ended = threading.Event()

    def end(self, returncode: int, lost: str = "") -> None:
        if not self._ended.is_set():
            self.returncode, self.lost = returncode, lost
            self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"round pid {self.pid}", timeout or 0.0)
        assert self.returncode is not None  # set with the event
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class WarmWorker:
    """One running `python -m bot.loop.warm_worker` for one base model and thread count."""

    def __init__(
        self,
        base_model: str,
        threads: int,
        log_path: Path,
        env: dict[str, str],
        niceness: int,
        on_exit: Callable[[WarmWorker], None] | None = None,
    ) -> None:
        self.base_model, self.threads, self.log_path, self.on_exit = base_model, threads, log_path, on_exit
        self.ready_event = threading.Event()
        self.failure = ""  # why it is not usable (set once it failed or died)
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._reply_events: dict[int, threading.Event] = {}
        self.rounds: dict[int, WarmRound] = {}  # request id -> round
        self.forked = 0  # rounds this worker started
        self._closing = False  # asked to stop: its exit is no news
        self.started_at = time.monotonic()
        # Owner-only: a round's traceback in here may quote a message.
        with os.fdopen(open_private(log_path), "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, "--base-model", base_model],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=output,
                preexec_fn=functools.partial(os.nice, niceness),  # its rounds inherit the lower priority
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin: IO[bytes] = self.process.stdin
        self._reader = threading.Thread(
            target=self._read, args=(self.process.stdout,), name=f"warm-worker-{self.pid}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and not self.failure

    def wait_ready(self, timeout: float) -> bool:
        return self.ready_event.wait(timeout) and self.alive

    # requests ----------------------------------------------------------------------
    def ping(self, timeout: float = PING_TIMEOUT_S) -> bool:
        try:
            self._request({"op": "ping"}, timeout)
            return True
        except WarmWorkerError:
            return False

    def start_round(self, argv: list[str], log_path: Path, threads: int) -> WarmRound:
        """Fork a round; raises WarmWorkerError when the worker cannot (the round did not start)."""
        reply = self._request({"op": "round", "argv": argv, "log": str(log_path), "threads": threads}, START_TIMEOUT_S)
        if reply.get("event") != "started":
            raise WarmWorkerError(f"warm worker refused the round: {reply.get('error', reply)}")
        warm_round: WarmRound = reply["round"]
        self.forked += 1
        return warm_round

    def _request(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if not self.alive:
            raise WarmWorkerError(f"warm worker is not running: {self.failure or 'exited'}")
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            event = self._reply_events[ident] = threading.Event()
            try:
                self._stdin.write((json.dumps({**request, "id": ident}) + "\n").encode())
                self._stdin.flush()
            except (OSError, ValueError) as exc:
                self._reply_events.pop(ident, None)
                raise WarmWorkerError(f"warm worker does not take requests: {exc}") from exc
        answered = event.wait(timeout)
        with self._lock:
            self._reply_events.pop(ident, None)
            reply = self._replies.pop(ident, None)
        if not answered or reply is None:
            raise WarmWorkerError(self.failure or f"warm worker did not answer within {timeout:.0f} s")
        return reply

    # the worker's events -----------------------------------------------------------
    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self._on_event(event)
        self.process.wait()
        self._on_exit()

    def _on_event(self, event: dict[str, Any]) -> None:
        kind, ident = event.get("event"), event.get("id")
        if kind == "ready":
            self.timings = {k: float(event[k]) for k in ("import_s", "load_s") if k in event}
            self.ready_event.set()
        elif kind == "failed":
            self.failure = f"warm-up failed: {event.get('error')}"
            self.ready_event.set()
        elif kind == "exited":
            with self._lock:
                warm_round = self.rounds.pop(int(ident), None) if ident is not None else None
            if warm_round is not None:
                warm_round.end(int(event["returncode"]))
        elif ident is not None:
            with self._lock:
                if kind == "started":  # known before the reply is read: its end may come next
                    event["round"] = self.rounds[int(ident)] = WarmRound(int(event["pid"]))
                self._replies[int(ident)] = event
                waiting = self._reply_events.get(int(ident))
            if waiting is not None:
                waiting.set()

    def _on_exit(self) -> None:
        code = self.process.returncode
        what = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exited ({code})"
        self.failure = self.failure or f"warm worker pid {self.pid} {what}"
        self.ready_event.set()
        with self._lock:
            orphans = list(self.rounds.values())
            self.rounds.clear()
            waiting = list(self._reply_events.values())
        for event in waiting:
            event.set()
        for warm_round in orphans:
            # The kernel killed the round with its worker (PR_SET_PDEATHSIG); wait until it is gone
            # so nothing of it still runs when the run is failed.
            _wait_gone(warm_round.pid)
            warm_round.end(-signal.SIGKILL, lost=f"the {self.failure} while the round ran, and the round with it")
        if orphans or (code and not self._closing):
            log.warning("%s", self.failure)
        if self.on_exit is not None:
            self.on_exit(self)

    # ending -------------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Stop taking rounds; the worker exits once its running rounds end (waited for up to `timeout`).
        One still warming up has no rounds and would not read its requests before it is done, so it
        is killed: its loading would only take CPU from serving and from its replacement."""
        self._closing = True
        if not self.ready_event.is_set():
            self.process.kill()
            self.process.wait()
            return
        try:
            self._stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass  # a round still runs: it finishes in its own process, as a cold child does

    def kill(self) -> None:
        """A stuck worker: kill it (its rounds die with it) and reap it."""
        self.failure = self.failure or f"warm worker pid {self.pid} did not answer and was killed"
        self.process.kill()
        self.process.wait()


def log_tail(path: Path) -> str:
    """The end of a worker's or a round's log, for the reason of a failure ("" when unreadable)."""
    try:
        return path.read_text(errors="replace")[-OUTPUT_TAIL:].strip()
    except OSError:
        return ""


def gone(pid: int) -> bool:
    """Whether process `pid` no longer runs: reaped, or dead and waiting to be (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not gone(pid):
        time.sleep(0.02)
