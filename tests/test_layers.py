"""The architecture, checked: which package may import which (docs/architecture.md).

Every import statement counts, also those inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bot/'s layers, bottom to top: a module may import its own layer and the ones below it.
LAYERS = [
    ("bot", "bot.settings", "bot.texts", "bot.errors", "bot.charts", "bot.metrics", "bot.serving"),
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
