"""New messages in bound channels: store, classify, answer in the thread (or react, in quiet mode)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

import camel
import storage
from bot import texts
from bot.slack import blocks
from bot.slack.listeners._shared import ack_now, emoji_for_label, services_of, workspace_of
from bot.slack.listeners.guess import answer_guess
from bot.slack.middleware import EDIT_SUBTYPE
from bot.slack.services import Services

log = logging.getLogger(__name__)


EVENTS = ("message",)


def register(app: App) -> None:
    app.event("message")(ack=ack_now, lazy=[classify_message])


def classify_message(event: dict[str, Any], body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    services = services_of(context)
    # An edit carries the new version of the message inside the event.
    message = (event.get("message") or {}) if event.get("subtype") == EDIT_SUBTYPE else event
    channel, text = event.get("channel", ""), message.get("text") or ""
    task = storage.task_for_channel(services.db, channel)
    if task is None or not text.strip():
        return
    if _is_thread_reply(message) and not services.settings.classify_thread_replies:
        return
    message_id = storage.record_message(
        services.db,
        workspace=workspace_of(body, context),
        channel=channel,
        ts=message["ts"],
        text=text,
        user=message.get("user"),
        thread_ts=message.get("thread_ts"),
    )
    thread = message.get("thread_ts") or message["ts"]
    predictor = services.predictors.get(task.name)
    if predictor is None:
        # Quiet tasks answer only with a reaction, and a guess is not worth one.
        if not task.quiet and not answer_guess(services, client, task, message_id, channel, thread, text):
            client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=texts.needs_label_text(task.name),
                blocks=blocks.menu_blocks(message_id, task.name, task.labels, texts.needs_label_text(task.name)),
            )
        return
    answer(services, client, task, predictor, message_id, channel, message["ts"], thread, text)


def _is_thread_reply(message: dict[str, Any]) -> bool:
    thread_ts = message.get("thread_ts")
    return bool(thread_ts) and thread_ts != message.get("ts")


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
