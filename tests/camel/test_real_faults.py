"""A really full disk and a really read-only folder (root only; skipped elsewhere, see tests/faults.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import camel
from camel.errors import AdapterSaveError, CacheError
from tests.faults import read_only_view, small_tmpfs


def test_a_full_disk_during_save_leaves_no_temp_folder_and_the_old_version_serving(
    trained: camel.TrainResult, tmp_path: Path
) -> None:
    probe = tmp_path / "probe"
    camel.save_adapter(trained.adapter, str(probe))
    one_version = sum(f.stat().st_size for f in probe.iterdir())
    with small_tmpfs(tmp_path / "disk", one_version + one_version // 2) as disk:
        camel.save_adapter(trained.adapter, str(disk / "support" / "v0001"))
        with pytest.raises(AdapterSaveError) as caught:
            camel.save_adapter(trained.adapter, str(disk / "support" / "v0002"))
        assert "\n" not in str(caught.value) and "No space left" in str(caught.value)
        assert sorted(os.listdir(disk / "support")) == ["v0001"]
        assert camel.load_adapter(str(disk / "support" / "v0001")).labels == trained.adapter.labels


def test_a_read_only_adapter_folder_gives_one_line(trained: camel.TrainResult, tmp_path: Path) -> None:
    source = tmp_path / "adapters"
    source.mkdir()
    with read_only_view(source, tmp_path / "ro") as view:
        with pytest.raises(AdapterSaveError, match="Read-only file system") as caught:
            camel.save_adapter(trained.adapter, str(view / "support" / "v0001"))
        assert "\n" not in str(caught.value)


def test_a_full_disk_during_a_cache_flush_is_one_line_and_leaves_no_temp(
    tiny_base: camel.BaseEncoder, tmp_path: Path
) -> None:
    with small_tmpfs(tmp_path / "disk", 4096) as disk:
        cache = camel.FeatureCache(tiny_base, str(disk / "feature_cache"))
        cache.states([f"text number {i} " * 10 for i in range(50)], 2, 64)
        with pytest.raises(CacheError, match="No space left") as caught:
            cache.flush()
        assert "\n" not in str(caught.value)
        assert [n for n in os.listdir(disk / "feature_cache") if n.startswith(".tmp-")] == []
