"""Serving: the bot's answers for a batch of texts, from an adapter that can be swapped while other threads answer."""

from __future__ import annotations

import logging
import threading
import time

import torch

from camel.answers import Answer, answers_from, calibrated, detector_of
from camel.cache import FeatureCache
from camel.engines import TorchBF16Engine
from camel.hardware import threads_for
from camel.errors import CacheError, IncompatibleAdapterError, TrainingDataError
from camel.model import Adapter

log = logging.getLogger(__name__)

PREDICT_BATCH = 64


class Predictor:
    """Thread-safe predictions from one task's adapter; `swap` replaces it atomically."""

    def __init__(
        self, adapter: Adapter, cache: FeatureCache | None = None, flush_every: int = 256, bf16: bool | None = None
    ) -> None:
        _check_cache(adapter, cache)
        self._adapter = adapter
        self._swap_lock = threading.Lock()
        if cache is None:
            cache = FeatureCache(adapter.base, engine=TorchBF16Engine() if bf16 else None)
        self.cache = cache
        # bfloat16 matmuls for the top blocks too (about 2x faster on CPUs with AMX/AVX512-BF16);
        # by default the same precision as the cache's bottom.
        self.bf16 = self.cache.bf16 if bf16 is None else bf16
        # Predicting fills the cache; entries reach disk once this many are pending (or on flush()).
        self.flush_every = flush_every

    @property
    def adapter(self) -> Adapter:
        return self._adapter

    def swap(self, new: Adapter) -> Adapter:
        """Serve `new` from now on (after checking it fits this base); returns the old adapter."""
        current = self._adapter
        if new.base.fingerprint != current.base.fingerprint:
            raise IncompatibleAdapterError(
                f"adapter base {new.base.path} (fingerprint {new.base.fingerprint[:12]}) does not match the "
                f"serving base {current.base.path} (fingerprint {current.base.fingerprint[:12]})"
            )
        new.eval()
        with self._swap_lock:
            old, self._adapter = self._adapter, new
        return old

    def answer(
        self, texts: list[str], *, floor: float | None = None, out_of_scope_label: str | None = None
    ) -> list[Answer]:
        """What the bot says about each text, all from the adapter serving when the call started.

        `floor`: the task's lowest threshold for stating a label (None: the adapter's own, see
        `camel.answers.calibrated`); `out_of_scope_label`: the task's label for "none of these"
        (None: the task has none). Confidences and top 3 are calibrated with the adapter's own
        calibration, and its out-of-scope detector (if any) applies.
        """
        adapter = self._adapter  # one reference for the whole call: a swap cannot split a batch
        if any(not isinstance(text, str) for text in texts):
            raise TrainingDataError("answer() takes a list of strings")
        started = time.perf_counter()
        probabilities, threshold = calibrated(adapter, self._probabilities(adapter, texts).numpy(), floor)
        latency_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(texts))
        self.flush_if_due()
        return answers_from(
            adapter.labels, probabilities, threshold, out_of_scope_label, latency_ms, detector_of(adapter)
        )

    def probabilities(self, texts: list[str]) -> tuple[Adapter, torch.Tensor]:
        """The adapter used and its uncalibrated probabilities [texts, labels]: for evaluation and
        for fitting a calibration, never for answering users (that is `answer`)."""
        adapter = self._adapter
        return adapter, self._probabilities(adapter, texts)

    def flush(self) -> int:
        return self.cache.flush()

    def _probabilities(self, adapter: Adapter, texts: list[str]) -> torch.Tensor:
        if not texts:
            return torch.empty(0, len(adapter.labels))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = torch.empty(len(texts), len(adapter.labels))
        with (
            threads_for(len(texts)),
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16),
        ):
            for start in range(0, len(order), PREDICT_BATCH):
                chunk = order[start : start + PREDICT_BATCH]
                hidden, mask = self.cache.batch(
                    [texts[i] for i in chunk], adapter.split_layer, adapter.config.max_length
                )
                result[chunk] = adapter.probabilities(adapter(hidden, mask).float())
        return result

    def flush_if_due(self) -> None:
        """Write the cache's pending entries once `flush_every` are waiting (every pass that fills
        the cache calls this, so memory stays bounded over many texts)."""
        if self.cache.directory and self.cache.pending >= self.flush_every:
            try:
                self.cache.flush()
            except CacheError as exc:
                # The cache only saves work; a full or read-only disk must not fail a prediction.
                log.warning("%s (entries stay in memory and are retried)", exc)


def _check_cache(adapter: Adapter, cache: FeatureCache | None) -> None:
    if cache is not None and cache.base.fingerprint != adapter.base.fingerprint:
        raise IncompatibleAdapterError(
            f"feature cache is for base {cache.base.path} but the adapter uses {adapter.base.path}"
        )
