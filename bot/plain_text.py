"""Slack's message markup reduced to what a reader sees.

Slack sends a message's text in its `mrkdwn` form: a user mention is `<@U024BE7LH>`, a channel
`<#C024BE7LR|general>`, a group or broadcast `<!subteam^S012|@team>` or `<!here>`, a link
`<https://example.com|label>`, and `&`, `<` and `>` are escaped as `&amp;`, `&lt;` and `&gt;`
(Slack's "Formatting text for app surfaces"). Two requests that differ only in whom they mention
or which link they paste are the same request, and the characters of an ID or a URL say nothing
about the language a channel writes in. So a mention or a link becomes a placeholder
(`with_placeholders`, for comparing texts) or disappears (`without_markup`, for reading what the
team wrote, together with `:emoji:` codes).
"""

from __future__ import annotations

import re

# One Slack markup token: <@U…>, <#C…|name>, <!here>, <!subteam^S…|@team>, <https://…|label>.
_ANGLE_TOKEN = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")
_EMOJI_CODE = re.compile(r":[a-z0-9_+\-']+(?:::skin-tone-\d)?:")
_SPACES = re.compile(r"[ \t]+")

USER_PLACEHOLDER = "@user"
CHANNEL_PLACEHOLDER = "#channel"
SPECIAL_PLACEHOLDER = "@group"
LINK_PLACEHOLDER = "link"


def _unescape(text: str) -> str:
    # &amp; last, so an escaped "&amp;lt;" stays the literal "&lt;" the person typed.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _placeholder(match: re.Match[str]) -> str:
    sigil = match.group(1)
    if sigil == "@":
        return USER_PLACEHOLDER
    if sigil == "#":
        return CHANNEL_PLACEHOLDER
    if sigil == "!":
        return SPECIAL_PLACEHOLDER
    return LINK_PLACEHOLDER


def with_placeholders(text: str) -> str:
    """Mentions, channels, groups and links replaced by one placeholder each, entities unescaped."""
    return _unescape(_ANGLE_TOKEN.sub(_placeholder, text))


def without_markup(text: str) -> str:
    """Only what the team typed: markup tokens and :emoji: codes removed, entities unescaped."""
    stripped = _EMOJI_CODE.sub(" ", _ANGLE_TOKEN.sub(" ", text))
    return _SPACES.sub(" ", _unescape(stripped)).strip()
