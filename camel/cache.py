"""Cache of the frozen bottom's hidden states, so retrains run only the top K blocks and the head.

Entries are float16 token states trimmed to each text's real length, keyed by
"<sha256 of the text>-<base tag><hash of base fingerprint, split layer, max_length, engine>":
the text's digest comes first so a deleted text's entries of every base and engine can be found
(`forget`, `erase`, `compact`) from its digest alone, which is all the deletion list holds; the base
tag lets `compact` drop the states of a base no task uses. Memory holds at most `max_entries`, least recently
used dropped first (they stay on disk once flushed). The disk form is a folder of safetensors
shards: every process writes new shards under a unique name through an atomic rename, so the bot
and a training child can share the folder; only `compact` and `erase` rewrite shards, under a
file lock. A rewrite never holds the in-memory lock that predictions take across its file work:
each new shard is written beside the old one, the index is switched to it in one short step,
and only then is the old file removed.

Sizes are bytes on disk: a shard is an 8-byte length, a JSON header with one entry per tensor
(its key, dtype, shape and offsets: about 140 bytes for a key of ours) padded to 8 bytes, then
the tensors. The byte cap of `compact` counts all of it, so the folder ends at or under the cap.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import json
import logging
import math
import os
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from camel.base import BaseEncoder, BottomOutput
from camel.engines import TORCH_BF16, TORCH_FP32, BottomEngine
from camel.private_files import FILE_MODE, fsync_path, make_private_dirs
from camel.errors import CacheError

log = logging.getLogger(__name__)

SHARD_SUFFIX = ".safetensors"
COMPUTE_BATCH = 64
DEFAULT_MAX_ENTRIES = 50_000  # about 0.75 GB of MiniLM states at 20 tokens per text
# Compaction writes shards of about this size: an erasure rewrites whole shards, so a smaller one
# costs less disk work per deleted message; 32 of them hold the default 2 GB cap.
COMPACT_SHARD_BYTES = 64 << 20
LOCK_FILE = ".compact.lock"
TEMP_PREFIX = ".tmp-"
STALE_TEMP_S = 3600.0  # a temporary shard this old was left by a process that died mid-write
_DIGEST_LENGTH = 64
_TAG_LENGTH = 16
_VARIANT_LENGTH = 16
# Per shard: the header's 8-byte length, its braces and up to 7 bytes of padding to 8.
SHARD_OVERHEAD_BYTES = 8 + 2 + 7
_OFFSET_BOUND = 10**15  # data offsets are written in decimal; no shard comes near 1 PB


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


def entry_disk_bytes(key: str, shape: Iterable[int], tensor_bytes: int) -> int:
    """The most bytes one float16 entry can take in a shard: its tensor and its header entry
    (`"key":{"dtype":"F16","shape":[..],"data_offsets":[a,b]},`, offsets at their widest)."""
    entry = {key: {"dtype": "F16", "shape": list(shape), "data_offsets": [_OFFSET_BOUND, _OFFSET_BOUND]}}
    return tensor_bytes + len(json.dumps(entry, separators=(",", ":"))) - 2 + 1


@dataclass(frozen=True)
class _Entry:
    shard: str
    tensor_bytes: int
    disk_bytes: int
    last_used: float


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
        engine: BottomEngine | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.base = base
        self.directory = os.path.abspath(directory) if directory else None
        # What runs the bottom when a text is not cached; part of every key, so engines never mix.
        self.engine = engine or BottomEngine()
        self.max_entries = max(1, max_entries)
        self._memory: dict[str, torch.Tensor] = {}  # insertion order = least recently used first
        self._pending: dict[str, torch.Tensor] = {}
        self._on_disk: dict[str, str] = {}  # key -> shard path, from shard headers
        self._scanned: set[str] = set()
        # shard path -> the text digests it holds, forgotten ones too: `erase` finds by it the
        # shards it must rewrite, including one that also holds a key indexed from another shard.
        self._shard_digests: dict[str, frozenset[str]] = {}
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
    def bf16(self) -> bool:
        """The states come from bfloat16 matmuls (the top then runs in bfloat16 too)."""
        return self.engine.bf16

    @property
    def pending(self) -> int:
        return len(self._pending)

    def key(self, text: str, split_layer: int, max_length: int) -> str:
        variant = hashlib.sha256()
        for part in (self.base.fingerprint, str(split_layer), str(max_length), _key_tag(self.engine.name)):
            variant.update(part.encode("utf-8"))
            variant.update(b"\x00")
        # The base's tag in clear, so a compaction can drop the states of a base no task uses; the
        # text's digest still comes first, so an erasure finds a text's entries of every base.
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
            output = self.base.bottom([texts[i] for i in chunk], split_layer, max_length, self.engine)
            for row, index in enumerate(chunk):
                found[keys[index]] = self._remember(keys[index], output, row)
        return [found[key] for key in keys]

    def batch(self, texts: list[str], split_layer: int, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded float32 hidden states and the attention mask for a batch of texts."""
        return pad_states(self.states(texts, split_layer, max_length))

    def flush(self, *, wait: bool = True) -> int:
        """Write pending entries to a new shard; returns how many were written.

        The shard is written outside the lock predictions take, under the folder's file lock, so
        a flush never interleaves with an erasure or compaction (it could write a text they are
        erasing). `wait=False` (the serving path, memory eviction) skips the flush while one of
        them runs: the entries stay pending for the next flush."""
        if not self.directory or not self._pending:
            return 0
        try:
            with _file_lock(os.path.join(self.directory, LOCK_FILE), wait=wait) as locked:
                return self._flush_locked() if locked else 0
        except OSError as exc:  # the lock file cannot be made: a read-only or full folder
            raise CacheError(f"cannot write feature-cache shard in {self.directory}: {exc.strerror or exc}") from exc

    def _flush_locked(self) -> int:
        """`flush` for a caller holding the file lock."""
        with self._lock:
            pending = dict(self._pending)
        if not pending:
            return 0
        final_path = self._write_shard(pending)
        with self._lock:
            for key, states in pending.items():
                if self._pending.get(key) is states:
                    del self._pending[key]
                if not self._is_forgotten(key):  # forgotten meanwhile: the poll's sweep erases it
                    self._on_disk[key] = final_path
            self._scanned.add(final_path)
            self._shard_digests[final_path] = _digests(pending)
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
                self._drop_shards(removed)
            new_shards = sorted(present - self._scanned)
            for path in new_shards:
                self._scanned.add(path)
                try:
                    keys = _shard_keys(path)
                except CacheError as exc:
                    # Cached states are derived data: a damaged shard is skipped and recomputed.
                    log.warning("%s", exc)
                    continue
                self._shard_digests[path] = _digests(keys)
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
        """Bytes the cache's folder takes on disk now (every file in it, as `doctor` counts them)."""
        if not self.directory:
            return 0
        total = 0
        for entry in os.scandir(self.directory):
            try:
                total += entry.stat().st_size if entry.is_file(follow_symlinks=False) else 0
            except OSError:
                continue  # removed by a compaction meanwhile
        return total

    def holders(self, digests: Iterable[str] | None = None) -> list[str]:
        """The shards on disk that hold an entry of one of these text digests (default: of a text
        this process forgot); reads the headers of shards written since the last scan only."""
        with self._lock:
            self.refresh()
            wanted = self._forgotten if digests is None else frozenset(digests)
            return sorted(path for path, held in self._shard_digests.items() if held & wanted)

    def erase(self, digests: Iterable[str]) -> CompactionReport:
        """Remove every entry of these text digests from memory and from disk now: forget them,
        then rewrite only the shards that hold an entry of a forgotten text, each into a new
        shard that replaces it. Predictions go on meanwhile (see the module's docstring)."""
        if not self.directory:
            self.forget(digests)
            return CompactionReport(0, 0, 0, 0, 0, 0)
        with _file_lock(os.path.join(self.directory, LOCK_FILE)):
            with self._lock:
                self.forget(digests)  # also from the pending entries: no flush needed first
                targets = self.holders()
                forgotten = frozenset(self._forgotten)
            bytes_before = self.disk_bytes()
            kept = removed = written_shards = 0
            for path in targets:
                survivors, gone = self._rewrite_without(path, forgotten)
                kept += survivors
                removed += gone
                written_shards += 1 if survivors else 0
            if targets:
                fsync_path(self.directory)
            return CompactionReport(
                shards_before=len(targets),
                shards_after=written_shards,
                entries_kept=kept,
                entries_removed=removed,
                bytes_before=bytes_before,
                bytes_after=self.disk_bytes(),
            )

    def compact(
        self,
        forgotten: Iterable[str] = (),
        *,
        max_bytes: int | None = None,
        keep_bases: Iterable[str] | None = None,
    ) -> CompactionReport:
        """Rewrite the shards without forgotten texts and without keys of an old format, keeping
        the folder at most `max_bytes` on disk, most recently used states first (use in this
        process, else the shard's time). `keep_bases`: the fingerprints of the bases still in use;
        the states of any other base (and keys without a base tag) are dropped (None: keep every
        base). A file lock makes one compaction (or erasure) run at a time; shards that other
        processes write meanwhile are left as they are."""
        if not self.directory:
            self.forget(forgotten)
            return CompactionReport(0, 0, 0, 0, 0, 0)
        with _file_lock(os.path.join(self.directory, LOCK_FILE)):
            self.forget(forgotten)
            self._flush_locked()
            with self._lock:
                self.refresh()
                shards = self._shard_paths()
                last_used = dict(self._last_used)
                gone = frozenset(self._forgotten)
            self._remove_stale_temp_files()
            bytes_before = self.disk_bytes()
            tags = None if keep_bases is None else {base_tag(f) for f in keep_bases} | {base_tag(self.base.fingerprint)}
            entries, total = _live_entries(shards, last_used, gone, tags)
            budget = None if max_bytes is None else max_bytes - (bytes_before - _sizes(shards))
            kept = _within(entries, budget)
            written = self._rewrite(kept, entries)
            with self._lock:
                self._drop_shards(set(shards))
                self._on_disk.update({k: p for k, p in written.items() if not self._is_forgotten(k)})
                for path in set(written.values()):
                    self._scanned.add(path)
                    self._shard_digests[path] = _digests(k for k, p in written.items() if p == path)
                # Under the lock: no reader is inside an old shard, and no scan sees it as new.
                for path in shards:
                    _remove(path)
            fsync_path(self.directory)
            return CompactionReport(
                shards_before=len(shards),
                shards_after=len(set(written.values())),
                entries_kept=len(kept),
                entries_removed=total - len(kept),
                bytes_before=bytes_before,
                bytes_after=self.disk_bytes(),
            )

    def _rewrite_without(self, path: str, forgotten: frozenset[str]) -> tuple[int, int]:
        """Replace one shard by a new one without the forgotten texts' entries (or by nothing);
        returns how many entries were kept and removed. Reads and writes outside the lock, and
        copies the kept states as byte ranges (`_ShardCopy`), so the GIL stays free for serving."""
        try:
            copy = _ShardCopy(path, forgotten)
        except (OSError, ValueError, TypeError, KeyError, struct.error) as exc:
            # Unreadable, it serves nothing; removing it is the only way its bytes leave.
            log.warning("removing unreadable feature-cache shard %s: %s", path, exc)
            copy = None
        new_path = self._publish(copy.write) if copy is not None and copy.kept else None
        kept = copy.kept if copy is not None else []
        with self._lock:
            self._drop_shards({path})
            if new_path is not None:
                self._scanned.add(new_path)
                self._shard_digests[new_path] = _digests(kept)
                for key in kept:
                    if not self._is_forgotten(key):
                        self._on_disk.setdefault(key, new_path)
            # Under the lock: no reader is inside the old shard, and no scan sees it as new.
            _remove(path)
        return len(kept), (copy.total if copy is not None else 0) - len(kept)

    def _drop_shards(self, paths: set[str]) -> None:
        """Forget shards that are (about to be) removed from the index (call with the lock held)."""
        self._on_disk = {k: p for k, p in self._on_disk.items() if p not in paths}
        self._scanned -= paths
        for path in paths:
            self._shard_digests.pop(path, None)

    def _remove_stale_temp_files(self) -> None:
        """Temporary shards a dead process left behind (a live writer renames its own in seconds)."""
        assert self.directory is not None
        now = time.time()
        for entry in os.scandir(self.directory):
            try:
                if entry.name.startswith(TEMP_PREFIX) and now - entry.stat().st_mtime > STALE_TEMP_S:
                    os.remove(entry.path)
            except OSError:
                continue

    def _rewrite(self, kept: list[str], entries: dict[str, _Entry]) -> dict[str, str]:
        """Write the kept entries into new shards of about COMPACT_SHARD_BYTES; key -> new shard."""
        written: dict[str, str] = {}
        batch: dict[str, torch.Tensor] = {}
        size = 0
        by_shard: dict[str, list[str]] = {}
        for key in kept:
            by_shard.setdefault(entries[key].shard, []).append(key)
        for path, keys in by_shard.items():
            with safe_open(path, framework="pt") as shard:
                for key in keys:
                    batch[key] = shard.get_tensor(key)
                    size += entries[key].tensor_bytes
                    if size >= COMPACT_SHARD_BYTES:
                        written.update(dict.fromkeys(batch, self._write_shard(batch)))
                        batch, size = {}, 0
        if batch:
            written.update(dict.fromkeys(batch, self._write_shard(batch)))
        return written

    def _write_shard(self, tensors: dict[str, torch.Tensor]) -> str:
        return self._publish(lambda temp_path: save_file(tensors, temp_path))

    def _publish(self, write: Callable[[str], None]) -> str:
        """A new shard: `write` fills a temporary file, which is made private, synced, checked
        (its header must open) and renamed into place; returns its path."""
        assert self.directory is not None
        name = f"{os.getpid()}-{uuid.uuid4().hex}{SHARD_SUFFIX}"
        final_path = os.path.join(self.directory, name)
        temp_path = os.path.join(self.directory, f"{TEMP_PREFIX}{name}")
        try:
            write(temp_path)
            os.chmod(temp_path, FILE_MODE)
            fsync_path(temp_path)
            _shard_keys(temp_path)
            os.replace(temp_path, final_path)
        except (OSError, SafetensorError, CacheError) as exc:
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
        except (OSError, RuntimeError, SafetensorError) as exc:
            # torch opens the file again for each tensor: a shard another process removed
            # meanwhile raises RuntimeError there.
            gone = not os.path.exists(path)
            if not gone:
                log.warning("skipping unreadable feature-cache shard %s: %s", path, exc)
            self._on_disk = {k: p for k, p in self._on_disk.items() if p != path}
            if gone:
                self._scanned.discard(path)
                self._shard_digests.pop(path, None)
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
            self.flush(wait=False)  # called under the lock: never wait for an erasure here
        excess = len(self._memory) - self.max_entries
        for key in list(self._memory)[:excess]:
            if key not in self._pending:
                del self._memory[key]


