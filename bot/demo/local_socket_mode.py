"""The Socket Mode side of the local Slack stand-in: a minimal RFC 6455 websocket session.

Slack's Socket Mode sends envelopes over a websocket and expects an ack frame for each;
slack_sdk's built-in client pings every few seconds and reconnects if pongs stop.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import select
import socket
import struct
from typing import Any, Callable

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return header + payload


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("socket closed")
        data += chunk
    return data


def _ws_read(conn: socket.socket) -> tuple[int, bytes]:
    """One client frame (clients always mask their frames)."""
    first, second = _read_exactly(conn, 2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", _read_exactly(conn, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", _read_exactly(conn, 8))[0]
    mask = _read_exactly(conn, 4) if second & 0x80 else b"\0\0\0\0"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(_read_exactly(conn, size)))
    return first & 0x0F, payload


def handshake_accept(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def serve_socket_session(
    conn: socket.socket,
    outbox: "queue.Queue[dict[str, Any]]",
    running: Callable[[], bool],
    on_ack: Callable[[dict[str, Any]], None],
) -> None:
    """Say hello, push queued envelopes, answer pings and hand acks to `on_ack` until closed."""
    conn.sendall(_ws_frame(OP_TEXT, json.dumps({"type": "hello", "num_connections": 1}).encode()))
    try:
        while running():
            while not outbox.empty():
                conn.sendall(_ws_frame(OP_TEXT, json.dumps(outbox.get()).encode()))
            if not select.select([conn], [], [], 0.05)[0]:
                continue
            opcode, payload = _ws_read(conn)
            if opcode == OP_PING:
                conn.sendall(_ws_frame(OP_PONG, payload))
            elif opcode == OP_TEXT:
                on_ack(json.loads(payload.decode("utf-8")))
            elif opcode == OP_CLOSE:
                conn.sendall(_ws_frame(OP_CLOSE, b""))
                return
    except (ConnectionError, OSError):
        return  # the app went away; it reconnects through apps.connections.open
