"""Block Kit builders for the bot's replies, the label menu, the App Home view and the learning
loop's reports (`message`, from the neutral values of `bot.reports`).

Action ids are constants here because the listeners register them and the manifest test
checks them; a button's value carries the task and label as "task|label".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, assert_never

from bot import reports, texts

Block = dict[str, Any]

CORRECT_MENU = "camel_correct"  # external_select: pick the right label (options by typeahead)
CONFIRM_BUTTON = "camel_confirm"  # "right" button
GUESS_BUTTON = "camel_guess"  # one of the top-3 guesses after abstaining
REVIEW_MENU = "camel_review_menu"  # the label menu of a /camel review item
REVIEW_GUESS = "camel_review_guess"  # one of the top-3 guesses of a /camel review item
ASK_MENU = "camel_ask_menu"  # the label menu of a question the bot asks in a thread
ASK_GUESS = "camel_ask_guess"  # one of the top-3 guesses of such a question
PROPOSAL_APPROVE = "camel_label_approve"  # an admin approves a member's proposed label (value: proposal id)
PROPOSAL_REJECT = "camel_label_reject"
LABEL_CHANGE_CONFIRM = "camel_labels_confirm"  # /camel labels <change>: the admin confirms the preview
LABEL_CHANGE_CANCEL = "camel_labels_cancel"
ACTION_IDS = (
    CORRECT_MENU,
    CONFIRM_BUTTON,
    GUESS_BUTTON,
    REVIEW_MENU,
    REVIEW_GUESS,
    ASK_MENU,
    ASK_GUESS,
    PROPOSAL_APPROVE,
    PROPOSAL_REJECT,
    LABEL_CHANGE_CONFIRM,
    LABEL_CHANGE_CANCEL,
)
# The "New label…" modal: its callback id and its two inputs (block id, action id).
NEW_LABEL_VIEW = "camel_new_label"
NAME_BLOCK, NAME_INPUT = "camel_label_name", "name"
DESCRIPTION_BLOCK, DESCRIPTION_INPUT = "camel_label_description", "description"
MAX_TITLE = 24  # a modal's title
MAX_METADATA = 3000  # a modal's private_metadata
MENU_ACTIONS = (CORRECT_MENU, REVIEW_MENU, ASK_MENU)  # the label menus; their options come from the bot
# Slack's limits for an options response: 100 options, option text and description 75 characters,
# value 150 (so "task|label" bounds a label's name: storage.labels.MAX_LABEL_CHARS).
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
# The menu's last option: create the label while correcting (opens a modal).
NEW_LABEL = "__new_label__"
# Slack refuses a message whose section text passes 3,000 characters, a field's 2,000, or a
# section with more than 10 fields; the reports are cut to fit rather than lost.
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10


def block_id_for(message_id: int) -> str:
    """The actions block names the stored message it is about, so a click finds it again."""
    return f"camel_msg_{message_id}"


def message_id_from(block_id: str) -> int | None:
    prefix, _, number = block_id.rpartition("_")
    return int(number) if prefix == "camel_msg" and number.isdigit() else None


def encode_value(task: str, label: str) -> str:
    return f"{task}|{label}"


def decode_value(value: str) -> tuple[str, str]:
    task, _, label = value.partition("|")
    return task, label


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def label_menu(placeholder: str = "correct it", action_id: str = CORRECT_MENU) -> Block:
    """The label menu: an external_select whose options the bot serves as the person types
    (`label_options`), so every label of a task can be picked however many there are.
    min_query_length 0: the top guesses show on open and one-letter names can be found."""
    return {
        "type": "external_select",
        "action_id": action_id,
        "placeholder": {"type": "plain_text", "text": placeholder},
        "min_query_length": 0,
    }


def label_options(
    task: str, labels: list[tuple[str, str | None]], *, new_label: bool, searched: str = ""
) -> dict[str, Any]:
    """The options response for a label menu: (label, description) in order, then "New label…"
    (when the person may create one). Within Slack's limits: at most 100 options, text and
    description at most 75 characters, value at most 150 (longer names cannot be offered and
    are left out, which storage.labels.MAX_LABEL_CHARS prevents)."""
    options: list[Block] = []
    room = MAX_OPTIONS - (1 if new_label else 0)
    for label, description in labels:
        value = encode_value(task, label)
        if len(value) > MAX_OPTION_VALUE or len(label) > MAX_OPTION_TEXT:
            continue
        option: Block = {"text": {"type": "plain_text", "text": label}, "value": value}
        if description:
            option["description"] = {"type": "plain_text", "text": _cut(description, MAX_OPTION_TEXT)}
        options.append(option)
        if len(options) == room:
            break
    if new_label:
        hint = _cut(f"create “{searched}”" if searched else "create a label with this message", MAX_OPTION_TEXT)
        options.append(
            {
                "text": {"type": "plain_text", "text": texts.NEW_LABEL_OPTION},
                "value": encode_value(task, NEW_LABEL),
                "description": {"type": "plain_text", "text": hint},
            }
        )
    return {"options": options}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": text[:75]},
    }
    if style:
        element["style"] = style
    return element


def actions(message_id: int, elements: list[Block]) -> Block:
    """The buttons and menu of a reply, in a block named after the stored message they are about."""
    return {"type": "actions", "block_id": block_id_for(message_id), "elements": elements}


def guess_buttons(task: str, top3: list[tuple[str, float]], action_id: str, *, percent: bool = True) -> list[Block]:
    # Each guess button gets its own action_id suffix because Slack rejects duplicate ids in a block.
    return [
        button(f"{label} ({texts.percent(conf)})" if percent else label, f"{action_id}_{i}", encode_value(task, label))
        for i, (label, conf) in enumerate(top3)
    ]


def prediction_blocks(message_id: int, task: str, label: str, confidence: float) -> list[Block]:
    return [
        section(texts.prediction_text(label, confidence)),
        actions(
            message_id,
            [button("right", CONFIRM_BUTTON, encode_value(task, label), "primary"), label_menu()],
        ),
    ]


def abstained_blocks(message_id: int, task: str, top3: list[tuple[str, float]]) -> list[Block]:
    return [
        section(texts.abstained_text(top3)),
        actions(message_id, [*guess_buttons(task, top3, GUESS_BUTTON), label_menu()]),
    ]


def out_of_scope_blocks(
    message_id: int, task: str, out_of_scope_label: str, top3: list[tuple[str, float]]
) -> list[Block]:
    """Not one of mine: "right" confirms the task's out-of-scope label; the menu corrects it."""
    right = button("right", CONFIRM_BUTTON, encode_value(task, out_of_scope_label), "primary")
    return [section(texts.out_of_scope_text(top3)), actions(message_id, [right, label_menu()])]


