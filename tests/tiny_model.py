"""A tiny, randomly initialised BERT written to a folder, so unit tests run in seconds.

It is a real Hugging Face model folder (config.json, model.safetensors, vocab.txt), loadable
with `AutoModel.from_pretrained(path)` exactly like the shipped MiniLM.
"""

from __future__ import annotations

import re
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Words that the project's own small test data uses; anything else becomes [UNK] or pieces.
BASE_WORDS = (
    "my card has not arrived yet where is it when will new come lost stolen "
    "please help i need to top up money account balance transfer failed pending "
    "refund charged twice fee exchange rate cash withdrawal atm pin blocked "
    "change address verify identity great love awful hate terrible ok fine "
    "the a an is was this that service app support today bad good happy sad "
    "what how why can you do does not no yes thanks hello hi from for of on in to and"
).split()


# Three word-defined intents that the tiny model's vocabulary covers: test data for the bot and
# the learning loop (a text is a few words of its label's list).
INTENT_WORDS = {
    "card_arrival": "card arrived new come when where yet".split(),
    "refund": "refund charged twice fee money failed pending".split(),
    "feelings": "great love awful hate terrible happy sad".split(),
}


def _vocab(words: list[str]) -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    digits = [str(d) for d in range(10)]
    pieces = ["##" + ch for ch in letters + digits]
    punctuation = list(".,!?'\"-:;()@#/&")
    seen: dict[str, None] = {}
    for token in SPECIAL_TOKENS + punctuation + letters + digits + pieces + words:
        seen.setdefault(token, None)
    return list(seen)


def words_in(texts: list[str]) -> list[str]:
    return sorted({w for t in texts for w in re.findall(r"[a-z0-9]+", t.lower())})


def make_tiny_bert(
    folder: Path,
    *,
    extra_words: list[str] | None = None,
    num_layers: int = 3,
    hidden_size: int = 32,
    seed: int = 0,
) -> Path:
    """Write a tiny BERT (random weights, fixed seed) and its tokenizer to `folder`."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    folder.mkdir(parents=True, exist_ok=True)
    vocab = _vocab(BASE_WORDS + list(extra_words or []))
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder
