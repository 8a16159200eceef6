"""Every user-facing string of the Slack app, as small functions (one place to reword)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

COMMAND = "/camel"
NEW_LABEL_OPTION = "New label…"  # the label menu's last option

HELP_LINES = (
    ("help", "this help"),
    ("predict <text>", "classify a text with this channel's task"),
    ("label <message link> <label>", "label a message (copy its link from the message menu)"),
    ("labels", "the task's labels and their emojis"),
    (
        "labels add|rename|merge|retire|unretire ...",
        "change the labels: add <name> <description>, rename <old> <new>, merge <label> <into>, "
        "retire <label>; a preview first (admins)",
    ),
    ("stats", "corrections, live accuracy, per-label F1, training runs"),
    ("history", "adapter versions, their metrics and the label changes between them"),
    ("review [n]", "the n (default 5) messages of this channel whose labels would teach me most"),
    ("retrain", "train a new adapter now (admins)"),
    ("rollback [version]", "serve an earlier adapter again (admins)"),
    ("setup <task> [--out-of-scope <label>]", "bind this channel to a task; declare its out-of-scope label (admins)"),
    ("describe <label> <one line>", "say what a label means; I read it with the label's name (admins)"),
    ("export", "the labelled data as a CSV file: this channel's messages; admins get every channel by DM"),
    ("my-data", "how many of your messages and corrections the bot stores"),
    ("forget-me", "delete your messages and corrections everywhere (asks first)"),
)


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def help_text() -> str:
    lines = [f"`{COMMAND} {usage}` - {what}" for usage, what in HELP_LINES]
    return "*camel-bot* learns from your corrections.\n" + "\n".join(lines)


def usage(problem: str) -> str:
    return f":warning: {problem}\n\n{help_text()}"


def unknown_subcommand(name: str) -> str:
    return usage(f"I don't know `{COMMAND} {name}`.")


def unknown_label(label: str, labels: Iterable[str]) -> str:
    return f":warning: `{label}` is not a label of this task. Labels: {', '.join(f'`{x}`' for x in labels)}"


def malformed_link(link: str) -> str:
    return usage(f"`{link}` is not a Slack message link (use *Copy link* on the message).")


def no_task_here() -> str:
    return f":warning: This channel is not bound to a task. An admin can run `{COMMAND} setup <task>`."


def unknown_task(name: str, known: Iterable[str]) -> str:
    return f":warning: There is no task `{name}`. Tasks: {', '.join(f'`{x}`' for x in known) or 'none'}"


def admins_only(action: str) -> str:
    return f":no_entry: Only admins can {action}."


def cap_reached(limit: int) -> str:
    return f":hourglass: You have made {limit} corrections this hour, the most allowed. Nothing was stored; try later."


def message_not_found() -> str:
    return ":warning: I can't find that message. Is it in a channel I'm in?"


def choice_out_of_date() -> str:
    return action_failed("That choice is out of date.")


def message_gone() -> str:
    return ":warning: That message is no longer stored (it was deleted or erased), so nothing was labelled."


def click_mismatch() -> str:
    return ":no_entry: That choice does not belong to this message or channel, so nothing was labelled."


def prediction_text(label: str, confidence: float) -> str:
    return f"I think this is *{label}* ({percent(confidence)} sure)."


def team_label_text(label: str, *, exact: bool) -> str:
    """The team's memory answering: the label people gave this text, said as theirs, not a guess."""
    which = "this same text" if exact else "a nearly identical text"
    return f":busts_in_silhouette: *{label}*: the team's label for {which} (not my guess)."


def guesses_with_percent(top3: list[tuple[str, float]]) -> str:
    return ", ".join(f"{label} ({percent(conf)})" for label, conf in top3)


def abstained_text(top3: list[tuple[str, float]]) -> str:
    guesses = guesses_with_percent(top3)
    return f"Not sure about this one. My best guesses: {guesses}. Which is it?"


def out_of_scope_text(top3: list[tuple[str, float]]) -> str:
    guesses = guesses_with_percent(top3)
    return f"Not one of mine: this doesn't look like any of my labels. Closest: {guesses}. Tell me if I'm wrong."


def answer_reply(outcome: str, label: str, confidence: float, top3: list[tuple[str, float]]) -> str:
    """The text for `camel.Answer.outcome`: a label, "not one of mine" or "not sure"."""
    if outcome == "out_of_scope":
        return out_of_scope_text(top3)
    return abstained_text(top3) if outcome == "abstain" else prediction_text(label, confidence)


