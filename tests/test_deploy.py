"""deploy/ files: each is parsed, and every path and command it names must exist in the project."""

from __future__ import annotations

import configparser
from dataclasses import fields
import json
import shlex
import tomllib
import urllib.request
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import pytest
import yaml
from slack_bolt import App

from bot.cli import build_parser
from bot import texts
from bot.slack.http_server import EVENTS_PATH, serve_http
from bot.settings import SECRET_KEYS, Settings, TaskSettings, load_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SANDBOX_OPTIONS = (
    "ProtectSystem",
    "NoNewPrivileges",
    "PrivateTmp",
    "ProtectHome",
    "PrivateDevices",
    "RestrictSUIDSGID",
    "CapabilityBoundingSet",
)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with backslash continuations joined."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def assert_is_camel_bot_command(argv: list[str]) -> None:
    """`argv` runs the installed entry point with a subcommand the CLI really registers."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(argv[0]).name in scripts, f"{argv[0]} is not a [project.scripts] entry point"
    args = build_parser().parse_args(argv[1:])  # exits with status 2 on an unknown subcommand
    assert args.command == argv[1] and callable(args.func)


def known_env_names() -> set[str]:
    scalars = {
        f"CAMEL_BOT_{name.upper()}"
        for name, value in vars(Settings()).items()
        if isinstance(value, (str, int, float, bool, list))
    }
    return scalars | set(SECRET_KEYS) | {"CAMEL_BOT_CONFIG", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}


@pytest.fixture()
def healthz_url() -> Iterator[str]:
    """The real HTTP server of `camel-bot serve`, on a free local port."""
    app = App(token="xoxb-test", signing_secret="test-secret", token_verification_enabled=False)
    server = serve_http(app, port=0, host="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{server.server_port}/healthz"
    finally:
        server.shutdown()
        server.server_close()


def test_dockerfile_base_image_torch_pin_user_volume() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    pin = next(
        d
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if d.startswith("torch")
    )
    torch_step = next(arg for op, arg in steps if op == "RUN" and "torch" in arg)
    assert pin in torch_step and "download.pytorch.org/whl/cpu" in torch_step
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("VOLUME", "/data") in steps
    assert any(op == "ENV" and "CAMEL_BOT_DATA_DIR=/data" in arg for op, arg in steps)


def test_dockerfile_copies_existing_paths_and_runs_serve() -> None:
    steps = dockerfile_instructions()
    for op, arg in steps:
        if op == "COPY":
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    cmd = next(arg for op, arg in steps if op == "CMD")
    assert_is_camel_bot_command(json.loads(cmd))
    env_names = {a.split("=")[0] for op, arg in steps if op == "ENV" for a in arg.split()}
    assert env_names <= known_env_names() | {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR"}


def test_dockerfile_healthcheck_hits_a_served_path(healthz_url: str) -> None:
    check = next(arg for op, arg in dockerfile_instructions() if op == "HEALTHCHECK")
    port = next(
        a.split("=")[1]
        for op, arg in dockerfile_instructions()
        if op == "ENV"
        for a in arg.split()
        if a.startswith("CAMEL_BOT_HTTP_PORT=")
    )
    assert f"http://127.0.0.1:{port}/healthz" in check
    with urllib.request.urlopen(healthz_url, timeout=5) as response:
        assert response.status == 200


def test_compose_builds_this_project_and_mounts_existing_files() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    service = compose["services"]["camel-bot"]
    context = (DEPLOY / service["build"]["context"]).resolve()
    assert context == ROOT and (context / service["build"]["dockerfile"]).is_file()
    env = service["environment"]
    assert set(env) <= known_env_names()
    mounts = dict(volume.split(":")[:2] for volume in service["volumes"])
    assert env["CAMEL_BOT_DATA_DIR"] in mounts.values()
    for source, target in mounts.items():
        if source.startswith("."):
            assert (DEPLOY / source).is_file(), f"compose mounts missing {source}"
        else:
            assert source in compose["volumes"]
    assert env["CAMEL_BOT_CONFIG"] in mounts.values()


def test_systemd_unit_is_sandboxed_and_runs_serve() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read(DEPLOY / "camel-bot.service")
    service = unit["Service"]
    assert_is_camel_bot_command(shlex.split(service["ExecStart"]))
    for option in SANDBOX_OPTIONS:
        assert option in service, f"unit lacks {option}"
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "true"
    assert service["User"] not in ("root", "0")
    environment = _unit_environment(DEPLOY / "camel-bot.service")
    assert set(environment) <= known_env_names()
    assert environment["CAMEL_BOT_DATA_DIR"] in service["ReadWritePaths"].split()
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def _unit_environment(path: Path) -> dict[str, str]:
    # configparser keeps only the last of repeated keys; systemd accumulates Environment= lines.
    lines = [ln.split("=", 1)[1] for ln in path.read_text().splitlines() if ln.startswith("Environment=")]
    return dict(line.split("=", 1) for line in lines)


def test_env_example_names_only_known_variables_without_values() -> None:
    names = []
    for line in (DEPLOY / "env.example").read_text().splitlines():
        stripped = line.lstrip("# ").strip()
        if "=" in stripped and stripped.split("=")[0].isupper() and " " not in stripped.split("=")[0]:
            names.append(stripped.split("=")[0])
            if not line.startswith("#"):
                assert stripped.endswith("="), f"env.example sets a value: {line}"
    assert set(SECRET_KEYS) <= set(names) and set(names) <= known_env_names()


def test_example_config_shows_every_setting() -> None:
    example = tomllib.loads((DEPLOY / "camel-bot.example.toml").read_text())
    defaults = Settings()
    secrets = {"bot_token", "signing_secret", "app_token"}
    assert set(example) == set(vars(defaults)) - secrets
    assert set(example["model"]) == set(vars(defaults.model))
    assert set(example["learning"]) == set(vars(defaults.learning))
    assert set(example["retention"]) == set(vars(defaults.retention))
    assert set(example["tasks"][0]) == {f.name for f in fields(TaskSettings)}


def test_example_config_loads_with_real_settings_loader() -> None:
    settings = load_settings(str(DEPLOY / "camel-bot.example.toml"), env={})
    assert settings.mode == "http" and settings.data_dir == "/var/lib/camel-bot"
    assert [task.name for task in settings.tasks] == ["support", "sentiment"]
    assert settings.bot_token == ""  # secrets never come from this file


def test_slack_manifest_points_at_served_paths() -> None:
    manifest = yaml.safe_load((DEPLOY / "slack-manifest.yaml").read_text())
    commands = manifest["features"]["slash_commands"]
    assert [command["command"] for command in commands] == [texts.COMMAND]
    settings = manifest["settings"]
    urls = [
        commands[0]["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert {urlparse(url).path for url in urls} == {EVENTS_PATH}
    assert {"message.channels", "reaction_added", "reaction_removed"} <= set(
        settings["event_subscriptions"]["bot_events"]
    )
