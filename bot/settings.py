"""Settings: a TOML file, then `CAMEL_BOT_<FIELD>` environment variables for top-level scalars.

This is the one place where the environment is read. Secrets (the bot token, signing secret
and app token) come only from the environment or a `secrets_file`, never from the main TOML,
and `repr()` never shows them.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

# The errors live in bot.errors; callers that know them from here keep finding them.
from bot.errors import MissingSecretError, SettingsError, SettingsFileError, SettingsValueError  # noqa: F401

DEFAULT_CONFIG_NAME = "camel-bot.toml"
MAX_RETENTION_DAYS = 36_500  # storage refuses more (a typo, and datetime would overflow)
ENV_PREFIX = "CAMEL_BOT_"
SECRET_KEYS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")
CONFIRM = "__confirm__"
REJECT = "__reject__"
TASK_KINDS = ("intent", "sentiment", "other")
SENTIMENT_EMOJI = {"smile": "positive", "neutral_face": "neutral", "angry": "negative"}
VERDICT_EMOJI = {"white_check_mark": CONFIRM, "x": REJECT}
MAX_DESCRIPTION_CHARS = 200  # storage.tasks.MAX_DESCRIPTION_CHARS: what fits on one line


NEW_LABEL_POLICIES = ("admins", "members", "propose")


@dataclass(frozen=True)
class TaskSettings:
    name: str
    kind: str = "other"
    labels: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    abstain_threshold: float = 0.5
    quiet: bool = False
    emoji: dict[str, str] = field(default_factory=dict)
    # In a channel shared with another organisation (Slack Connect), store and answer the
    # messages of that organisation's users too; off by default (their data, not ours).
    external_users: bool = False
    # The precision the calibrated threshold aims for (abstain_threshold is its floor).
    target_precision: float = 0.9
    # The label meaning "none of my labels" ("" = none; one set with /camel setup is kept).
    out_of_scope_label: str = ""
    # Questions the bot may ask in threads per channel per day about the most useful messages (0 = off).
    ask_per_day: int = 0
    # A daily digest for admins in the task's channels (confusions, disputes, coverage trend).
    digest: bool = False
    # label -> one line the base model reads with the label's name (zero-shot guesses, first round)
    descriptions: dict[str, str] = field(default_factory=dict)
    # Who may create a label from Slack ("New label…" in a correction menu): "admins", "members",
    # or "propose" (a member's label waits for an admin's Approve in a direct message).
    new_labels: str = "propose"

    def emoji_map(self) -> dict[str, str]:
        """Emoji name -> label (or CONFIRM/REJECT), the defaults overlaid with the configured ones."""
        return emoji_map(self.kind, self.labels, self.emoji)


def emoji_map(kind: str, labels: list[str], configured: dict[str, str] | None = None) -> dict[str, str]:
    """The one place where a task's configured emoji are overlaid on the defaults of its kind.

    Storage keeps only the configured emoji; readers overlay at use, so a task created outside
    the settings (or whose labels grew) still gets the defaults that fit it now.
    """
    return {**default_emoji_map(kind, labels), **(configured or {})}


def default_emoji_map(kind: str, labels: list[str]) -> dict[str, str]:
    """A check mark confirms, a cross rejects; sentiment tasks also get the usual faces."""
    defaults = dict(VERDICT_EMOJI)
    if kind == "sentiment":
        defaults.update({e: label for e, label in SENTIMENT_EMOJI.items() if label in labels})
    return defaults


@dataclass(frozen=True)
class ModelSettings:
    base_model: str = ""
    trainable_layers: int = 2  # camel.CamelConfig().trainable_layers: blocks tuned from a probe start
    training_threads: int = 1
    # Passed to every training round; equal to camel.TrainingArgs' default (a test keeps them equal).
    max_epochs: int = 8
    # Before a task's first trained adapter, guess its top 3 from label names and descriptions.
    zero_shot: bool = True
    # Rounds are forked from a process that has loaded torch and the base (no start-up per round);
    # false: each round is a fresh `python -m bot.loop.round`.
    warm_worker: bool = True
    # What runs the frozen bottom: "auto" (the fastest that keeps the answers on this CPU, see
    # camel.engines) or one of ENGINE_NAMES; an engine that fails its start-up check gives way to torch-fp32.
    engine: str = "auto"
    # Share of a channel's characters the base's tokenizer cannot represent above which admins
    # are told the base does not read that channel (README: Teams writing other languages).
    unknown_chars_alert: float = 0.10
    # Bottom states a serving process keeps in memory per base (about 15 KB each for MiniLM at
    # 20 tokens); least recently used go first and are read back from the cache folder.
    cache_memory_entries: int = 50_000  # camel.cache.DEFAULT_MAX_ENTRIES (a test keeps them equal)


# camel.engines.ENGINES (settings must not import torch; a test keeps them equal)
ENGINE_NAMES = ("torch-fp32", "torch-bf16", "ort-fp32")


@dataclass(frozen=True)
class LearningSettings:
    schedule_cron: str = "0 3 * * *"
    timezone: str = "UTC"
    threshold_new_labels: int = 25
    debounce_s: float = 30.0
    misfire_grace_s: int = 3600
    gate_macro_f1_epsilon: float = 0.01
    gate_max_recall_drop: float = 0.10
    gate_min_label_support: int = 10
    heldout_fraction: float = 0.2
    report_to_channel: bool = True
    reload_poll_s: float = 2.0
    # Between rounds, right after a correction: refit the serving head on every label and serve
    # it once the gate passes it (an interim version, bot/loop/interim.py); the round follows.
    interim: bool = True


@dataclass(frozen=True)
class RetentionSettings:
    """What the nightly retention job keeps; the defaults keep everything learning uses."""

    cache_max_bytes: int = 2_000_000_000  # feature cache cap; least recently used states go first
    unlabelled_text_days: float = 180.0  # text of messages nobody labelled is erased after this
    prediction_days: float = 90.0  # stored predictions (no text) older than this are deleted
    run_log_days: float = 90.0  # runs/run-NNNNNN.json and .log files older than this are deleted
    keep_versions: int = 5  # adapter versions kept beyond the active one and its parent
    schedule_cron: str = "30 4 * * *"  # when the job runs (after the nightly training round)


@dataclass(frozen=True)
class DataPaths:
    """Every file and folder of the bot under `data_dir`: the one place their names are made."""

    root: str

    def _under(self, name: str) -> str:
        return str(Path(self.root) / name)

    @property
    def db(self) -> str:
        return self._under("camel.db")

    @property
    def scheduler_db(self) -> str:
        return self._under("scheduler.db")

    @property
    def adapters(self) -> str:
        return self._under("adapters")

    @property
    def feature_cache(self) -> str:
        return self._under("feature_cache")

    @property
    def engines(self) -> str:
        """ONNX exports of the frozen bottom, one per base and split layer (camel.engines)."""
        return self._under("engines")

    @property
    def runs(self) -> str:
        """Round summaries and logs (run-NNNNNN.json / .log)."""
        return self._under("runs")

    @property
    def locks(self) -> str:
        """Per-task training locks (<task>.lock)."""
        return self._under("locks")


@dataclass(frozen=True)
class Settings:
    data_dir: str = "camel-data"
    slack_api_url: str = "https://slack.com/api/"
    http_port: int = 3000
    http_host: str = "0.0.0.0"
    mode: str = "http"
    admins: list[str] = field(default_factory=list)
    admin_usergroup: str = ""
    admin_weight: float = 2.0
    # The team's memory answers a nearly identical text (punctuation, a typo) with the label people
    # gave a labelled one from this character n-gram similarity up (chosen on BANKING77 so these
    # answers are >= 98% right: bench/results/memory.md); 1.0 answers only texts that fold equal.
    memory_near_similarity: float = 0.87
    corrections_per_hour: int = 60
    process_edits: bool = False
    # Replies in threads are usually conversation about a message ("thanks!"), not new requests.
    classify_thread_replies: bool = False
    max_predict_chars: int = 2000
    # HTTP mode: request bodies above this are refused with 413 before they are read.
    max_body_bytes: int = 1_000_000
    http_threads: int = 16
    # Threads that take events from the durable inbox (separate from Bolt's listener threads).
    inbox_workers: int = 16
    # The inbox insert before Slack's 200 is synced to disk (FULL) so it survives power loss;
    # "NORMAL" survives a killed process only (bench.system.load --inbox-synchronous compares them).
    inbox_synchronous: str = "FULL"
    # An answer that could not be posted within this many seconds of the event is skipped (and counted).
    reply_max_age_s: float = 600.0
    # Slack allows about one chat.postMessage per second per channel; a short burst is let through.
    channel_posts_per_s: float = 1.0
    channel_burst: int = 3
    token_verification_enabled: bool = True
    secrets_file: str = ""
    model: ModelSettings = field(default_factory=ModelSettings)
    learning: LearningSettings = field(default_factory=LearningSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    tasks: list[TaskSettings] = field(default_factory=list)
    bot_token: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.data_dir)

    @property
    def db_path(self) -> str:
        return self.paths.db

    @property
    def scheduler_db_path(self) -> str:
        return self.paths.scheduler_db

    @property
    def adapters_dir(self) -> str:
        return self.paths.adapters

    @property
    def feature_cache_dir(self) -> str:
        return self.paths.feature_cache

    def task(self, name: str) -> TaskSettings | None:
        return next((t for t in self.tasks if t.name == name), None)

    def require_secrets(self) -> None:
        """Fail with one line naming the first secret the chosen mode needs but lacks."""
        needed = [("SLACK_BOT_TOKEN", self.bot_token)]
        needed.append(
            ("SLACK_APP_TOKEN", self.app_token)
            if self.mode == "socket"
            else ("SLACK_SIGNING_SECRET", self.signing_secret)
        )
        for name, value in needed:
            if not value:
                raise MissingSecretError(f"{name} is not set (environment or secrets_file)")
        if self.mode == "socket" and not self.app_token.startswith("xapp-"):
            raise MissingSecretError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")


def _validate(s: Settings) -> None:
    checks = [
        (s.mode in ("http", "socket"), "mode must be 'http' or 'socket'"),
        (0 <= s.http_port <= 65535, "http_port must be between 0 and 65535"),
        (s.corrections_per_hour >= 1, "corrections_per_hour must be at least 1"),
        (s.max_predict_chars >= 1, "max_predict_chars must be at least 1"),
        (s.max_body_bytes >= 1024, "max_body_bytes must be at least 1024"),
        (s.http_threads >= 1, "http_threads must be at least 1"),
        (s.inbox_workers >= 1, "inbox_workers must be at least 1"),
        (s.inbox_synchronous in ("FULL", "NORMAL"), "inbox_synchronous must be 'FULL' or 'NORMAL'"),
        (s.reply_max_age_s > 0, "reply_max_age_s must be positive"),
        (s.channel_posts_per_s > 0, "channel_posts_per_s must be positive"),
        (s.channel_burst >= 1, "channel_burst must be at least 1"),
        (s.admin_weight > 0, "admin_weight must be positive"),
        (0 < s.memory_near_similarity <= 1, "memory_near_similarity must be above 0 and at most 1"),
        (s.slack_api_url.startswith(("http://", "https://")), "slack_api_url must be an http(s) URL"),
        (0 < s.learning.heldout_fraction < 1, "learning.heldout_fraction must be between 0 and 1"),
        (s.learning.threshold_new_labels >= 1, "learning.threshold_new_labels must be at least 1"),
        (s.learning.gate_min_label_support >= 1, "learning.gate_min_label_support must be at least 1"),
        (s.model.trainable_layers >= 0, "model.trainable_layers must be 0 or more"),
        (s.model.training_threads >= 1, "model.training_threads must be at least 1"),
        (s.model.max_epochs >= 1, "model.max_epochs must be at least 1"),
        (
            s.model.engine in ("auto", *ENGINE_NAMES),
            f"model.engine must be auto or one of {', '.join(ENGINE_NAMES)}, got {s.model.engine!r}",
        ),
        (0.0 <= s.model.unknown_chars_alert <= 1.0, "model.unknown_chars_alert must be between 0 and 1"),
        (s.model.cache_memory_entries >= 1, "model.cache_memory_entries must be at least 1"),
        (s.retention.cache_max_bytes >= 0, "retention.cache_max_bytes must be 0 or more"),
        (s.retention.keep_versions >= 0, "retention.keep_versions must be 0 or more"),
        *[
            (
                math.isfinite(days) and 0 <= days <= MAX_RETENTION_DAYS,
                f"retention.{name} must be 0 to {MAX_RETENTION_DAYS}",
            )
            for name, days in (
                ("unlabelled_text_days", s.retention.unlabelled_text_days),
                ("prediction_days", s.retention.prediction_days),
                ("run_log_days", s.retention.run_log_days),
            )
        ],
    ]
    for ok, message in checks:
        if not ok:
            raise SettingsValueError(message)
    seen: set[str] = set()
    for task in s.tasks:
        _validate_task(task, seen)


def _validate_task(task: TaskSettings, seen: set[str]) -> None:
    where = f"tasks[{task.name!r}]"
    if not task.name or task.name in seen:
        raise SettingsValueError(f"{where}: task names must be unique and non-empty")
    seen.add(task.name)
    if task.kind not in TASK_KINDS:
        raise SettingsValueError(f"{where}.kind must be one of {', '.join(TASK_KINDS)}")
    if len(task.labels) < 2 or len(set(task.labels)) != len(task.labels):
        raise SettingsValueError(f"{where}.labels must list at least two distinct labels")
    if not 0.0 <= task.abstain_threshold <= 1.0:
        raise SettingsValueError(f"{where}.abstain_threshold must be between 0 and 1")
    if not 0.0 < task.target_precision <= 1.0:
        raise SettingsValueError(f"{where}.target_precision must be above 0 and at most 1")
    if task.out_of_scope_label and task.out_of_scope_label not in task.labels:
        raise SettingsValueError(f"{where}.out_of_scope_label must be one of the task's labels")
    if task.ask_per_day < 0:
        raise SettingsValueError(f"{where}.ask_per_day must be 0 (off) or more")
    if task.new_labels not in NEW_LABEL_POLICIES:
        raise SettingsValueError(f"{where}.new_labels must be one of {', '.join(NEW_LABEL_POLICIES)}")
    for emoji, label in task.emoji.items():
        if label not in task.labels and label not in (CONFIRM, REJECT):
            raise SettingsValueError(f"{where}.emoji.{emoji} maps to unknown label {label!r}")
    for label, text in task.descriptions.items():
        if label not in task.labels:
            raise SettingsValueError(f"{where}.descriptions.{label}: {label!r} is not one of the task's labels")
        line = " ".join(text.split())
        if not line or len(line) > MAX_DESCRIPTION_CHARS:
            raise SettingsValueError(
                f"{where}.descriptions.{label} must be one line of 1 to {MAX_DESCRIPTION_CHARS} characters"
            )


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Build a settings dataclass from a TOML table, checking names and types."""
    if not isinstance(data, Mapping):
        raise SettingsValueError(f"{where.rstrip('.') or 'settings'} must be a table, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known or key in ("bot_token", "signing_secret", "app_token"):
            raise SettingsValueError(f"unknown setting {where}{key}")
        kwargs[key] = _coerce(known[key], value, f"{where}{key}")
    return cls(**kwargs)


def _coerce(f: Any, value: Any, name: str) -> Any:
    expected = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if expected == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    simple = {"str": str, "int": int, "bool": bool, "float": float}
    if expected in simple:
        ok = isinstance(value, simple[expected]) and not (expected == "int" and isinstance(value, bool))
    elif expected.startswith("list[str]"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif expected.startswith("dict[str, str]"):
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    else:
        ok = True
    if not ok:
        raise SettingsValueError(f"{name} must be of type {expected}, got {value!r}")
    return value


def _env_value(name: str, raw: str, expected: str) -> Any:
    try:
        if expected == "int":
            return int(raw)
        if expected == "float":
            return float(raw)
    except ValueError:
        raise SettingsValueError(f"{ENV_PREFIX}{name.upper()} must be a number, got {raw!r}") from None
    if expected == "bool":
        if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise SettingsValueError(f"{ENV_PREFIX}{name.upper()} must be true or false, got {raw!r}")
        return raw.lower() in ("1", "true", "yes", "on")
    if expected.startswith("list[str]"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _read_toml(path: str, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsFileError(f"{what} not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsFileError(f"{what} {path} is not valid TOML: {exc}") from None


def _config_path(toml_path: str | None, env: Mapping[str, str]) -> str | None:
    if toml_path:
        return toml_path
    if env.get("CAMEL_BOT_CONFIG"):
        return env["CAMEL_BOT_CONFIG"]
    return DEFAULT_CONFIG_NAME if Path(DEFAULT_CONFIG_NAME).is_file() else None


def load_settings(toml_path: str | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Read the TOML file (if any), apply environment overrides, attach secrets, validate."""
    path = _config_path(toml_path, env)
    data = _read_toml(path, "settings file") if path else {}
    model = _build(ModelSettings, data.pop("model", {}), "model.")
    learning = _build(LearningSettings, data.pop("learning", {}), "learning.")
    retention = _build(RetentionSettings, data.pop("retention", {}), "retention.")
    tasks_data = data.pop("tasks", [])
    if not isinstance(tasks_data, list):
        raise SettingsValueError("tasks must be an array of tables ([[tasks]])")
    tasks = [_build(TaskSettings, t, f"tasks[{i}].") for i, t in enumerate(tasks_data)]
    scalars = {
        f.name: f
        for f in fields(Settings)
        if f.name not in ("model", "learning", "retention", "tasks", "bot_token", "signing_secret", "app_token")
    }
    for name, f in scalars.items():
        raw = env.get(f"{ENV_PREFIX}{name.upper()}")
        if raw:  # an empty variable means "not set", as in docker env files
            data[name] = _env_value(name, raw, f.type if isinstance(f.type, str) else str(f.type))
    secrets = _secrets(str(data.get("secrets_file", "")), env)
    base = _build(Settings, data, "")
    return Settings(
        **{**_as_kwargs(base), "model": model, "learning": learning, "retention": retention, "tasks": tasks, **secrets}
    )


def _as_kwargs(s: Settings) -> dict[str, Any]:
    return {f.name: getattr(s, f.name) for f in fields(s)}


def _secrets(secrets_file: str, env: Mapping[str, str]) -> dict[str, str]:
    from_file: dict[str, Any] = _read_toml(secrets_file, "secrets_file") if secrets_file else {}
    unknown = set(from_file) - set(SECRET_KEYS)
    if unknown:
        raise SettingsValueError(f"unknown key in secrets_file: {sorted(unknown)[0]}")
    values = {key: str(env.get(key) or from_file.get(key) or "") for key in SECRET_KEYS}
    return {
        "bot_token": values["SLACK_BOT_TOKEN"],
        "signing_secret": values["SLACK_SIGNING_SECRET"],
        "app_token": values["SLACK_APP_TOKEN"],
    }
