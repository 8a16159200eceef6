"""Adapter folders on disk: trainable tensors in safetensors plus JSON metadata, written atomically.

Loading trusts nothing: every file that changes what the adapter serves (weights, config, labels
and any extra file such as a calibration) must match the sha256 recorded in `manifest.json`,
which is written last; the base model's fingerprint must match, and every tensor name and shape
must be the ones the config implies. `metrics.json` is informational: outside the manifest, and
a damaged one loads as empty metrics instead of disabling weights that are fine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from camel.base import BaseEncoder, load_base
from camel.config import CamelConfig
from camel.private_files import FILE_MODE, FOLDER_MODE, fsync_path, make_private_dirs
from camel.errors import AdapterLoadError, AdapterSaveError, CamelError, OtherBaseError
from camel.model import Adapter, new_adapter
from camel.version import __version__

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
ADAPTER_FILES = (CONFIG_FILE, WEIGHTS_FILE, LABELS_FILE, METRICS_FILE, MANIFEST_FILE)
# Served files every adapter has; extra files (calibration, ...) join them in the manifest.
SERVED_FILES = (CONFIG_FILE, WEIGHTS_FILE, LABELS_FILE)
MANIFEST_FORMAT = 1
# Owner-only: an adapter is derived from users' messages.


@dataclass
class FallbackResult:
    """What `load_first_good` found: the first candidate that loads, and why the others did not."""

    version: int | None
    folder: str | None
    adapter: Adapter | None
    failures: list[tuple[int, str]] = field(default_factory=list)


def version_folder_name(version: int) -> str:
    """`v0001`, `v0002`, ...: the folder of one adapter version inside adapters/<task>/."""
    return f"v{version:04d}"


def save_adapter(adapter: Adapter, directory: str, *, extra_files: Mapping[str, bytes] | None = None) -> None:
    """Write the adapter to `directory` via a temporary sibling folder, fsync, and rename.

    `extra_files` (name -> content) are written alongside and covered by the manifest. Any
    failure (a full disk shows up as SafetensorError as well as OSError) removes the temp folder
    at once and raises a one-line AdapterSaveError; an existing `directory` is left as it was.
    """
    target = os.path.abspath(directory)
    parent = os.path.dirname(target)
    extras = dict(extra_files or {})
    reserved = sorted(set(extras) & set(ADAPTER_FILES))
    bad_names = sorted(name for name in extras if not name or os.path.basename(name) != name or name.startswith("."))
    if reserved or bad_names:
        raise AdapterSaveError(f"extra adapter files may not use reserved or path-like names: {reserved + bad_names}")
    temp = os.path.join(parent, f".{os.path.basename(target)}.tmp-{uuid.uuid4().hex}")
    try:
        make_private_dirs(parent)
        os.mkdir(temp, FOLDER_MODE)
        os.chmod(temp, FOLDER_MODE)
        _write_files(adapter, temp, extras)
        fsync_path(temp)
        _replace_folder(temp, target)
        fsync_path(parent)
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise AdapterSaveError(f"cannot write adapter to {target}: {_one_line(exc)}") from exc


def load_first_good(task_dir: str, versions: Sequence[int], base: BaseEncoder | None = None) -> FallbackResult:
    """Try `versions` in the order given (newest first, usually) inside `task_dir`; the first that
    loads wins. Never raises for a bad version: each failure is returned as (version, reason)."""
    failures: list[tuple[int, str]] = []
    for version in versions:
        folder = os.path.join(os.path.abspath(task_dir), version_folder_name(version))
        try:
            adapter = load_adapter(folder, base)
        except CamelError as exc:
            failures.append((version, _one_line(exc)))
            continue
        return FallbackResult(version=version, folder=folder, adapter=adapter, failures=failures)
    return FallbackResult(version=None, folder=None, adapter=None, failures=failures)


@dataclass(frozen=True)
class BaseRef:
    """Which base model an adapter folder was trained on, as its config.json records it."""

    fingerprint: str
    path: str
    model_type: str = ""

    @property
    def tag(self) -> str:
        return self.fingerprint[:12]

    def label(self) -> str:
        """`paraphrase-multilingual-MiniLM-L12-v2 (3f9a1c0b2d4e)`: the folder's name and the tag."""
        return f"{os.path.basename(self.path.rstrip(os.sep)) or self.path} ({self.tag})"


