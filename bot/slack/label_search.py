"""Which labels a label menu offers for what the person typed: the bot's top guesses first.

Typeahead over names and descriptions, case- and separator-insensitive ("card arr" finds
`card_arrival`). Ranked: the name starts with the query, then a word of the name does, then
the name contains it, then every word of the query is in the name or description; within a
rank the message's top guesses come first, then the task's order. An empty query lists the top
guesses, then every other label.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s_\-./:]+")


def _folded(text: str) -> str:
    return " ".join(_SEPARATORS.sub(" ", text.casefold()).split())


def _rank(query: str, words: list[str], name: str, description: str) -> int | None:
    if not query:
        return 0
    if name.startswith(query):
        return 0
    if any(word.startswith(query) for word in name.split()):
        return 1
    if query in name:
        return 2
    haystack = f"{name} {description}"
    if all(word in haystack for word in words):
        return 3
    return None


def search(
    labels: list[str], descriptions: dict[str, str], query: str, guesses: list[str], limit: int
) -> list[tuple[str, str | None]]:
    """Up to `limit` (label, description) pairs matching `query`, best first."""
    wanted = _folded(query)
    words = wanted.split()
    first = {label: i for i, label in enumerate(g for g in guesses if g in labels)}
    ranked: list[tuple[int, int, int, str]] = []
    for position, label in enumerate(labels):
        rank = _rank(wanted, words, _folded(label), _folded(descriptions.get(label, "")))
        if rank is not None:
            ranked.append((rank, first.get(label, len(first)), position, label))
    ranked.sort()
    return [(label, descriptions.get(label)) for *_, label in ranked[:limit]]
