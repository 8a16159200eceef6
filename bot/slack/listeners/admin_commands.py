"""/camel subcommands that change what the bot does (admins only, audited) and /camel export."""

from __future__ import annotations

import tempfile
from pathlib import Path

import storage
from bot import texts
from bot.slack.listeners.invocation import CommandProblem, Invocation
from bot.slack.services import Learning

COMMAND = texts.COMMAND


def _audit(call: Invocation, action: str, **detail: object) -> None:
    storage.events.audit(
        call.services.db, actor=call.user, action=action, detail={"via": "slack", "channel": call.channel, **detail}
    )


def _learning(call: Invocation) -> Learning:
    if call.services.learning is None:
        raise CommandProblem(texts.learning_unavailable())
    return call.services.learning


def do_retrain(call: Invocation) -> None:
    # The learning loop audits the run it starts (actor, task, run id).
    call.require_admin("start a training run")
    task = call.channel_task()
    run_id = _learning(call).run_now(task.name, call.user)
    call.reply(texts.retrain_started(task.name, run_id))


def do_rollback(call: Invocation) -> None:
    # Without a version the learning loop picks the newest retired one; it audits the rollback.
    call.require_admin("roll back an adapter")
    task = call.channel_task()
    if len(call.args) > 1 or (call.args and not call.args[0].lstrip("v").isdigit()):
        raise CommandProblem(texts.usage(f"`{COMMAND} rollback` takes a version number, like `3`."))
    version = int(call.args[0].lstrip("v")) if call.args else None
    activated = _learning(call).rollback(task.name, version, call.user)
    call.reply(texts.rollback_done(task.name, activated.version))


OUT_OF_SCOPE_FLAG = "--out-of-scope"
NO_OUT_OF_SCOPE_FLAG = "--no-out-of-scope"


def _setup_args(args: list[str]) -> tuple[str, str | None, bool]:
    """(task, out-of-scope label to declare or None, remove the declaration)."""
    usage = texts.usage(
        f"`{COMMAND} setup` needs a task name, optionally `{OUT_OF_SCOPE_FLAG} <label>` or `{NO_OUT_OF_SCOPE_FLAG}`."
    )
    if len(args) == 1 and not args[0].startswith("--"):
        return args[0], None, False
    if len(args) == 2 and args[1] == NO_OUT_OF_SCOPE_FLAG:
        return args[0], None, True
    if len(args) == 3 and args[1] == OUT_OF_SCOPE_FLAG and not args[2].startswith("--"):
        return args[0], args[2], False
    raise CommandProblem(usage)


def do_setup(call: Invocation) -> None:
    call.require_admin("bind a channel to a task")
    name, out_of_scope, remove = _setup_args(call.args)
    if storage.tasks.get_task(call.services.db, name) is None:
        known = [t.name for t in storage.tasks.list_tasks(call.services.db)]
        raise CommandProblem(texts.unknown_task(name, known))
    task = storage.tasks.bind_channel(call.services.db, name, call.channel)
    # An admin binding the channel again also ends a pause (the bot was removed, the channel archived).
    storage.lifecycle.resume_channel(call.services.db, call.channel, actor=call.user)
    if out_of_scope is not None or remove:
        # Stored in the database, so it survives restarts (a configured "" does not overwrite it).
        storage.tasks.set_out_of_scope_label(call.services.db, name, out_of_scope)
        _audit(call, "slack.setup", task=name, out_of_scope_label=out_of_scope)
        call.reply(texts.setup_done(name, call.channel) + "\n" + texts.out_of_scope_set(name, out_of_scope))
        return
    _audit(call, "slack.setup", task=name)
    untrained = task.active_version is None
    call.reply(
        texts.setup_done(
            name, call.channel, [x for x in task.labels if x not in task.descriptions] if untrained else None
        )
    )


def do_describe(call: Invocation) -> None:
    """`/camel describe <label> <one line>`: the line is stored with the label (and survives restarts)."""
    call.require_admin("describe a label")
    task = call.channel_task()
    if len(call.args) < 2:
        raise CommandProblem(texts.usage(f"`{COMMAND} describe` needs a label and a one-line description."))
    label = call.args[0]
    if label not in task.labels:
        raise CommandProblem(texts.unknown_label(label, task.labels))
    description = call.raw.split(maxsplit=1)[1]
    updated = storage.tasks.set_description(call.services.db, task.name, label, description)
    _audit(call, "slack.describe", task=task.name, label=label)
    call.reply(texts.description_set(label, updated.descriptions[label]))


def do_export(call: Invocation) -> None:
    """An admin gets every channel of the task, by direct message; anyone else gets only the
    messages of the channel where they typed the command, uploaded there. Either way no text of
    one channel is ever posted in another."""
    task = call.channel_task()
    admin = call.services.is_admin(call.user, call.client)
    with tempfile.TemporaryDirectory(prefix="camel-export-") as folder:
        path = Path(folder) / f"{task.name}-labelled.csv"
        only = None if admin else call.channel
        count = storage.transfer.export_labelled(call.services.db, task.name, str(path), fmt="csv", channel=only)
        target = _direct_message_channel(call) if admin else call.channel
        call.client.files_upload_v2(
            channel=target,
            file=str(path),
            filename=path.name,
            title=f"{task.name} labelled data",
            initial_comment=texts.export_comment(task.name, count, None if admin else call.channel),
        )
    _audit(call, "slack.export", task=task.name, rows=count, scope="all channels" if admin else call.channel)
    if admin:
        call.reply(texts.export_sent_by_dm(task.name, count))


def _direct_message_channel(call: Invocation) -> str:
    """The bot's direct-message conversation with the user (needs the im:write scope)."""
    opened = call.client.conversations_open(users=call.user)
    return str(opened["channel"]["id"])
