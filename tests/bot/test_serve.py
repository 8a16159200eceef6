"""`camel-bot serve` as a real process: HTTP mode end to end, clean stop, one-line setting errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from bot.demo.local_slack import FakeSlackAPI
from tests.bot.conftest import post_signed
from tests.bot.serve_process import serve_command, serve_env, start_serve, write_serve_config


def _config(tmp_path: Path, fake: FakeSlackAPI, tiny_bert_dir: Path, mode: str = "http") -> Path:
    return write_serve_config(tmp_path, fake, tiny_bert_dir, labels=["card_arrival", "refund"], mode=mode)


def _signed_event(port: int, event: dict) -> int:
    body = json.dumps({"type": "event_callback", "team_id": "T0CAMEL", "event_id": "Ev0SERVE", "event": event})
    status, _ = post_signed(f"http://127.0.0.1:{port}", body.encode(), "application/json", "s3cret")
    return status


def test_serve_http_end_to_end(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with FakeSlackAPI() as fake:
        process, port = start_serve(
            _config(tmp_path, fake, tiny_bert_dir),
            serve_env(SLACK_BOT_TOKEN="xoxb-serve", SLACK_SIGNING_SECRET="s3cret"),
            tmp_path / "serve.log",
            cwd=tmp_path,
        )
        try:
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
            reply = fake.wait_for("chat.postMessage", timeout=120)[0]
            # no adapter yet: the served bot guesses from the label names (zero-shot start)
            assert reply.params["thread_ts"] == "1700000050.000100"
            assert "only guessing from the label names" in reply.params["text"]
            assert "xoxb-serve" in reply.headers["Authorization"]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
    assert process.returncode == 0
    assert (tmp_path / "data" / "camel.db").is_file() and (tmp_path / "data" / "scheduler.db").is_file()


def test_serve_socket_mode(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with FakeSlackAPI() as fake:
        process = subprocess.Popen(
            serve_command(_config(tmp_path, fake, tiny_bert_dir, "socket")),
            cwd=tmp_path,
            env=serve_env(SLACK_BOT_TOKEN="xoxb-serve", SLACK_APP_TOKEN="xapp-serve"),
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
            assert fake.wait_for("chat.postMessage", timeout=120)[0].params["thread_ts"] == "1700000070.000100"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
    assert process.returncode == 0


def test_serve_without_a_secret_is_one_line_and_status_2(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with FakeSlackAPI() as fake:
        done = subprocess.run(
            serve_command(_config(tmp_path, fake, tiny_bert_dir)),
            cwd=tmp_path,
            env=serve_env(SLACK_BOT_TOKEN="xoxb-serve"),
            capture_output=True,
            text=True,
            timeout=300,  # a refusal comes after the imports, which a busy machine slows a lot
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "camel-bot serve: error: SLACK_SIGNING_SECRET is not set (environment or secrets_file)"
    ]


def test_second_serve_on_the_same_data_folder_refuses_with_one_line(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with FakeSlackAPI() as fake:
        config = _config(tmp_path, fake, tiny_bert_dir)
        env = serve_env(SLACK_BOT_TOKEN="xoxb-serve", SLACK_SIGNING_SECRET="s3cret")
        first, _ = start_serve(config, env, tmp_path / "serve.log", cwd=tmp_path)
        try:
            second = subprocess.run(
                serve_command(config),
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,  # a refusal comes after the imports, which a busy machine slows a lot
            )
        finally:
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=120)
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
        env=serve_env(),
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
