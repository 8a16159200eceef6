"""Cache of the frozen bottom's hidden states, so retrains run only the top K blocks and the head.

Entries are float16 token states trimmed to each text's real length, keyed by
"<sha256 of the text>-<hash of base fingerprint, split layer, max_length, precision>": the text's
digest comes first so a deleted text's entries can be found (`forget`, `compact`) from its digest
alone, which is all the deletion list holds. Memory holds at most `max_entries`, least recently
used dropped first (they stay on disk once flushed). The disk form is a folder of safetensors
shards: every process writes new shards under a unique name through an atomic rename, so the bot
and a training child can share the folder; only `compact` rewrites shards, under a file lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from camel.base import BaseEncoder, BottomOutput
from camel.private_files import FILE_MODE, fsync_path, make_private_dirs
from camel.errors import CacheError

log = logging.getLogger(__name__)

SHARD_SUFFIX = ".safetensors"
COMPUTE_BATCH = 64
DEFAULT_MAX_ENTRIES = 50_000  # about 0.75 GB of MiniLM states at 20 tokens per text
COMPACT_SHARD_BYTES = 256 << 20  # compaction writes shards of about this size
LOCK_FILE = ".compact.lock"
_DIGEST_LENGTH = 64
_TAG_LENGTH = 16
_VARIANT_LENGTH = 16


def text_digest(text: str) -> str:
    """sha256 of the text (UTF-8, lone surrogates kept): what the deletion list records.

    storage.text_sha256 is the same function (camel and storage never import each other)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def base_tag(fingerprint: str) -> str:
    """The short form of a base fingerprint that every cache key carries."""
    return fingerprint[:_TAG_LENGTH]


def _base_tag_of(key: str) -> str | None:
    """The base tag inside a key; None for a key written before keys carried it."""
    _digest, _dash, rest = key.partition("-")
    return rest[:_TAG_LENGTH] if len(rest) == _TAG_LENGTH + _VARIANT_LENGTH else None


def _digest_of(key: str) -> str | None:
    """The text digest inside a key, or None for a key of the old format (a bare sha256)."""
    digest, dash, _variant = key.partition("-")
    return digest if dash and len(digest) == _DIGEST_LENGTH else None


@dataclass(frozen=True)
class CompactionReport:
    shards_before: int
    shards_after: int
    entries_kept: int
    entries_removed: int
    bytes_before: int
    bytes_after: int


