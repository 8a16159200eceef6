"""`/camel <subcommand>`: ack at once, then answer ephemerally through the response_url."""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient

import camel
import storage
from bot import texts
from bot.errors import LearningError
from bot.serving import answer_texts
from bot.slack import blocks, review, task_stats
from bot.slack.listeners import admin_commands, label_commands, privacy
from bot.slack.listeners._shared import record_correction, services_of, workspace_of
from bot.slack.listeners.declaration import Listeners
from bot.slack.listeners.invocation import CommandProblem, Invocation

log = logging.getLogger(__name__)
COMMAND = texts.COMMAND
# https://team.slack.com/archives/C0123/p1700000000123456 -> channel C0123, ts 1700000000.123456
LINK = re.compile(r"^<?https?://[^/\s]+/archives/([A-Z0-9]+)/p(\d{10})(\d{6})(?:[?#][^\s|>]*)?(?:\|[^>]*)?>?$")


def run_command(body: dict[str, Any], context: BoltContext, client: WebClient, respond: Respond) -> None:
    name, rest = (str(body.get("text") or "").split(maxsplit=1) + ["", ""])[:2]
    call = Invocation(
        services_of(context),
        client,
        respond,
        str(body.get("user_id")),
        str(body.get("channel_id")),
        workspace_of(body, context),
        rest.split(),
        rest.strip(),
    )
    handler = SUBCOMMANDS.get(name.lower() or "help")
    try:
        if handler is None:
            raise CommandProblem(texts.unknown_subcommand(name))
        handler(call)
    except CommandProblem as problem:
        call.reply(str(problem))
    except (storage.StorageError, camel.CamelError, LearningError) as exc:
        call.reply(texts.action_failed(str(exc)))
    except Exception:  # the user gets one line, the log gets the traceback
        log.exception("%s %s failed", COMMAND, name)
        call.reply(texts.action_failed(f"`{COMMAND} {name}` failed; the details are in the bot's log."))


def do_help(call: Invocation) -> None:
    call.reply(texts.help_text())


def do_predict(call: Invocation) -> None:
    if not call.raw:
        raise CommandProblem(texts.usage(f"`{COMMAND} predict` needs a text."))
    task = call.channel_task()
    services = call.services
    serving = services.predictors.serving(task.name)
    found = answer_texts(
        task, [call.raw], memory=services.memory, serving=serving, max_chars=services.settings.max_predict_chars
    )[0]
    if found is not None:
        result = found.answer
        if found.recall is not None:
            call.reply(texts.team_label_text(result.label, exact=found.recall.how == "exact"))
        else:
            call.reply(texts.answer_reply(result.outcome, result.label, result.confidence, result.top3))
        return
    guess = services.predictors.guess(task, call.raw[: services.settings.max_predict_chars])
    if guess is None:
        raise CommandProblem(texts.no_adapter(task.name))
    call.reply(texts.guess_text(guess.top3))


def parse_link(link: str) -> tuple[str, str]:
    match = LINK.match(link)
    if match is None:
        raise CommandProblem(texts.malformed_link(link))
    return match.group(1), f"{match.group(2)}.{match.group(3)}"


def do_label(call: Invocation) -> None:
    if len(call.args) != 2:
        raise CommandProblem(texts.usage(f"`{COMMAND} label` needs a message link and a label."))
    channel, ts = parse_link(call.args[0])
    label = call.args[1]
    task = storage.tasks.task_for_channel(call.services.db, channel)
    if task is None:
        raise CommandProblem(texts.no_task_here())
    if label not in task.labels:
        raise CommandProblem(texts.unknown_label(label, task.labels))
    message_id = _stored_message_id(call, channel, ts)
    if not record_correction(
        call.services, call.client, message_id=message_id, task=task.name, label=label, source="command", user=call.user
    ):
        raise CommandProblem(texts.cap_reached(call.services.settings.corrections_per_hour))
    call.reply(texts.label_stored(label))


def _stored_message_id(call: Invocation, channel: str, ts: str) -> int:
    """The message's id in storage, fetching it from Slack when the bot never saw it."""
    db = call.services.db
    found = storage.messages.find_message(db, workspace=call.workspace, channel=channel, ts=ts)
    if found is not None:
        return found.id
    history = call.client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1)
    message = next((m for m in history.get("messages") or [] if m.get("ts") == ts), None)
    if message is None or not message.get("text"):
        raise CommandProblem(texts.message_not_found())
    return storage.messages.record_message(
        db,
        workspace=call.workspace,
        channel=channel,
        ts=ts,
        text=message["text"],
        user=message.get("user"),
        thread_ts=message.get("thread_ts"),
    )


def do_stats(call: Invocation) -> None:
    task = call.channel_task()
    call.reply(texts.stats_text(task.name, task_stats.task_stats(call.services, task, call.channel)))


def do_review(call: Invocation) -> None:
    """Ephemeral: the most useful unlabelled messages of this channel, each with its label menu."""
    if len(call.args) > 1 or (call.args and not call.args[0].isdigit()):
        raise CommandProblem(texts.usage(f"`{COMMAND} review` takes a number of messages, like `5`."))
    n = int(call.args[0]) if call.args else review.DEFAULT_N
    if not 1 <= n <= review.MAX_N:
        raise CommandProblem(texts.usage(f"`{COMMAND} review` shows 1 to {review.MAX_N} messages at a time."))
    task = call.channel_task()
    items = review.review_items(call.services.db, call.client, task.name, call.channel, n)
    if not items:
        call.reply(texts.nothing_to_review(task.name))
        return
    rows = [(i.candidate.message_id, i.candidate.text, i.permalink, i.candidate.top3) for i in items]
    call.respond(
        text=texts.review_intro(task.name, len(items)),
        blocks=blocks.review_blocks(task.name, rows),
        response_type="ephemeral",
    )


def do_history(call: Invocation) -> None:
    """Every version, and under each the label changes made after it (before the next one)."""
    task = call.channel_task()
    versions = storage.adapters.list_adapters(call.services.db, task.name)
    events = storage.labels.history(call.services.db, task.name)
    rows: list[str] = []
    for i, version in enumerate(versions):
        if i == 0:  # changes before the first version
            rows += _label_lines([e for e in events if e.created_at <= version.created_at])
        rows.append(task_stats.version_row(version))
        later = versions[i + 1].created_at if i + 1 < len(versions) else None
        rows += _label_lines(
            [e for e in events if e.created_at > version.created_at and (later is None or e.created_at <= later)]
        )
    if not versions:
        rows = _label_lines(events)
    call.reply(texts.history_text(task.name, rows))


def _label_lines(events: list[storage.labels.LabelEvent]) -> list[str]:
    return [texts.label_history_line(e.kind, e.old_name, e.new_name, e.actor, e.created_at) for e in events]


SUBCOMMANDS: dict[str, Callable[[Invocation], None]] = {
    "help": do_help,
    "predict": do_predict,
    "label": do_label,
    "labels": label_commands.do_labels,
    "stats": do_stats,
    "history": do_history,
    "review": do_review,
    "retrain": admin_commands.do_retrain,
    "rollback": admin_commands.do_rollback,
    "setup": admin_commands.do_setup,
    "describe": admin_commands.do_describe,
    "export": admin_commands.do_export,
    "my-data": privacy.do_my_data,
    "forget-me": privacy.do_forget_me,
}


LISTENERS = Listeners(commands={COMMAND: run_command})
