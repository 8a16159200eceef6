"""Frozen sentence features of a benchmark data set, computed once with camel's base encoder and cached.

A feature is all-MiniLM-L6-v2's sentence embedding as camel computes it: the whole frozen
encoder (split layer = all blocks) through `camel.FeatureCache`, mean-pooled over the real
tokens, L2-normalised. The arrays go to bench/.cache (gitignored) as .npy files keyed by the
base's fingerprint and a hash of the texts, so a rerun never recomputes them.

Run on its own to fill the cache: `python -m bench.frozen_features banking77 [--threads 2]`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from bench import common
from bench.common import REPO, load_dataset, require_data

CACHE_DIR = REPO / "bench" / ".cache"
MAX_LENGTH = 64  # camel's default max_length
CHUNK = 512  # texts per FeatureCache call, so memory holds pooled vectors, not token states


def _texts_key(fingerprint: str, texts: list[str]) -> str:
    digest = hashlib.sha256(fingerprint.encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def sentence_features(texts: list[str], name: str, threads: int = 2) -> np.ndarray:
    """float32 [len(texts), hidden] mean-pooled, L2-normalised final-layer states (cached on disk)."""
    import torch

    from camel import CamelConfig, FeatureCache, load_base

    torch.set_num_threads(threads)
    base = load_base(CamelConfig().resolved_base_model())
    path = CACHE_DIR / f"{name}-{_texts_key(base.fingerprint, texts)}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out = np.empty((len(texts), base.hidden_size), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, len(texts), CHUNK):
        # A fresh in-memory cache per chunk: only the pooled vectors are kept.
        cache = FeatureCache(base)
        states = cache.states(texts[start : start + CHUNK], base.num_layers, MAX_LENGTH)
        pooled = torch.stack([state.float().mean(dim=0) for state in states])
        out[start : start + len(states)] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        print(f"{name}: {start + len(states)}/{len(texts)} ({time.perf_counter() - started:.0f} s)", flush=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out, allow_pickle=False)
    tmp.replace(path)
    return out


def dataset_features(name: str, threads: int = 2) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """(train features, train labels, test features, test labels) of a shared data set."""
    data = load_dataset(name)
    train = sentence_features(data.train_texts, f"{name}-train", threads)
    test = sentence_features(data.test_texts, f"{name}-test", threads)
    return train, data.train_labels, test, data.test_labels


def use_data_dir(folder: str) -> None:
    """Read the shared data from `folder` (a git worktree is not next to ../shared like the main checkout)."""
    if folder:
        common.DATA_DIR = Path(folder).resolve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", default="banking77", nargs="?")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default="", help="benchmark data folder (default ../shared/data)")
    options = parser.parse_args(argv)
    use_data_dir(options.data_dir)
    require_data([options.dataset])
    train, _, test, _ = dataset_features(options.dataset, options.threads)
    print(f"{options.dataset}: train {train.shape}, test {test.shape} cached in {CACHE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
