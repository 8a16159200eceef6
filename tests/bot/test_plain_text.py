"""Slack markup reduced to placeholders or removed; texts folded for comparison."""

from __future__ import annotations

from bot.plain_text import with_placeholders, without_markup
from camel.text_norm import fold


def test_mentions_channels_groups_and_links_become_one_placeholder_each() -> None:
    text = "<@U024BE7LH> in <#C024BE7LR|general>: <!here> see <https://example.com/x?a=1|the form> <!subteam^S012|@ops>"
    assert with_placeholders(text) == "@user in #channel: @group see link @group"


def test_two_requests_that_differ_only_in_whom_they_mention_compare_equal() -> None:
    first = "<@U111> my card has not arrived"
    second = "<@U222AAAA>   My card has NOT arrived"
    assert fold(with_placeholders(first)) == fold(with_placeholders(second))


def test_escaped_entities_are_what_the_person_typed() -> None:
    assert with_placeholders("a &lt; b &amp;&amp; c &gt; d") == "a < b && c > d"
    assert with_placeholders("&amp;lt;") == "&lt;"


def test_without_markup_keeps_only_the_typed_words() -> None:
    text = "<@U024BE7LH> 我的卡还没到 :sob: <https://example.com|link> :+1::skin-tone-2:"
    assert without_markup(text) == "我的卡还没到"


def test_fold_maps_full_width_forms_case_and_unicode_spaces() -> None:
    assert fold("ＣＡＲＤ\u3000１２３\n\tArrived") == "card 123 arrived"
    assert fold("Straße") == fold("STRASSE")


def test_fold_does_not_split_text_written_without_spaces() -> None:
    assert fold("我的卡还没到") == "我的卡还没到"
