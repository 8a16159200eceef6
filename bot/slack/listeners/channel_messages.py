"""New messages in bound channels: store, classify, answer in the thread (or react, in quiet mode)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import camel
import storage
from bot import texts
from bot.slack import blocks
from bot.slack.listeners._shared import ack_now, emoji_for_label, services_of, stop_on_dead_token, workspace_of
from bot.slack.middleware import BROADCAST_SUBTYPE, DELETED_SUBTYPE, EDIT_SUBTYPE, stopped
from bot.slack.services import Services

log = logging.getLogger(__name__)


EVENTS = ("message",)


def register(app: App) -> None:
    app.event("message")(ack=ack_now, lazy=[classify_message])


def classify_message(event: dict[str, Any], body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """The Bolt listener: hands the event to `handle_message_event`."""
    handle_message_event(services_of(context), event, workspace_of(body, context), client)


def handle_message_event(services: Services, event: dict[str, Any], workspace: str, client: WebClient) -> None:
    """What a message event means: a new message, an edit (message_changed) or a deletion.

    Takes only what it needs (not Bolt's request), so that whoever delivers the event, a Bolt
    listener or a worker, calls the same code.
    """
    if stopped(services, workspace):
        return
    subtype = event.get("subtype")
    try:
        if subtype == DELETED_SUBTYPE:
            forget_deleted(services, event, workspace)
        elif subtype == EDIT_SUBTYPE:
            apply_edit(services, client, event, workspace)
        else:
            handle_new(services, client, event, str(event.get("channel", "")), workspace)
    except SlackApiError as exc:
        if not stop_on_dead_token(services, workspace, exc):
            raise


def handle_new(services: Services, client: WebClient, message: dict[str, Any], channel: str, workspace: str) -> None:
    """Store, classify and answer one message of a bound channel."""
    task = storage.task_for_channel(services.db, channel)
    text = storage.storable_text(message.get("text") or "")
    if task is None or not text.strip() or storage.channel_pause(services.db, channel) is not None:
        return
    if _is_thread_reply(message) and not services.settings.classify_thread_replies:
        return
    found = storage.find_message(services.db, workspace=workspace, channel=channel, ts=message["ts"])
    if found is not None and found.deleted_at is not None:
        return  # deleted in Slack before this (late) delivery: it stays deleted
    message_id = storage.record_message(
        services.db,
        workspace=workspace,
        channel=channel,
        ts=message["ts"],
        text=text,
        user=message.get("user"),
        thread_ts=message.get("thread_ts"),
    )
    _classify(services, client, task, message_id, channel, message, text)


def _classify(
    services: Services,
    client: WebClient,
    task: storage.Task,
    message_id: int,
    channel: str,
    message: dict[str, Any],
    text: str,
) -> None:
    thread = message.get("thread_ts") or message["ts"]
    predictor = services.predictors.get(task.name)
    if predictor is None:
        if not task.quiet:
            client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=texts.needs_label_text(task.name),
                blocks=blocks.menu_blocks(message_id, task.name, task.labels, texts.needs_label_text(task.name)),
            )
        return
    answer(services, client, task, predictor, message_id, channel, message["ts"], thread, text)


def apply_edit(services: Services, client: WebClient, event: dict[str, Any], workspace: str) -> None:
    """An edited message: its stored text is always replaced (a redaction must not leave the old
    text trainable); it is classified again only when `process_edits` is on."""
    channel = str(event.get("channel", ""))
    # Slack's published message_changed payloads name the original ts inside `message` or,
    # failing that, in `previous_message`.
    edited = dict(event.get("message") or {})
    edited.setdefault("ts", (event.get("previous_message") or {}).get("ts"))
    if not edited.get("ts"):
        return
    text = storage.storable_text(edited.get("text") or "")
    stored = storage.find_message(services.db, workspace=workspace, channel=channel, ts=str(edited["ts"]))
    if stored is None:
        if services.settings.process_edits:
            handle_new(services, client, edited, channel, workspace)
        return
    if stored.deleted_at is not None or stored.text == text:
        return  # deleted, or a change that is not an edit of the text (an unfurl, a new thread reply)
    storage.update_message_text(
        services.db,
        workspace=workspace,
        channel=channel,
        ts=stored.ts,
        text=text,
        prefix_lengths=[services.settings.max_predict_chars],
    )
    task = storage.task_for_channel(services.db, channel)
    if (
        services.settings.process_edits
        and task is not None
        and text.strip()
        and storage.channel_pause(services.db, channel) is None
    ):
        _classify(services, client, task, stored.id, channel, edited, text)


def forget_deleted(services: Services, event: dict[str, Any], workspace: str) -> None:
    """A message deleted in Slack: its text and its corrections leave the store (an audit row stays)."""
    ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
    if not ts:
        return
    forgotten = storage.forget_message(
        services.db,
        workspace=workspace,
        channel=str(event.get("channel", "")),
        ts=str(ts),
        actor="slack",
        prefix_lengths=[services.settings.max_predict_chars],
    )
    if forgotten is not None:
        log.info(
            "message %d deleted in Slack: text and %d correction(s) removed",
            forgotten["message_id"],
            forgotten["corrections"],
        )


def _is_thread_reply(message: dict[str, Any]) -> bool:
    """A reply inside a thread; a thread_broadcast is also shown in the channel, so it is not one."""
    thread_ts = message.get("thread_ts")
    return bool(thread_ts) and thread_ts != message.get("ts") and message.get("subtype") != BROADCAST_SUBTYPE


def answer(
    services: Services,
    client: WebClient,
    task: storage.Task,
    predictor: camel.Predictor,
    message_id: int,
    channel: str,
    ts: str,
    thread: str,
    text: str,
) -> None:
    try:
        result = predictor.predict([text[: services.settings.max_predict_chars]])[0]
    except camel.CamelError as exc:
        log.error("prediction failed for task %s: %s", task.name, exc)
        return
    abstained = result.confidence < task.abstain_threshold
    prediction_id = storage.record_prediction(
        services.db,
        message_id=message_id,
        task=task.name,
        adapter_version=services.predictors.version(task.name),
        label=result.label,
        confidence=result.confidence,
        top3=result.top3,
        latency_ms=result.latency_ms,
        abstained=abstained,
    )
    _count(services, task.name, result.latency_ms, abstained)
    if task.quiet:
        _react(client, task, channel, ts, result.label, abstained)
        return
    if abstained:
        reply_blocks = blocks.abstained_blocks(message_id, task.name, task.labels, list(result.top3))
    else:
        reply_blocks = blocks.prediction_blocks(message_id, task.name, task.labels, result.label, result.confidence)
    text_fallback = texts.predict_reply(result.label, result.confidence, abstained, list(result.top3))
    reply = client.chat_postMessage(channel=channel, thread_ts=thread, text=text_fallback, blocks=reply_blocks)
    storage.set_prediction_reply(services.db, prediction_id, channel=channel, reply_ts=reply["ts"])


def _react(client: WebClient, task: storage.Task, channel: str, ts: str, label: str, abstained: bool) -> None:
    # Quiet mode never writes in the channel: a reaction is the whole answer.
    emoji = "grey_question" if abstained else emoji_for_label(task, label)
    if emoji is None:
        log.info("task %s is quiet but label %s has no emoji; not answering", task.name, label)
        return
    client.reactions_add(channel=channel, timestamp=ts, name=emoji)


def _count(services: Services, task: str, latency_ms: float, abstained: bool) -> None:
    services.metrics.predictions.labels(task=task).inc()
    services.metrics.latency.labels(task=task).observe(latency_ms / 1000.0)
    if abstained:
        services.metrics.abstentions.labels(task=task).inc()
