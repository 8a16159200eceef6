"""Slack's own published payloads (tests/fixtures/slack/), with the test's ids put in.

Each JSON fixture is {"_source": where it was copied from, "payload": the body as published}.
`load_payload(name, **replace)` returns the payload with every field named like a keyword
replaced, at any depth, where the published value has the same JSON type (a string id stays a
string, the `team` object of an interactivity payload stays an object). Only ids and the
message text are replaced; the shape of each payload stays Slack's.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slack"


def _replace(node: Any, replace: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in replace and type(replace[key]) is type(value):
                out[key] = copy.deepcopy(replace[key])
            else:
                out[key] = _replace(value, replace)
        return out
    if isinstance(node, list):
        return [_replace(item, replace) for item in node]
    return node


def source_of(name: str) -> str:
    return str(json.loads((FIXTURES / f"{name}.json").read_text())["_source"])


def load_payload(name: str, **replace: Any) -> dict[str, Any]:
    """The published payload `name` with the named fields replaced everywhere they occur."""
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    payload = fixture["payload"]
    unknown = [key for key in replace if not _has_key(payload, key)]
    if unknown:
        raise KeyError(f"{name} has no field {unknown[0]!r} to replace")
    return dict(_replace(payload, replace))


def _has_key(node: Any, key: str) -> bool:
    if isinstance(node, dict):
        return key in node or any(_has_key(v, key) for v in node.values())
    if isinstance(node, list):
        return any(_has_key(v, key) for v in node)
    return False


def load_command_body(**fields: str) -> str:
    """The published slash-command form body with `fields` replaced (only fields it has)."""
    form = dict(parse_qsl((FIXTURES / "slash_command.txt").read_text().strip(), keep_blank_values=True))
    unknown = set(fields) - set(form)
    if unknown:
        raise KeyError(f"the slash command body has no field {sorted(unknown)[0]!r}")
    form.update(fields)
    return urlencode(form)
