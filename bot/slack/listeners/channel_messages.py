"""New messages in bound channels: store, classify, answer in the thread (or react, in quiet mode).

Messages reach `handle_message_event` from the durable inbox (bot/slack/inbox_worker.py), not from a
Bolt listener: the event was stored before Slack got its 200. Handling is idempotent, because a
restart or a paced retry may run it again: the message is stored once, a prediction made
before is reused, and a message already answered is not answered again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import camel
import storage
from bot import erasure, texts
from bot.serving import ModelAnswers, Serving, answer_texts, model_answers
from bot.slack import blocks
from bot.slack.listeners._shared import Delivery, NotYet, emoji_for_label, stop_on_dead_token
from bot.slack.listeners.declaration import Listeners
from bot.slack.listeners.guess import answer_guess
from bot.slack.listeners.incoming import ChannelMessage
from bot.slack.middleware import BROADCAST_SUBTYPE, DELETED_SUBTYPE, EDIT_SUBTYPE, stopped
from bot.slack.services import Services

log = logging.getLogger(__name__)
# A prediction made before this process started may have been posted by the process that died.
PROCESS_STARTED = datetime.now(timezone.utc).isoformat(timespec="microseconds")  # storage's format


def handle_message_event(
    services: Services, event: dict[str, Any], workspace: str, client: WebClient, delivery: Delivery
) -> None:
    """What a message event means: a new message, an edit (message_changed) or a deletion.

    Takes only what it needs (not Bolt's request): the inbox worker calls it for every stored
    message event, and again after a restart or a paced retry, so each path is idempotent.
    """
    if stopped(services, workspace):
        return
    subtype = event.get("subtype")
    try:
        if subtype == DELETED_SUBTYPE:
            forget_deleted(services, event, workspace)
        elif subtype == EDIT_SUBTYPE:
            apply_edit(services, client, event, workspace, delivery)
        else:
            handle_new(services, client, event, str(event.get("channel", "")), workspace, delivery)
    except SlackApiError as exc:
        if not stop_on_dead_token(services, workspace, exc):
            raise


def handle_new(
    services: Services, client: WebClient, message: dict[str, Any], channel: str, workspace: str, delivery: Delivery
) -> None:
    """Store, classify and answer one message of a bound channel."""
    task = storage.tasks.task_for_channel(services.db, channel)
    text = storage.messages.storable_text(message.get("text") or "")
    if task is None or not text.strip() or storage.lifecycle.channel_pause(services.db, channel) is not None:
        return
    if _is_thread_reply(message) and not services.settings.classify_thread_replies:
        return
    found = storage.messages.find_message(services.db, workspace=workspace, channel=channel, ts=message["ts"])
    if found is not None and found.deleted_at is not None:
        # Deleted in Slack before this (late) delivery: it stays deleted, and the text it carried
        # leaves the inbox and the WAL now rather than at the next checkpoint.
        erasure.drop_late_delivery(
            services.settings, services.db, channel=channel, ts=str(message["ts"]), cache=services.predictors.caches()
        )
        return
    message_id = storage.messages.record_message(
        services.db,
        workspace=workspace,
        channel=channel,
        ts=message["ts"],
        text=text,
        user=message.get("user"),
        thread_ts=message.get("thread_ts"),
    )
    _classify(services, client, ChannelMessage.of(task, message_id, workspace, channel, message, text), delivery)


def _classify(
    services: Services, client: WebClient, message: ChannelMessage, delivery: Delivery, *, fresh: bool = False
) -> None:
    """Answer a stored message; `fresh` (an edit) classifies again, otherwise a prediction made
    before a restart or a paced retry is reused and an answered message is not answered twice."""
    task = message.task
    if delivery.late:
        # Stored for training, but an answer this long after the message would only confuse.
        services.metrics.replies_skipped.labels(reason="too_old").inc()
        return
    earlier = None if fresh else storage.messages.latest_prediction(services.db, message.message_id, task.name)
    if earlier is not None and (earlier.reply_ts or task.quiet):
        return  # answered before a restart; answering again would double the reply
    if earlier is not None and earlier.created_at < PROCESS_STARTED and not task.quiet:
        if _already_posted(services, client, message, earlier.id):
            return
    if earlier is not None:  # predicted, then put back (paced, rate limited) or cut short by a crash
        _reply(services, client, message, earlier)
        return
    serving = services.predictors.serving(task.name)
    if answer(services, client, message, serving):
        return
    # Neither the team's memory nor an adapter: quiet tasks answer only with a reaction, and a
    # guess is not worth one.
    if not task.quiet:
        _wait_for_turn(services, message.channel)
    if not task.quiet and not answer_guess(services, client, message):
        client.chat_postMessage(
            channel=message.channel,
            thread_ts=message.thread,
            text=texts.needs_label_text(task.name),
            blocks=blocks.menu_blocks(message.message_id, texts.needs_label_text(task.name)),
        )


def apply_edit(
    services: Services, client: WebClient, event: dict[str, Any], workspace: str, delivery: Delivery
) -> None:
    """An edited message: its stored text is always replaced (a redaction must not leave the old
    text trainable); it is classified again only when `process_edits` is on."""
    channel = str(event.get("channel", ""))
    # Slack's published message_changed payloads name the original ts inside `message` or,
    # failing that, in `previous_message`.
    edited = dict(event.get("message") or {})
    edited.setdefault("ts", (event.get("previous_message") or {}).get("ts"))
    if not edited.get("ts"):
        return
    text = storage.messages.storable_text(edited.get("text") or "")
    stored = storage.messages.find_message(services.db, workspace=workspace, channel=channel, ts=str(edited["ts"]))
    if stored is None:
        if services.settings.process_edits:
            handle_new(services, client, edited, channel, workspace, delivery)
        return
    if stored.deleted_at is not None:  # an edit of a deleted message carries its texts: they leave too
        erasure.drop_late_delivery(
            services.settings, services.db, channel=channel, ts=stored.ts, cache=services.predictors.caches()
        )
        return
    task = storage.tasks.task_for_channel(services.db, channel)
    if stored.text == text:
        # Not an edit of the text (an unfurl, a new thread reply) - or this edit's own event put back
        # (paced, 429) after its text was stored and predicted: then finish the unposted answer.
        if delivery.attempts > 1 and services.settings.process_edits and task is not None and text.strip():
            _classify(services, client, ChannelMessage.of(task, stored.id, workspace, channel, edited, text), delivery)
        return
    # The old text leaves the row, the inbox, the feature cache and the WAL before the new one is answered.
    erasure.replace_text(
        services.settings,
        services.db,
        workspace=workspace,
        channel=channel,
        ts=stored.ts,
        text=text,
        cache=services.predictors.caches(),
        stores=[services.memory],
    )
    if (
        services.settings.process_edits
        and task is not None
        and text.strip()
        and storage.lifecycle.channel_pause(services.db, channel) is None
    ):
        incoming = ChannelMessage.of(task, stored.id, workspace, channel, edited, text)
        _classify(services, client, incoming, delivery, fresh=True)


def forget_deleted(services: Services, event: dict[str, Any], workspace: str) -> None:
    """A message deleted in Slack: its text and its corrections leave the store (an audit row
    stays), and its text leaves the inbox, the feature cache and the WAL (`bot.erasure`)."""
    ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
    if not ts:
        return
    forgotten, _derived = erasure.forget_message(
        services.settings,
        services.db,
        workspace=workspace,
        channel=str(event.get("channel", "")),
        ts=str(ts),
        actor="slack",
        cache=services.predictors.caches(),
        stores=[services.memory],  # its near-duplicate row goes now, not at the next recall
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


def answer(services: Services, client: WebClient, message: ChannelMessage, serving: Serving | None) -> bool:
    """Answer with the team's label when people labelled this text (or a nearly identical one),
    else with the version in `serving`, and record which of the two answered (a swap meanwhile
    changes neither). False when neither can (no label remembered, no adapter yet)."""
    task = message.task
    model = _batched(services, task, serving) if serving is not None else None
    try:
        found = answer_texts(
            task,
            [message.text],
            memory=services.memory,
            serving=serving,
            model=model,
            max_chars=services.settings.max_predict_chars,
        )[0]
    except camel.CamelError as exc:
        log.error("prediction failed for task %s: %s", task.name, exc)
        return True
    if found is None:
        return False
    stored = storage.messages.record_prediction(services.db, found.as_prediction(message.message_id, task.name))
    services.metrics.count_prediction(task.name, found.answer.latency_ms, found.answer.outcome != "label")
    if found.recall is not None:
        services.metrics.memory_answers.labels(task=task.name, how=found.recall.how).inc()
    _reply(services, client, message, stored)
    return True


def _batched(services: Services, task: storage.Task, serving: Serving) -> ModelAnswers:
    """The serving predictor's answers, batched with the other workers' messages of this task: one
    forward pass for many texts. The key holds the predictor, and each version has its own, so a
    batch is one version."""
    over = model_answers(serving, task)

    def one_by_one(texts_: list[str]) -> list[camel.Answer]:
        key = (id(serving.predictor), task.abstain_threshold, task.out_of_scope_label)
        return [services.batcher.run(key, text, over) for text in texts_]

    return one_by_one


def _reply(
    services: Services, client: WebClient, message: ChannelMessage, prediction: storage.StoredPrediction
) -> None:
    """Post (or react with) a stored prediction and link the reply to it."""
    task, channel = message.task, message.channel
    if task.quiet:
        _react(client, task, channel, message.ts, prediction.label, prediction.abstained)
        return
    text_fallback, reply_blocks = _reply_content(task, message.message_id, prediction)
    _wait_for_turn(services, channel)
    reply = client.chat_postMessage(channel=channel, thread_ts=message.thread, text=text_fallback, blocks=reply_blocks)
    storage.messages.set_prediction_reply(services.db, prediction.id, channel=channel, reply_ts=reply["ts"])


def _reply_content(
    task: storage.Task, message_id: int, prediction: storage.StoredPrediction
) -> tuple[str, list[blocks.Block]]:
    """The reply's fallback text and blocks; an out-of-scope answer is stored as the task's
    out-of-scope label, not abstained."""
    label, confidence, top3 = prediction.label, prediction.confidence, list(prediction.top3)
    if prediction.source == "memory":
        # The team's own label for this text: said as theirs, with the buttons to correct it.
        return texts.team_label_text(label, exact=confidence >= 1.0), blocks.team_label_blocks(
            message_id, task.name, label, exact=confidence >= 1.0
        )
    if prediction.source == "zero_shot":
        # A zero-shot guess put back (paced, 429, restart): its scores are similarities, not
        # confidences, so it is shown as a guess again, never with percentages.
        return texts.guess_text(top3), blocks.guess_blocks(message_id, task.name, top3)
    if prediction.abstained:
        return texts.abstained_text(top3), blocks.abstained_blocks(message_id, task.name, top3)
    if task.out_of_scope_label and label == task.out_of_scope_label:
        return texts.out_of_scope_text(top3), blocks.out_of_scope_blocks(message_id, task.name, label, top3)
    return texts.prediction_text(label, confidence), blocks.prediction_blocks(message_id, task.name, label, confidence)


def _already_posted(services: Services, client: WebClient, message: ChannelMessage, prediction_id: int) -> bool:
    """After a crash: did the dead process's reply reach Slack before it could be recorded?

    The reply's actions block names the message, so it is found in the thread; then it is
    linked instead of posted twice. If Slack cannot tell, answering again beats never.
    """
    channel = message.channel
    try:
        found = client.conversations_replies(channel=channel, ts=message.thread, limit=200)
    except SlackApiError as exc:
        log.warning("could not look for an earlier reply", extra={"error": exc.response.get("error")})
        return False
    wanted = blocks.block_id_for(message.message_id)
    for posted in found.get("messages") or []:
        if posted.get("bot_id") and any(b.get("block_id") == wanted for b in posted.get("blocks") or []):
            storage.messages.set_prediction_reply(
                services.db, prediction_id, channel=channel, reply_ts=str(posted["ts"])
            )
            return True
    return False


def _wait_for_turn(services: Services, channel: str) -> None:
    """Slack's ~1 post/s per channel: when the channel's turn has not come, the event goes back
    to the inbox with a not-before time (NotYet) instead of holding this thread."""
    delay = services.pacer.reserve(channel)
    if delay > 0:
        raise NotYet("channel_paced", delay)


def _react(client: WebClient, task: storage.Task, channel: str, ts: str, label: str, abstained: bool) -> None:
    # Quiet mode never writes in the channel: a reaction is the whole answer.
    emoji = "grey_question" if abstained else emoji_for_label(task, label)
    if emoji is None:
        log.info("task %s is quiet but label %s has no emoji; not answering", task.name, label)
        return
    client.reactions_add(channel=channel, timestamp=ts, name=emoji)


LISTENERS = Listeners(events={"message": handle_message_event})
