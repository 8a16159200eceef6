"""`camel-bot serve` as a real process: HTTP mode end to end, clean stop, one-line setting errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from slack_sdk.signature import SignatureVerifier

from bot.demo.local_slack import FakeSlackAPI

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, fake: FakeSlackAPI, tiny_bert_dir: Path, mode: str = "http") -> Path:
    path = tmp_path / "camel-bot.toml"
    path.write_text(f"""
mode = "{mode}"
data_dir = "{tmp_path / "data"}"
slack_api_url = "{fake.url}"
http_port = 0
http_host = "127.0.0.1"
[model]
base_model = "{tiny_bert_dir}"
trainable_layers = 1
[[tasks]]
name = "support"
kind = "intent"
labels = ["card_arrival", "refund"]
channels = ["C0SUPPORT"]
""")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CAMEL_BOT_"))}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def _bound_port(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)/slack/events", line)
        if found:
            return int(found.group(1))
        assert line or process.poll() is None, "serve exited before listening"
    raise AssertionError("serve did not start listening")


def _signed_event(port: int, event: dict) -> int:
    body = json.dumps({"type": "event_callback", "team_id": "T0CAMEL", "event_id": "Ev0SERVE", "event": event})
    ts = str(int(time.time()))
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events",
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier("s3cret").generate_signature(timestamp=ts, body=body),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_serve_http_end_to_end(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with FakeSlackAPI() as fake:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--config", str(_config(tmp_path, fake, tiny_bert_dir))],
            cwd=tmp_path,
            env=_env(SLACK_BOT_TOKEN="xoxb-serve", SLACK_SIGNING_SECRET="s3cret"),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            port = _bound_port(process)
            assert fake.calls_of("auth.test")  # the token is checked at start
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                assert response.read() == b"ok\n"
            assert (
                _signed_event(
                    port,
                    {
                        "type": "message",
                        "channel": "C0SUPPORT",
                        "user": "U0ALICE",
                        "text": "where is my card",
                        "ts": "1700000050.000100",
                    },
                )
                == 200
            )
            reply = fake.wait_for("chat.postMessage", timeout=30)[0]
            # no adapter yet: the served bot guesses from the label names (zero-shot start)
            assert reply.params["thread_ts"] == "1700000050.000100"
            assert "only guessing from the label names" in reply.params["text"]
            assert "xoxb-serve" in reply.headers["Authorization"]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert process.returncode == 0
    assert (tmp_path / "data" / "camel.db").is_file() and (tmp_path / "data" / "scheduler.db").is_file()


def test_serve_socket_mode(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with FakeSlackAPI() as fake:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--config", str(_config(tmp_path, fake, tiny_bert_dir, "socket"))],
            cwd=tmp_path,
            env=_env(SLACK_BOT_TOKEN="xoxb-serve", SLACK_APP_TOKEN="xapp-serve"),
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        try:
            assert fake.socket_connected.wait(60), "serve did not open a Socket Mode connection"
            fake.send_socket_envelope(
                "events_api",
                {
                    "type": "event_callback",
                    "team_id": "T0CAMEL",
                    "event_id": "Ev0SOCKSERVE",
                    "event": {
                        "type": "message",
                        "channel": "C0SUPPORT",
                        "user": "U0ALICE",
                        "text": "card",
                        "ts": "1700000070.000100",
                    },
                },
            )
            assert fake.wait_for("chat.postMessage", timeout=30)[0].params["thread_ts"] == "1700000070.000100"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert process.returncode == 0


def test_serve_without_a_secret_is_one_line_and_status_2(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with FakeSlackAPI() as fake:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "serve", "--config", str(_config(tmp_path, fake, tiny_bert_dir))],
            cwd=tmp_path,
            env=_env(SLACK_BOT_TOKEN="xoxb-serve"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "camel-bot serve: error: SLACK_SIGNING_SECRET is not set (environment or secrets_file)"
    ]


def test_second_serve_on_the_same_data_folder_refuses_with_one_line(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with FakeSlackAPI() as fake:
        config = str(_config(tmp_path, fake, tiny_bert_dir))
        env = _env(SLACK_BOT_TOKEN="xoxb-serve", SLACK_SIGNING_SECRET="s3cret")
        first = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--config", config],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            _bound_port(first)
            second = subprocess.run(
                [sys.executable, "-m", "bot", "serve", "--config", config],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=30)
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {first.pid}" in lines[0] and "Traceback" not in second.stderr
    assert len(fake.calls_of("auth.test")) == 1  # the second never got as far as Slack


def test_serve_lock_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    from bot import serve_lock

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from bot import serve_lock; held = serve_lock.hold({str(tmp_path)!r}); print('held', flush=True); input()",  # noqa: E501
        ],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        serve_lock.hold(str(tmp_path))
        raise AssertionError("the lock was taken twice")
    except serve_lock.AlreadyServing as refused:
        assert f"pid {holder.pid}" in str(refused)
    holder.kill()  # SIGKILL: no cleanup runs, the kernel drops the flock
    holder.wait(timeout=30)
    serve_lock.hold(str(tmp_path)).close()
    assert (tmp_path / "serve.lock").stat().st_mode & 0o777 == 0o600
