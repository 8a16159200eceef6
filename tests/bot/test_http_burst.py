"""A burst of simultaneous connections is served, none reset (waitress, backlog 1024), and the
server's threads live through it.

A server thread that dies with an exception fails the test it dies in (pyproject's
filterwarnings turns pytest's unhandled-thread-exception warning into an error); the burst test
also checks, after the burst, that the loop thread and every worker thread are still running
and that the server still answers.
"""

from __future__ import annotations

import errno
import socket
import threading
import urllib.request

from bot.slack.http_server import LISTEN_BACKLOG, HttpServer
from tests.bot.conftest import BotUnderTest

CONNECTIONS = 200


def test_200_simultaneous_connections_none_reset(bot: BotUnderTest) -> None:
    assert LISTEN_BACKLOG >= 128
    port = bot.server.server_port
    start = threading.Barrier(CONNECTIONS)
    answers: list[bytes] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        start.wait()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
            with lock:
                answers.append(data)
        except OSError as exc:  # ConnectionResetError, refused, timeout
            with lock:
                failures.append(type(exc).__name__)

    threads = [threading.Thread(target=one) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert len(answers) == CONNECTIONS and all(a.startswith(b"HTTP/1.1 200") for a in answers)
    assert bot.runtime.server is not None
    assert_server_threads_alive(bot.runtime.server, bot.settings.http_threads)
    with urllib.request.urlopen(f"{bot.url}/healthz", timeout=30) as response:
        assert response.read() == b"ok\n"


def assert_server_threads_alive(server: HttpServer, threads: int) -> None:
    """The loop thread that accepts and reads, and all `threads` workers, are running."""
    assert server._thread.is_alive(), "the server's loop thread died"
    workers = [t for t in threading.enumerate() if t.name.startswith("waitress-") and t.is_alive()]
    assert len(server._server.task_dispatcher.threads) == threads
    assert len(workers) >= threads, [t.name for t in workers]


class _FailsOnceStopping:
    """An entry of waitress's socket map whose select() fails with EBADF once `stopping` is set,
    as a socket closed by another thread under the loop's select() does."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping

    def readable(self) -> bool:
        if self.stopping.is_set():
            raise OSError(errno.EBADF, "Bad file descriptor")
        return False

    def writable(self) -> bool:
        return False

    def handle_close(self) -> None:
        """Closed, but still in the map the loop's next select() reads."""


def test_shutdown_after_waitress_closed_its_wake_up_pipe(bot: BotUnderTest) -> None:
    # Seen in CI: a client dropping a connection at the wrong moment made waitress close its
    # trigger ("unhandled close event"); the next shutdown wrote to the closed pipe (EBADF).
    # Waitress closes it in its own loop thread, so the test closes it there too (closed from this
    # thread, the loop's select() could fail on the closed pipe before shutdown began).
    server = bot.runtime.server
    assert server is not None
    closed = threading.Event()

    def close_the_trigger() -> None:
        server._server.trigger.handle_close()
        closed.set()

    # shutdown() must then close the sockets from this thread, and the loop's select() may fail on
    # one of them (EBADF, a matter of timing): here it always does, once shutdown has begun.
    # It watches the server's own stopping flag: a flag of the test's, set before shutdown() sets
    # the server's, let the loop fail in between, a race of the test, not of the server.
    server._server._map[-1] = _FailsOnceStopping(server._stopping)
    server._server.trigger.pull_trigger(close_the_trigger)
    assert closed.wait(60), "the loop thread never ran the close"
    server.shutdown()  # no thread dies with an exception: the EBADF is expected while stopping
    assert not server._thread.is_alive()
    bot.runtime.server = None  # already stopped; the fixture's stop() must not stop it twice
