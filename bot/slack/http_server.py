"""HTTP mode: Bolt behind a threading WSGI server.

One URL, POST /slack/events, takes events, slash commands and interactivity (Slack posts all
three to the request URL set in the manifest). GET /healthz answers liveness probes and
GET /metrics serves the Prometheus text format.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from typing import Any, Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.metrics import CONTENT_TYPE, BotMetrics

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"

StartResponse = Callable[..., Any]


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    # Slack expects an answer in 3 s: one slow request must never hold up the next.
    daemon_threads = True
    allow_reuse_address = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


class BotWSGIApp:
    """Routes the three paths; everything else is 404."""

    def __init__(self, app: App, metrics: BotMetrics | None = None) -> None:
        self.slack = SlackRequestHandler(app, path=EVENTS_PATH)
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        if method == "GET" and path == "/healthz":
            return _plain(start_response, "200 OK", b"ok\n", "text/plain; charset=utf-8")
        if method == "GET" and path == "/metrics" and self.metrics is not None:
            return _plain(start_response, "200 OK", self.metrics.render(), CONTENT_TYPE)
        if path == EVENTS_PATH and method != "POST":
            return _plain(start_response, "405 Method Not Allowed", b"POST only\n", "text/plain")
        return self.slack(environ, start_response)


def _plain(start_response: StartResponse, status: str, body: bytes, ctype: str) -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def serve_http(app: App, port: int = 3000, host: str = "0.0.0.0", metrics: BotMetrics | None = None) -> WSGIServer:
    """Start serving in a background thread; `server.server_port` is the bound port (0 = any free).

    Stop with `server.shutdown(); server.server_close()`. Without `metrics`, GET /metrics is 404.
    """
    server = make_server(
        host, port, BotWSGIApp(app, metrics), server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="camel-http", daemon=True
    )
    thread.start()
    log.info("serving Slack on http://%s:%s%s", host, server.server_port, EVENTS_PATH)
    return server
