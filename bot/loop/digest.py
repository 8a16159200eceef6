"""The daily digest for admins (per task `digest`, off by default: it posts in the channel every day).

For each channel of a task that has it: the label pairs the bot confused most this week (its
prediction vs what people labelled), the disputed messages of THAT channel, and the coverage
(share answered) and precision of the answered ones per version, as text and a chart. It is
posted in the task's own channels, so no channel's messages are shown anywhere else. It leaves
as a neutral `bot.reports.Digest` through the loop's `Publisher`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlite_utils import Database

import storage
from bot import charts, reports, texts
from bot.loop.publisher import Publisher
from bot.settings import Settings

log = logging.getLogger(__name__)
DIGEST_CRON = "0 9 * * *"  # every morning at 9 in the learning timezone
TOP_PAIRS = 5
TOP_DISPUTES = 5


def trend_chart(task: str, rows: list[dict[str, Any]]) -> bytes:
    """Coverage and precision of the answered ones per version, as a PNG."""
    with charts.figure(6.0, 3.0) as (fig, axes):
        versions = [texts.version_label(r["version"]) for r in rows]
        for key, name in (("coverage", "answered"), ("precision", "precision of the answered")):
            values = [r[key] if r[key] is not None else float("nan") for r in rows]
            axes.plot(versions, values, marker="o", label=name)
        axes.set_ylim(0.0, 1.05)
        axes.set_title(f"{task}: coverage and precision per version")
        axes.legend(loc="lower right")
        return charts.png_bytes(fig)


def digest_text(
    task: str, pairs: list[dict[str, Any]], disputes: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> str:
    lines = [f":newspaper: *{task}* daily digest for admins"]
    if pairs:
        lines.append("Most confused this week (labelled -> my answer):")
        lines += [f"- `{p['true']}` -> `{p['predicted']}`: {p['count']}" for p in pairs[:TOP_PAIRS]]
    else:
        lines.append("No confusions among this week's labelled messages.")
    if disputes:
        lines.append(f"Disputed messages here ({len(disputes)}):")
        for d in disputes[:TOP_DISPUTES]:
            votes = ", ".join(f"{label} {weight:g}" for label, weight in sorted(d["votes"].items()))
            excerpt = d["text"][:80] + ("..." if len(d["text"]) > 80 else "")
            lines.append(f'- "{excerpt}" ({votes or "no votes"}; {d["rejections"]} rejection(s))')
    else:
        lines.append("No disputed messages here.")
    lines += [texts.coverage_line(r) for r in rows[-3:]]
    return "\n".join(lines)


def digest_pass(db: Database, settings: Settings, publisher: Publisher) -> list[str]:
    """Post the digest in every channel of every task that has `digest` on; returns the channels."""
    since = datetime.now(timezone.utc) - timedelta(days=7)
    posted: list[str] = []
    for configured in settings.tasks:
        task = storage.tasks.get_task(db, configured.name) if configured.digest else None
        if task is None:
            continue
        pairs = storage.review.confused_pairs_since(db, task.name, since)
        rows = storage.review.coverage_by_version(db, task.name)
        for channel in task.channels:
            text = digest_text(task.name, pairs, storage.review.disputed_in_channel(db, task.name, channel), rows)
            try:
                chart = None
                if rows:
                    png = trend_chart(task.name, rows)
                    chart = reports.Chart(png, f"{task.name}-digest.png", f"{task.name}: trend")
                publisher.publish(channel, reports.Digest(text, chart))
            except Exception:  # Slack being down must not stop the other channels' digests
                log.exception("could not post the digest of %s in %s", task.name, channel)
                continue
            posted.append(channel)
    return posted
