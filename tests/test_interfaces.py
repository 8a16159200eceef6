"""docs/interfaces.md matches the code: every name it lists can be imported, and every name camel
exports (`camel.__all__`) is listed."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = (Path(__file__).resolve().parents[1] / "docs" / "interfaces.md").read_text()
DOTTED = re.compile(r"\b((?:bot|camel|storage)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def code_block(after: str) -> str:
    start = DOC.index(after)
    return DOC[start : DOC.index("```", start + len(after))]


def resolve(dotted: str) -> object:
    """Import the longest module prefix of `dotted`, then look the rest up as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


def documented_dotted_names() -> list[str]:
    prose = re.sub(r"```.*?```", "", DOC, flags=re.S)  # the code blocks are read below
    spans = re.findall(r"`([^`]+)`", prose)
    # File names such as `camel.db` look dotted too.
    return sorted(
        {name for span in spans for name in DOTTED.findall(span) if not name.endswith((".db", ".py", ".toml"))}
    )


def camel_names() -> list[str]:
    return re.findall(r"^\s{4}([A-Za-z_]+),", code_block("from camel import ("), re.M)


def storage_names() -> list[str]:
    """`module.function` for each function listed (`storage.<module>.<function>`), and the records,
    which the top level of `storage` keeps."""
    block = code_block("```python\n# tasks")
    functions = re.findall(r"(?:^|; )([a-z_]+\.[a-z_]+)\(", block, re.M)
    records = re.findall(r"#\s+([A-Z][A-Za-z]+)\(", block)
    return sorted(set(functions) | set(records))


def test_the_doc_lists_what_this_test_reads() -> None:
    assert len(camel_names()) >= 15 and "Predictor" in camel_names()
    assert {"runs.get_run", "tasks.upsert_task", "Task", "Resolution"} <= set(storage_names())
    assert {"bot.runtime.start", "bot.loop.LearningLoop", "bot.slack.app.build_app"} <= set(documented_dotted_names())


@pytest.mark.parametrize("name", documented_dotted_names())
def test_every_dotted_name_in_the_doc_imports(name: str) -> None:
    resolve(name)


@pytest.mark.parametrize("name", camel_names())
def test_every_camel_name_in_the_doc_imports(name: str) -> None:
    import camel

    assert hasattr(camel, name)


def test_every_name_camel_exports_is_in_the_doc() -> None:
    import camel

    code = re.findall(r"```.*?```", DOC, flags=re.S) + re.findall(
        r"`([^`]+)`", re.sub(r"```.*?```", "", DOC, flags=re.S)
    )
    named = {word for text in code for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)}
    exported = {name for name in camel.__all__ if not name.startswith("__")}
    assert sorted(exported - named) == [], "exported by camel but not in docs/interfaces.md"


@pytest.mark.parametrize("name", storage_names())
def test_every_storage_name_in_the_doc_imports(name: str) -> None:

    resolve(f"storage.{name}")
