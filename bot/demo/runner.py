"""Runs the demo: fake Slack, the real bot and learning loop, a team, rounds, and the report."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from sqlite_utils import Database

import storage
from bot import runtime
from bot.loop import LearningLoop
from bot.demo import sample_data
from bot.demo.data import DemoTask, demo_tasks
from bot.errors import DemoError, DemoStalledError
from bot.demo.monitor import Reload, ReloadMonitor
from bot.demo.report import Exchange, RoundResult, table_lines, transcript_lines, write_curve, write_html
from bot.demo.slack_events import SignedSender
from bot.demo.team import NewLabelShown, SentCorrection, Team
from bot.demo.local_slack import FakeSlackAPI
from bot.settings import DataPaths, LearningSettings, ModelSettings, Settings, TaskSettings, default_emoji_map

ROUND_TIMEOUT_S = 300.0
ROUNDS_IN_STREAM = {False: 4.0, True: 3.0}  # by --quick
MAX_BUSY_PACE_S = 2.0
QUICK_AFTER_RELOAD = 6  # --quick: messages the team still posts once every task has reloaded
DEFAULT_OUT = Path("demo-output")
# A kind of message none of the demo's labels fits; a reviewer creates a label for it from its menu.
NEW_LABEL = ("crypto_withdrawal", "sending cryptocurrency out of my account to another wallet")
NEW_LABEL_TEXTS = (
    "how do I send my bitcoin to an outside wallet?",
    "can I withdraw my crypto to my own wallet",
)


@dataclass(frozen=True)
class DemoOptions:
    out: Path | None = None  # keep the data dir here; default: a temp dir, report in ./demo-output
    data: Path | None = None
    text_col: str | None = None
    label_col: str | None = None
    quick: bool = False
    base_model: str = ""  # "" = the shipped all-MiniLM-L6-v2; tests pass a tiny BERT
    # The team slows down while a round trains, so rounds finish (and hot-reload) mid-conversation.
    # None: derived from how long the seed round took, so about ROUNDS_IN_STREAM rounds fit.
    busy_pace_s: float | None = None
    idle_pace_s: float = 0.02
    echo: Callable[[str], None] = print


@dataclass
class DemoResult:
    rounds: list[RoundResult]
    reloads: list[Reload]
    corrections: list[SentCorrection]
    exchanges: list[Exchange]
    out_dir: Path
    db_path: Path
    report: Path
    curve: Path
    seconds: float
    base_model: str = ""
    messages: int = 0
    summary: list[str] = field(default_factory=list)
    new_label: NewLabelShown | None = None  # the label created from a correction ("New label…")
    new_label_answer: str = ""  # the bot's answer to the next message of that kind


def demo_settings(data_dir: Path, api_url: str, tasks: list[DemoTask], base_model: str, quick: bool) -> Settings:
    """Embedded defaults: local everything, a generated signing secret, rounds after a few labels."""
    return Settings(
        data_dir=str(data_dir),
        slack_api_url=api_url,
        http_host="127.0.0.1",
        http_port=0,
        mode="http",
        admins=["U0ERIN"],
        corrections_per_hour=100_000,
        model=ModelSettings(base_model=base_model, training_threads=1),
        # With one or two held-out messages per label, one message flips a label's recall between
        # 0 and 1, so the demo's gate judges on macro-F1 alone (production keeps the 0.10 limit).
        learning=LearningSettings(
            threshold_new_labels=8 if quick else 15,
            debounce_s=0.05,
            reload_poll_s=0.5,
            gate_max_recall_drop=1.0,
            report_to_channel=False,
            schedule_cron="0 3 1 1 *",
        ),
        tasks=[
            TaskSettings(
                name=t.name,
                kind=t.kind,
                labels=t.labels,
                channels=[t.channel],
                abstain_threshold=0.3 if t.kind == "intent" else 0.45,
            )
            for t in tasks
        ],
        bot_token="xoxb-demo-" + secrets.token_hex(8),
        signing_secret=secrets.token_hex(16),
    )


def prepare_store(settings: Settings, tasks: list[DemoTask], seed_dir: Path) -> Database:
    """Tasks bound to their channels (as `serve` does), and a few labelled examples imported as the seed."""
    db = runtime.open_store(settings)
    for task in tasks:
        seed_file = sample_data.write_csv(task.seed, seed_dir / f"seed-{task.name}.csv")
        storage.transfer.import_labelled(db, seed_file, task=task.name)
    return db


def interleave(tasks: list[DemoTask]) -> list[tuple[DemoTask, str, str]]:
    """All tasks' streams mixed evenly, as several channels would be busy at once."""
    keyed = [
        ((i + 0.5) / len(t.stream), n, t, text, label)
        for n, t in enumerate(tasks)
        for i, (text, label) in enumerate(t.stream)
    ]
    return [(t, text, label) for _, _, t, text, label in sorted(keyed, key=lambda k: (k[0], k[1]))]