def _key_tag(engine: str) -> str:
    """The engine's part of a key; the torch engines keep the tags they had before engines were
    named, so an upgrade reuses the states already on disk."""
    return {TORCH_FP32: "fp32", TORCH_BF16: "bf16"}.get(engine, engine)


def pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length float16 states into a zero-padded float32 batch and its mask."""
    longest = max(state.shape[0] for state in states)
    hidden = torch.zeros(len(states), longest, states[0].shape[1], dtype=torch.float32)
    mask = torch.zeros(len(states), longest, dtype=torch.long)
    for row, state in enumerate(states):
        hidden[row, : state.shape[0]] = state
        mask[row, : state.shape[0]] = 1
    return hidden, mask


class _ShardCopy:
    """A shard's entries but the forgotten texts', copied as raw byte ranges into a new shard.

    The safetensors layout is an 8-byte little-endian header length, the JSON header (key ->
    dtype, shape, [start, end) in the data) and the data. Copying the kept ranges with large
    reads and writes (which release the GIL) instead of loading every tensor and serialising
    them again keeps a shard's rewrite from pausing the threads that answer messages."""

    COPY_CHUNK = 16 << 20

    def __init__(self, path: str, forgotten: frozenset[str]) -> None:
        with _no_collection():
            self._read(path, forgotten)

    def _read(self, path: str, forgotten: frozenset[str]) -> None:
        self.path = path
        with open(path, "rb") as source:
            (length,) = struct.unpack("<Q", source.read(8))
            header = json.loads(source.read(length))
        self.data_start = 8 + length
        header.pop("__metadata__", None)
        ordered = sorted(header.items(), key=lambda item: int(item[1]["data_offsets"][0]))
        self.total = len(ordered)
        self.header: dict[str, dict[str, object]] = {}
        self.ranges: list[list[int]] = []  # [start, end) in the old data, merged where contiguous
        offset = 0
        for key, info in ordered:
            digest = _digest_of(key)
            if digest is None or digest in forgotten:
                continue
            start, end = (int(x) for x in info["data_offsets"])
            self.header[key] = {
                "dtype": info["dtype"],
                "shape": info["shape"],
                "data_offsets": [offset, offset + end - start],
            }
            offset += end - start
            if self.ranges and self.ranges[-1][1] == start:
                self.ranges[-1][1] = end
            else:
                self.ranges.append([start, end])
        self.kept = list(self.header)

    def write(self, target: str) -> None:
        encoded = json.dumps(self.header, separators=(",", ":")).encode("utf-8")
        encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
        with open(self.path, "rb") as source, open(target, "wb") as out:
            out.write(struct.pack("<Q", len(encoded)))
            out.write(encoded)
            for start, end in self.ranges:
                source.seek(self.data_start + start)
                left = end - start
                while left > 0:
                    chunk = source.read(min(left, self.COPY_CHUNK))
                    if not chunk:
                        raise OSError(f"{self.path} is shorter than its header says")
                    out.write(chunk)
                    left -= len(chunk)


