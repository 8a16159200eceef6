"""The warm training worker: a process that has paid a round's start-up once and forks each round.

`python -m bot.loop.warm_worker --base-model PATH` imports torch, transformers and the round's code,
loads the base model, then waits for requests on stdin. For each round it forks a child that runs
exactly what `python -m bot.loop.round` runs (`bot.loop.round.main` with the same `RoundOptions`
flags), its output in the run's log, so a round starts from memory instead of from disk.

It never opens SQLite: a connection copied into a forked child corrupts the database when both
sides use it, so only the forked round opens its own (as the cold child does). The bot starts
this process with subprocess (never by forking itself: the bot holds connections).

Protocol (one JSON object per line; requests on stdin, events on the original stdout):
  -> {"op": "ping", "id": N}                            <- {"event": "pong", "id": N}
  -> {"op": "round", "id": N, "argv": [...], "log": PATH, "threads": T}
                                                        <- {"event": "started", "id": N, "pid": P}
                                                        <- {"event": "exited", "id": N, "pid": P, "returncode": R}
  at start                                              <- {"event": "ready", "pid": P, "import_s": S, "load_s": S}
R is what `subprocess.Popen.returncode` would be (negative: killed by that signal). End of stdin
(the bot stopped or died) stops the worker once its running rounds have ended: a round under way
finishes, as a cold child does; while still warming up it exits at once.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import logging
import os
import select
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable

log = logging.getLogger("bot.loop.warm_worker")
PR_SET_PDEATHSIG = 1
POLL_S = 0.1  # how often finished rounds are reaped while no request comes


def die_with_parent() -> None:
    """A round must not outlive the worker that reports its end: if the worker is killed, the
    kernel kills the round too, so the bot can fail the run truthfully and start the next one."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the bot kills the round by pid instead
        pass


def exit_code(raised: BaseException | None) -> int:
    """The status `python -m bot.loop.round` would exit with after `raised` (None: main returned)."""
    if isinstance(raised, SystemExit):
        code = raised.code
        if code is None or isinstance(code, int):
            return int(code or 0)
        print(code, file=sys.stderr)
        return 1
    if raised is not None:
        traceback.print_exception(raised)
        return 1
    return 0


def run_forked_round(request: dict[str, Any], worker_pid: int, protocol_fd: int) -> None:
    """In the forked child: become a round process (output to its log, own threads) and exit."""
    status = 1
    try:
        die_with_parent()
        if os.getppid() != worker_pid:  # the worker died between fork and prctl
            os._exit(1)
        os.close(protocol_fd)  # only the worker speaks to the bot
        from storage.files import open_private  # imported by the worker's warm-up already

        output = open_private(request["log"])  # owner-only: the log may quote users' messages
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import torch

        from bot.loop import round as round_module

        # The cold child gets its thread count from OMP_NUM_THREADS at torch's start; here torch
        # started in the worker (with one thread, so no OpenMP pool was made before the fork).
        torch.set_num_threads(int(request["threads"]))
        raised: BaseException | None = None
        try:
            status = round_module.main(list(request["argv"]))
        except BaseException as exc:  # the child reports every way of ending as a status
            raised = exc
        if raised is not None:
            status = exit_code(raised)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)


