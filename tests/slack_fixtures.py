"""Slack's own published payloads (tests/fixtures/slack/), with the test's ids put in.

Each JSON fixture is {"_source": where it was copied from, "payload": the body as published}.
`load_payload(name, **replace)` returns the payload with every field named like a keyword
replaced, at any depth, where the published value is a string (ids, ts, text) or has the same
JSON type as the new value (the `team` object of an interactivity payload stays an object,
`event_time` stays a number). The shape of each payload stays Slack's. (The same API as the
loader on branch slack-a, whose rule is the string half of this one.)
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
            if key in replace and (isinstance(value, str) or type(replace[key]) is type(value)):
                out[key] = copy.deepcopy(replace[key])
            else:
                out[key] = _replace(value, replace)
        return out
    if isinstance(node, list):
        return [_replace(item, replace) for item in node]
    return node


def load_payload(name: str, **replace: Any) -> dict[str, Any]:
    """The published payload `name` with the named fields replaced everywhere they occur."""
    payload = json.loads((FIXTURES / f"{name}.json").read_text())["payload"]
    return dict(_replace(payload, replace))


def load_command_body(**fields: str) -> str:
    """The published slash-command form body with `fields` replaced (only fields it has)."""
    form = dict(parse_qsl((FIXTURES / "slash_command.txt").read_text().strip(), keep_blank_values=True))
    unknown = set(fields) - set(form)
    if unknown:
        raise KeyError(f"the slash command body has no field {sorted(unknown)[0]!r}")
    form.update(fields)
    return urlencode(form)


def load_ssl_check_body() -> str:
    """The form Slack posts to check the request URL's certificate, as bolt-python's tests send it."""
    return (FIXTURES / "ssl_check.txt").read_text().strip()