def adapter_base(directory: str) -> BaseRef:
    """The base an adapter folder records, read without loading anything (AdapterLoadError if unreadable)."""
    folder = os.path.abspath(directory)
    meta = _read_json(folder, CONFIG_FILE)
    try:
        return BaseRef(str(meta["base_fingerprint"]), str(meta["base_path"]), str(meta.get("base_model_type", "")))
    except (KeyError, TypeError) as exc:
        raise AdapterLoadError(f"invalid {CONFIG_FILE} in {folder}: no base fingerprint ({exc})") from exc


def load_adapter(directory: str, base: BaseEncoder | None = None) -> Adapter:
    """Load and verify an adapter folder; `base` defaults to the base model it records."""
    folder = os.path.abspath(directory)
    if not os.path.isdir(folder):
        raise AdapterLoadError(f"adapter folder not found: {folder}")
    extras = _verify_manifest(folder)
    meta = _read_json(folder, CONFIG_FILE)
    if extras is None:
        if not isinstance(meta, dict) or meta.get("integrity") == MANIFEST_FILE:
            raise AdapterLoadError(f"adapter {folder} has no {MANIFEST_FILE}")
        extras = {}  # saved before manifests existed: the weights' own sha256 below still guards them
    labels = _read_json(folder, LABELS_FILE)
    metrics = _read_metrics(folder)
    try:
        config = CamelConfig.from_dict(meta["config"])
        expected_fingerprint, base_path = str(meta["base_fingerprint"]), str(meta["base_path"])
        expected_sha, shapes = str(meta["weights_sha256"]), dict(meta["tensor_shapes"])
    except (KeyError, TypeError, ValueError, CamelError) as exc:
        raise AdapterLoadError(f"invalid {CONFIG_FILE} in {folder}: {exc}") from exc
    if labels != meta.get("labels"):
        raise AdapterLoadError(f"{LABELS_FILE} in {folder} does not match the labels in {CONFIG_FILE}")
    # The recorded path can go stale (a rebuilt venv moves the shipped MiniLM); the fingerprint decides.
    base = base or load_base(base_path if os.path.isdir(base_path) else config.resolved_base_model())
    if base.fingerprint != expected_fingerprint:
        # Its own class: the folder is fine, only this base cannot serve it (callers must not reject it).
        raise OtherBaseError(
            f"adapter {folder} was trained on base fingerprint {expected_fingerprint[:12]} ({base_path}); "
            f"found base fingerprint {base.fingerprint[:12]} ({base.path})"
        )
    adapter = new_adapter(base, config, labels)
    _load_weights(adapter, folder, expected_sha, shapes)
    adapter.metrics = metrics
    adapter.extra_files = extras
    adapter.eval()
    return adapter


def _verify_manifest(folder: str) -> dict[str, bytes] | None:
    """Check every file against manifest.json; returns the extra files' contents (verified),
    or None when the folder has no manifest at all (the caller decides if that is allowed)."""
    if not os.path.lexists(os.path.join(folder, MANIFEST_FILE)):
        return None
    manifest = _read_json(folder, MANIFEST_FILE)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise AdapterLoadError(f"invalid {MANIFEST_FILE} in {folder}: no files with their sha256")
    missing = [name for name in SERVED_FILES if name not in files]
    if missing:
        raise AdapterLoadError(f"invalid {MANIFEST_FILE} in {folder}: {missing[0]} is not listed")
    present = set(os.listdir(folder))
    unlisted = sorted(present - set(files) - {MANIFEST_FILE, METRICS_FILE})
    if unlisted:
        raise AdapterLoadError(
            f"{unlisted[0]} in {folder} is not in {MANIFEST_FILE}: refusing a file it would serve unverified"
        )
    extras: dict[str, bytes] = {}
    for name, expected in sorted(files.items()):
        if os.path.basename(name) != name or name in (MANIFEST_FILE, METRICS_FILE):
            raise AdapterLoadError(f"invalid {MANIFEST_FILE} in {folder}: bad entry {name!r}")
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise AdapterLoadError(f"adapter {folder} has no {name}")
        found = _sha256(path)
        if found != expected:
            raise AdapterLoadError(f"corrupt {name} in {folder}: sha256 expected {expected[:12]}, found {found[:12]}")
        if name not in SERVED_FILES:
            with open(path, "rb") as handle:
                extras[name] = handle.read()
    return extras


