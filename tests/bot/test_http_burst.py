"""A burst of simultaneous connections is served, none reset (waitress, backlog 1024)."""

from __future__ import annotations

import socket
import threading

from bot.slack.http_server import LISTEN_BACKLOG
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


def test_shutdown_after_waitress_closed_its_wake_up_pipe(bot: BotUnderTest) -> None:
    # Seen in CI: a client dropping a connection at the wrong moment made waitress close its
    # trigger ("unhandled close event"); the next shutdown wrote to the closed pipe (EBADF).
    server = bot.runtime.server
    assert server is not None
    server._server.trigger.handle_close()
    server.shutdown()
    bot.runtime.server = None  # already stopped; the fixture's stop() must not stop it twice