def needs_label_text(task: str) -> str:
    return f"I'm still learning *{task}*. Which label fits this message?"


def corrected_text(label: str, user: str) -> str:
    return f"Corrected to *{label}* by <@{user}>. Thanks, I'll learn from it."


def confirmed_text(label: str, user: str) -> str:
    return f"*{label}*, confirmed by <@{user}>. Thanks!"


def reject_prompt() -> str:
    return "You marked my label as wrong. Which label is right?"


def label_stored(label: str) -> str:
    return f":white_check_mark: Labelled as *{label}*."


def setup_done(task: str, channel: str, undescribed: list[str] | None = None) -> str:
    done = f":white_check_mark: <#{channel}> is now bound to task *{task}*."
    if not undescribed:
        return done
    missing = ", ".join(f"`{x}`" for x in undescribed[:10]) + (", ..." if len(undescribed) > 10 else "")
    return (
        f"{done} Until its first model I guess from the label names; "
        f"`{COMMAND} describe <label> <one line>` sharpens the guesses (no description yet: {missing})."
    )


def out_of_scope_set(task: str, label: str | None) -> str:
    if label is None:
        return f"*{task}* has no out-of-scope label now."
    return (
        f'*{task}*: `{label}` now means "not one of mine". Label messages that fit none of the other labels'
        f" with it; the next training round learns from them."
    )


def review_intro(task: str, count: int) -> str:
    return f"*{task}*: {count} message(s) I'm least sure about. A label on each teaches me most."


def review_item(text: str, link: str) -> str:
    shown = text if len(text) <= 500 else text[:500] + "..."
    quoted = "\n".join(f"> {line}" for line in shown.splitlines() or [""])
    return f"{quoted}\n<{link}|open the message>"


def nothing_to_review(task: str) -> str:
    return (
        f":sparkles: Nothing to review in *{task}* here: every scored message of this channel is labelled,"
        " or no adapter has scored its messages yet (that happens after each training round)."
    )


def review_label_stored(label: str) -> str:
    return f":white_check_mark: Labelled as *{label}* (review). Thanks, I'll learn from it."


def ask_text(top3: list[tuple[str, float]]) -> str:
    guesses = guesses_with_percent(top3)
    return (
        f":raising_hand: A label on this message would teach me more than most today. My guesses: {guesses}."
        " Which is it?"
    )


def retrain_started(task: str, run_id: int) -> str:
    return f":hammer_and_wrench: Training run {run_id} for *{task}* started. I'll report when it's done."


def rollback_done(task: str, version: int) -> str:
    return f":rewind: *{task}* now serves adapter {version_label(version)}."


def learning_unavailable() -> str:
    return ":warning: The learning loop is not running in this process."


def action_failed(problem: str) -> str:
    return f":warning: {problem}"


def no_adapter(task: str) -> str:
    return f":seedling: *{task}* has no trained adapter yet. Label a few messages first."


def labels_text(
    task: str, labels: list[str], emoji_map: dict[str, str], descriptions: dict[str, str] | None = None
) -> str:
    by_label: dict[str, list[str]] = {}
    for emoji, label in emoji_map.items():
        by_label.setdefault(label, []).append(f":{emoji}:")
    described = descriptions or {}
    lines = [
        f"- `{label}` {' '.join(by_label.get(label, []))}".rstrip()
        + (f" - {described[label]}" if label in described else "")
        for label in labels
    ]
    verdicts = [
        f"{' '.join(by_label[key])} {what}"
        for key, what in (("__confirm__", "confirms my label"), ("__reject__", "marks it wrong"))
        if key in by_label
    ]
    return f"*{task}* labels:\n" + "\n".join(lines + verdicts)


def kept_on_previous_base(reason: str, active: int, old_base: str, candidate: int) -> str:
    """Why a round on a new base was rejected, what keeps serving, and how an admin can overrule."""
    return (
        f"{reason}; {version_label(active)} (trained on the previous base {old_base}) keeps serving. "
        f"An admin can accept {version_label(candidate)} anyway with `/camel rollback {candidate}`"
    )