def _read_metrics(folder: str) -> dict[str, Any]:
    """metrics.json is informational: unreadable or not a JSON object means no metrics, not a refusal."""
    try:
        metrics = _read_json(folder, METRICS_FILE)
    except AdapterLoadError:
        return {}
    return metrics if isinstance(metrics, dict) else {}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _write_files(adapter: Adapter, folder: str, extras: Mapping[str, bytes]) -> None:
    tensors = {
        name: tensor.detach().to(adapter.storage_dtype).contiguous() for name, tensor in adapter.state_dict().items()
    }
    weights_path = os.path.join(folder, WEIGHTS_FILE)
    save_file(tensors, weights_path, metadata={"format": "pt", "camel_version": __version__})
    meta = {
        "camel_version": __version__,
        "base_fingerprint": adapter.base.fingerprint,
        "base_path": adapter.base.path,
        "base_model_type": adapter.base.model_type,
        "base_num_layers": adapter.base.num_layers,
        "hidden_size": adapter.base.hidden_size,
        "split_layer": adapter.split_layer,
        "config": adapter.config.to_dict(),
        "labels": adapter.labels,
        "thresholds": {"abstain": adapter.config.abstain_threshold},
        "tensor_shapes": {name: list(tensor.shape) for name, tensor in tensors.items()},
        "weights_sha256": _sha256(weights_path),
        "integrity": MANIFEST_FILE,  # a folder saying this is refused if its manifest goes missing
    }
    _write_json(os.path.join(folder, CONFIG_FILE), meta)
    _write_json(os.path.join(folder, LABELS_FILE), adapter.labels)
    _write_json(os.path.join(folder, METRICS_FILE), adapter.metrics)
    for name, content in extras.items():
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(content)
    served = list(SERVED_FILES) + sorted(extras)
    for name in served + [METRICS_FILE]:
        os.chmod(os.path.join(folder, name), FILE_MODE)
        fsync_path(os.path.join(folder, name))
    # Last, so a folder without a complete manifest never passes as a whole adapter.
    _write_manifest(folder, served)


def _write_manifest(folder: str, served: Sequence[str]) -> None:
    path = os.path.join(folder, MANIFEST_FILE)
    _write_json(
        path, {"format": MANIFEST_FORMAT, "files": {name: _sha256(os.path.join(folder, name)) for name in served}}
    )
    os.chmod(path, FILE_MODE)
    fsync_path(path)


def _load_weights(adapter: Adapter, folder: str, expected_sha: str, shapes: dict[str, Any]) -> None:
    weights_path = os.path.join(folder, WEIGHTS_FILE)
    if not os.path.isfile(weights_path):
        raise AdapterLoadError(f"adapter {folder} has no {WEIGHTS_FILE}")
    found_sha = _sha256(weights_path)
    if found_sha != expected_sha:
        raise AdapterLoadError(
            f"corrupt {WEIGHTS_FILE} in {folder}: sha256 expected {expected_sha[:12]}, found {found_sha[:12]}"
        )
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError) as exc:
        raise AdapterLoadError(f"corrupt {WEIGHTS_FILE} in {folder}: {exc}") from exc
    expected = {name: list(tensor.shape) for name, tensor in adapter.state_dict().items()}
    found = {name: list(tensor.shape) for name, tensor in tensors.items()}
    for what, side in (("recorded", {k: list(v) for k, v in shapes.items()}), ("stored", found)):
        if side != expected:
            raise AdapterLoadError(f"tensor mismatch in {folder} ({what}): {_difference(expected, side)}")
    adapter.load_state_dict({name: tensor.float() for name, tensor in tensors.items()}, strict=True)


def _difference(expected: dict[str, list[int]], found: dict[str, list[int]]) -> str:
    missing = sorted(set(expected) - set(found))
    if missing:
        return f"expected tensor {missing[0]} {expected[missing[0]]}, found none ({len(missing)} missing)"
    extra = sorted(set(found) - set(expected))
    if extra:
        return f"expected no tensor {extra[0]}, found {extra[0]} {found[extra[0]]}"
    name = next(n for n in sorted(expected) if expected[n] != found[n])
    return f"expected {name} shape {expected[name]}, found {found[name]}"


def _read_json(folder: str, name: str) -> Any:
    path = os.path.join(folder, name)
    if not os.path.isdir(folder):
        raise AdapterLoadError(f"adapter folder not found: {folder}")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise AdapterLoadError(f"adapter {folder} has no {name}") from exc
    except (OSError, ValueError) as exc:
        raise AdapterLoadError(f"corrupt {name} in {folder}: {_one_line(exc)}") from exc


def _write_json(path: str, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=_json_default)
        handle.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _replace_folder(temp: str, target: str) -> None:
    """Rename `temp` to `target`; an existing target is moved aside first and removed only after."""
    if not os.path.exists(target):
        os.rename(temp, target)
        return
    aside = f"{target}.old-{uuid.uuid4().hex}"
    os.rename(target, aside)
    os.rename(temp, target)
    shutil.rmtree(aside, ignore_errors=True)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
