"""Day-one answers: before a task's first trained adapter, a guess from the label names.

The bot says that it is guessing and offers its top 3 as one-click buttons beside the label
menu, so each correction is one click. The guess is stored as an abstained prediction of no
adapter version: the reactions that confirm or reject act on it like on any prediction, and
live accuracy counts it, but the bot never claims it.
"""

from __future__ import annotations

import logging
import time

from slack_sdk import WebClient

import camel
import storage
from bot import texts
from bot.slack import blocks
from bot.slack.listeners.incoming import ChannelMessage
from bot.slack.services import Services

log = logging.getLogger(__name__)


def answer_guess(services: Services, client: WebClient, message: ChannelMessage) -> bool:
    """Reply with a zero-shot guess; False when there is none (zero-shot off, or a model error)."""
    task = message.task
    started = time.perf_counter()
    try:
        guess = services.predictors.guess(task, message.text[: services.settings.max_predict_chars])
    except camel.CamelError as exc:
        log.error("zero-shot guess failed for task %s: %s", task.name, exc)
        return False
    if guess is None:
        return False
    latency_ms = (time.perf_counter() - started) * 1000.0  # includes building the prototypes once
    stored = storage.messages.record_prediction(
        services.db,
        storage.NewPrediction(
            message_id=message.message_id,
            task=task.name,
            adapter_version=None,
            label=guess.label,
            confidence=min(1.0, max(0.0, guess.score)),
            top3=guess.top3,
            latency_ms=latency_ms,
            abstained=True,
        ),
    )
    services.metrics.count_prediction(task.name, latency_ms, abstained=True)
    reply = client.chat_postMessage(
        channel=message.channel,
        thread_ts=message.thread,
        text=texts.guess_text(guess.top3),
        blocks=blocks.guess_blocks(message.message_id, task.name, guess.top3),
    )
    storage.messages.set_prediction_reply(services.db, stored.id, channel=message.channel, reply_ts=reply["ts"])
    return True