def wait_for_run(db: Database, task: str, run_id: int, timeout: float = ROUND_TIMEOUT_S) -> storage.TrainingRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = next((r for r in storage.runs.list_runs(db, task, limit=50) if r.id == run_id), None)
        if run is not None and run.finished_at is not None:
            return run
        time.sleep(0.2)
    raise DemoStalledError(f"training run {run_id} of {task} did not finish within {timeout:.0f}s")


def rounds_running(db: Database, tasks: list[DemoTask]) -> bool:
    return any(r.finished_at is None for t in tasks for r in storage.runs.list_runs(db, t.name, limit=3))


def wait_until_quiet(db: Database, tasks: list[DemoTask], settle_s: float) -> None:
    """Let threshold-triggered rounds that are already scheduled or running finish."""
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    time.sleep(settle_s)
    while rounds_running(db, tasks):
        if time.monotonic() > deadline:
            raise DemoStalledError(f"training rounds still running after {ROUND_TIMEOUT_S:.0f}s")
        time.sleep(0.2)


def busy_pace_for(round_s: float, messages: int, quick: bool) -> float:
    """Seconds between messages while a round trains, so rounds end while the team still talks."""
    return min(MAX_BUSY_PACE_S, ROUNDS_IN_STREAM[quick] * round_s / max(messages, 1))


def wait_until_serving(db: Database, monitor: ReloadMonitor, tasks: list[DemoTask]) -> None:
    """Each task's active adapter is the one serving, and it has been measured."""
    for task in tasks:
        record = storage.tasks.get_task(db, task.name)
        if record is not None and record.active_version is not None:
            monitor.wait_for_version(task.name, record.active_version, ROUND_TIMEOUT_S)


def train_rounds(
    loop: LearningLoop, db: Database, monitor: ReloadMonitor, tasks: list[DemoTask], echo: Callable[[str], None]
) -> None:
    """One manual round per task with new labels, side by side; waits for each promoted hot reload."""
    started = {}
    for task in tasks:
        last = storage.runs.last_run(db, task.name)
        since = datetime.fromisoformat(last.started_at) if last else None
        if storage.resolution.count_new_labels_since(db, task.name, since) > 0:
            started[task.name] = (monitor.version_count(task.name), loop.run_now(task.name, actor="demo"))
    for name, (before, run_id) in started.items():
        run = wait_for_run(db, name, run_id)
        if run.outcome == "promoted":
            monitor.wait_for_rounds(name, before + 1, ROUND_TIMEOUT_S)
        else:
            echo(f"  round for {name}: {run.outcome} ({run.error or 'not better on held-out than the one serving'})")


def resolve_out(options: DemoOptions) -> tuple[Path, Path, Path | None]:
    """(report folder, data dir, temp dir to delete at the end)."""
    if options.out is None:
        temp = Path(tempfile.mkdtemp(prefix="camel-demo-"))
        return DEFAULT_OUT, temp / "data", temp
    data_dir = options.out / "data"
    if Path(DataPaths(str(data_dir)).db).exists():
        raise DemoError(f"{data_dir} already holds a demo database; pick another --out (nothing was changed)")
    return options.out, data_dir, None


def run_demo(options: DemoOptions) -> DemoResult:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything the demo loads is on this disk
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    tasks = demo_tasks(options.data, options.text_col, options.label_col, options.quick)
    out, data_dir, temp = resolve_out(options)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with FakeSlackAPI() as fake:
            return _run(options, tasks, out, data_dir, fake)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def _run(options: DemoOptions, tasks: list[DemoTask], out: Path, data_dir: Path, fake: FakeSlackAPI) -> DemoResult:
    echo, started = options.echo, time.monotonic()
    settings = demo_settings(data_dir, fake.url, tasks, options.base_model, options.quick)
    db = prepare_store(settings, tasks, out)
    echo(f"camel-bot demo: {', '.join(f'{t.name} ({len(t.labels)} labels)' for t in tasks)}; data in {data_dir}")
    # The bot as `camel-bot serve` runs it, on localhost.
    with runtime.start(settings, db=db) as bot:
        assert bot.loop is not None
        sender = SignedSender(bot.events_url, settings.signing_secret, fake.url + "response_url")
        team = Team(sender, fake, {t.name: default_emoji_map(t.kind, t.labels) for t in tasks})
        monitor = ReloadMonitor(
            db, bot.predictors, tasks, traffic=lambda: (team.talking, team.posted), echo=echo
        ).start()
        try:
            echo(f"round 1: training on the seed ({sum(len(t.seed) for t in tasks)} imported labels)")
            seed_started = time.monotonic()
            train_rounds(bot.loop, db, monitor, tasks, echo)
            converse(options, settings, db, team, monitor, tasks, round_s=time.monotonic() - seed_started)
            wait_until_quiet(db, tasks, settings.learning.debounce_s + 1.0)
            wait_until_serving(db, monitor, tasks)
            echo("last round: the labels that arrived after the previous one")
            train_rounds(bot.loop, db, monitor, tasks, echo)
            wait_until_serving(db, monitor, tasks)
            shown, answer = show_new_label(team, tasks, echo)
        finally:
            monitor.stop()
    result = _finish(options, monitor, team, out, Path(settings.db_path), time.monotonic() - started)
    result.new_label, result.new_label_answer = shown, answer
    return result


