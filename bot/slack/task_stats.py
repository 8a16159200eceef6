"""Numbers about a task for /camel stats, /camel history and the App Home."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import camel
import storage
from bot import reading, texts
from bot.slack.services import Services


def active_metrics(services: Services, task: storage.Task) -> dict[str, Any]:
    """The held-out evaluation stored with the adapter now serving (empty before the first one)."""
    if task.active_version is None:
        return {}
    record = storage.adapters.get_adapter(services.db, task.name, task.active_version)
    return dict(record.metrics or {}) if record is not None else {}


def per_label_f1(metrics: dict[str, Any]) -> dict[str, float]:
    per_label = metrics.get("per_label") or {}
    return {
        label: float(scores["f1"]) for label, scores in per_label.items() if isinstance(scores, dict) and "f1" in scores
    }


def confused_pairs(metrics: dict[str, Any], top: int = 3) -> list[dict[str, Any]]:
    return list(metrics.get("confused_pairs") or [])[:top]


def next_run(services: Services, task: str) -> str:
    learning = services.learning
    when = learning.next_run_time(task) if learning is not None else None
    return when.strftime("%Y-%m-%d %H:%M %Z").strip() if when is not None else "not scheduled"


def last_run_line(services: Services, task: str) -> str:
    run = storage.runs.last_run(services.db, task)
    if run is None:
        return "never"
    outcome = run.outcome or "running"
    version = f", {texts.version_label(run.version)}" if run.version is not None else ""
    return f"#{run.id} {outcome}{version} ({run.started_at[:16].replace('T', ' ')}, {run.trigger})"


def task_stats(services: Services, task: storage.Task, channel: str | None = None) -> dict[str, Any]:
    """The numbers of /camel stats; `channel`: the one whose reading is shown (another's is not)."""
    db = services.db
    week, month = (storage.live.live_accuracy(db, task.name, days=d) for d in (7, 30))
    run = storage.runs.last_run(db, task.name)
    return {
        "version": services.predictors.version(task.name) or task.active_version,
        "corrections_total": storage.resolution.count_new_labels_since(db, task.name, None),
        "pending": storage.resolution.count_new_labels_since(db, task.name, run.started_at if run else None),
        "acc7": week.get("accuracy"),
        "n7": week.get("n", 0),
        "acc30": month.get("accuracy"),
        "n30": month.get("n", 0),
        "per_label_f1": per_label_f1(active_metrics(services, task)),
        "calibration": active_metrics(services, task).get("calibration"),
        "coverage": storage.review.coverage_by_version(db, task.name),
        "sources7": storage.memory.answers_by_source(
            db, task.name, since=storage.db.to_iso(datetime.now(timezone.utc) - timedelta(days=7))
        ),
        "last_run": last_run_line(services, task.name),
        "next_run": next_run(services, task.name),
        "reading": [reading_line(services, task, channel)] if channel else [],
    }


def reading_line(services: Services, task: storage.Task, channel: str) -> str:
    """The share of the channel's recent characters the base cannot represent, with advice above the alert."""
    alert = services.settings.model.unknown_chars_alert
    try:
        base = services.predictors.base()
    except camel.CamelError as exc:
        return f"Base model reading of this channel: unknown, the base model does not load ({exc})"
    found = reading.read_channel(services.db, base, task.name, channel)
    over = f" - above {alert:.0%}: {reading.advice(alert)}" if found.passes(alert) else f" (alert above {alert:.0%})"
    return f"Base model reading of this channel: {reading.summary(found)}{over}"


def labels_this_week(services: Services, task: str) -> int:
    return storage.resolution.count_new_labels_since(services.db, task, datetime.now(timezone.utc) - timedelta(days=7))


def _number(metrics: dict[str, Any], key: str) -> str:
    value = metrics.get(key)
    return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"


def base_of(version: storage.AdapterVersion) -> str:
    """The base model a version was trained on, as its folder records it (after a base change,
    versions of two bases are listed together)."""
    try:
        return camel.adapter_base(version.path).label()
    except camel.CamelError:
        return "unknown (folder removed)"


def version_row(version: storage.AdapterVersion) -> str:
    m = version.metrics or {}
    reason = f" - {version.reason}" if version.reason else ""
    interim = m.get("interim")
    if isinstance(interim, dict) and "parent" in interim:
        # A head refit between rounds (bot/loop/interim.py): say what it is a refit of.
        reason = f" - {texts.interim_note(int(interim['parent']), int(interim.get('n_train', 0)))}{reason}"
    return (
        f"{texts.version_label(version.version)} *{version.status}* macro-F1 {_number(m, 'macro_f1')}, "
        f"accuracy {_number(m, 'accuracy')}, base {base_of(version)} "
        f"({version.created_at[:16].replace('T', ' ')}){reason}"
    )
