"""FeatureCache: float16 trimmed states, disk shards shared between instances, filled by predicting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import camel
from camel.cache import SHARD_SUFFIX

TEXTS = ["my card has not arrived yet", "hello", "refund please"]


def _shards(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(SHARD_SUFFIX))


def test_states_are_float16_trimmed_and_match_the_bottom(tiny_base: camel.BaseEncoder) -> None:
    cache = camel.FeatureCache(tiny_base)
    states = cache.states(TEXTS, 2, 32)
    direct = tiny_base.bottom(TEXTS, 2, 32)
    for row, state in enumerate(states):
        assert state.dtype == torch.float16 and state.shape == (direct.lengths[row], tiny_base.hidden_size)
        assert torch.allclose(state.float(), direct.hidden[row, : direct.lengths[row]], atol=1e-2)
    hidden, mask = cache.batch(TEXTS, 2, 32)
    assert hidden.dtype == torch.float32 and mask.sum(dim=1).tolist() == direct.lengths
    assert len(cache) == 3 and cache.pending == 0  # no directory: memory only


def test_keys_depend_on_text_split_and_length(tiny_base: camel.BaseEncoder) -> None:
    cache = camel.FeatureCache(tiny_base)
    keys = {cache.key("hello", 2, 32), cache.key("hello", 1, 32), cache.key("hello", 2, 64), cache.key("hell", 2, 32)}
    assert len(keys) == 4


def test_round_trip_across_two_instances_through_disk(
    tiny_base: camel.BaseEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = camel.FeatureCache(tiny_base, str(tmp_path))
    written = writer.states(TEXTS, 2, 32)
    assert writer.pending == 3 and writer.flush() == 3 and writer.flush() == 0
    assert len(_shards(tmp_path)) == 1
    reader = camel.FeatureCache(tiny_base, str(tmp_path))
    assert len(reader) == 3
    calls: list[list[str]] = []
    original = tiny_base.bottom
    monkeypatch.setattr(tiny_base, "bottom", lambda texts, *rest: calls.append(texts) or original(texts, *rest))
    read = reader.states(TEXTS, 2, 32)
    assert calls == []  # everything came from disk
    assert all(torch.equal(a, b) for a, b in zip(written, read))


def test_second_writer_adds_a_new_shard_and_readers_pick_it_up(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    first = camel.FeatureCache(tiny_base, str(tmp_path))
    second = camel.FeatureCache(tiny_base, str(tmp_path))
    first.states(TEXTS[:1], 2, 32)
    second.states(TEXTS[1:], 2, 32)
    first.flush()
    second.flush()
    assert len(_shards(tmp_path)) == 2
    assert first.refresh() == 1 and len(first) == 3


def test_corrupt_shard_is_skipped_and_recomputed(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    (tmp_path / f"broken{SHARD_SUFFIX}").write_bytes(b"\x00garbage")
    cache = camel.FeatureCache(tiny_base, str(tmp_path))
    assert len(cache.states(TEXTS, 2, 32)) == 3


def test_predictor_fills_the_cache_and_flushes(trained: camel.TrainResult, tmp_path: Path) -> None:
    cache = camel.FeatureCache(trained.adapter.base, str(tmp_path))
    predictor = camel.Predictor(trained.adapter, cache=cache, flush_every=1000)
    predictor.answer(TEXTS)
    assert cache.pending == 3 and _shards(tmp_path) == []
    assert predictor.flush() == 3 and len(_shards(tmp_path)) == 1
    eager = camel.Predictor(trained.adapter, cache=cache, flush_every=1)
    eager.answer(["something new to say"])
    assert cache.pending == 0 and len(_shards(tmp_path)) == 2


def test_training_reuses_states_the_predictor_cached(
    trained: camel.TrainResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.camel.helpers import FAST_ARGS, dataset

    texts, labels = dataset()
    cache = camel.FeatureCache(trained.adapter.base, str(tmp_path))
    camel.Predictor(trained.adapter, cache=cache).answer(texts)
    cache.flush()
    fresh = camel.FeatureCache(trained.adapter.base, str(tmp_path))
    computed: list[int] = []
    original = fresh.base.bottom
    monkeypatch.setattr(
        fresh.base, "bottom", lambda batch, *rest: computed.append(len(batch)) or original(batch, *rest)
    )
    args = camel.TrainingArgs(**{**FAST_ARGS, "max_epochs": 1})
    camel.train(texts, labels, init=trained.adapter, cache=fresh, args=args)
    assert computed == []


def test_memory_is_bounded_and_pending_entries_reach_disk_first(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    cache = camel.FeatureCache(tiny_base, str(tmp_path), max_entries=2)
    cache.states(TEXTS, 2, 32)
    assert len(cache._memory) <= 2 and cache.pending == 0 and len(_shards(tmp_path)) == 1
    assert len(cache) == 3
    again = cache.states(TEXTS, 2, 32)
    assert all(state.dtype == torch.float16 for state in again)


def test_bf16_bottom_has_its_own_keys_and_is_close_to_fp32(trained: camel.TrainResult) -> None:
    fp32 = camel.FeatureCache(trained.adapter.base)
    bf16 = camel.FeatureCache(trained.adapter.base, bf16=True)
    assert fp32.key("hello", 2, 32) != bf16.key("hello", 2, 32)
    a, b = fp32.states(TEXTS, 2, 32), bf16.states(TEXTS, 2, 32)
    assert all(torch.allclose(x.float(), y.float(), atol=0.1) for x, y in zip(a, b))
    fast = camel.Predictor(trained.adapter, cache=bf16)
    assert fast.bf16 and len(fast.answer(TEXTS)) == 3


def test_unwritable_cache_folder_never_fails_a_prediction(
    trained: camel.TrainResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import camel.cache as cache_module
    from camel.errors import CacheError

    cache = camel.FeatureCache(trained.adapter.base, str(tmp_path))

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module, "save_file", disk_full)
    predictor = camel.Predictor(trained.adapter, cache=cache, flush_every=1)
    assert len(predictor.answer(TEXTS)) == 3
    assert cache.pending == 3 and "No space left on device" in caplog.text
    with pytest.raises(CacheError, match="cannot write feature-cache shard"):
        cache.flush()
    assert [name for name in os.listdir(tmp_path) if name != cache_module.LOCK_FILE] == []  # no temp shard left