def guess_blocks(message_id: int, task: str, top3: list[tuple[str, float]]) -> list[Block]:
    """A zero-shot guess: the top 3 as one-click buttons (no percentages: they are similarities,
    not probabilities) and the label menu."""
    return [
        section(texts.guess_text(top3)),
        actions(message_id, [*guess_buttons(task, top3, GUESS_BUTTON, percent=False), label_menu()]),
    ]


def menu_blocks(message_id: int, text: str) -> list[Block]:
    """A text and the label menu: asking for a label, after a rejection, or after a correction
    (the menu stays so that someone else can still disagree)."""
    return [section(text), actions(message_id, [label_menu("pick a label")])]


def review_blocks(task: str, items: list[tuple[int, str, str, list[tuple[str, float]]]]) -> list[Block]:
    """/camel review: per message (id, text, permalink, top 3) its text and link, the bot's
    guesses as buttons and the label menu; answers are stored with source "review"."""
    result: list[Block] = [section(texts.review_intro(task, len(items)))]
    for message_id, text, link, top3 in items:
        menu = label_menu("pick a label", REVIEW_MENU)
        result += [
            {"type": "divider"},
            section(texts.review_item(text, link)),
            actions(message_id, [*guess_buttons(task, top3, REVIEW_GUESS), menu]),
        ]
    return result


def ask_blocks(message_id: int, task: str, top3: list[tuple[str, float]]) -> list[Block]:
    """A question in a message's thread (ask_per_day): the guesses and the menu; answers have source "ask"."""
    menu = label_menu("pick a label", ASK_MENU)
    return [section(texts.ask_text(top3)), actions(message_id, [*guess_buttons(task, top3, ASK_GUESS), menu])]


