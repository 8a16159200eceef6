"""The threads that work off the durable inbox, apart from Bolt's listener threads.

Bolt's listener threads only acknowledge and answer commands and clicks; event work (store,
predict, post) happens here, so an ack never waits behind it. A worker never sleeps while it
holds an event: a handler that cannot finish now (the reply's link is not stored yet, the
channel's posting turn has not come, Slack said 429) raises `NotYet` or gets a 429, and the
event goes back to the inbox with a not-before time. An idle worker waits for the wake-up set
by the inbox middleware (or a short poll, for events put back for later).

On start, events a dead process had claimed are released: a restart finishes what was
acknowledged but not done. An event older than `reply_max_age_s` is still handled (a
message is stored) but its answer is skipped and counted.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import storage
from bot.slack.listeners import ALL, EventHandler
from bot.slack.listeners._shared import Delivery, NotYet, workspace_in
from bot.slack.services import Services

log = logging.getLogger(__name__)
IDLE_POLL_S = 0.1  # how soon an event put back for later is looked at again when nothing wakes us
DEFAULT_RETRY_AFTER_S = 1.0


class InboxWorkers:
    def __init__(self, services: Services, client: WebClient) -> None:
        self.services = services
        self.client = client
        self.threads = services.settings.inbox_workers
        # Event type -> handler, from every listener module's declaration (a copy of its own).
        self.handlers: dict[str, EventHandler] = dict(ALL.events)
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        db = self.services.db
        released = storage.inbox.release_claims(db)
        storage.inbox.purge_done(db)
        pending = storage.inbox.count_unfinished(db)
        if pending:
            log.info("finishing events acknowledged before a restart", extra={"pending": pending, "released": released})
        for number in range(self.threads):
            worker = threading.Thread(target=self._run, name=f"camel-inbox-{number}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking events; an event being handled finishes (or stays in the inbox for the next start)."""
        self._stop.set()
        self.services.inbox_wakeup.set()
        for worker in self._workers:
            worker.join(timeout=timeout)
        self._workers = []

    def _run(self) -> None:
        wakeup = self.services.inbox_wakeup
        while not self._stop.is_set():
            try:
                item = storage.inbox.claim_next(self.services.db)
            except Exception as exc:  # a full disk or a locked database: try again shortly
                log.warning("could not take an event from the inbox", extra={"error": str(exc)})
                self._stop.wait(1.0)
                continue
            if item is None:
                wakeup.wait(IDLE_POLL_S)
                wakeup.clear()
                continue
            try:
                self.handle(item)
            except Exception:  # never lose the worker; the event is recorded as failed
                log.exception("inbox event failed", extra={"event_id": item.event_id, "kind": item.kind})
                self._finish_until_stored(item, "error")

    def handle(self, item: storage.InboxItem) -> None:
        """Run the event's handler once and record what became of it."""
        handler = self.handlers.get(item.kind)
        body: dict[str, Any] = json.loads(item.body) if item.body else {}
        event = body.get("event")
        if handler is None or not isinstance(event, dict):
            self._finish(item, "no_handler")
            return
        age_s = (datetime.now(timezone.utc) - datetime.fromisoformat(item.received_at)).total_seconds()
        delivery = Delivery(item.received_at, item.attempts, late=age_s > self.services.settings.reply_max_age_s)
        try:
            handler(self.services, event, workspace_in(body), self.client, delivery)
        except NotYet as not_yet:
            if not_yet.max_attempts is not None and item.attempts >= not_yet.max_attempts:
                self._finish(item, f"gave_up_{not_yet.reason}")
                return
            self.services.metrics.requeued.labels(reason=not_yet.reason).inc()
            storage.inbox.requeue(self.services.db, item.id, delay_s=not_yet.delay_s)
            return
        except SlackApiError as exc:
            if exc.response.status_code != 429:
                raise
            retry_after = _retry_after(exc)
            if item.channel:
                self.services.pacer.hold(item.channel, retry_after)
            self.services.metrics.requeued.labels(reason="rate_limited").inc()
            storage.inbox.requeue(self.services.db, item.id, delay_s=retry_after)
            return
        self._finish(item, "late" if delivery.late else "done")

    def _finish_until_stored(self, item: storage.InboxItem, outcome: str) -> None:
        """Record the outcome, retrying each second while the database cannot be written.

        The failure being recorded is often the one that stops this write too (a full disk): a
        worker thread that died of it would leave the event claimed and handled by nobody until
        a restart, so the worker waits here until the write goes through or the bot stops.
        """
        while True:
            try:
                self._finish(item, outcome)
                return
            except Exception as exc:
                log.warning("could not record an event's outcome", extra={"event_id": item.event_id, "error": str(exc)})
                if self._stop.wait(1.0):
                    return

    def _finish(self, item: storage.InboxItem, outcome: str) -> None:
        storage.inbox.finish(self.services.db, item.id, outcome)
        self.services.metrics.events_handled.labels(kind=item.kind, outcome=outcome).inc()


def _retry_after(exc: SlackApiError) -> float:
    value = (exc.response.headers or {}).get("Retry-After") or (exc.response.headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else DEFAULT_RETRY_AFTER_S
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S
