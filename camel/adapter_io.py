"""Adapter folders on disk: trainable tensors in safetensors plus JSON metadata, written atomically.

Loading trusts nothing: the JSON must parse, the weights' sha256 must match, the base model's
fingerprint must match, and every tensor name and shape must be the ones the config implies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from camel.base import BaseEncoder, load_base
from camel.config import CamelConfig
from camel.errors import AdapterLoadError, AdapterSaveError, CamelError
from camel.model import Adapter, new_adapter
from camel.version import __version__

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
ADAPTER_FILES = (CONFIG_FILE, WEIGHTS_FILE, LABELS_FILE, METRICS_FILE)


def save_adapter(adapter: Adapter, directory: str) -> None:
    """Write the adapter to `directory` via a temporary sibling folder, fsync, and rename."""
    target = os.path.abspath(directory)
    parent = os.path.dirname(target)
    temp = os.path.join(parent, f".{os.path.basename(target)}.tmp-{uuid.uuid4().hex}")
    try:
        os.makedirs(parent, exist_ok=True)
        os.mkdir(temp)
        _write_files(adapter, temp)
        _fsync_path(temp)
        _replace_folder(temp, target)
        _fsync_path(parent)
    except OSError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise AdapterSaveError(f"cannot write adapter to {target}: {exc}") from exc


def load_adapter(directory: str, base: BaseEncoder | None = None) -> Adapter:
    """Load and verify an adapter folder; `base` defaults to the base model it records."""
    folder = os.path.abspath(directory)
    meta = _read_json(folder, CONFIG_FILE)
    labels = _read_json(folder, LABELS_FILE)
    metrics = _read_json(folder, METRICS_FILE)
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
        raise AdapterLoadError(
            f"adapter {folder} was trained on base fingerprint {expected_fingerprint[:12]} ({base_path}); "
            f"found base fingerprint {base.fingerprint[:12]} ({base.path})")
    adapter = new_adapter(base, config, labels)
    _load_weights(adapter, folder, expected_sha, shapes)
    adapter.metrics = metrics if isinstance(metrics, dict) else {}
    adapter.eval()
    return adapter


def _write_files(adapter: Adapter, folder: str) -> None:
    tensors = {name: tensor.detach().to(adapter.storage_dtype).contiguous()
               for name, tensor in adapter.state_dict().items()}
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
    }
    _write_json(os.path.join(folder, CONFIG_FILE), meta)
    _write_json(os.path.join(folder, LABELS_FILE), adapter.labels)
    _write_json(os.path.join(folder, METRICS_FILE), adapter.metrics)
    for name in ADAPTER_FILES:
        _fsync_path(os.path.join(folder, name))


def _load_weights(adapter: Adapter, folder: str, expected_sha: str, shapes: dict[str, Any]) -> None:
    weights_path = os.path.join(folder, WEIGHTS_FILE)
    if not os.path.isfile(weights_path):
        raise AdapterLoadError(f"adapter {folder} has no {WEIGHTS_FILE}")
    found_sha = _sha256(weights_path)
    if found_sha != expected_sha:
        raise AdapterLoadError(f"corrupt {WEIGHTS_FILE} in {folder}: sha256 expected {expected_sha[:12]}, "
                               f"found {found_sha[:12]}")
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
        raise AdapterLoadError(f"corrupt {name} in {folder}: {exc}") from exc


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


def _fsync_path(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
