"""Cache of the frozen bottom's hidden states, so retrains run only the top K blocks and the head.

Entries are float16 token states trimmed to each text's real length, keyed by
sha256(base fingerprint, split layer, max_length, precision of the bottom, text). Memory holds at
most `max_entries`; the oldest entries are dropped first (they stay on disk once flushed). The disk form is a folder of
append-only safetensors shards: every process writes new shards under a unique name through an
atomic rename and never rewrites one, so the bot and a training child can share the folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from camel.base import BaseEncoder, BottomOutput
from camel.errors import CacheError

log = logging.getLogger(__name__)

SHARD_SUFFIX = ".safetensors"
COMPUTE_BATCH = 64
DEFAULT_MAX_ENTRIES = 50_000  # about 0.75 GB of MiniLM states at 20 tokens per text


class FeatureCache:
    """Memory dict + optional disk folder of bottom hidden states for one base encoder."""

    def __init__(self, base: BaseEncoder, directory: str | None = None, *, bf16: bool = False,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.base = base
        self.directory = os.path.abspath(directory) if directory else None
        self.bf16 = bf16
        self.max_entries = max(1, max_entries)
        self._memory: dict[str, torch.Tensor] = {}
        self._pending: dict[str, torch.Tensor] = {}
        self._on_disk: dict[str, str] = {}  # key -> shard path, from shard headers
        self._scanned: set[str] = set()
        self._lock = threading.RLock()
        if self.directory:
            os.makedirs(self.directory, exist_ok=True)
            self.refresh()

    def __len__(self) -> int:
        with self._lock:
            return len(set(self._memory) | set(self._on_disk))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def key(self, text: str, split_layer: int, max_length: int) -> str:
        digest = hashlib.sha256()
        precision = "bf16" if self.bf16 else "fp32"
        for part in (self.base.fingerprint, str(split_layer), str(max_length), precision, text):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
        return digest.hexdigest()

    def states(self, texts: list[str], split_layer: int, max_length: int) -> list[torch.Tensor]:
        """float16 [length, hidden] per text, computing (and remembering) the ones not cached."""
        keys = [self.key(text, split_layer, max_length) for text in texts]
        found = self._lookup(keys)
        # Similar lengths in one bottom batch waste less work on padding.
        missing = sorted({key: i for i, key in enumerate(keys) if key not in found}.values(),
                         key=lambda i: len(texts[i]))
        for start in range(0, len(missing), COMPUTE_BATCH):
            chunk = missing[start:start + COMPUTE_BATCH]
            output = self.base.bottom([texts[i] for i in chunk], split_layer, max_length, self.bf16)
            for row, index in enumerate(chunk):
                found[keys[index]] = self._remember(keys[index], output, row)
        return [found[key] for key in keys]

    def batch(self, texts: list[str], split_layer: int, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded float32 hidden states and the attention mask for a batch of texts."""
        return pad_states(self.states(texts, split_layer, max_length))

    def flush(self) -> int:
        """Write pending entries to a new shard; returns how many were written."""
        with self._lock:
            if not self.directory or not self._pending:
                return 0
            pending = dict(self._pending)
            name = f"{os.getpid()}-{uuid.uuid4().hex}{SHARD_SUFFIX}"
            final_path = os.path.join(self.directory, name)
            temp_path = os.path.join(self.directory, f".tmp-{name}")
            try:
                save_file(pending, temp_path)
                _fsync_file(temp_path)
                os.replace(temp_path, final_path)
            except (OSError, SafetensorError) as exc:
                if os.path.exists(temp_path):
                    os.remove(temp_path)
                raise CacheError(f"cannot write feature-cache shard in {self.directory}: {exc}") from exc
            for key in pending:
                self._on_disk[key] = final_path
                self._pending.pop(key, None)
            self._scanned.add(final_path)
            return len(pending)

    def refresh(self) -> int:
        """Index shards written since the last scan (by this or another process)."""
        if not self.directory:
            return 0
        with self._lock:
            new_shards = [os.path.join(self.directory, name) for name in sorted(os.listdir(self.directory))
                          if name.endswith(SHARD_SUFFIX) and not name.startswith(".")]
            new_shards = [path for path in new_shards if path not in self._scanned]
            for path in new_shards:
                self._scanned.add(path)
                try:
                    keys = _shard_keys(path)
                except CacheError as exc:
                    # Cached states are derived data: a damaged shard is skipped and recomputed.
                    log.warning("%s", exc)
                    continue
                for key in keys:
                    self._on_disk.setdefault(key, path)
            return len(new_shards)

    def _lookup(self, keys: list[str]) -> dict[str, torch.Tensor]:
        with self._lock:
            if self.directory and any(k not in self._memory and k not in self._on_disk for k in keys):
                self.refresh()
            wanted: dict[str, list[str]] = {}
            for key in keys:
                if key not in self._memory and key in self._on_disk:
                    wanted.setdefault(self._on_disk[key], []).append(key)
            for path, shard_keys in wanted.items():
                self._load_from_shard(path, shard_keys)
            found = {key: self._memory[key] for key in keys if key in self._memory}
            self._evict()
            return found

    def _load_from_shard(self, path: str, keys: list[str]) -> None:
        """Read only `keys` from a shard (safetensors reads lazily from the mapped file)."""
        try:
            with safe_open(path, framework="pt") as shard:
                for key in keys:
                    self._memory[key] = shard.get_tensor(key)
        except (OSError, SafetensorError) as exc:
            log.warning("skipping unreadable feature-cache shard %s: %s", path, exc)
            for key in [k for k, shard_path in self._on_disk.items() if shard_path == path]:
                del self._on_disk[key]

    def _remember(self, key: str, output: BottomOutput, row: int) -> torch.Tensor:
        states = output.hidden[row, : output.lengths[row]].to(torch.float16).clone()
        with self._lock:
            if key not in self._memory:
                self._memory[key] = states
                if self.directory and key not in self._on_disk:
                    self._pending[key] = states
                self._evict()
            return self._memory.get(key, states)

    def _evict(self) -> None:
        """Keep memory bounded; pending entries are written first so eviction never loses work."""
        if len(self._memory) <= self.max_entries:
            return
        if self._pending:
            self.flush()
        excess = len(self._memory) - self.max_entries
        for key in list(self._memory)[:excess]:
            if key not in self._pending:
                del self._memory[key]


def pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length float16 states into a zero-padded float32 batch and its mask."""
    longest = max(state.shape[0] for state in states)
    hidden = torch.zeros(len(states), longest, states[0].shape[1], dtype=torch.float32)
    mask = torch.zeros(len(states), longest, dtype=torch.long)
    for row, state in enumerate(states):
        hidden[row, : state.shape[0]] = state
        mask[row, : state.shape[0]] = 1
    return hidden, mask


def _shard_keys(path: str) -> list[str]:
    try:
        with safe_open(path, framework="pt") as shard:
            return list(shard.keys())
    except (OSError, SafetensorError) as exc:
        raise CacheError(f"corrupt feature-cache shard {path}: {exc}") from exc


def _fsync_file(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