class Worker:
    """The worker's loop: read requests, fork rounds, reap them and report their ends."""

    def __init__(self, protocol_fd: int, fork: Callable[[], int] = os.fork) -> None:
        self.protocol_fd = protocol_fd
        self.fork = fork
        self.rounds: dict[int, int] = {}  # pid -> request id
        self.buffer = b""
        self.open = True

    def send(self, **event: Any) -> None:
        try:
            os.write(self.protocol_fd, (json.dumps(event) + "\n").encode())
        except OSError:  # the bot is gone; the rounds still finish
            pass

    def serve(self) -> None:
        self.drain()  # requests read while warming up
        while self.open or self.rounds:
            if self.open:
                readable, _, _ = select.select([0], [], [], POLL_S)
                if readable:
                    self.read_requests()
            else:
                self.reap(block=True)
            self.reap(block=False)

    def read_requests(self) -> None:
        chunk = os.read(0, 65536)
        if not chunk:
            self.open = False
            log.info("the bot closed the request pipe; stopping after %d running round(s)", len(self.rounds))
            return
        self.buffer += chunk
        self.drain()

    def drain(self) -> None:
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                self.handle(json.loads(line))

    def handle(self, request: dict[str, Any]) -> None:
        op, ident = request.get("op"), request.get("id")
        if op == "ping":
            self.send(event="pong", id=ident)
        elif op == "round":
            self.start_round(request)
        else:
            self.send(event="error", id=ident, error=f"unknown request {op!r}")

    def start_round(self, request: dict[str, Any]) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # nothing buffered here may be written twice by the child
        try:
            pid = self.fork()
        except OSError as exc:
            self.send(event="refused", id=request.get("id"), error=f"fork failed: {exc}")
            return
        if pid == 0:
            run_forked_round(request, os.getppid(), self.protocol_fd)
        self.rounds[pid] = request.get("id", 0)
        self.send(event="started", id=request.get("id"), pid=pid)
        log.info("round request %s: forked pid %d", request.get("id"), pid)

    def reap(self, block: bool) -> None:
        while self.rounds:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                self.rounds.clear()
                return
            if pid == 0:
                return
            ident = self.rounds.pop(pid, None)
            if ident is not None:
                self.send(event="exited", id=ident, pid=pid, returncode=os.waitstatus_to_exitcode(status))
            if block:
                return


def exit_if_abandoned(worker: Worker, watching: threading.Event) -> None:
    """While warming up: a bot that stopped or died closes the request pipe; loading on for
    nobody would only take CPU from serving, so the worker exits at once (it has no rounds yet)."""
    while watching.is_set():
        readable, _, _ = select.select([0], [], [], POLL_S)
        if readable:
            chunk = os.read(0, 65536)
            if not chunk:
                os._exit(0)
            worker.buffer += chunk  # nothing is sent before "ready"; kept for serve() all the same


def warm_up(base_model: str) -> dict[str, float]:
    """Import what a round imports and load the base (into camel's per-process registry, which
    the forked round's `camel.load_base` finds). No model runs here: the worker's torch keeps one
    thread and never starts an OpenMP pool, so a forked child can start its own."""
    started = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    import camel
    from bot.loop import round as round_module  # noqa: F401  (everything a round imports)
    import transformers.masking_utils  # noqa: F401  (imported lazily at a round's first forward pass)

    imported = time.perf_counter()
    camel.load_base(base_model or camel.default_base_model_path())
    loaded = time.perf_counter()
    gc.collect()
    gc.freeze()  # the loaded objects stay out of the children's collections: fewer pages copied
    return {"import_s": imported - started, "load_s": loaded - imported}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.loop.warm_worker", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--base-model", default="", help="the base model folder ('' = the shipped all-MiniLM-L6-v2)")
    args = parser.parse_args(argv)
    # Events go to a private copy of stdout; stdout itself then goes where stderr goes (the
    # worker's log), so a stray print can never be read by the bot as an event.
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker = Worker(protocol_fd)
    watching = threading.Event()
    watching.set()
    watch = threading.Thread(target=exit_if_abandoned, args=(worker, watching), daemon=True)
    watch.start()
    try:
        timings = warm_up(args.base_model)
    except Exception as exc:  # the bot falls back to cold rounds and logs this line
        worker.send(event="failed", error=f"{type(exc).__name__}: {exc}")
        log.exception("warm-up failed")
        return 1
    watching.clear()
    watch.join()  # no thread of the worker's own may run when it forks
    log.info("warm: imports %.1f s, base %.1f s", timings["import_s"], timings["load_s"])
    worker.send(event="ready", pid=os.getpid(), **timings)
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