def show_new_label(team: Team, tasks: list[DemoTask], echo: Callable[[str], None]) -> tuple[NewLabelShown | None, str]:
    """A reviewer creates a label while correcting ("New label…" and its modal), and the next
    message of that kind is answered by the same adapter, now knowing the label (no round)."""
    intent = next((t for t in tasks if t.kind == "intent"), None)
    if intent is None:
        return None, ""
    name, description = NEW_LABEL
    shown = team.create_label(intent, "U0ERIN", NEW_LABEL_TEXTS[0], name, description)
    echo(
        f'new label: U0ERIN answered "{shown.text}" (the bot said: {shown.answer_before}) with New label…, '
        f"creating `{name}` ({description})"
    )
    ts = team.sender.message(channel=intent.channel, user="U0BRUNO", text=NEW_LABEL_TEXTS[1])
    answer = team.wait_for_answer(intent.channel, ts)
    echo(f'the next such message, "{NEW_LABEL_TEXTS[1]}", before any round: {answer.text}')
    return shown, answer.text


def converse(
    options: DemoOptions,
    settings: Settings,
    db: Database,
    team: Team,
    monitor: ReloadMonitor,
    tasks: list[DemoTask],
    round_s: float,
) -> None:
    """The team posts the stream; threshold rounds train and hot-reload meanwhile.

    With --quick the team stops once every task has hot-reloaded a new adapter mid-conversation.
    """
    stream = interleave(tasks)
    busy_pace = options.busy_pace_s or busy_pace_for(round_s, len(stream), options.quick)
    options.echo(
        f"the team posts {len(stream)} messages and corrects the bot; rounds start every "
        f"{settings.learning.threshold_new_labels} new labels"
    )
    team.talking = True
    try:
        left = len(stream)
        for task, text, truth in stream:
            team.say(task, text, truth)
            if options.quick and monitor.reloaded_while_talking() >= {t.name for t in tasks}:
                left = min(left, QUICK_AFTER_RELOAD)  # a few answers from the new adapters, then stop
            left -= 1
            if left <= 0:
                return
            time.sleep(busy_pace if rounds_running(db, tasks) else options.idle_pace_s)
    finally:
        team.talking = False


def _finish(
    options: DemoOptions, monitor: ReloadMonitor, team: Team, out: Path, db_path: Path, seconds: float
) -> DemoResult:
    echo = options.echo
    curve = write_curve(monitor.results, out / "learning-curve.png")
    sources = Counter(c.source for c in team.corrections)
    during = [r for r in monitor.reloads if r.during_traffic]
    summary = [
        f"{team.posted} messages posted, {len(team.corrections)} corrections sent "
        f"({', '.join(f'{n} {s}' for s, n in sorted(sources.items()))})",
        f"{len(monitor.reloads)} adapters hot-reloaded, {len(during)} of them while messages were arriving",
        f"finished in {seconds:.0f} s",
    ]
    exchanges = pick_exchanges(team.exchanges)
    report = write_html(monitor.results, exchanges, curve, out / "demo-report.html", summary)
    for line in [
        "",
        "A few exchanges:",
        *transcript_lines(exchanges),
        "",
        "Held-out accuracy per round:",
        *table_lines(monitor.results),
        "",
        *summary,
        f"report: {report}",
        f"learning curve: {curve}",
    ]:
        echo(line)
    return DemoResult(
        monitor.results,
        monitor.reloads,
        team.corrections,
        team.exchanges,
        out,
        db_path,
        report,
        curve,
        seconds,
        options.base_model,
        team.posted,
        summary,
    )


def pick_exchanges(exchanges: list[Exchange], per_task: int = 3) -> list[Exchange]:
    """The first correction of each kind for each task: a menu fix, an emoji, a confirmation."""
    picked: list[Exchange] = []
    for task in dict.fromkeys(ex.task for ex in exchanges):
        kinds: set[str] = set()
        for ex in exchanges:
            if ex.task == task and ex.kind not in kinds and len(kinds) < per_task:
                kinds.add(ex.kind)
                picked.append(ex)
    return picked