class FeatureCache:
    """Memory dict + optional disk folder of bottom hidden states for one base encoder."""

    def __init__(
        self,
        base: BaseEncoder,
        directory: str | None = None,
        *,
        bf16: bool = False,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.base = base
        self.directory = os.path.abspath(directory) if directory else None
        self.bf16 = bf16
        self.max_entries = max(1, max_entries)
        self._memory: dict[str, torch.Tensor] = {}  # insertion order = least recently used first
        self._pending: dict[str, torch.Tensor] = {}
        self._on_disk: dict[str, str] = {}  # key -> shard path, from shard headers
        self._scanned: set[str] = set()
        self._forgotten: set[str] = set()  # text digests that must never be served or stored
        self._last_used: dict[str, float] = {}  # key -> time.time() of its last use here
        self._lock = threading.RLock()
        if self.directory:
            try:
                make_private_dirs(self.directory)
            except OSError as exc:
                raise CacheError(f"cannot use feature-cache folder {self.directory}: {exc.strerror or exc}") from exc
            self.refresh()

    def __len__(self) -> int:
        with self._lock:
            return len(set(self._memory) | set(self._on_disk))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def key(self, text: str, split_layer: int, max_length: int) -> str:
        variant = hashlib.sha256()
        precision = "bf16" if self.bf16 else "fp32"
        for part in (self.base.fingerprint, str(split_layer), str(max_length), precision):
            variant.update(part.encode("utf-8"))
            variant.update(b"\x00")
        # The base's tag in clear, so a compaction can drop the states of a base no task uses.
        return f"{text_digest(text)}-{base_tag(self.base.fingerprint)}{variant.hexdigest()[:_VARIANT_LENGTH]}"

    def states(self, texts: list[str], split_layer: int, max_length: int) -> list[torch.Tensor]:
        """float16 [length, hidden] per text, computing (and remembering) the ones not cached."""
        keys = [self.key(text, split_layer, max_length) for text in texts]
        found = self._lookup(keys)
        # Similar lengths in one bottom batch waste less work on padding.
        missing = sorted(
            {key: i for i, key in enumerate(keys) if key not in found}.values(), key=lambda i: len(texts[i])
        )
        for start in range(0, len(missing), COMPUTE_BATCH):
            chunk = missing[start : start + COMPUTE_BATCH]
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
            final_path = self._write_shard(pending)
            for key in pending:
                self._on_disk[key] = final_path
                self._pending.pop(key, None)
            self._scanned.add(final_path)
            return len(pending)

    def refresh(self) -> int:
        """Index shards written since the last scan (by this or another process), and forget
        shards that a compaction removed; returns how many new shards were indexed."""
        if not self.directory:
            return 0
        with self._lock:
            present = set(self._shard_paths())
            removed = self._scanned - present
            if removed:
                self._on_disk = {k: p for k, p in self._on_disk.items() if p not in removed}
                self._scanned -= removed
            new_shards = sorted(present - self._scanned)
            for path in new_shards:
                self._scanned.add(path)
                try:
                    keys = _shard_keys(path)
                except CacheError as exc:
                    # Cached states are derived data: a damaged shard is skipped and recomputed.
                    log.warning("%s", exc)
                    continue
                for key in keys:
                    if not self._is_forgotten(key):
                        self._on_disk.setdefault(key, path)
            return len(new_shards)

    def forget(self, digests: Iterable[str]) -> int:
        """Drop every entry of these text digests (memory, pending, disk index) and never serve
        or store them again in this process; returns how many entries were dropped. Their bytes
        leave the disk at the next `compact`."""
        with self._lock:
            self._forgotten.update(digests)
            dropped: set[str] = set()
            for table in (self._memory, self._pending, self._on_disk, self._last_used):
                doomed = [key for key in table if self._is_forgotten(key)]
                for key in doomed:
                    del table[key]
                dropped.update(doomed)
            return len(dropped)

    def disk_bytes(self) -> int:
        """Bytes the shards take on disk now (for doctor and the size cap)."""
        total = 0
        for path in self._shard_paths():
            try:
                total += os.path.getsize(path)
            except OSError:
                continue  # removed by a compaction meanwhile
        return total

    def compact(
        self,
        forgotten: Iterable[str] = (),
        *,
        max_bytes: int | None = None,
        keep_bases: Iterable[str] | None = None,
    ) -> CompactionReport:
        """Rewrite the shards without forgotten texts and without keys of an old format, keeping
        at most `max_bytes` of states, most recently used first (use in this process, else the
        shard's time). `keep_bases`: the fingerprints of the bases still in use; the states of any
        other base (and keys without a base tag) are dropped (None: keep every base). Holds the
        cache's lock and a file lock, so one compaction runs at a time; shards that other
        processes write meanwhile are left as they are."""
        if not self.directory:
            return CompactionReport(0, 0, 0, 0, 0, 0)
        with self._lock, _file_lock(os.path.join(self.directory, LOCK_FILE)):
            self.forget(forgotten)
            self.flush()
            self.refresh()
            shards = self._shard_paths()
            bytes_before = self.disk_bytes()
            tags = None if keep_bases is None else {base_tag(f) for f in keep_bases} | {base_tag(self.base.fingerprint)}
            entries, total = self._live_entries(shards, tags)
            ranked = sorted(entries, key=lambda key: entries[key][2], reverse=True)
            kept: list[str] = []
            size = 0
            for key in ranked:
                if max_bytes is not None and size + entries[key][1] > max_bytes:
                    continue
                kept.append(key)
                size += entries[key][1]
            written = self._rewrite(kept, entries)
            for path in shards:
                os.remove(path)
                self._scanned.discard(path)
            self._on_disk = {k: p for k, p in self._on_disk.items() if p not in shards}
            self._on_disk.update(written)
            self._scanned.update(written.values())
            fsync_path(self.directory)
            return CompactionReport(
                shards_before=len(shards),
                shards_after=len(set(written.values())),
                entries_kept=len(kept),
                entries_removed=total - len(kept),
                bytes_before=bytes_before,
                bytes_after=self.disk_bytes(),
            )

    def _live_entries(
        self, shards: list[str], tags: set[str] | None = None
    ) -> tuple[dict[str, tuple[str, int, float]], int]:
        """key -> (shard, bytes, last use) for every entry worth keeping; and how many entries there were."""
        entries: dict[str, tuple[str, int, float]] = {}
        total = 0
        for path in shards:
            try:
                mtime = os.path.getmtime(path)
                with safe_open(path, framework="pt") as shard:
                    for key in shard.keys():
                        total += 1
                        if _digest_of(key) is None or self._is_forgotten(key) or key in entries:
                            continue
                        if tags is not None and _base_tag_of(key) not in tags:
                            continue  # a base no task uses any more
                        numel = math.prod(shard.get_slice(key).get_shape())
                        entries[key] = (path, numel * 2, self._last_used.get(key, mtime))  # float16: 2 bytes
            except (OSError, SafetensorError) as exc:
                log.warning("dropping unreadable feature-cache shard %s: %s", path, exc)
        return entries, total

    def _rewrite(self, kept: list[str], entries: dict[str, tuple[str, int, float]]) -> dict[str, str]:
        """Write the kept entries into new shards of about COMPACT_SHARD_BYTES; key -> new shard."""
        written: dict[str, str] = {}
        batch: dict[str, torch.Tensor] = {}
        size = 0
        by_shard: dict[str, list[str]] = {}
        for key in kept:
            by_shard.setdefault(entries[key][0], []).append(key)
        for path, keys in by_shard.items():
            with safe_open(path, framework="pt") as shard:
                for key in keys:
                    batch[key] = shard.get_tensor(key)
                    size += entries[key][1]
                    if size >= COMPACT_SHARD_BYTES:
                        written.update(dict.fromkeys(batch, self._write_shard(batch)))
                        batch, size = {}, 0
        if batch:
            written.update(dict.fromkeys(batch, self._write_shard(batch)))
        return written

    def _write_shard(self, tensors: dict[str, torch.Tensor]) -> str:
        assert self.directory is not None
        name = f"{os.getpid()}-{uuid.uuid4().hex}{SHARD_SUFFIX}"
        final_path = os.path.join(self.directory, name)
        temp_path = os.path.join(self.directory, f".tmp-{name}")
        try:
            save_file(tensors, temp_path)
            os.chmod(temp_path, FILE_MODE)
            fsync_path(temp_path)
            os.replace(temp_path, final_path)
        except (OSError, SafetensorError) as exc:
            if os.path.exists(temp_path):
                os.remove(temp_path)
            raise CacheError(
                f"cannot write feature-cache shard in {self.directory}: {' '.join(str(exc).split())}"
            ) from exc
        return final_path

    def _shard_paths(self) -> list[str]:
        if not self.directory:
            return []
        return [
            os.path.join(self.directory, name)
            for name in sorted(os.listdir(self.directory))
            if name.endswith(SHARD_SUFFIX) and not name.startswith(".")
        ]

    def _is_forgotten(self, key: str) -> bool:
        return bool(self._forgotten) and _digest_of(key) in self._forgotten

    def _lookup(self, keys: list[str]) -> dict[str, torch.Tensor]:
        with self._lock:
            wanted_keys = [k for k in keys if not self._is_forgotten(k)]
            for attempt in range(2):
                if self.directory and any(k not in self._memory and k not in self._on_disk for k in wanted_keys):
                    self.refresh()
                wanted: dict[str, list[str]] = {}
                for key in wanted_keys:
                    if key not in self._memory and key in self._on_disk:
                        wanted.setdefault(self._on_disk[key], []).append(key)
                missing_shard = False
                for path, shard_keys in wanted.items():
                    missing_shard |= not self._load_from_shard(path, shard_keys)
                if not missing_shard:
                    break  # else a compaction moved them: rescan once and read the new shard
            now = time.time()
            found: dict[str, torch.Tensor] = {}
            for key in wanted_keys:
                if key in self._memory:
                    found[key] = self._memory.pop(key)
                    self._memory[key] = found[key]  # most recently used goes last
                    self._last_used[key] = now
            self._evict()
            return found

    def _load_from_shard(self, path: str, keys: list[str]) -> bool:
        """Read only `keys` from a shard (safetensors reads lazily); False if the shard is gone."""
        try:
            with safe_open(path, framework="pt") as shard:
                for key in keys:
                    self._memory[key] = shard.get_tensor(key)
            return True
        except (OSError, SafetensorError) as exc:
            gone = not os.path.exists(path)
            if not gone:
                log.warning("skipping unreadable feature-cache shard %s: %s", path, exc)
            self._on_disk = {k: p for k, p in self._on_disk.items() if p != path}
            if gone:
                self._scanned.discard(path)
            return not gone

    def _remember(self, key: str, output: BottomOutput, row: int) -> torch.Tensor:
        states = output.hidden[row, : output.lengths[row]].to(torch.float16).clone()
        if self._is_forgotten(key):
            return states  # a deleted text: used for this call, stored nowhere
        with self._lock:
            if key not in self._memory:
                self._memory[key] = states
                self._last_used[key] = time.time()
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


@contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive flock shared by every process using the folder (released if one dies)."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
