"""How much of a channel's writing the base model can read at all.

A base whose tokenizer was built for one language turns the characters of another into its
unknown token (all-MiniLM-L6-v2 reads 74% of Chinese characters as `[UNK]`): such text reaches
the adapter as the same meaningless vector whatever it says, and the bot answers it badly
without a word. A `Reading` counts, over some texts, the characters that fall inside an unknown
token (the tokenizer's offsets map each token back to the characters it came from) and the
scripts the letters belong to, so the bot can say which base a channel needs.

Characters are counted, not tokens: a whole Chinese sentence may be one unknown token in one
tokenizer and twenty in another, while its characters are what a reader sees. Whitespace is not
counted. A WordPiece tokenizer makes a whole word unknown when one of its characters is unknown;
those characters are counted as unreadable too, since the model cannot see that word.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from camel.base import BaseEncoder

# Texts longer than this are read up to it: a reading estimates a share, and one pasted log
# must not cost the tokenizer seconds.
MAX_CHARS_PER_TEXT = 2000
# The first word of a letter's Unicode name that says its script, when it is not the script's
# usual name ("CJK UNIFIED IDEOGRAPH-4E2D" is Han).
_SCRIPT_NAMES = {"CJK": "Han", "HANGUL": "Hangul", "HIRAGANA": "Hiragana", "KATAKANA": "Katakana"}
_WIDTH_PREFIXES = ("FULLWIDTH", "HALFWIDTH")


@dataclass(frozen=True)
class Reading:
    """Characters examined, how many of them the tokenizer cannot represent, and letters by script."""

    texts: int = 0
    characters: int = 0
    unknown: int = 0
    scripts: dict[str, int] = field(default_factory=dict)

    @property
    def unknown_share(self) -> float:
        """Share of the (non-space) characters inside unknown tokens; 0.0 when nothing was read."""
        return self.unknown / self.characters if self.characters else 0.0

    def script_shares(self) -> list[tuple[str, float]]:
        """Scripts of the letters seen, most frequent first, with their share of the letters."""
        letters = sum(self.scripts.values())
        ranked = sorted(self.scripts.items(), key=lambda item: (-item[1], item[0]))
        return [(name, count / letters) for name, count in ranked] if letters else []

    def scripts_text(self, top: int = 3) -> str:
        shares = self.script_shares()
        if not shares:
            return "no letters"
        shown = ", ".join(f"{name} {share:.0%}" for name, share in shares[:top])
        return shown + (f" and {len(shares) - top} more" if len(shares) > top else "")


def script_of(character: str) -> str | None:
    """The script of a letter from its Unicode name (None for digits, punctuation, symbols, spaces)."""
    if not unicodedata.category(character).startswith("L"):
        return None
    words = unicodedata.name(character, "").split()
    while words and words[0] in _WIDTH_PREFIXES:
        words = words[1:]
    if not words:
        return "Unknown"
    return _SCRIPT_NAMES.get(words[0], words[0].title())


def read_texts(base: BaseEncoder, texts: list[str]) -> Reading:
    """How the base's tokenizer reads `texts` (already stripped of markup that is not writing)."""
    characters = unknown = read = 0
    scripts: Counter[str] = Counter()
    for original in texts:
        text = original[:MAX_CHARS_PER_TEXT]
        if not text.strip():
            continue
        read += 1
        unknown_at: set[int] = set()
        for start, end in base.unknown_spans(text):
            unknown_at.update(range(start, min(end, len(text))))
        for index, character in enumerate(text):
            if character.isspace():
                continue
            characters += 1
            unknown += index in unknown_at
            script = script_of(character)
            if script is not None:
                scripts[script] += 1
    return Reading(texts=read, characters=characters, unknown=unknown, scripts=dict(scripts))