def base_gone(task: str, version: int, old_base: str, new_base: str) -> str:
    """Said once when a task's adapter was trained on a base model whose folder is gone."""
    return (
        f"*{task}*: {version_label(version)} was trained on base model {old_base}, whose folder is gone, so it "
        f"cannot serve. Until a round on the new base ({new_base}) passes the gate, I answer with guesses "
        "from the label names and descriptions. The next round trains afresh from all labels."
    )


def unreadable_channel(task: str, channel: str, summary: str, alert: float, help_section: str) -> str:
    """The one direct message to admins when the base model cannot read a channel."""
    return (
        f":warning: The base model cannot read much of what <#{channel}> writes (task *{task}*): "
        f"{summary}, above the alert of {alert:.0%}. Its answers there will be poor. "
        f"Use a multilingual base model folder (`[model] base_model`), see {help_section}; "
        f"if this is expected, raise `[model] unknown_chars_alert`. This message is sent once."
    )


def stats_text(task: str, stats: dict[str, Any]) -> str:
    lines = [
        f"*{task}* - live adapter: {version_name(stats.get('version'))}",
        f"Labelled messages: {stats['corrections_total']}, {stats['pending']} new since the last training run",
        f"Live accuracy: 7 days {percent(stats['acc7'])} (n={stats['n7']}), "
        f"30 days {percent(stats['acc30'])} (n={stats['n30']})",
        f"Last training run: {stats['last_run']}",
        f"Next training run: {stats['next_run']}",
    ]
    if stats.get("per_label_f1"):
        f1s = ", ".join(f"{label} {value:.2f}" for label, value in stats["per_label_f1"].items())
        lines.append(f"Per-label F1 (held-out): {f1s}")
    calibration = stats.get("calibration")
    if isinstance(calibration, dict):
        lines.append(calibration_line(calibration))
    for row in stats.get("coverage") or []:
        lines.append(coverage_line(row))
    sources = stats.get("sources7") or {}
    if sources.get("memory"):
        lines.append(memory_line(sources))
    lines += stats.get("reading") or []
    return "\n".join(lines)


def interim_note(parent: int, n_train: int) -> str:
    return f"interim: {version_label(parent)}'s classifier refitted on {n_train} labelled messages"


def memory_line(sources: dict[str, int]) -> str:
    """How many answers of the last 7 days were the team's own labels (kept out of live accuracy)."""
    total = sum(sources.values())
    return (
        f"Team's memory: {sources.get('memory', 0)} of {total} answers in 7 days gave the team's label for the "
        "same or a nearly identical text (not counted in live accuracy)"
    )


def calibration_line(calibration: dict[str, Any]) -> str:
    """The serving version's calibrated threshold and what it gave on held-out labels it was not fitted on."""
    return (
        f"Calibrated threshold {calibration.get('threshold', 0):.2f} for {percent(calibration.get('target_precision'))}"
        f" precision ({calibration.get('status')}; held-out check: precision {percent(calibration.get('precision'))},"
        f" answered {percent(calibration.get('coverage'))})"
    )


def coverage_line(row: dict[str, Any]) -> str:
    """One version's live coverage (share answered) and precision of the answered ones."""
    return (
        f"{version_label(row['version'])}: answered {percent(row['coverage'])} of {row['predictions']} messages,"
        f" precision of the answered {percent(row['precision'])} (n={row['judged']} labelled)"
    )


def version_label(version: int) -> str:
    """How every message names an adapter version: v3 (folders on disk are v0003)."""
    return f"v{version}"


def version_name(version: int | None) -> str:
    return "none yet" if version is None else version_label(version)


def history_text(task: str, rows: list[str]) -> str:
    return f"*{task}* adapter versions:\n" + ("\n".join(rows) if rows else "none yet")


def description_set(label: str, description: str) -> str:
    return f":white_check_mark: `{label}` now means: {description}"


def guess_text(top3: list[tuple[str, float]]) -> str:
    """Before the first trained adapter: a guess from the label names, said as one."""
    guesses = ", ".join(f"*{label}*" for label, _ in top3)
    return f":crystal_ball: I'm only guessing from the label names so far. My best guesses: {guesses}. Which is it?"


def export_comment(task: str, count: int, channel: str | None = None) -> str:
    where = f" from <#{channel}>" if channel else " from every channel of the task"
    return f"Labelled data for *{task}*{where}: {count} messages."


def export_sent_by_dm(task: str, count: int) -> str:
    return f":inbox_tray: I sent you the labelled data of *{task}* ({count} messages) by direct message."


