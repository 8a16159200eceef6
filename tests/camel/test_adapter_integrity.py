"""Adapter integrity, so a damaged or half-written version is never served: a sha256 manifest over
everything that changes what is served, an informational metrics.json, save failures that leave
nothing behind, and start-up fallback."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from safetensors import SafetensorError

import camel
import camel.adapter_io as adapter_io
from camel.errors import AdapterLoadError, AdapterSaveError


@pytest.fixture
def saved(trained: camel.TrainResult, tmp_path: Path) -> Path:
    folder = tmp_path / "support" / "v0001"
    camel.save_adapter(trained.adapter, str(folder))
    return folder


def test_manifest_lists_a_sha256_for_every_served_file_and_not_metrics(saved: Path) -> None:
    manifest = json.loads((saved / camel.MANIFEST_FILE).read_text())
    assert set(manifest["files"]) == {camel.CONFIG_FILE, camel.WEIGHTS_FILE, camel.LABELS_FILE}
    assert all(len(digest) == 64 for digest in manifest["files"].values())


def test_reversed_labels_in_both_label_files_are_refused(saved: Path) -> None:
    labels = json.loads((saved / camel.LABELS_FILE).read_text())[::-1]
    meta = json.loads((saved / camel.CONFIG_FILE).read_text())
    meta["labels"] = labels
    (saved / camel.LABELS_FILE).write_text(json.dumps(labels))
    (saved / camel.CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(AdapterLoadError, match=r"corrupt (labels|adapter_config).json .*sha256"):
        camel.load_adapter(str(saved))


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe\x00", None])
def test_a_bad_or_missing_metrics_file_never_blocks_loading(saved: Path, content: bytes | None) -> None:
    path = saved / camel.METRICS_FILE
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    adapter = camel.load_adapter(str(saved))
    assert adapter.metrics == {} and adapter.labels


def test_a_missing_manifest_or_an_unlisted_file_is_refused(saved: Path) -> None:
    (saved / "calibration.json").write_text("{}")
    with pytest.raises(AdapterLoadError, match="calibration.json .*not in manifest.json"):
        camel.load_adapter(str(saved))
    (saved / "calibration.json").unlink()
    (saved / camel.MANIFEST_FILE).unlink()
    with pytest.raises(AdapterLoadError, match="no manifest.json"):
        camel.load_adapter(str(saved))


def test_extra_files_are_covered_by_the_manifest(trained: camel.TrainResult, tmp_path: Path) -> None:
    folder = tmp_path / "v0001"
    camel.save_adapter(trained.adapter, str(folder), extra_files={"calibration.json": b'{"t": 1.5}'})
    assert camel.load_adapter(str(folder)).extra_files == {"calibration.json": b'{"t": 1.5}'}
    (folder / "calibration.json").write_bytes(b'{"t": 9.9}')
    with pytest.raises(AdapterLoadError, match="calibration.json .*sha256"):
        camel.load_adapter(str(folder))
    with pytest.raises(AdapterSaveError, match="reserved"):
        camel.save_adapter(trained.adapter, str(tmp_path / "v2"), extra_files={camel.LABELS_FILE: b"[]"})


@pytest.mark.parametrize(
    "failure",
    [
        SafetensorError("Error while serializing: IoError(No space left on device)"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_a_failed_save_removes_the_temp_folder_and_says_one_line(
    trained: camel.TrainResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    def full_disk(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(adapter_io, "save_file", full_disk)
    with pytest.raises(AdapterSaveError) as caught:
        camel.save_adapter(trained.adapter, str(tmp_path / "v0002"))
    assert "\n" not in str(caught.value) and "No space left" in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_a_save_that_fails_before_the_manifest_leaves_nothing(
    trained: camel.TrainResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(adapter_io, "_write_manifest", crash)
    with pytest.raises(AdapterSaveError, match="Input/output error"):
        camel.save_adapter(trained.adapter, str(tmp_path / "v0003"))
    assert os.listdir(tmp_path) == []


def _break(folder: Path, how: str) -> None:
    if how == "truncated weights":
        path = folder / camel.WEIGHTS_FILE
        path.write_bytes(path.read_bytes()[:50])
    elif how == "garbled weights":
        path = folder / camel.WEIGHTS_FILE
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "empty config":
        (folder / camel.CONFIG_FILE).write_text("")
    elif how == "reordered labels":
        labels = json.loads((folder / camel.LABELS_FILE).read_text())
        (folder / camel.LABELS_FILE).write_text(json.dumps(labels[1:] + labels[:1]))
    elif how == "folder deleted":
        import shutil

        shutil.rmtree(folder)


@pytest.mark.parametrize(
    "how", ["truncated weights", "garbled weights", "empty config", "reordered labels", "folder deleted"]
)
def test_load_first_good_falls_back_past_broken_versions(trained: camel.TrainResult, tmp_path: Path, how: str) -> None:
    task_dir = tmp_path / "support"
    for version in (1, 2):
        camel.save_adapter(trained.adapter, str(task_dir / camel.version_folder_name(version)))
    _break(task_dir / "v0002", how)
    found = camel.load_first_good(str(task_dir), [3, 2, 1])
    assert found.version == 1 and found.folder == str(task_dir / "v0001")
    assert found.adapter is not None and found.adapter.labels == trained.adapter.labels
    assert [version for version, _ in found.failures] == [3, 2]
    assert all("\n" not in reason for _, reason in found.failures)
    assert "not found" in found.failures[0][1]


def test_load_first_good_with_nothing_loadable_says_why_for_each(tmp_path: Path) -> None:
    found = camel.load_first_good(str(tmp_path), [2, 1])
    assert found.version is None and found.adapter is None and found.folder is None
    assert [version for version, _ in found.failures] == [2, 1]


def test_an_adapter_saved_before_manifests_existed_still_loads(saved: Path) -> None:
    (saved / camel.MANIFEST_FILE).unlink()
    meta = json.loads((saved / camel.CONFIG_FILE).read_text())
    del meta["integrity"]
    (saved / camel.CONFIG_FILE).write_text(json.dumps(meta))
    assert camel.load_adapter(str(saved)).labels


def test_adapter_files_are_private_whatever_the_umask(trained: camel.TrainResult, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = tmp_path / "adapters" / "support" / "v0001"
        camel.save_adapter(trained.adapter, str(folder))
    finally:
        os.umask(old)
    for path in (tmp_path / "adapters", tmp_path / "adapters" / "support", folder):
        assert path.stat().st_mode & 0o777 == 0o700, path
    assert all((folder / name).stat().st_mode & 0o777 == 0o600 for name in os.listdir(folder))


def test_a_text_with_invalid_utf8_is_predicted_not_a_type_error(trained: camel.TrainResult) -> None:
    # A command-line argument with invalid UTF-8 arrives as lone surrogates (surrogateescape).
    text = b"card \xff\xfe arrived".decode("utf-8", "surrogateescape")
    [prediction] = camel.Predictor(trained.adapter).answer([text])
    assert prediction.label in trained.adapter.labels
