"""HTTP mode: Bolt behind waitress, a production WSGI server, with the request guard in front.

One URL, POST /slack/events, takes events, slash commands and interactivity (Slack posts all
three to the request URL set in the manifest). GET /healthz answers liveness probes and
GET /metrics serves the Prometheus text format. GET /readyz says whether the bot can take
events (503 with the reason when it cannot, e.g. a full disk), so an orchestrator can stop
routing to it without restarting it: /healthz stays a liveness probe.

waitress keeps a listen backlog of 1024 (the stdlib reference server keeps 5 and resets a
burst of connections) and answers from a pool of threads; every POST to the events path
passes `RequestGuard` (size, signature, parse check) before Bolt. Any other path is 404 at
once: no signature check and no read of the body, since nothing there is Slack's.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Protocol

import waitress
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import BaseWSGIServer

from bot.metrics import CONTENT_TYPE, BotMetrics
from bot.slack.request_guard import DEFAULT_MAX_BODY_BYTES, RequestGuard

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"

StartResponse = Callable[..., Any]
LISTEN_BACKLOG = 1024
DEFAULT_THREADS = 16


class Readiness(Protocol):
    """Why the bot cannot take events now ("" when it can); checked by GET /readyz."""

    def not_ready_reason(self) -> str: ...


class BotWSGIApp:
    """Routes the events path and the three probes; everything else is 404, its body unread."""

    def __init__(
        self,
        app: App,
        metrics: BotMetrics | None = None,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        readiness: Readiness | None = None,
        signing_secret: str = "",
    ) -> None:
        bolt = SlackRequestHandler(app, path=EVENTS_PATH)
        # Without a secret (an app that only serves probes) Bolt's own check refuses every event.
        self.slack = RequestGuard(bolt, signing_secret, max_body_bytes) if signing_secret else bolt
        self.metrics = metrics
        self.readiness = readiness

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        if method == "GET" and path == "/healthz":
            return _plain(start_response, "200 OK", b"ok\n", "text/plain; charset=utf-8")
        if method == "GET" and path == "/readyz":
            reason = self.readiness.not_ready_reason() if self.readiness is not None else ""
            if reason:
                return _plain(start_response, "503 Service Unavailable", f"{reason}\n".encode(), "text/plain")
            return _plain(start_response, "200 OK", b"ready\n", "text/plain; charset=utf-8")
        if method == "GET" and path == "/metrics" and self.metrics is not None:
            return _plain(start_response, "200 OK", self.metrics.render(), CONTENT_TYPE)
        if path != EVENTS_PATH:
            return _plain(start_response, "404 Not Found", b"Not Found\n", "text/plain")
        if method != "POST":
            return _plain(start_response, "405 Method Not Allowed", b"POST only\n", "text/plain")
        return self.slack(environ, start_response)


def _plain(start_response: StartResponse, status: str, body: bytes, ctype: str) -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


class HttpServer:
    """A waitress server running in a background thread; `server_port` is the bound port."""

    def __init__(self, server: BaseWSGIServer) -> None:
        self._server = server
        self.server_port = int(server.effective_port)  # type: ignore[attr-defined]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camel-http", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._server.run()
        except OSError:
            # When shutdown() had to close the sockets from its own thread (see there), the loop's
            # select() may still hold one of them and fail with EBADF: expected while stopping.
            # Any other time it is a real fault, and the thread dies with it.
            if not self._stopping.is_set():
                raise

    def shutdown(self) -> None:
        """Close the listening socket and every connection, then stop the worker threads."""
        server = self._server

        def close_all() -> None:
            # Runs in the server's own loop thread, so no socket is closed under a running select().
            for dispatcher in list(server._map.values()):
                dispatcher.handle_close()

        self._stopping.set()
        if self._thread.is_alive():
            try:
                server.trigger.pull_trigger(close_all)
            except OSError:
                # The loop's wake-up pipe was already closed (waitress logs "unhandled close
                # event" when a client drops a connection at the wrong moment): close from here;
                # the loop ends once its map is empty (or fails on a socket closed under its
                # select(), which `_run` expects while stopping).
                close_all()
            self._thread.join(timeout=10)
        server.task_dispatcher.shutdown()

    def server_close(self) -> None:
        """Kept for the `shutdown(); server_close()` pair callers already use."""


def serve_http(
    app: App,
    port: int = 3000,
    host: str = "0.0.0.0",
    metrics: BotMetrics | None = None,
    *,
    threads: int = DEFAULT_THREADS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    readiness: Readiness | None = None,
    signing_secret: str = "",
) -> HttpServer:
    """Start serving in a background thread; `server.server_port` is the bound port (0 = any free).

    Stop with `server.shutdown(); server.server_close()`. Without `metrics`, GET /metrics is 404.
    `signing_secret` turns on the request guard (the runtime always passes it in HTTP mode).
    """
    wsgi = BotWSGIApp(app, metrics, max_body_bytes=max_body_bytes, readiness=readiness, signing_secret=signing_secret)
    server = waitress.create_server(
        wsgi,
        host=host,
        port=port,
        threads=threads,
        backlog=LISTEN_BACKLOG,
        connection_limit=max(LISTEN_BACKLOG, 100),
        # waitress answers 413 itself, from Content-Length, before a byte of the body is read.
        max_request_body_size=max_body_bytes,
        expose_tracebacks=False,
        ident="camel-bot",
    )
    running = HttpServer(server)
    log.info("serving Slack on http://%s:%s%s", host, running.server_port, EVENTS_PATH)
    return running