def home_intro() -> str:
    return "camel-bot classifies messages in bound channels and learns from your corrections."


def channel_paused(channel: str, task: str, *, archived: bool) -> str:
    cause = "was archived" if archived else "removed me"
    return (
        f":pause_button: <#{channel}> {cause}, so task *{task}* no longer classifies messages there. "
        "Invite me back (or restore the channel) to resume."
    )


def channel_resumed(channel: str, task: str) -> str:
    return f":arrow_forward: I'm back in <#{channel}>: task *{task}* classifies its messages again."


def setup_offer(tasks: Iterable[str]) -> str:
    known = ", ".join(f"`{name}`" for name in tasks) or "none yet"
    return (
        f":wave: Thanks for adding me. An admin can bind this channel to a task with `{COMMAND} setup <task>` "
        f"(tasks: {known}); until then I only listen."
    )


def _failures(failures: list[tuple[int, str]]) -> str:
    return "; ".join(f"{version_label(version)}: {reason}" for version, reason in failures)


def _versions(versions: Sequence[int]) -> tuple[str, str]:
    """("v2, v1", "do") or ("v2", "does"): a list of versions and its verb agreeing with it."""
    return ", ".join(version_label(v) for v in versions), "do" if len(versions) > 1 else "does"


def adapter_fallback(
    task: str, failures: list[tuple[int, str]], serving: int, *, active: int, other_base: Sequence[int] = ()
) -> str:
    """Admins' one message when the active adapter did not load and another version serves instead:
    which did not load and why, which serves and in which direction, and which are marked rejected
    (not those trained on another base model: their folders are fine)."""
    failed, verb = _versions([v for v, _ in failures])
    direction = "earlier" if serving < active else "later"
    nearest = f"the nearest {direction} version that loads" + ("" if serving < active else " (no earlier one does)")
    text = (
        f":warning: *{task}*: adapter {failed} {verb} not load ({_failures(failures)}). "
        f"Now serving {version_label(serving)}, {nearest}."
    )
    rejected, verb = _versions([v for v, _ in failures if v not in other_base])
    if rejected:
        text += f" {rejected} {'are' if verb == 'do' else 'is'} marked rejected."
    if other_base:
        kept, verb = _versions(other_base)
        text += f" {kept} {'were' if verb == 'do' else 'was'} trained on another base model: not marked rejected."
    return text


def no_adapter_loads(task: str, failures: list[tuple[int, str]], serving: int | None) -> str:
    """Admins' one message when no registered version of the task loads."""
    now = (
        f"{version_label(serving)} keeps serving from memory until the bot restarts."
        if serving is not None
        else f"*{task}* predicts nothing until a training round succeeds or an admin runs "
        f"`{COMMAND} rollback <version>`."
    )
    return f":x: *{task}*: no adapter version loads ({_failures(failures)}). {now}"


def my_data_text(messages: int, corrections: int) -> str:
    return (
        f"camel-bot stores *{messages}* of your messages and *{corrections}* of your corrections. "
        f"`{COMMAND} forget-me` deletes them everywhere the bot keeps them."
    )


def forget_me_prompt(messages: int, corrections: int) -> str:
    return (
        f":warning: This deletes your *{messages}* messages and *{corrections}* corrections from camel-bot: "
        "the database, its write-ahead log and the model's feature cache. It cannot be undone. "
        "Files someone exported earlier are outside the bot's reach."
    )


def forget_me_nothing() -> str:
    return "camel-bot stores none of your messages or corrections. There is nothing to delete."


def forget_me_done(summary: str) -> str:
    return f":wastebasket: Deleted: {summary}."


def forget_me_not_yours() -> str:
    return ":no_entry: Only the person who asked can confirm deleting their own data."


def events_not_stored(error: str) -> str:
    return (
        f":warning: camel-bot cannot store Slack events ({error}). They are acknowledged so Slack keeps "
        "the app enabled, but they are dropped until the bot can write again (usually: free disk space). "
        "It resumes by itself; /readyz says why it is not ready."
    )


# ---- labels that change in Slack (New label…, proposals, /camel labels)


def new_label_intro(task: str) -> str:
    return (
        f"A new label of *{task}*. This message gets it, and the bot can predict it at once "
        "(from its name and description until it has examples)."
    )


def new_label_only_admins(task: str) -> str:
    return action_failed(f"Only admins can create labels of *{task}*; ask one to add it with `{COMMAND} labels add`.")


