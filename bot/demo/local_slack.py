"""A local stand-in for Slack's Web API: an http.server thread that records and answers calls.

The tests and the demo point the bot's `WebClient(base_url=...)` here. It answers the methods
the bot uses the way Slack does (`{"ok": true, ...}`, message timestamps, the three-step
`files_upload_v2` flow) and can be told to answer the next calls of a method with HTTP 429.
It also speaks Socket Mode: `apps.connections.open` hands out a ws:// URL on this server, and
`send_socket_envelope` pushes an envelope to the connected app (its acks record as "socket_ack").
"""

from __future__ import annotations

import itertools
import json
import queue
import sys
import threading
import uuid
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl

from bot.demo.local_socket_mode import handshake_accept, serve_socket_session

Answer = Callable[["FakeSlackAPI", dict[str, Any]], dict[str, Any]]


@dataclass
class RecordedCall:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


def _decode_params(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return dict(json.loads(body.decode("utf-8")))
    if content_type.startswith("application/x-www-form-urlencoded"):
        params: dict[str, Any] = {}
        for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
            # Nested arguments (blocks, files) travel JSON-encoded inside the form.
            if value[:1] in ("[", "{"):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            params[key] = value
        return params
    return {"_raw": body}


class _QuietServer(ThreadingHTTPServer):
    """The stand-in's HTTP server; a client that went away before its answer was written (a bot
    killed mid-request, as the kill -9 test does) is Slack's everyday case, not a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class FakeSlackAPI:
    """Start with `start()` (or as a context manager); `url` is the `base_url` for WebClient."""

    def __init__(self, *, bot_user_id: str = "UCAMELBOT", team_id: str = "T0CAMEL") -> None:
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self.calls: list[RecordedCall] = []
        self.usergroups: dict[str, list[str]] = {}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}
        self._failures: dict[str, list[int]] = {}
        self._refusals: dict[str, list[str]] = {}
        self._lock = threading.Condition()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._outbox: "queue.Queue[dict[str, Any]]" = queue.Queue()
        self.socket_connected = threading.Event()

    # ---- lifecycle
    def start(self) -> "FakeSlackAPI":
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeSlackAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeSlackAPI is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "hook") -> str:
        """A response_url for a fake slash command or action payload; calls record as "response_url"."""
        return f"http://127.0.0.1:{self.port}/respond/{name}"

    # ---- test controls
    def fail_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with HTTP 429 and Retry-After."""
        with self._lock:
            self._failures[method] = [retry_after] * times

    def refuse_next(self, method: str, error: str, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with Slack's `{"ok": false, "error": error}`."""
        with self._lock:
            self._refusals[method] = [error] * times

    def add_message(self, channel: str, ts: str, text: str, user: str = "U0HUMAN") -> None:
        """A message that exists in the workspace (found by conversations.history)."""
        self.messages[(channel, ts)] = {"type": "message", "ts": ts, "text": text, "user": user}

    def send_socket_envelope(self, kind: str, payload: dict[str, Any]) -> str:
        """Push a Socket Mode envelope ("events_api", "slash_commands", "interactive"); returns its id."""
        envelope_id = str(uuid.uuid4())
        self._outbox.put(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
            }
        )
        return envelope_id

    def calls_of(self, method: str) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.status == 200]

    def wait_for(self, method: str, count: int = 1, timeout: float = 60.0) -> list[RecordedCall]:
        """Block until `count` successful calls of `method` arrived; raise on timeout (generous: on a
        busy machine a reply can take seconds, and the wait ends as soon as the calls are in)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self.calls if c.method == method and c.status == 200]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({c.method for c in self.calls})
                    raise TimeoutError(f"{count} x {method} not seen within {timeout}s; saw {seen}")
                self._lock.wait(remaining)

    # ---- request handling (called from server threads)
    def _record(self, call: RecordedCall) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    def _take_failure(self, method: str) -> int | None:
        with self._lock:
            pending = self._failures.get(method)
            return pending.pop() if pending else None

    def _next_ts(self) -> str:
        return f"{1700000000 + next(self._ts)}.{next(self._ids):06d}"

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            refusals = self._refusals.get(method)
            if refusals:
                return {"ok": False, "error": refusals.pop()}
        handler = ANSWERS.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return {"ok": True, **handler(self, params)}


def _post_message(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    ts = api._next_ts()
    message = {
        "type": "message",
        "ts": ts,
        "text": p.get("text", ""),
        "user": api.bot_user_id,
        "bot_id": "BCAMEL",
        "blocks": p.get("blocks", []),
    }
    if p.get("thread_ts"):
        message["thread_ts"] = str(p["thread_ts"])
    api.messages[(str(p.get("channel")), ts)] = message
    return {"channel": p.get("channel"), "ts": ts, "message": message}


def _json_param(value: Any) -> dict[str, Any]:
    """A JSON object parameter, sent as an object (JSON body) or as a string (form body)."""
    if isinstance(value, str):
        parsed = json.loads(value)
        return parsed if isinstance(parsed, dict) else {}
    return dict(value or {})


def _history(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    found = api.messages.get((str(p.get("channel")), str(p.get("latest"))))
    return {"messages": [found] if found else [], "has_more": False}


def _replies(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    channel, parent = str(p.get("channel")), str(p.get("ts"))
    found = [
        m for (c, _), m in list(api.messages.items()) if c == channel and parent in (m.get("ts"), m.get("thread_ts"))
    ]
    return {"messages": sorted(found, key=lambda m: float(m["ts"])), "has_more": False}


def _upload_url(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    file_id = f"F{next(api._ids):08d}"
    return {"upload_url": f"http://127.0.0.1:{api.port}/upload/{file_id}", "file_id": file_id}


def _complete_upload(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    files = p.get("files") or []
    return {
        "files": [
            {"id": f["id"], "title": f.get("title"), "permalink": f"https://fake.slack/files/{f['id']}"} for f in files
        ]
    }


ANSWERS: dict[str, Answer] = {
    "auth.test": lambda api, p: {
        "user_id": api.bot_user_id,
        "team_id": api.team_id,
        "bot_id": "BCAMEL",
        "user": "camel",
        "team": "Camel",
        "url": "https://camel.fake.slack/",
    },
    "chat.postMessage": _post_message,
    "chat.postEphemeral": lambda api, p: {"message_ts": api._next_ts()},
    "chat.update": lambda api, p: {"channel": p.get("channel"), "ts": p.get("ts"), "text": p.get("text", "")},
    "chat.getPermalink": lambda api, p: {
        "permalink": f"https://camel.fake.slack/archives/{p.get('channel')}/"
        f"p{str(p.get('message_ts', '')).replace('.', '')}"
    },
    "reactions.add": lambda api, p: {},
    "users.info": lambda api, p: {
        "user": {"id": p.get("user"), "name": str(p.get("user", "")).lower(), "is_bot": False, "tz": "UTC"}
    },
    "usergroups.users.list": lambda api, p: {"users": api.usergroups.get(str(p.get("usergroup")), [])},
    "views.publish": lambda api, p: {"view": {"id": f"V{next(api._ids):08d}", **(p.get("view") or {})}},
    "views.open": lambda api, p: {"view": {"id": f"V{next(api._ids):08d}", **_json_param(p.get("view"))}},
    "conversations.info": lambda api, p: {
        "channel": {"id": p.get("channel"), "name": f"chan-{p.get('channel')}", "is_channel": True, "is_member": True}
    },
    "conversations.history": _history,
    # A direct-message conversation with the users named (one user: that user's IM with the bot).
    "conversations.open": lambda api, p: {"channel": {"id": "D" + str(p.get("users", "")).replace(",", "")}},
    "conversations.replies": _replies,
    "files.getUploadURLExternal": _upload_url,
    "files.completeUploadExternal": _complete_upload,
    "apps.connections.open": lambda api, p: {"url": f"ws://127.0.0.1:{api.port}/socket"},
}


def _handler_for(api: FakeSlackAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `calls`
            return

        def do_GET(self) -> None:
            key = self.headers.get("Sec-WebSocket-Key")
            if self.path.split("?", 1)[0] != "/socket" or key is None:
                return self._send(404, b"not found", "text/plain")
            self.send_response(101, "Switching Protocols")
            for name, value in (
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", handshake_accept(key)),
            ):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.flush()
            api.socket_connected.set()
            try:
                serve_socket_session(
                    self.connection,
                    api._outbox,
                    lambda: api._server is not None,
                    lambda ack: api._record(RecordedCall("socket_ack", ack, {})),
                )
            finally:
                api.socket_connected.clear()
            self.close_connection = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items()}
            if self.path.startswith("/upload/"):
                api.uploads[self.path.rsplit("/", 1)[1]] = body
                api._record(RecordedCall("upload", {"path": self.path, "size": len(body)}, headers))
                return self._send(200, b"OK - " + str(len(body)).encode(), "text/plain")
            if self.path.startswith("/respond/"):
                # A slash command's or action's response_url (tests point it here).
                api._record(RecordedCall("response_url", _decode_params("application/json", body), headers))
                return self._send(200, b"ok", "text/plain")
            method = self.path.split("/api/", 1)[-1].split("?", 1)[0]
            params = _decode_params(self.headers.get("Content-Type", ""), body)
            retry_after = api._take_failure(method)
            if retry_after is not None:
                api._record(RecordedCall(method, params, headers, status=429))
                return self._send(
                    429, b'{"ok": false, "error": "ratelimited"}', "application/json", {"Retry-After": str(retry_after)}
                )
            answer = api.answer(method, params)
            api._record(RecordedCall(method, params, headers, response=answer))
            self._send(200, json.dumps(answer).encode(), "application/json")

        def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler
