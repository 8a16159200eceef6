"""FeatureCache honours deleted texts (forget, compact) and stays under a size cap, least recently
used first. camel never sees the database: hashes come in as arguments."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import camel
from camel.cache import SHARD_OVERHEAD_BYTES, SHARD_SUFFIX, entry_disk_bytes

TEXTS = ["my card has not arrived yet", "hello there", "refund please"]
SPLIT, LENGTH = 2, 32


def _shards(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(SHARD_SUFFIX) and not p.name.startswith("."))


def _keys_on_disk(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in _shards(folder):
        with safe_open(str(path), framework="pt") as shard:
            found |= set(shard.keys())
    return found


def _counting(base: camel.BaseEncoder, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    original = base.bottom
    monkeypatch.setattr(base, "bottom", lambda texts, *rest: calls.append(list(texts)) or original(texts, *rest))
    return calls


def test_keys_start_with_the_texts_digest(tiny_base: camel.BaseEncoder) -> None:
    cache = camel.FeatureCache(tiny_base)
    assert cache.key("hello", SPLIT, LENGTH).startswith(camel.text_digest("hello") + "-")
    assert cache.key("hello", SPLIT, LENGTH) != cache.key("hello", 1, LENGTH)


def test_forget_evicts_memory_pending_and_disk_entries_and_never_caches_them_again(
    tiny_base: camel.BaseEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = camel.FeatureCache(tiny_base, str(tmp_path))
    writer.states(TEXTS, SPLIT, LENGTH)
    writer.flush()
    reader = camel.FeatureCache(tiny_base, str(tmp_path))  # e.g. the bot, while the writer is a training child
    reader.states(TEXTS, SPLIT, LENGTH)
    reader.states(["pending only"], SPLIT, LENGTH)
    gone = [camel.text_digest(TEXTS[0]), camel.text_digest("pending only")]
    assert reader.forget(gone) == 2 and reader.pending == 0 and len(reader) == 2
    calls = _counting(tiny_base, monkeypatch)
    reader.states(TEXTS, SPLIT, LENGTH)
    assert calls == [[TEXTS[0]]]  # recomputed for this call, read from nowhere
    assert reader.pending == 0 and len(reader) == 2  # and not cached again
    assert reader.flush() == 0


def test_compact_rewrites_shards_without_forgotten_keys(
    tiny_base: camel.BaseEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for text in TEXTS:  # one shard per text, as separate processes would write them
        writer = camel.FeatureCache(tiny_base, str(tmp_path))
        writer.states([text], SPLIT, LENGTH)
        writer.flush()
    before = set(_shards(tmp_path))
    running = camel.FeatureCache(tiny_base, str(tmp_path))  # indexed the old shards
    running.states(TEXTS[1:], SPLIT, LENGTH)
    compactor = camel.FeatureCache(tiny_base, str(tmp_path))
    report = compactor.compact([camel.text_digest(TEXTS[0])])
    assert (report.entries_removed, report.entries_kept) == (1, 2)
    assert not before & set(_shards(tmp_path))
    gone_key = compactor.key(TEXTS[0], SPLIT, LENGTH)
    assert gone_key not in _keys_on_disk(tmp_path) and len(_keys_on_disk(tmp_path)) == 2
    assert report.bytes_after < report.bytes_before
    # A process that indexed the removed shards finds the kept entries in the new one.
    calls = _counting(tiny_base, monkeypatch)
    running._memory.clear()  # as if evicted from memory: it must read the compacted shard
    running.states(TEXTS[1:], SPLIT, LENGTH)
    assert calls == []


def test_compaction_drops_keys_of_the_old_format(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    save_file(
        {"a" * 64: torch.zeros(2, tiny_base.hidden_size, dtype=torch.float16)}, str(tmp_path / f"legacy{SHARD_SUFFIX}")
    )
    cache = camel.FeatureCache(tiny_base, str(tmp_path))
    cache.states(TEXTS[:1], SPLIT, LENGTH)
    cache.flush()
    report = cache.compact()
    assert report.entries_removed == 1 and _keys_on_disk(tmp_path) == {cache.key(TEXTS[0], SPLIT, LENGTH)}


def test_compact_with_a_byte_cap_keeps_the_most_recently_used(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    cache = camel.FeatureCache(tiny_base, str(tmp_path))
    for text in TEXTS:
        cache.states([text], SPLIT, LENGTH)
        time.sleep(0.01)
    cache.flush()
    cache.states([TEXTS[0]], SPLIT, LENGTH)  # used again: now the most recent
    sizes = {text: _disk_size(cache, text) for text in TEXTS}
    cache.states([TEXTS[0]], SPLIT, LENGTH)
    report = cache.compact(max_bytes=SHARD_OVERHEAD_BYTES + sizes[TEXTS[0]] + sizes[TEXTS[2]] // 2)
    assert report.entries_kept == 1 and _keys_on_disk(tmp_path) == {cache.key(TEXTS[0], SPLIT, LENGTH)}
    assert cache.disk_bytes() == sum(p.stat().st_size for p in tmp_path.iterdir())


def _disk_size(cache: camel.FeatureCache, text: str) -> int:
    state = cache.states([text], SPLIT, LENGTH)[0]
    return entry_disk_bytes(cache.key(text, SPLIT, LENGTH), state.shape, state.numel() * 2)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_after_compaction_the_folder_is_at_or_under_the_byte_cap_headers_included(
    tiny_base: camel.BaseEncoder, tmp_path: Path
) -> None:
    """With the tiny model a state is a few hundred bytes, so each entry's safetensors header
    (about 140 bytes) is a large share of it: counting tensor bytes only overshot the cap by 12%."""
    cache = camel.FeatureCache(tiny_base, str(tmp_path))
    texts = [f"message number {i} about card {i * 7}" for i in range(300)]
    for start in range(0, len(texts), 50):  # several shards, as several flushes write them
        cache.states(texts[start : start + 50], SPLIT, LENGTH)
        cache.flush()
    full = _folder_bytes(tmp_path)
    for cap in (full // 2, full // 3 + 17, 3000):
        report = cache.compact(max_bytes=cap)
        on_disk = _folder_bytes(tmp_path)
        assert 0 < report.entries_kept and on_disk <= cap
        assert report.bytes_after == cache.disk_bytes() == on_disk  # the cache's size is the folder's bytes
        assert cap == 3000 or on_disk >= 0.95 * cap  # and the cap is used, not left half empty


def test_memory_eviction_is_least_recently_used(tiny_base: camel.BaseEncoder) -> None:
    cache = camel.FeatureCache(tiny_base, max_entries=2)
    cache.states(TEXTS[:2], SPLIT, LENGTH)
    cache.states([TEXTS[0]], SPLIT, LENGTH)  # TEXTS[1] is now the least recently used
    cache.states([TEXTS[2]], SPLIT, LENGTH)
    assert set(cache._memory) == {cache.key(TEXTS[0], SPLIT, LENGTH), cache.key(TEXTS[2], SPLIT, LENGTH)}


def test_cache_files_are_private_whatever_the_umask(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = tmp_path / "data" / "feature_cache"
        cache = camel.FeatureCache(tiny_base, str(folder))
        cache.states(TEXTS, SPLIT, LENGTH)
        cache.flush()
        cache.compact()
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())


def test_a_user_erased_in_storage_leaves_no_states_in_the_cache_shards(
    tiny_base: camel.BaseEncoder, tmp_path: Path
) -> None:
    """The glue the bot runs: storage's deletion list (hashes of the whole text and of the prefix
    the bot predicted on) goes into forget() in every process and into compact()."""
    import storage

    db = storage.open_store(tmp_path / "camel.db")
    storage.tasks.upsert_task(db, storage.TaskSpec("support", labels=["a", "b"]))
    secret = "my card 4111 was stolen in Lisbon " * 3
    storage.messages.record_message(db, workspace="W", channel="C", ts="1", text=secret, user="U_GONE")
    storage.messages.record_message(db, workspace="W", channel="C", ts="2", text="hello there", user="U_STAY")
    bot_cache = camel.FeatureCache(tiny_base, str(tmp_path / "feature_cache"))
    bot_cache.states([secret[:40], "hello there"], SPLIT, LENGTH)  # predicted on the truncated text
    bot_cache.flush()
    child_cache = camel.FeatureCache(tiny_base, str(tmp_path / "feature_cache"))
    child_cache.states([secret], SPLIT, LENGTH)  # a training round used the whole text
    child_cache.flush()
    seen = storage.deletions.deletion_version(db)
    storage.privacy.erase_user(db, "U_GONE", actor="ADMIN", prefix_lengths=[40])
    hashes, seen = storage.deletions.deleted_text_hashes(db, after=seen)
    assert bot_cache.forget(hashes) == 1  # the prefix it computed (it has not rescanned the child's shard yet)
    assert child_cache.forget(hashes) == 2  # the whole text it wrote, and the prefix in the bot's shard
    bot_cache.compact(hashes)
    on_disk = _keys_on_disk(tmp_path / "feature_cache")
    assert on_disk == {bot_cache.key("hello there", SPLIT, LENGTH)}


def test_compaction_drops_the_states_of_bases_no_task_uses(
    tiny_base: camel.BaseEncoder, tiny_xlmr_dir: Path, tmp_path: Path
) -> None:
    other = camel.load_base(str(tiny_xlmr_dir))
    old, new = camel.FeatureCache(tiny_base, str(tmp_path)), camel.FeatureCache(other, str(tmp_path))
    old.states(TEXTS[:2], SPLIT, LENGTH)
    new.states(TEXTS[:1], SPLIT, LENGTH)
    old.flush()
    new.flush()
    # Both bases' states share the folder; their keys never mix (same text, two keys).
    assert old.key(TEXTS[0], SPLIT, LENGTH) != new.key(TEXTS[0], SPLIT, LENGTH)
    assert camel.base_tag(other.fingerprint) in new.key(TEXTS[0], SPLIT, LENGTH)
    kept = new.compact(keep_bases=[other.fingerprint, tiny_base.fingerprint])
    assert kept.entries_removed == 0 and len(_keys_on_disk(tmp_path)) == 3
    report = new.compact(keep_bases=[other.fingerprint])
    assert report.entries_removed == 2 and _keys_on_disk(tmp_path) == {new.key(TEXTS[0], SPLIT, LENGTH)}


def test_erase_rewrites_only_the_shards_holding_the_text_and_keeps_the_other_states_bit_for_bit(
    tiny_base: camel.BaseEncoder, tmp_path: Path
) -> None:
    writer = camel.FeatureCache(tiny_base, str(tmp_path))
    writer.states(TEXTS, SPLIT, LENGTH)  # one shard: the text to erase among others
    writer.flush()
    writer.states(["unrelated shard"], SPLIT, LENGTH)
    writer.flush()
    untouched = next(p for p in _shards(tmp_path) if writer.key("unrelated shard", SPLIT, LENGTH) in _keys_on(p))
    before = {key: tensor for path in _shards(tmp_path) for key, tensor in _tensors(path).items()}
    serving = camel.FeatureCache(tiny_base, str(tmp_path))  # another process, e.g. the bot
    gone = camel.text_digest(TEXTS[1])
    assert serving.holders([gone]) != [] and str(untouched) not in serving.holders([gone])
    report = serving.erase([gone])
    assert (report.shards_before, report.shards_after, report.entries_removed, report.entries_kept) == (1, 1, 1, 2)
    after = {key: tensor for path in _shards(tmp_path) for key, tensor in _tensors(path).items()}
    assert set(after) == set(before) - {writer.key(TEXTS[1], SPLIT, LENGTH)}
    assert all(torch.equal(after[key], before[key]) for key in after)
    assert untouched.exists() and serving.holders([gone]) == []
    assert gone.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
    # The erasing process serves the kept states from the new shard without computing them.
    serving._memory.clear()
    assert all(
        torch.equal(a, before[writer.key(t, SPLIT, LENGTH)])
        for a, t in zip(serving.states(TEXTS[::2], SPLIT, LENGTH), TEXTS[::2])
    )


def _keys_on(path: Path) -> set[str]:
    with safe_open(str(path), framework="pt") as shard:
        return set(shard.keys())


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as shard:
        return {key: shard.get_tensor(key) for key in shard.keys()}


def test_erase_reaches_the_states_every_engine_left_in_the_folder(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    """The engine is part of each key: a text's states under torch-fp32 and under torch-bf16 (a
    round's child, a restart on another engine) both leave the disk, whichever engine erases."""
    fp32 = camel.FeatureCache(tiny_base, str(tmp_path))
    bf16 = camel.FeatureCache(tiny_base, str(tmp_path), engine=camel.make_engine("torch-bf16", None))
    for cache in (fp32, bf16):
        cache.states(TEXTS, SPLIT, LENGTH)
        cache.flush()
    gone = camel.text_digest(TEXTS[1])
    variants = {fp32.key(TEXTS[1], SPLIT, LENGTH), bf16.key(TEXTS[1], SPLIT, LENGTH)}
    assert len(variants) == 2 and variants <= _keys_on_disk(tmp_path)
    report = fp32.erase([gone])
    assert report.entries_removed == 2 and fp32.holders([gone]) == []
    assert not variants & _keys_on_disk(tmp_path)
    kept = {cache.key(text, SPLIT, LENGTH) for cache in (fp32, bf16) for text in TEXTS[::2]}
    assert kept <= _keys_on_disk(tmp_path)


def test_erase_through_one_base_reaches_the_texts_states_of_every_base(
    tiny_base: camel.BaseEncoder, tiny_xlmr_dir: Path, tmp_path: Path
) -> None:
    """While tasks migrate, two bases' states share the folder: an erasure made with the
    configured base's cache must also remove the text's states of the previous base."""
    other = camel.load_base(str(tiny_xlmr_dir))
    old, new = camel.FeatureCache(tiny_base, str(tmp_path)), camel.FeatureCache(other, str(tmp_path))
    old.states(TEXTS[:2], SPLIT, LENGTH)
    new.states(TEXTS[:2], SPLIT, LENGTH)
    old.flush()
    new.flush()
    gone = camel.text_digest(TEXTS[1])
    report = new.erase([gone])
    assert report.entries_removed == 2
    assert _keys_on_disk(tmp_path) == {old.key(TEXTS[0], SPLIT, LENGTH), new.key(TEXTS[0], SPLIT, LENGTH)}
    assert gone.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
