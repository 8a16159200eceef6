"""Every user-facing string of the Slack app, as small functions (one place to reword)."""

from __future__ import annotations

from typing import Any, Iterable

COMMAND = "/camel"

HELP_LINES = (
    ("help", "this help"),
    ("predict <text>", "classify a text with this channel's task"),
    ("label <message link> <label>", "label a message (copy its link from the message menu)"),
    ("labels", "the task's labels and their emojis"),
    ("stats", "corrections, live accuracy, per-label F1, training runs"),
    ("history", "adapter versions and their metrics"),
    ("retrain", "train a new adapter now (admins)"),
    ("rollback [version]", "serve an earlier adapter again (admins)"),
    ("setup <task>", "bind this channel to a task (admins)"),
    ("describe <label> <one line>", "say what a label means; I read it with the label's name (admins)"),
    ("export", "upload the labelled data as a CSV file"),
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


def prediction_text(label: str, confidence: float) -> str:
    return f"I think this is *{label}* ({percent(confidence)} sure)."


def abstained_text(top3: list[tuple[str, float]]) -> str:
    guesses = ", ".join(f"{label} ({percent(conf)})" for label, conf in top3)
    return f"Not sure about this one. My best guesses: {guesses}. Which is it?"


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


def retrain_started(task: str, run_id: int) -> str:
    return f":hammer_and_wrench: Training run {run_id} for *{task}* started. I'll report when it's done."


def rollback_done(task: str, version: int) -> str:
    return f":rewind: *{task}* now serves adapter {version_label(version)}."


def learning_unavailable() -> str:
    return ":warning: The learning loop is not running in this process."


def action_failed(problem: str) -> str:
    return f":warning: {problem}"


def predict_reply(label: str, confidence: float, abstained: bool, top3: list[tuple[str, float]]) -> str:
    return abstained_text(top3) if abstained else prediction_text(label, confidence)


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
    return "\n".join(lines)


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


def export_comment(task: str, count: int) -> str:
    return f"Labelled data for *{task}*: {count} messages."


def home_intro() -> str:
    return "camel-bot classifies messages in bound channels and learns from your corrections."
