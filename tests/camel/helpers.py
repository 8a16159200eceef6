"""Small labelled data and model-folder helpers for the camel tests."""

from __future__ import annotations

import shutil
from pathlib import Path

INTENTS = {
    "card_arrival": [
        "my card has not arrived yet",
        "where is my new card",
        "when will my card come",
        "card has not arrived",
        "new card not arrived yet",
        "where is it my card",
    ],
    "lost_card": [
        "my card was lost",
        "card lost please help",
        "my card was stolen",
        "lost card blocked",
        "stolen card please help",
        "i lost my card today",
    ],
    "top_up": [
        "top up failed",
        "top up pending",
        "i need to top up my account",
        "top up money failed",
        "can you top up my balance",
        "top up is pending today",
    ],
    "refund": [
        "refund please",
        "charged twice refund",
        "i need a refund",
        "refund for this fee",
        "where is my refund",
        "refund pending charged twice",
    ],
}


def dataset() -> tuple[list[str], list[str]]:
    texts = [text for examples in INTENTS.values() for text in examples]
    labels = [label for label, examples in INTENTS.items() for _ in examples]
    return texts, labels


# probe_finetune: these tests exercise the training loop, so the closed-form start is fine-tuned.
FAST_ARGS = dict(max_epochs=4, batch_size=8, val_fraction=0.0, num_threads=1, probe_finetune=True)


def copy_tokenizer(source: Path, target: Path) -> None:
    """Give a model folder built in a test the tiny BERT's tokenizer files."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.name not in ("config.json", "model.safetensors"):
            shutil.copy(path, target / path.name)


def vocab_size(folder: Path) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(folder))


def reseal(folder: Path) -> None:
    """Rewrite an adapter folder's manifest after a test edited its files on purpose, so the
    checks behind the manifest (shapes, label lists, safetensors parsing) are reached."""
    import json

    from camel.adapter_io import _sha256

    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"] = {name: _sha256(str(folder / name)) for name in manifest["files"]}
    manifest_path.write_text(json.dumps(manifest))
