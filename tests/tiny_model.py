"""A tiny, randomly initialised BERT written to a folder, so unit tests run in seconds.

It is a real Hugging Face model folder (config.json, model.safetensors, vocab.txt), loadable
with `AutoModel.from_pretrained(path)` exactly like the shipped MiniLM.
"""

from __future__ import annotations

import random
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


# The same three intents written in Chinese (no spaces between words): test data for a
# multilingual base, and label descriptions the zero-shot guesser reads.
ZH_INTENT_WORDS = {
    "card_arrival": ["卡", "还没", "到", "新卡", "什么时候", "寄", "哪里", "收到"],
    "refund": ["退款", "扣了", "两次", "费用", "钱", "失败", "处理中"],
    "feelings": ["很好", "喜欢", "糟糕", "讨厌", "开心", "难过", "太差"],
}
ZH_FILLER = ["我的", "请", "帮我", "查一下", "你们", "是", "了", "吗", "谢谢", "今天", "客服"]
XLMR_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4, as in XLM-RoBERTa


def zh_sentence(label: str, rng: random.Random) -> str:
    words = [rng.choice(ZH_INTENT_WORDS[label]) for _ in range(rng.randint(2, 4))]
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words) + 1), rng.choice(ZH_FILLER))
    return "".join(words)


def tokenizer_corpus(seed: int = 0, per_label: int = 60) -> list[str]:
    """A few hundred Chinese and English sentences over the test intents' words (and the base words)."""
    rng = random.Random(seed)
    sentences = []
    for label in sorted(INTENT_WORDS):
        for _ in range(per_label):
            sentences.append(zh_sentence(label, rng))
            sentences.append(" ".join(rng.choice(INTENT_WORDS[label]) for _ in range(rng.randint(3, 6))))
            sentences.append(" ".join(rng.choice(BASE_WORDS) for _ in range(rng.randint(3, 8))))
    sentences += list(BASE_WORDS) + [w for words in ZH_INTENT_WORDS.values() for w in words] + ZH_FILLER
    return sentences


def make_tiny_xlmr(
    folder: Path,
    *,
    num_layers: int = 3,
    hidden_size: int = 32,
    seed: int = 0,
    vocab_size: int = 600,
) -> Path:
    """Write a tiny random XLM-RoBERTa whose Unigram (sentencepiece-style) tokenizer.json is trained
    here on Chinese and English sentences, like the multilingual bases a team would download."""
    import torch
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from tokenizers.trainers import UnigramTrainer
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(Unigram())
    # What sentencepiece does for XLM-R: NFKC, spaces become "▁" (no splitting on spaces is assumed).
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = UnigramTrainer(
        vocab_size=vocab_size, special_tokens=XLMR_SPECIAL_TOKENS, unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator(tokenizer_corpus(seed), trainer=trainer)
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    wrapped = XLMRobertaTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    wrapped.save_pretrained(folder)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=130,  # 128 tokens + the two positions RoBERTa reserves for padding
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
    )
    XLMRobertaModel(config).save_pretrained(folder, safe_serialization=True)
    return folder