def new_label_created(label: str, user: str) -> str:
    return f"New label *{label}* created by <@{user}>, and this message labelled with it. Thanks, I'll learn from it."


def new_label_description_missing() -> str:
    return "Describe the label in one line: the bot predicts it from its name and description until it has examples."


def proposal_waiting(label: str) -> str:
    return (
        f"Your label *{label}* is proposed to the admins. Your correction waits with it and is stored "
        "as soon as one approves it."
    )


def proposal_for_admins(task: str, label: str, description: str, proposer: str, channel: str) -> str:
    return (
        f"<@{proposer}> proposes a new label for *{task}* (in <#{channel}>):\n*{label}*: {description}\n"
        "Approve to create it (their correction is stored with it), or reject it."
    )


def proposal_decided(task: str, label: str, admin: str, approved: bool) -> str:
    what = "approved" if approved else "rejected"
    return f"The label *{label}* for *{task}* was {what} by <@{admin}>."


def proposal_already_decided(task: str, label: str, admin: str, approved: bool) -> str:
    return proposal_decided(task, label, admin, approved) + " (They decided first.)"


def proposal_result_for_member(label: str, admin: str, approved: bool) -> str:
    if approved:
        return f"<@{admin}> approved your label *{label}*: it exists now, and your correction is stored."
    return f"<@{admin}> rejected your label *{label}*; your correction was not stored. Pick another label."


LABEL_CHANGE_USAGE = (
    f"`{COMMAND} labels` lists the labels; admins change them with "
    f"`{COMMAND} labels add <name> <one-line description>`, "
    "`rename <old> <new>`, `merge <label> <into>`, `retire <label>` or `unretire <label>` (each shows a preview first)."
)


def _moved(messages: int, corrections: int) -> str:
    def plural(count: int, what: str) -> str:
        return f"{count} {what}{'' if count == 1 else 's'}"

    return f"{plural(messages, 'message')} and {plural(corrections, 'correction')}"


def label_change_preview(
    kind: str, task: str, old: str | None, new: str | None, messages: int, corrections: int, description: str | None
) -> str:
    """What a label change will do, before an admin confirms it."""
    moved = _moved(messages, corrections)
    if kind == "add":
        return (
            f"Add `{new}` to *{task}*"
            + (f" ({description})" if description else "")
            + ": the bot predicts it at once from its name and description, and learns it from corrections."
        )
    if kind == "rename":
        return (
            f"Rename `{old}` to `{new}` in *{task}*: {moved} move to `{new}` (each correction keeps the name it was "
            f"made under in its history); old buttons, earlier versions, the emoji map and descriptions follow. "
            f"`{old}` cannot be used for another label afterwards."
        )
    if kind == "merge":
        return (
            f"Merge `{old}` into `{new}` in *{task}*: {moved} move from `{old}` to `{new}`; "
            f"the bot counts their answers as one until the next round."
        )
    if kind == "retire":
        return (
            f"Retire `{old}` in *{task}*: the bot stops predicting it at once; its {moved} leave training and "
            f"keep their history. `{COMMAND} labels unretire {old}` brings it back."
        )
    return f"Bring back `{old}` in *{task}*: the bot predicts it again and its {moved} return to training."


def label_change_done(kind: str, old: str | None, new: str | None, user: str) -> str:
    what = {
        "add": f"added `{new}`",
        "rename": f"renamed `{old}` to `{new}`",
        "merge": f"merged `{old}` into `{new}`",
        "retire": f"retired `{old}`",
        "unretire": f"brought back `{old}`",
    }[kind]
    return f":white_check_mark: <@{user}> {what}. The bot answers with it from now on."


def label_change_cancelled() -> str:
    return "Cancelled: the labels are unchanged."


def label_history_line(kind: str, old: str | None, new: str | None, actor: str, at: str) -> str:
    what = {
        "add": f"`{new}` added",
        "rename": f"`{old}` renamed to `{new}`",
        "merge": f"`{old}` merged into `{new}`",
        "retire": f"`{old}` retired",
        "unretire": f"`{old}` brought back",
    }[kind]
    return f"    · {what} by <@{actor}> ({at[:16].replace('T', ' ')})"


def retired_labels_line(labels: list[str]) -> str:
    return f"Retired (never predicted; `{COMMAND} labels unretire <label>` brings one back): " + ", ".join(
        f"`{label}`" for label in labels
    )
