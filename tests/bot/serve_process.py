"""`camel-bot serve` as a child process, for the tests that run the real command.

Its settings file, its environment (this checkout, none of the caller's Slack or camel-bot
settings), and its start: stderr goes to a log file, read until serve says which port it bound.
The log is appended to, so one file can follow a serve that is killed and started again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bot.demo.local_slack import FakeSlackAPI

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)/slack/events")


def write_serve_config(
    tmp_path: Path,
    fake: FakeSlackAPI,
    tiny_bert_dir: Path,
    *,
    labels: list[str],
    mode: str = "http",
    settings: str = "",
    task_settings: str = "",
) -> Path:
    """tmp_path/camel-bot.toml: one support task on the tiny BERT, Slack at `fake`, HTTP on a free port.

    `settings` and `task_settings` are extra TOML lines for the top level and for the task.
    """
    path = tmp_path / "camel-bot.toml"
    path.write_text(f"""
mode = "{mode}"
data_dir = "{tmp_path / "data"}"
slack_api_url = "{fake.url}"
http_port = 0
http_host = "127.0.0.1"
{settings}
[model]
base_model = "{tiny_bert_dir}"
trainable_layers = 1
[[tasks]]
name = "support"
kind = "intent"
labels = {json.dumps(labels)}
channels = ["C0SUPPORT"]
{task_settings}
""")
    return path


def serve_env(**extra: str) -> dict[str, str]:
    """This environment without SLACK_* and CAMEL_BOT_* variables, importing this checkout, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CAMEL_BOT_"))}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def serve_command(config: Path | str) -> list[str]:
    return [sys.executable, "-m", "bot", "serve", "--config", str(config)]


def start_serve(
    config: Path | str,
    env: dict[str, str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    timeout: float = 300.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts serve with its stderr appended to `log_path`; returns it once it listens, and its port.

    Fails at once if serve exits first; `timeout` is generous (a busy machine slows the imports
    of torch and transformers to tens of seconds) and only bounds a serve that never listens.
    """
    start = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log_file:  # the child holds its own descriptor
        process = subprocess.Popen(serve_command(config), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _LISTENING.findall(log_path.read_bytes()[start:].decode(errors="replace"))
        if found:
            return process, int(found[-1])
        assert process.poll() is None, "serve exited before listening"
        time.sleep(0.05)
    raise AssertionError("serve did not start listening")
