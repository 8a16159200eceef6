"""Settings: TOML, environment overrides, secrets, validation messages that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import MissingSecretError, SettingsError, SettingsFileError, SettingsValueError, load_settings

TOML = """
admins = ["U1"]
http_port = 8080
[learning]
threshold_new_labels = 10
[[tasks]]
name = "mood"
kind = "sentiment"
labels = ["negative", "neutral", "positive"]
channels = ["C1"]
emoji = { "heart" = "positive" }
"""


def _write(tmp_path: Path, text: str, name: str = "camel-bot.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_toml_then_environment(tmp_path: Path) -> None:
    env = {
        "CAMEL_BOT_HTTP_PORT": "9000",
        "CAMEL_BOT_PROCESS_EDITS": "true",
        "CAMEL_BOT_ADMINS": "U2, U3",
        "CAMEL_BOT_MODE": "",
    }
    settings = load_settings(_write(tmp_path, TOML), env)
    assert settings.http_port == 9000 and settings.process_edits is True and settings.admins == ["U2", "U3"]
    assert settings.mode == "http"  # an empty variable is "not set"
    assert settings.learning.threshold_new_labels == 10 and settings.learning.debounce_s == 30.0
    assert settings.db_path == str(Path("camel-data") / "camel.db")
    emoji = settings.tasks[0].emoji_map()
    assert emoji["smile"] == "positive" and emoji["heart"] == "positive" and emoji["x"] == "__reject__"


def test_config_path_from_environment_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, {}).tasks == []  # no file anywhere: every default
    assert load_settings(None, {"CAMEL_BOT_CONFIG": _write(tmp_path, TOML, "other.toml")}).http_port == 8080
    _write(tmp_path, "http_port = 7000\n")
    assert load_settings(None, {}).http_port == 7000  # ./camel-bot.toml


def test_secrets_from_environment_or_file_never_in_repr(tmp_path: Path) -> None:
    secrets = _write(tmp_path, 'SLACK_BOT_TOKEN = "xoxb-file"\nSLACK_SIGNING_SECRET = "file-secret"\n', "s.toml")
    settings = load_settings(None, {"CAMEL_BOT_SECRETS_FILE": secrets, "SLACK_SIGNING_SECRET": "env-secret"})
    assert settings.bot_token == "xoxb-file" and settings.signing_secret == "env-secret"
    settings.require_secrets()
    assert "xoxb-file" not in repr(settings) and "env-secret" not in repr(settings)


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "CAMEL_BOT_MODE": "socket"}, "SLACK_APP_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "CAMEL_BOT_MODE": "socket", "SLACK_APP_TOKEN": "xoxb-2"}, "starting with xapp-"),
    ],
)
def test_missing_secrets_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(MissingSecretError, match=message):
        load_settings(None, env).require_secrets()


@pytest.mark.parametrize(
    "text, env, error, message",
    [
        ("colour = 'red'\n", {}, SettingsValueError, "unknown setting colour"),
        ("http_port = 'x'\n", {}, SettingsValueError, "http_port must be of type int"),
        ("[learning]\ndebounce = 1\n", {}, SettingsValueError, "unknown setting learning.debounce"),
        ("mode = 'carrier-pigeon'\n", {}, SettingsValueError, "mode must be 'http' or 'socket'"),
        ("", {"CAMEL_BOT_HTTP_PORT": "eighty"}, SettingsValueError, "CAMEL_BOT_HTTP_PORT must be a number"),
        ("", {"CAMEL_BOT_PROCESS_EDITS": "maybe"}, SettingsValueError, "CAMEL_BOT_PROCESS_EDITS must be true or false"),
        ("bot_token = 'xoxb-in-toml'\n", {}, SettingsValueError, "unknown setting bot_token"),
        ("[[tasks]]\nname = 't'\nlabels = ['a']\n", {}, SettingsValueError, "at least two distinct labels"),
        (
            "[[tasks]]\nname = 't'\nlabels = ['a', 'b']\nemoji = { heart = 'c' }\n",
            {},
            SettingsValueError,
            "emoji.heart maps to unknown label 'c'",
        ),
        ("http_port = \n", {}, SettingsFileError, "is not valid TOML"),
        ("model = 3\n", {}, SettingsValueError, "model must be a table"),
        ("[model]\nengine = 'gpu'\n", {}, SettingsValueError, "model.engine must be auto or one of torch-fp32"),
        ("tasks = ['support']\n", {}, SettingsValueError, r"tasks\[0\] must be a table"),
    ],
)
def test_wrong_settings_give_one_line_naming_them(
    tmp_path: Path, text: str, env: dict[str, str], error: type[SettingsError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        load_settings(_write(tmp_path, text), env)
    assert "\n" not in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsFileError, match="settings file not found: .*nope.toml"):
        load_settings(str(tmp_path / "nope.toml"), {})


def test_retention_section_has_the_documented_defaults_and_refuses_odd_values(tmp_path: Path) -> None:
    defaults = load_settings(None, env={}).retention
    assert (defaults.cache_max_bytes, defaults.unlabelled_text_days, defaults.prediction_days) == (2e9, 180, 90)
    assert (defaults.run_log_days, defaults.keep_versions) == (90, 5)
    config = tmp_path / "camel-bot.toml"
    config.write_text("[retention]\nprediction_days = 30\nkeep_versions = 2\n")
    loaded = load_settings(str(config), env={}).retention
    assert (loaded.prediction_days, loaded.keep_versions, loaded.run_log_days) == (30.0, 2, 90)
    for bad in ("prediction_days = nan", "run_log_days = 1e10", "keep_versions = -1", "cache_max_bytes = -5"):
        config.write_text(f"[retention]\n{bad}\n")
        with pytest.raises(SettingsValueError, match="retention"):
            load_settings(str(config), env={})
    config.write_text("[retention]\nkeep_forever = true\n")
    with pytest.raises(SettingsValueError, match="unknown setting retention.keep_forever"):
        load_settings(str(config), env={})


def test_engine_setting_defaults_to_auto_and_names_camels_engines(tmp_path: Path) -> None:
    import camel
    from bot.settings import ENGINE_NAMES

    assert ENGINE_NAMES == camel.ENGINES  # settings cannot import torch to ask camel itself
    assert load_settings(None, env={}).model.engine == "auto"
    assert load_settings(_write(tmp_path, "[model]\nengine = 'ort-fp32'\n"), {}).model.engine == "ort-fp32"


def test_cache_memory_entries_defaults_to_camels_cap_and_refuses_zero(tmp_path: Path) -> None:
    from camel.cache import DEFAULT_MAX_ENTRIES

    assert load_settings(None, env={}).model.cache_memory_entries == DEFAULT_MAX_ENTRIES
    assert (
        load_settings(_write(tmp_path, "[model]\ncache_memory_entries = 500\n"), {}).model.cache_memory_entries == 500
    )
    with pytest.raises(SettingsValueError, match="model.cache_memory_entries must be at least 1"):
        load_settings(_write(tmp_path, "[model]\ncache_memory_entries = 0\n"), {})
