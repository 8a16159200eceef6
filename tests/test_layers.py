"""The architecture, checked: which package may import which (docs/architecture.md).

Every import statement counts, also those inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bot/'s layers, bottom to top: a module may import its own layer and the ones below it.
LAYERS = [
    ("bot", "bot.settings", "bot.texts", "bot.reports", "bot.errors", "bot.charts", "bot.metrics", "bot.serving"),
    ("bot.slack", "bot.loop"),
    ("bot.runtime",),
    ("bot.cli", "bot.demo", "bot.__main__"),
]
# Within one layer, rooms that must not know each other.
STRANGERS = {"bot.slack": "bot.loop", "bot.loop": "bot.slack"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    return imports_in(path.read_text(), package)


def imports_in(source: str, package: str) -> set[str]:
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from bot import texts`
    return found


def owner(module: str) -> tuple[int, str] | None:
    """(layer index, the layer entry it belongs to) of a bot module; the longest entry wins."""
    best: tuple[int, str] | None = None
    for level, entries in enumerate(LAYERS):
        for entry in entries:
            if module == entry or module.startswith(entry + "."):
                if best is None or len(entry) > len(best[1]):
                    best = (level, entry)
    return best


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_bot_module_has_a_layer() -> None:
    assert all(owner(module_name(p)) is not None for p in sources("bot"))


def problems_of(me: str, targets: set[str]) -> list[str]:
    mine = owner(me)
    assert mine is not None, f"{me} has no layer"
    level, room = mine
    problems = []
    for target in sorted(targets):
        found = owner(target)
        if found is None or target == "bot":
            continue
        if found[0] > level:
            problems.append(f"{me} imports {target}, a layer above it")
        if STRANGERS.get(room) == found[1]:
            problems.append(f"{me} imports {target}: {room} and {found[1]} must not know each other")
    return problems


def test_no_bot_module_imports_a_layer_above_it_and_slack_and_loop_are_strangers() -> None:
    problems = [line for path in sources("bot") for line in problems_of(module_name(path), imported(path))]
    assert problems == []


def test_camel_and_storage_import_neither_each_other_nor_bot() -> None:
    for package, forbidden in (("camel", ("storage", "bot")), ("storage", ("camel", "bot"))):
        for path in sources(package):
            bad = [t for t in imported(path) if t.split(".")[0] in forbidden]
            assert bad == [], f"{module_name(path)} imports {bad}"


def test_the_checker_sees_violations() -> None:
    lazy_upward = "def run():\n    from bot import runtime\n"
    assert problems_of("bot.loop.loop", imports_in(lazy_upward, "bot.loop")) == [
        "bot.loop.loop imports bot.runtime, a layer above it"
    ]
    stranger = "from ..slack import blocks\n"
    assert problems_of("bot.loop.round_report", imports_in(stranger, "bot.loop")) == [
        "bot.loop.round_report imports bot.slack: bot.loop and bot.slack must not know each other",
        "bot.loop.round_report imports bot.slack.blocks: bot.loop and bot.slack must not know each other",
    ]
    assert problems_of("bot.texts", imports_in("import bot.slack.app\n", "bot")) == [
        "bot.texts imports bot.slack.app, a layer above it"
    ]
    assert problems_of("bot.demo.runner", imports_in("from bot.loop import LearningLoop\n", "bot.demo")) == []


# Slack's wire format belongs to bot/slack (bot/slack/blocks.py renders the loop's neutral reports),
# and an import check cannot see a dict literal: these scan bot/loop's syntax for Block Kit itself.
BLOCK_KIT_TYPES = {
    "section", "mrkdwn", "plain_text", "actions", "context", "header", "divider", "image", "button",
    "static_select", "multi_static_select", "external_select", "users_select", "conversations_select",
    "channels_select", "overflow", "input", "plain_text_input", "rich_text", "checkboxes", "radio_buttons",
    "datepicker", "home", "modal", "video", "file",
}  # fmt: skip
BLOCK_KIT_KEYS = {"blocks", "elements", "accessory", "block_id", "action_id", "alt_text", "fields"}
# Slack's size limits: a section's text (3,000), a field's text (2,000), a header (150), a button or
# option text (75), a message's text (40,000), a section's fields (10), a message's blocks (50),
# a select's options and a view's blocks (100).
SLACK_LIMITS = {3000, 2000, 150, 75, 40000, 10, 50, 100}
UNMISTAKABLE_LIMITS = {3000, 40000}  # no other reason for these numbers in the loop


def _int(node: ast.AST | None) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    return None


def block_kit_in(source: str) -> list[str]:
    """Block Kit structures, Slack's words and Slack's size limits in `source`, as "line: what"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                name = key.value if isinstance(key, ast.Constant) else None
                if name == "type" and isinstance(value, ast.Constant) and value.value in BLOCK_KIT_TYPES:
                    found.append(f"{line}: a Block Kit {value.value!r} object")
                elif name in BLOCK_KIT_KEYS:
                    found.append(f"{line}: the Block Kit key {name!r}")
        elif isinstance(node, ast.Call):
            found += [f"{line}: the keyword {k.arg}=" for k in node.keywords if k.arg in BLOCK_KIT_KEYS]
            for k in node.keywords:
                if k.arg == "type" and isinstance(k.value, ast.Constant) and k.value.value in BLOCK_KIT_TYPES:
                    found.append(f"{line}: a Block Kit {k.value.value!r} object")
        elif isinstance(node, ast.Constant) and node.value in ("mrkdwn", "plain_text"):
            found.append(f"{line}: the Block Kit text type {node.value!r}")
        elif isinstance(node, ast.Slice) and _int(node.upper) in SLACK_LIMITS:
            found.append(f"{line}: a cut at Slack's limit {_int(node.upper)}")
        if _int(node) in UNMISTAKABLE_LIMITS:
            found.append(f"{line}: Slack's limit {_int(node)}")
    return sorted(set(found), key=lambda what: (int(what.split(":")[0]), what))


def test_bot_loop_builds_no_block_kit_and_knows_no_slack_limits() -> None:
    found = {module_name(p): block_kit_in(p.read_text()) for p in sources("bot/loop")}
    assert {module: lines for module, lines in found.items() if lines} == {}


def test_the_block_kit_scan_sees_violations() -> None:
    leaked = (
        'def report(text, post):\n'
        '    section = {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}\n'
        '    post("C1", text, blocks=[section, dict(type="divider")])\n'
        '    return {"blocks": [], "elements": []}, text[:75]\n'
    )  # fmt: skip
    assert block_kit_in(leaked) == [
        "2: Slack's limit 3000",
        "2: a Block Kit 'mrkdwn' object",
        "2: a Block Kit 'section' object",
        "2: a cut at Slack's limit 3000",
        "2: the Block Kit text type 'mrkdwn'",
        "3: a Block Kit 'divider' object",
        "3: the keyword blocks=",
        "4: a cut at Slack's limit 75",
        "4: the Block Kit key 'blocks'",
        "4: the Block Kit key 'elements'",
    ]
    neutral = 'REPORT = {"type": "round", "fields": None}\nKEEP = 2000\nexcerpt = "text"[:80]\n'
    assert block_kit_in(neutral) == ["1: the Block Kit key 'fields'"]
