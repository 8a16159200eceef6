"""Prometheus metrics of the Slack app, served as text on GET /metrics.

Each `BotMetrics` owns its own registry so several apps in one process (tests, the demo) never
collide on metric names and each /metrics shows only its own app.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlite_utils import Database

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Prediction latency on CPU runs from a few ms (tiny models) to a few hundred (long messages).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class BotMetrics:
    """The process's Prometheus counters (not `loop.gate.EvalMetrics`, a held-out evaluation)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.predictions = Counter("camel_predictions", "Predictions made", ["task"], registry=self.registry)
        self.abstentions = Counter(
            "camel_abstentions", "Predictions below the task's threshold", ["task"], registry=self.registry
        )
        self.corrections = Counter(
            "camel_corrections", "Corrections stored", ["task", "source"], registry=self.registry
        )
        self.memory_answers = Counter(
            "camel_memory_answers",
            "Answers given with the team's label for the same or a nearly identical text",
            ["task", "how"],
            registry=self.registry,
        )
        self.reloads = Counter("camel_reloads", "Adapter hot reloads", ["task", "result"], registry=self.registry)
        self.latency = Histogram(
            "camel_prediction_latency_seconds",
            "Time to classify one message",
            ["task"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # The event path: what was dropped, skipped, re-queued or rate limited, so losses and delays show.
        self.events_dropped = Counter(
            "camel_events_dropped", "Acknowledged events that could not be stored", ["reason"], registry=self.registry
        )
        self.events_handled = Counter(
            "camel_events_handled", "Inbox events finished, by outcome", ["kind", "outcome"], registry=self.registry
        )
        self.replies_skipped = Counter(
            "camel_replies_skipped", "Answers not posted, by reason", ["reason"], registry=self.registry
        )
        self.requeued = Counter(
            "camel_inbox_requeued", "Inbox events put back for later, by reason", ["reason"], registry=self.registry
        )

        self._watching_runs = False

    def count_prediction(self, task: str, latency_ms: float, abstained: bool) -> None:
        """One answered message: a model prediction or a day-one guess (always abstained)."""
        self.predictions.labels(task=task).inc()
        self.latency.labels(task=task).observe(latency_ms / 1000.0)
        if abstained:
            self.abstentions.labels(task=task).inc()

    def watch_runs(self, db: Database) -> None:
        """Count training runs by outcome from storage: they finish in a child process, and the
        stored runs survive restarts, so the database is the truthful source."""
        if not self._watching_runs:
            self.registry.register(StoredRunsCollector(db))
            self._watching_runs = True

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StoredRunsCollector:
    RUNS_PER_TASK = 100_000  # far beyond years of nightly runs; bounds a scrape's cost

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[CounterMetricFamily]:
        import storage  # only the app's process needs it; keeps this module importable alone

        family = CounterMetricFamily(
            "camel_training_runs", "Training runs finished, by outcome", labels=["task", "outcome"]
        )
        for task in storage.tasks.list_tasks(self.db):
            tally = Tally(
                run.outcome
                for run in storage.runs.list_runs(self.db, task.name, limit=self.RUNS_PER_TASK)
                if run.outcome
            )
            for outcome, count in sorted(tally.items()):
                family.add_metric([task.name, outcome], count)
        yield family