@contextmanager
def _no_collection() -> Iterator[None]:
    """No garbage collection while a shard's header is parsed (tens of thousands of short-lived,
    acyclic objects): they would trigger a full collection of the process's heap (the models',
    hundreds of thousands of objects), which holds the GIL for a second or more on a busy machine
    and so pauses every thread answering messages. Reference counting frees them anyway."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _digests(keys: Iterable[str]) -> frozenset[str]:
    return frozenset(digest for digest in map(_digest_of, keys) if digest is not None)


def _sizes(paths: Iterable[str]) -> int:
    total = 0
    for path in paths:
        try:
            total += os.path.getsize(path)
        except OSError:
            continue
    return total


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _live_entries(
    shards: list[str], last_used: dict[str, float], forgotten: frozenset[str], tags: set[str] | None = None
) -> tuple[dict[str, _Entry], int]:
    """Every entry worth keeping (by key), and how many entries the shards held in all; with
    `tags`, only the entries of those bases."""
    entries: dict[str, _Entry] = {}
    total = 0
    for path in shards:
        try:
            mtime = os.path.getmtime(path)
            with safe_open(path, framework="pt") as shard:
                for key in shard.keys():
                    total += 1
                    digest = _digest_of(key)
                    if digest is None or digest in forgotten or key in entries:
                        continue
                    if tags is not None and _base_tag_of(key) not in tags:
                        continue  # a base no task uses any more
                    shape = shard.get_slice(key).get_shape()
                    tensor_bytes = math.prod(shape) * 2  # float16
                    disk = entry_disk_bytes(key, shape, tensor_bytes)
                    entries[key] = _Entry(path, tensor_bytes, disk, last_used.get(key, mtime))
        except (OSError, SafetensorError) as exc:
            log.warning("dropping unreadable feature-cache shard %s: %s", path, exc)
    return entries, total


def _within(entries: dict[str, _Entry], budget: int | None) -> list[str]:
    """The most recently used entries whose shards fit in `budget` bytes on disk (None: all).

    `_rewrite` starts a new shard each time COMPACT_SHARD_BYTES of tensors were written, so
    tensors of T bytes take at most T // COMPACT_SHARD_BYTES + 1 shards, each with its overhead."""
    ranked = sorted(entries, key=lambda key: entries[key].last_used, reverse=True)
    if budget is None:
        return ranked
    kept: list[str] = []
    disk = tensors = 0
    for key in ranked:
        entry = entries[key]
        shards = (tensors + entry.tensor_bytes) // COMPACT_SHARD_BYTES + 1
        if disk + entry.disk_bytes + shards * SHARD_OVERHEAD_BYTES > budget:
            continue
        kept.append(key)
        disk += entry.disk_bytes
        tensors += entry.tensor_bytes
    return kept


def _shard_keys(path: str) -> list[str]:
    try:
        with safe_open(path, framework="pt") as shard:
            return list(shard.keys())
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise CacheError(f"corrupt feature-cache shard {path}: {exc}") from exc


@contextmanager
def _file_lock(path: str, *, wait: bool = True) -> Iterator[bool]:
    """An exclusive flock shared by every process and thread using the folder (released if one
    dies); yields False when `wait` is off and someone else holds it."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)
