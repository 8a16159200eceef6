"""The App Home tab: per task the live version, an accuracy-over-time chart, this week's new
labels and the most confused label pairs.

Slack image blocks need a URL Slack can fetch, so the chart PNG is uploaded as a private file
(files_upload_v2 without a channel) and shown through a `slack_file` image block. An upload is
reused until the task's adapter versions change.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from slack_sdk import WebClient

import storage
from bot import charts, texts
from bot.slack import blocks
from bot.slack import task_stats
from bot.slack.services import Services

Block = dict[str, Any]


def accuracy_chart(task: str, versions: list[storage.AdapterVersion]) -> bytes | None:
    """PNG of held-out accuracy and macro-F1 per adapter version over time; None without data."""
    points = [
        (datetime.fromisoformat(v.created_at), v.metrics or {}, v.version)
        for v in versions
        if isinstance((v.metrics or {}).get("accuracy"), (int, float))
    ]
    if not points:
        return None
    with charts.figure(6, 2.6) as (figure, axes):
        when: list[Any] = [p[0] for p in points]  # datetimes: matplotlib plots them, its stubs say floats
        axes.plot(when, [p[1]["accuracy"] for p in points], marker="o", label="accuracy")
        f1: list[Any] = [p[1].get("macro_f1") for p in points]
        if all(isinstance(x, (int, float)) for x in f1):
            axes.plot(when, f1, marker="s", linestyle="--", label="macro-F1")
        for moment, metrics, version in points:
            axes.annotate(
                f"v{version}",
                (moment, metrics["accuracy"]),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
            )
        axes.set_ylim(0, 1.05)
        axes.set_title(f"{task}: held-out accuracy by adapter version", fontsize=9)
        axes.legend(fontsize=7, loc="lower right")
        figure.autofmt_xdate()
        return charts.png_bytes(figure)


class HomeBuilder:
    def __init__(self) -> None:
        self._uploads: dict[str, tuple[tuple[Any, ...], str]] = {}
        self._lock = threading.Lock()

    def view(self, services: Services, client: WebClient) -> dict[str, Any]:
        sections = [self._task_section(services, client, task) for task in storage.tasks.list_tasks(services.db)]
        return blocks.home_view(sections)

    def _task_section(self, services: Services, client: WebClient, task: storage.Task) -> list[Block]:
        metrics = task_stats.active_metrics(services, task)
        live = services.predictors.version(task.name) or task.active_version
        channels = " ".join(f"<#{c}>" for c in task.channels) or "no channel yet"
        part: list[Block] = [
            blocks.section(
                f"*{task.name}* ({task.kind}) in {channels}\n"
                f"Live adapter: {texts.version_name(live)} - "
                f"new labels this week: {task_stats.labels_this_week(services, task.name)}"
            ),
            blocks.context(_confusions_text(task_stats.confused_pairs(metrics))),
        ]
        file_id = self._chart_file(client, task.name, storage.adapters.list_adapters(services.db, task.name))
        if file_id is not None:
            part.append(blocks.image_from_file(file_id, f"accuracy over time for {task.name}", "Accuracy over time"))
        return part

    def _chart_file(self, client: WebClient, task: str, versions: list[storage.AdapterVersion]) -> str | None:
        key = tuple((v.version, v.status, v.updated_at) for v in versions)
        with self._lock:
            cached = self._uploads.get(task)
            if cached is not None and cached[0] == key:
                return cached[1]
            png = accuracy_chart(task, versions)
            if png is None:
                return None
            upload = client.files_upload_v2(
                content=png, filename=f"{task}-accuracy.png", title=f"{task} accuracy over time"
            )
            file_id = str(upload["file"]["id"])
            self._uploads[task] = (key, file_id)
            return file_id


def _confusions_text(pairs: list[dict[str, Any]]) -> str:
    if not pairs:
        return "Most confused labels: none measured yet."
    shown = ", ".join(f"{p.get('true')} -> {p.get('predicted')} ({p.get('count')})" for p in pairs)
    return f"Most confused labels (true -> predicted): {shown}"
