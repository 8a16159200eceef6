"""The frozen, shared bottom of the encoder: tokenizer, embeddings and the lower transformer blocks.

One BaseEncoder per resolved folder per process (`load_base` keeps a registry), so every task's
adapter runs on the same frozen weights in memory. Nothing here is ever trained.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from camel.engines import BottomEngine
from camel.errors import BaseModelError

# model_type in config.json -> (attribute path of the block list, embedding takes token types)
SUPPORTED_MODEL_TYPES: dict[str, tuple[str, ...]] = {
    "bert": ("encoder", "layer"),
    "roberta": ("encoder", "layer"),
    "xlm-roberta": ("encoder", "layer"),
    "distilbert": ("transformer", "layer"),
}
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
# Hashing the head and tail of the weights plus their size tells real models apart without
# reading hundreds of megabytes on every start.
FINGERPRINT_CHUNK = 2 * 1024 * 1024
DEFAULT_MAX_LENGTH = 64  # same as CamelConfig.max_length's default

_registry: dict[str, "BaseEncoder"] = {}
_registry_lock = threading.Lock()


@dataclass
class BottomOutput:
    """Hidden states leaving the frozen bottom, padded to the longest text of the batch."""

    hidden: torch.Tensor  # [batch, tokens, hidden] float32
    mask: torch.Tensor  # [batch, tokens] long, 1 = real token
    lengths: list[int]


class BaseEncoder:
    """Tokenizer + frozen encoder of one local Hugging Face folder."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.model_type = _read_model_type(self.path)
        self.fingerprint = compute_fingerprint(self.path)
        self.tokenizer, self.model = _load_tokenizer_and_model(self.path)
        self._tokenizer_lock = threading.Lock()
        self.model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.blocks: nn.ModuleList = _block_list(self.model, self.model_type)
        self.num_layers = len(self.blocks)
        self.hidden_size = int(self.model.config.hidden_size)

    def __copy__(self) -> "BaseEncoder":
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> "BaseEncoder":
        # The base is frozen and shared by every adapter; copying an adapter must never copy it.
        return self

    def __repr__(self) -> str:
        return f"BaseEncoder({self.path!r}, {self.model_type}, layers={self.num_layers})"

    def tokenize(self, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
        # A fast tokenizer changes its padding/truncation state on each call, and two threads doing
        # that at once fail with "Already borrowed"; tokenizing is cheap, so it is serialised.
        # Lone surrogates (invalid UTF-8 from a command line, decoded with surrogateescape) make
        # the Rust tokenizer raise TypeError; each becomes "?" (the cache key still sees the original).
        clean = [
            text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8", "replace") for text in texts
        ]
        with self._tokenizer_lock:
            encoded: dict[str, torch.Tensor] = self.tokenizer(
                clean, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            return encoded

    def unknown_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans [start, end) of `text` that the tokenizer maps to its unknown token."""
        unknown_id = self.tokenizer.unk_token_id
        if unknown_id is None:  # a byte-level tokenizer represents every character
            return []
        clean = text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8", "replace")
        if not getattr(self.tokenizer, "is_fast", False):
            # Without offsets, each character is asked alone (slow tokenizers are rare: every
            # supported folder ships a tokenizer.json).
            with self._tokenizer_lock:
                return [
                    (i, i + 1)
                    for i, ch in enumerate(clean)
                    if not ch.isspace() and unknown_id in self.tokenizer(ch, add_special_tokens=False)["input_ids"]
                ]
        with self._tokenizer_lock:
            encoded = self.tokenizer(clean, add_special_tokens=False, return_offsets_mapping=True)
        return [
            (int(start), int(end))
            for token, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"])
            if token == unknown_id
        ]

    def attention_mask(self, hidden: torch.Tensor, mask: torch.Tensor) -> Any:
        """The mask in the form the blocks' attention implementation expects (None = no padding)."""
        if bool(mask.all()):
            # No padding (every single message): nothing to mask, and building one costs more than the check.
            return None
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden, attention_mask=mask)

    def run_blocks(self, blocks: nn.ModuleList, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Run `blocks` (the base's own or an adapter's copies) over hidden states."""
        prepared = self.attention_mask(hidden, mask)
        for block in blocks:
            output = block(hidden, prepared)
            hidden = output[0] if isinstance(output, tuple) else output
        return hidden

    @torch.inference_mode()
    def bottom(
        self,
        texts: list[str],
        split_layer: int,
        max_length: int = DEFAULT_MAX_LENGTH,
        engine: BottomEngine | None = None,
    ) -> BottomOutput:
        """Embeddings and blocks [0, split_layer) for a batch of texts, run by `engine` (default torch-fp32)."""
        if not 0 <= split_layer <= self.num_layers:
            raise BaseModelError(f"split layer {split_layer} outside 0..{self.num_layers} for {self.path}")
        encoded = self.tokenize(texts, max_length)
        mask = encoded["attention_mask"]
        hidden = (engine or BottomEngine()).hidden(self, encoded["input_ids"], mask, split_layer)
        return BottomOutput(hidden=hidden, mask=mask, lengths=[int(n) for n in mask.sum(dim=1)])


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[batch, hidden] mean of each text's real-token states (padding excluded): MiniLM's own pooling."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def load_base(path: str) -> BaseEncoder:
    """The BaseEncoder of `path`, loaded once per process (same resolved path -> same object)."""
    resolved = os.path.realpath(path)
    with _registry_lock:
        if resolved not in _registry:
            _registry[resolved] = BaseEncoder(resolved)
        return _registry[resolved]


def release_base(path: str) -> bool:
    """Forget the process's BaseEncoder of `path` (its memory is freed once no adapter holds it);
    False if none was loaded. For a base no task uses any more after a base change."""
    with _registry_lock:
        return _registry.pop(os.path.realpath(path), None) is not None


def compute_fingerprint(path: str) -> str:
    """sha256 of config.json, the tokenizer files, and the size, head and tail of the weights."""
    digest = hashlib.sha256()
    for name in ("config.json",) + TOKENIZER_FILES:
        file_path = os.path.join(path, name)
        if os.path.isfile(file_path):
            digest.update(name.encode())
            with open(file_path, "rb") as handle:
                digest.update(handle.read())
    weights = os.path.join(path, WEIGHTS_FILE)
    size = os.path.getsize(weights)
    digest.update(str(size).encode())
    with open(weights, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_CHUNK))
        handle.seek(max(0, size - FINGERPRINT_CHUNK))
        digest.update(handle.read(FINGERPRINT_CHUNK))
    return digest.hexdigest()


def _read_model_type(path: str) -> str:
    config_path = os.path.join(path, "config.json")
    if not os.path.isdir(path):
        raise BaseModelError(f"base model folder not found: {path}")
    if not os.path.isfile(config_path):
        raise BaseModelError(f"base model folder has no config.json: {path}")
    try:
        with open(config_path, encoding="utf-8") as handle:
            model_type = json.load(handle).get("model_type", "")
    except (OSError, ValueError, AttributeError) as exc:
        raise BaseModelError(f"unreadable config.json in {path}: {exc}") from exc
    if model_type not in SUPPORTED_MODEL_TYPES:
        supported = ", ".join(SUPPORTED_MODEL_TYPES)
        raise BaseModelError(f"{path} is not a supported encoder (model_type {model_type!r}; expected {supported})")
    if not os.path.isfile(os.path.join(path, WEIGHTS_FILE)):
        raise BaseModelError(f"base model folder has no {WEIGHTS_FILE} (only safetensors weights are loaded): {path}")
    return str(model_type)


def _load_tokenizer_and_model(path: str) -> tuple[Any, Any]:  # Hugging Face objects: typed per architecture
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BaseModelError(f"cannot load base model from {path}: {first_line}") from exc
    return tokenizer, model


def _block_list(model: nn.Module, model_type: str) -> nn.ModuleList:
    owner: Any = model
    for attribute in SUPPORTED_MODEL_TYPES[model_type]:
        owner = getattr(owner, attribute, None)
    if not isinstance(owner, nn.ModuleList):
        where = ".".join(SUPPORTED_MODEL_TYPES[model_type])
        raise BaseModelError(f"{type(model).__name__} has no transformer block list at {where}")
    return owner