def new_label_modal(task: str, metadata: str, *, name_limit: int, description_limit: int, typed: str = "") -> Block:
    """The modal "New label…" opens (views.open): a name and a one-line description. `metadata`
    (private_metadata) says which message the new label corrects."""
    if len(metadata) > MAX_METADATA:
        raise ValueError("a modal's private_metadata holds at most 3,000 characters")
    name: Block = {
        "type": "plain_text_input",
        "action_id": NAME_INPUT,
        "max_length": name_limit,
        "placeholder": {"type": "plain_text", "text": "e.g. crypto_withdrawal"},
    }
    if typed:
        name["initial_value"] = typed[:name_limit]
    description: Block = {
        "type": "plain_text_input",
        "action_id": DESCRIPTION_INPUT,
        "max_length": description_limit,
        "placeholder": {"type": "plain_text", "text": "one line: what messages with this label are about"},
    }
    return {
        "type": "modal",
        "callback_id": NEW_LABEL_VIEW,
        "title": {"type": "plain_text", "text": "New label"[:MAX_TITLE]},
        "submit": {"type": "plain_text", "text": "Create"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": metadata,
        "blocks": [
            context(texts.new_label_intro(task)),
            {
                "type": "input",
                "block_id": NAME_BLOCK,
                "label": {"type": "plain_text", "text": "Name"},
                "hint": {"type": "plain_text", "text": f"No spaces or |, at most {name_limit} characters."},
                "element": name,
            },
            {
                "type": "input",
                "block_id": DESCRIPTION_BLOCK,
                "label": {"type": "plain_text", "text": "Description"},
                "element": description,
            },
        ],
    }


def submitted_value(view: dict[str, Any], block_id: str, action_id: str) -> str:
    """What was typed into one input of a submitted modal ("" when empty)."""
    state = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    return str((state.get(action_id) or {}).get("value") or "")


def proposal_blocks(proposal_id: int, text: str) -> list[Block]:
    """The direct message asking an admin to approve or reject a member's proposed label."""
    value = str(proposal_id)
    return [
        section(text),
        {
            "type": "actions",
            "block_id": f"camel_proposal_{proposal_id}",
            "elements": [
                button("Approve", PROPOSAL_APPROVE, value, "primary"),
                button("Reject", PROPOSAL_REJECT, value, "danger"),
            ],
        },
    ]


def label_change_blocks(preview: str, value: str) -> list[Block]:
    """A label change's preview with Confirm and Cancel (value: the previewed change, for Confirm)."""
    return [
        section(preview),
        {
            "type": "actions",
            "block_id": "camel_label_change",
            "elements": [
                button("Confirm", LABEL_CHANGE_CONFIRM, value, "primary"),
                button("Cancel", LABEL_CHANGE_CANCEL, "cancel"),
            ],
        },
    ]


def home_view(task_sections: list[list[Block]]) -> dict[str, Any]:
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "camel-bot"}},
        context(texts.home_intro()),
    ]
    for part in task_sections:
        blocks.append({"type": "divider"})
        blocks.extend(part)
    return {"type": "home", "blocks": blocks[:100]}


def image_from_file(file_id: str, alt: str, title: str) -> Block:
    return {
        "type": "image",
        "slack_file": {"id": file_id},
        "alt_text": alt,
        "title": {"type": "plain_text", "text": title[:2000]},
    }


@dataclass(frozen=True)
class Message:
    """What chat.postMessage gets for a report: the notification text, the blocks, the thread if any."""

    text: str
    blocks: list[Block]
    thread_ts: str | None = None


def _cut_section(text: str) -> Block:
    return section(text[:MAX_SECTION_TEXT])


def round_report_blocks(report: reports.RoundReport) -> list[Block]:
    """The decision, the metrics side by side, the candidate's abstention figures, per-label changes."""
    result = [_cut_section(f"{report.title}\n*Decision:* {report.decision}")]
    if report.metrics:
        fields = [{"type": "mrkdwn", "text": f"*{f.name}*\n{f.value}"[:MAX_FIELD_TEXT]} for f in report.metrics]
        result.append({"type": "section", "fields": fields[:MAX_FIELDS]})
    if report.abstention:
        result.append(_cut_section("\n".join(report.abstention)))
    if report.label_changes:
        result.append(_cut_section("*Per-label changes*\n" + "\n".join(report.label_changes)))
    return result


def message(report: reports.Report) -> Message:
    """The Slack message of a report of the learning loop (its chart, if any, is uploaded apart)."""
    match report:
        case reports.RoundReport():
            return Message(f"{report.title}: {report.decision}"[:MAX_SECTION_TEXT], round_report_blocks(report))
        case reports.Digest() | reports.Notice():
            return Message(report.text, [_cut_section(report.text)])
        case reports.Question():
            top3 = list(report.top3)
            return Message(texts.ask_text(top3), ask_blocks(report.message_id, report.task, top3), report.thread_ts)
        case _:
            assert_never(report)
