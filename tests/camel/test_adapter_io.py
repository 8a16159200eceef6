"""Adapter folders: only trainable tensors, identical after a round trip, refused when damaged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from safetensors import safe_open

import camel
from camel.errors import AdapterLoadError
from tests.camel.helpers import reseal
from tests.tiny_model import make_tiny_bert

TEXTS = ["my card has not arrived", "refund please", "top up failed", "card lost", "hello"]


@pytest.fixture
def saved(trained: camel.TrainResult, tmp_path: Path) -> Path:
    folder = tmp_path / "v0001"
    camel.save_adapter(trained.adapter, str(folder))
    return folder


def test_folder_holds_the_four_files_and_only_trainable_tensors(saved: Path, trained: camel.TrainResult) -> None:
    assert sorted(os.listdir(saved)) == sorted(camel.ADAPTER_FILES)
    with safe_open(str(saved / camel.WEIGHTS_FILE), framework="pt") as weights:
        names = set(weights.keys())
    assert names == set(trained.adapter.state_dict())
    assert all(name.split(".")[0] in {"blocks", "adapt", "classifier"} for name in names)
    assert not any("embeddings" in name for name in names)
    meta = json.loads((saved / camel.CONFIG_FILE).read_text())
    assert meta["base_fingerprint"] == trained.adapter.base.fingerprint
    assert json.loads((saved / camel.LABELS_FILE).read_text()) == trained.adapter.labels
    assert not [name for name in os.listdir(saved.parent) if ".tmp-" in name]


def test_save_then_load_gives_identical_predictions(saved: Path, trained: camel.TrainResult) -> None:
    loaded = camel.load_adapter(str(saved))
    assert loaded.base is trained.adapter.base
    assert loaded.labels == trained.adapter.labels and loaded.config == trained.adapter.config
    before = camel.Predictor(trained.adapter).answer(TEXTS)
    after = camel.Predictor(loaded).answer(TEXTS)
    assert [(p.label, p.confidence, p.top3) for p in before] == [(p.label, p.confidence, p.top3) for p in after]
    assert loaded.metrics == json.loads(json.dumps(trained.adapter.metrics))


def test_saving_over_an_existing_folder_replaces_it(saved: Path, trained: camel.TrainResult) -> None:
    (saved / "stray.txt").write_text("old")
    camel.save_adapter(trained.adapter, str(saved))
    assert sorted(os.listdir(saved)) == sorted(camel.ADAPTER_FILES)
    assert [name for name in os.listdir(saved.parent)] == ["v0001"]


def test_corrupt_weights_are_refused(saved: Path) -> None:
    path = saved / camel.WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(AdapterLoadError, match=r"corrupt adapter.safetensors .*sha256 expected \w+, found \w+"):
        camel.load_adapter(str(saved))


def test_truncated_weights_are_refused_even_with_a_matching_checksum(saved: Path) -> None:
    path = saved / camel.WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:100])
    meta = json.loads((saved / camel.CONFIG_FILE).read_text())
    from camel.adapter_io import _sha256

    meta["weights_sha256"] = _sha256(str(path))
    (saved / camel.CONFIG_FILE).write_text(json.dumps(meta))
    reseal(saved)
    with pytest.raises(AdapterLoadError, match="corrupt adapter.safetensors"):
        camel.load_adapter(str(saved))


def test_corrupt_json_and_missing_files_are_refused(saved: Path, tmp_path: Path) -> None:
    (saved / camel.LABELS_FILE).write_text("[not json")
    reseal(saved)
    with pytest.raises(AdapterLoadError, match="corrupt labels.json"):
        camel.load_adapter(str(saved))
    with pytest.raises(AdapterLoadError, match="adapter folder not found"):
        camel.load_adapter(str(tmp_path / "missing"))


def test_wrong_base_is_refused_naming_both_fingerprints(
    saved: Path, tmp_path: Path, trained: camel.TrainResult
) -> None:
    other = camel.load_base(str(make_tiny_bert(tmp_path / "other-base", seed=7)))
    expected = trained.adapter.base.fingerprint[:12]
    with pytest.raises(
        AdapterLoadError, match=rf"fingerprint {expected} .*found base fingerprint {other.fingerprint[:12]}"
    ):
        camel.load_adapter(str(saved), base=other)


def test_wrong_shapes_are_refused_naming_expected_and_found(saved: Path) -> None:
    meta = json.loads((saved / camel.CONFIG_FILE).read_text())
    meta["config"]["bottleneck"] += 1
    (saved / camel.CONFIG_FILE).write_text(json.dumps(meta))
    reseal(saved)
    with pytest.raises(AdapterLoadError, match=r"expected adapt\.down\.bias shape \[17\], found \[16\]"):
        camel.load_adapter(str(saved))


def test_label_list_mismatch_is_refused(saved: Path) -> None:
    labels = json.loads((saved / camel.LABELS_FILE).read_text())
    (saved / camel.LABELS_FILE).write_text(json.dumps(labels + ["extra"]))
    reseal(saved)
    with pytest.raises(AdapterLoadError, match="does not match the labels"):
        camel.load_adapter(str(saved))


def test_weights_are_stored_in_half_precision_without_changing_predictions(
    saved: Path, trained: camel.TrainResult, tmp_path: Path
) -> None:
    with safe_open(str(saved / camel.WEIGHTS_FILE), framework="pt") as weights:
        assert {str(weights.get_tensor(name).dtype) for name in weights.keys()} == {"torch.float16"}
    import copy

    full = copy.deepcopy(trained.adapter)
    full.config.storage_dtype = "float32"
    camel.save_adapter(full, str(tmp_path / "fp32"))
    half_size = (saved / camel.WEIGHTS_FILE).stat().st_size
    assert half_size < 0.6 * (tmp_path / "fp32" / camel.WEIGHTS_FILE).stat().st_size
    # train() rounded the weights to float16 already, so the stored adapter serves identically.
    for name, tensor in camel.load_adapter(str(saved)).state_dict().items():
        assert tensor.dtype.is_floating_point and bool((tensor == trained.adapter.state_dict()[name]).all())
