"""The gate in front of Bolt: size limit, signature, then a parse check, before Bolt sees a byte.

Bolt parses a request's body before it verifies the signature, and logs the whole body of a
request whose signature is wrong. Both let anyone who can reach the URL break or flood the
bot, so every POST to the events path passes here first, in this order:

1. a body larger than the limit -> 413, decided from Content-Length without reading the body
   (a chunked body is read only up to the limit);
2. Slack's certificate check of the URL (a form `ssl_check=1&token=...`) -> 200 with an empty
   body, signed or not, and nothing stored: Bolt's own SslCheck middleware answers it the same
   way before it verifies anything, and Slack expects that answer. Telling it apart parses a
   form of at most the size limit, which can neither recurse nor raise;
3. a missing, stale, non-numeric or wrong signature -> 401, before any other parsing;
4. a signed body that is not what Slack sends (not UTF-8, not JSON, truncated, a form whose
   `payload` is not JSON, nesting too deep) -> 400.

Each rejection is one log line with the reason, never the body and never a traceback. Bolt
then gets the same bytes it would have read and verifies the (valid) signature again.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, parse_qsl

from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
DEFAULT_MAX_BODY_BYTES = 1_000_000  # Slack's own payloads stay far below this


class BytesSignatureVerifier(SignatureVerifier):
    """slack_sdk's verifier (same clock and constant-time compare), hashing the raw bytes.

    The stock verifier decodes the body as UTF-8 first, which raises on a body that is not
    UTF-8; the signature is defined over the bytes, so it is checked over the bytes.
    """

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str | None:
        raw = body.encode("utf-8") if isinstance(body, str) else body
        message = b"v0:" + timestamp.encode("ascii") + b":" + raw
        digest = hmac.new(self.signing_secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
        return f"v0={digest}"


class Rejected(Exception):
    """A request refused before Bolt: HTTP status and the reason for the log line."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RequestGuard:
    """WSGI middleware in front of Bolt on the events path (the server routes only that path here)."""

    def __init__(self, app: WSGIApp, signing_secret: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.verifier = BytesSignatureVerifier(signing_secret)
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            body = self._read_body(environ)
            if is_ssl_check(body, _content_type(environ)):
                log.info("answered Slack's certificate check", extra={"peer": _peer(environ)})
                start_response("200 OK", [("Content-Type", "text/plain;charset=utf-8"), ("Content-Length", "0")])
                return [b""]
            self._verify(environ, body)
            check_parsable(body, _content_type(environ))
        except Rejected as rejected:
            log.warning(
                "refused a request before Bolt",
                extra={"status": rejected.status.split()[0], "reason": rejected.reason, "peer": _peer(environ)},
            )
            data = (rejected.status.split(" ", 1)[1] + "\n").encode()
            start_response(rejected.status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
            return [data]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        declared = str(environ.get("CONTENT_LENGTH") or "").strip()
        stream = environ.get("wsgi.input")
        if declared:
            if not declared.isdigit():
                raise Rejected("400 Bad Request", "Content-Length is not a number")
            if int(declared) > self.max_body_bytes:
                raise Rejected("413 Payload Too Large", f"Content-Length {declared} above {self.max_body_bytes}")
            return stream.read(int(declared)) if stream is not None and int(declared) else b""
        # No length (chunked): read one byte past the limit to know it was exceeded, never more.
        body = stream.read(self.max_body_bytes + 1) if stream is not None else b""
        if len(body) > self.max_body_bytes:
            raise Rejected("413 Payload Too Large", f"chunked body above {self.max_body_bytes}")
        return bytes(body)

    def _verify(self, environ: dict[str, Any], body: bytes) -> None:
        timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
        if not timestamp or not signature:
            raise Rejected("401 Unauthorized", "missing signature headers")
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise Rejected("401 Unauthorized", "timestamp is not a number")
        if not self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            raise Rejected("401 Unauthorized", "bad or stale signature")


def is_ssl_check(body: bytes, content_type: str) -> bool:
    """Whether `body` is Slack's certificate check: a form whose `ssl_check` is "1", as Bolt tells it."""
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return False
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return False
    return form.get("ssl_check") == "1" and "payload" not in form


def check_parsable(body: bytes, content_type: str) -> None:
    """Raise `Rejected` (400) unless `body` parses the way Bolt will parse it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("400 Bad Request", "body is not UTF-8") from None
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(text, keep_blank_values=True)
        if "payload" in form:
            _json_object(form["payload"][0], "payload")
        elif "command" not in form:
            raise Rejected("400 Bad Request", "form without payload or command")
        return
    _json_object(text, "body")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise Rejected("400 Bad Request", f"{what} is not JSON") from None
    except RecursionError:
        raise Rejected("400 Bad Request", f"{what} nests too deep") from None
    if not isinstance(value, dict):
        raise Rejected("400 Bad Request", f"{what} is not a JSON object")
    return value


def _content_type(environ: dict[str, Any]) -> str:
    return str(environ.get("CONTENT_TYPE") or "")


def _peer(environ: dict[str, Any]) -> str:
    return str(environ.get("REMOTE_ADDR") or "")
