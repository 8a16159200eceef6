"""Cached MiniLM states for the benchmarks, so reruns skip the bottom pass.

Token states of the full frozen encoder (split layer 6, K = 0) go to a camel FeatureCache on disk
under bench/.cache/states/ (gitignored); the mean-pooled sentence vectors (all-MiniLM-L6-v2's
embedding before its L2 normalisation) are derived from them on demand, and `sentence_features`
gives them L2-normalised, as the frozen-probe recipes (bench.method.curve's logreg, bench.method.active)
use them. Run as a program, it fills the cache for every data set (it measures nothing).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from bench.common import DATASETS, REPO, benchmark_parser, load_dataset, require_data, shared_data
from camel import CamelConfig, FeatureCache, load_base

CACHE_DIR = REPO / "bench" / ".cache" / "states"
MAX_LENGTH = 64


def open_cache() -> FeatureCache:
    base = load_base(CamelConfig().resolved_base_model())
    return FeatureCache(base, str(CACHE_DIR), max_entries=200_000)


def fill(cache: FeatureCache, texts: list[str], split_layer: int) -> float:
    """Compute the missing states in chunks, flushing each chunk to disk; returns the seconds spent."""
    started = time.perf_counter()
    for start in range(0, len(texts), 2048):
        cache.states(texts[start : start + 2048], split_layer, MAX_LENGTH)
        cache.flush()
    return time.perf_counter() - started


def pooled(cache: FeatureCache, texts: list[str], split_layer: int | None = None) -> torch.Tensor:
    """Mean-pooled final-layer states [n, hidden] (float32, not normalised)."""
    layer = cache.base.num_layers if split_layer is None else split_layer
    states = cache.states(texts, layer, MAX_LENGTH)
    return torch.stack([state.float().mean(dim=0) for state in states])


def sentence_features(cache: FeatureCache, texts: list[str]) -> np.ndarray:
    """float32 [n, hidden] mean-pooled, L2-normalised final-layer states: all-MiniLM-L6-v2's embedding."""
    return torch.nn.functional.normalize(pooled(cache, texts), dim=-1).numpy()


def dataset_features(name: str, threads: int = 2) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """(train features, train labels, test features, test labels) of a shared data set; the states
    are computed once into the disk cache, so a rerun only reads them."""
    torch.set_num_threads(threads)
    cache, data = open_cache(), load_dataset(name)
    features = []
    for split, texts in (("train", data.train_texts), ("test", data.test_texts)):
        seconds = fill(cache, texts, cache.base.num_layers)
        print(f"{name} {split}: {len(texts)} states ready ({seconds:.0f} s)", flush=True)
        features.append(sentence_features(cache, texts))
    return features[0], data.train_labels, features[1], data.test_labels


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.method.features",
        __doc__,
        writes="bench/.cache/states (MiniLM token states, gitignored); no result file",
        data=shared_data(*DATASETS),
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    options = parser.parse_args(argv)
    require_data(options.datasets)
    torch.set_num_threads(options.threads)
    cache = open_cache()
    for name in options.datasets:
        data = load_dataset(name)
        for split, texts in (("train", data.train_texts), ("test", data.test_texts)):
            seconds = fill(cache, texts, cache.base.num_layers)
            print(f"{name} {split}: {len(texts)} texts, {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
