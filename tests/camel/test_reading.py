"""What share of a text's characters a base's tokenizer cannot represent, and the scripts seen."""

from __future__ import annotations

import random
from pathlib import Path

import camel
from camel.reading import read_texts, script_of
from tests.tiny_model import ZH_INTENT_WORDS, zh_sentence


def test_an_english_tokenizer_reads_chinese_as_unknown_and_english_fully(tiny_bert_dir: Path) -> None:
    base = camel.load_base(str(tiny_bert_dir))
    chinese = read_texts(base, ["我的卡还没到", "退款 失败"])
    assert (chinese.characters, chinese.unknown) == (10, 10)  # the space is not a character read
    assert chinese.unknown_share == 1.0 and chinese.scripts == {"Han": 10}
    english = read_texts(base, ["where is my card", "refund charged twice"])
    assert english.unknown == 0 and english.scripts == {"Latin": len("whereismycardrefundchargedtwice")}


def test_unknown_characters_are_found_where_they_are(tiny_bert_dir: Path) -> None:
    base = camel.load_base(str(tiny_bert_dir))
    text = "card 卡 arrived"
    spans = base.unknown_spans(text)
    assert [text[start:end] for start, end in spans] == ["卡"]
    mixed = read_texts(base, [text])
    assert (mixed.characters, mixed.unknown) == (12, 1)
    assert mixed.script_shares() == [("Latin", 11 / 12), ("Han", 1 / 12)]


def test_a_multilingual_unigram_tokenizer_reads_its_own_languages(tiny_xlmr_dir: Path) -> None:
    base = camel.load_base(str(tiny_xlmr_dir))
    assert base.model_type == "xlm-roberta"
    rng = random.Random(7)
    sentences = [zh_sentence(label, rng) for label in sorted(ZH_INTENT_WORDS) for _ in range(5)]
    assert read_texts(base, sentences + ["where is my card"]).unknown == 0
    # Letters it never saw are unknown to it too: the reading is of this tokenizer, not of a script.
    cyrillic = read_texts(base, ["где моя карта"])
    assert cyrillic.unknown_share == 1.0 and cyrillic.scripts == {"Cyrillic": 11}


def test_scripts_come_from_unicode_names() -> None:
    assert [script_of(c) for c in "aЖ中かカ한ا"] == [
        "Latin",
        "Cyrillic",
        "Han",
        "Hiragana",
        "Katakana",
        "Hangul",
        "Arabic",
    ]
    assert script_of("Ａ") == "Latin"  # full-width forms count as their script
    assert [script_of(c) for c in "1,？ 😀"] == [None] * 5


def test_nothing_to_read_is_a_zero_share_not_an_error(tiny_bert_dir: Path) -> None:
    base = camel.load_base(str(tiny_bert_dir))
    empty = read_texts(base, ["", "   "])
    assert (empty.texts, empty.characters, empty.unknown_share) == (0, 0, 0.0)
    assert empty.scripts_text() == "no letters"
