"""Slack's own published payloads (tests/fixtures/slack/, each naming its source), with ids swapped.

The fixtures are copied verbatim from bolt-python's scenario tests and the Events API reference;
a test changes only the ids (team, channel, user, ts, event id) so they match its setup, here,
never by hand-writing a payload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slack"


def load_payload(name: str, **replace: Any) -> dict[str, Any]:
    """The payload of `<name>.json`; every string field named like a keyword gets that value.

    E.g. `load_payload("message", team_id="T0", channel="C0", user="U0", ts="1.2", event_id="Ev1")`.
    """
    payload = json.loads((FIXTURES / f"{name}.json").read_text())["payload"]
    return _replace(payload, replace)


def _replace(value: Any, replace: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {
            key: replace[key] if key in replace and isinstance(item, str) else _replace(item, replace)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_replace(item, replace) for item in value]
    return value


def load_command_body(**fields: str) -> str:
    """The form body of the published slash command, with the given fields replaced."""
    form = dict(parse_qsl((FIXTURES / "slash_command.txt").read_text().strip(), keep_blank_values=True))
    unknown = set(fields) - set(form)
    if unknown:
        raise KeyError(f"the slash command fixture has no field {sorted(unknown)}")
    form.update(fields)
    return urlencode(form)
