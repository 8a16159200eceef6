"""Engines for the frozen bottom: which one is chosen, the start-up agreement check and its
fallback, the ONNX export made once and kept private, and a cache that never mixes engines."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

import camel
from camel import engines
from tests.tiny_model import make_tiny_bert

TEXTS = ["my card has not arrived yet", "refund charged twice", "love the app"]


def test_auto_tries_bf16_first_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "native_bf16", lambda: True)
    assert engines.candidates("auto") == ("torch-bf16", "ort-fp32", "torch-fp32")
    assert engines.unavailable_reason("torch-bf16") is None
    monkeypatch.setattr(engines, "native_bf16", lambda: False)
    assert engines.candidates("auto") == ("ort-fp32", "torch-fp32")
    assert "no native bfloat16" in str(engines.unavailable_reason("torch-bf16"))
    assert engines.candidates("ort-fp32") == ("ort-fp32", "torch-fp32")  # torch-fp32 is always the fallback
    assert engines.candidates("torch-fp32") == ("torch-fp32",)
    with pytest.raises(camel.EngineError, match="unknown engine 'gpu'"):
        engines.candidates("gpu")


def test_bf16_asked_for_on_a_cpu_without_it_runs_fp32_and_says_why(
    tiny_base: camel.BaseEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "native_bf16", lambda: False)
    choice = camel.choose_engine(tiny_base, "torch-bf16")
    assert choice.name == "torch-fp32"
    assert "skipped torch-bf16: this CPU has no native bfloat16" in choice.reason


def test_torch_fp32_is_chosen_without_a_check(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    choice = camel.choose_engine(tiny_base, "torch-fp32", str(tmp_path))
    assert choice.name == "torch-fp32" and "the reference" in choice.reason
    assert not os.listdir(tmp_path)  # nothing exported for an engine not asked for


def test_ort_engine_agrees_with_torch_and_is_exported_once_owner_only(
    tiny_base: camel.BaseEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "engines"
    with caplog.at_level(logging.INFO, logger="camel.engines"):
        choice = camel.choose_engine(tiny_base, "ort-fp32", str(folder))
    assert choice.name == "ort-fp32" and "agrees with torch-fp32" in choice.reason
    exports = [name for name in os.listdir(folder) if name.endswith(".onnx")]
    assert exports == [f"bottom-{tiny_base.fingerprint[:16]}-split{tiny_base.num_layers - 2}.onnx"]
    path = folder / exports[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sum("exported the bottom" in r.getMessage() for r in caplog.records) == 1
    first = path.stat()
    # A second start (another engine object, as in a new process) loads the export it finds.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="camel.engines"):
        again = camel.choose_engine(tiny_base, "ort-fp32", str(folder))
    assert again.name == "ort-fp32"
    assert not any("exported" in r.getMessage() for r in caplog.records)
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert not [name for name in os.listdir(folder) if name.startswith(".tmp")]
    ort = again.engine.hidden(tiny_base, *_encoded(tiny_base), 2)
    reference = camel.make_engine("torch-fp32", None).hidden(tiny_base, *_encoded(tiny_base), 2)
    mask = _encoded(tiny_base)[1].bool()
    assert torch.allclose(ort[mask], reference[mask], atol=1e-4)


def test_a_damaged_export_is_made_again(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    camel.choose_engine(tiny_base, "ort-fp32", str(tmp_path))
    (path,) = tmp_path.glob("*.onnx")
    path.write_bytes(path.read_bytes()[:1000])  # a disk that filled up mid-copy
    choice = camel.choose_engine(tiny_base, "ort-fp32", str(tmp_path))
    assert choice.name == "ort-fp32" and "agrees" in choice.reason
    assert path.stat().st_size > 1000


def test_an_engine_that_disagrees_at_start_gives_way_to_torch_fp32(
    tiny_base: camel.BaseEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A broken install: the export on disk was made from other weights of the same shape.
    other = camel.load_base(str(make_tiny_bert(tmp_path / "other", seed=7)))
    folder = tmp_path / "engines"
    engine = camel.make_engine("ort-fp32", str(folder))
    assert isinstance(engine, engines.OrtEngine)
    engines.export_bottom(other, 1, engine.export_path(tiny_base, 1))
    with caplog.at_level(logging.WARNING, logger="camel.engines"):
        choice = camel.choose_engine(tiny_base, "ort-fp32", str(folder), split_layer=1)
    assert choice.name == "torch-fp32"
    assert "skipped ort-fp32: its states disagree with torch-fp32 (lowest cosine" in choice.reason
    assert any("engine ort-fp32 not used: its states disagree" in r.getMessage() for r in caplog.records)


def test_cache_keys_name_the_engine_and_never_mix(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    folder = str(tmp_path / "cache")
    fp32 = camel.FeatureCache(tiny_base, folder)
    ort = camel.FeatureCache(tiny_base, folder, engine=camel.make_engine("ort-fp32", str(tmp_path / "engines")))
    bf16 = camel.FeatureCache(tiny_base, folder, engine=camel.make_engine("torch-bf16", None))
    keys = {cache.engine.name: cache.key("hello", 2, 32) for cache in (fp32, ort, bf16)}
    assert len(set(keys.values())) == 3
    fp32.states(TEXTS, 2, 32)
    fp32.flush()
    ort.refresh()
    assert all(ort.key(text, 2, 32) not in ort._on_disk for text in TEXTS)  # fp32's shard holds none of ort's
    ort.states(TEXTS, 2, 32)
    ort.flush()
    again = camel.FeatureCache(tiny_base, folder)
    assert len(again) == 2 * len(TEXTS)  # both engines' states on disk, each under its own keys


def test_torch_engines_keep_the_cache_keys_they_had(tiny_base: camel.BaseEncoder) -> None:
    # States cached before engines were named (keys carrying the base's tag, then a hash ending in
    # the precision) must still be found after an upgrade.
    import hashlib

    def old_key(text: str, precision: str) -> str:
        variant = hashlib.sha256()
        for part in (tiny_base.fingerprint, "2", "32", precision):
            variant.update(part.encode("utf-8"))
            variant.update(b"\x00")
        return f"{camel.text_digest(text)}-{camel.base_tag(tiny_base.fingerprint)}{variant.hexdigest()[:16]}"

    assert camel.FeatureCache(tiny_base).key("hi", 2, 32) == old_key("hi", "fp32")
    bf16 = camel.FeatureCache(tiny_base, engine=camel.make_engine("torch-bf16", None))
    assert bf16.key("hi", 2, 32) == old_key("hi", "bf16")


def test_predictions_through_the_ort_engine_match_torch(trained: camel.TrainResult, tmp_path: Path) -> None:
    adapter = trained.adapter
    torch_answers = camel.Predictor(adapter).answer(TEXTS)
    ort_cache = camel.FeatureCache(adapter.base, engine=camel.make_engine("ort-fp32", str(tmp_path)))
    ort_answers = camel.Predictor(adapter, ort_cache).answer(TEXTS)
    assert [a.label for a in ort_answers] == [a.label for a in torch_answers]
    assert [a.confidence for a in ort_answers] == pytest.approx([a.confidence for a in torch_answers], abs=1e-3)


def test_an_unwritable_engine_folder_falls_back_with_the_reason(tiny_base: camel.BaseEncoder, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    choice = camel.choose_engine(tiny_base, "ort-fp32", str(blocker / "engines"))
    assert choice.name == "torch-fp32" and "cannot use engine folder" in choice.reason
    shutil.rmtree(tmp_path, ignore_errors=True)


def _encoded(base: camel.BaseEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = base.tokenize(TEXTS, 32)
    return encoded["input_ids"], encoded["attention_mask"]
