"""Text folded for comparing meaning, not bytes.

Two messages that a person reads as the same text must compare equal: Unicode NFKC turns
full-width letters and digits, ligatures and compatibility forms into their plain forms (a
Chinese or Japanese keyboard types full-width `ＡＢＣ１２３`), case is folded with `casefold`
(which also handles the German sharp s), and every run of whitespace, Unicode spaces included,
becomes one space. Nothing splits words on spaces, so text in scripts written without spaces
(Chinese, Japanese, Thai) folds the same way.

This is for comparison only: digests used for erasure and the feature cache's keys keep hashing
the original text, so a stored text is always found again by its own bytes.
"""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+", re.UNICODE)


def fold(text: str) -> str:
    """The text as it compares for meaning: NFKC, case folded, whitespace runs as one space."""
    normalised = unicodedata.normalize("NFKC", text)
    return _WHITESPACE.sub(" ", normalised.casefold()).strip()
