"""Serving: the bot's answers for a batch of texts, from an adapter that can be swapped while other threads answer."""

from __future__ import annotations

import logging
import threading
import time

import torch

from camel.answers import Answer, answers_from, calibrated, detector_of
from camel.cache import FeatureCache
from camel.errors import CacheError, IncompatibleAdapterError, TrainingDataError
from camel.label_view import LabelPlan, LabelView, plan
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
        self.cache = cache if cache is not None else FeatureCache(adapter.base, bf16=bool(bf16))
        # bfloat16 matmuls for the top blocks too (about 2x faster on CPUs with AMX/AVX512-BF16);
        # by default the same precision as the cache's bottom.
        self.bf16 = self.cache.bf16 if bf16 is None else bf16
        # Predicting fills the cache; entries reach disk once this many are pending (or on flush()).
        self.flush_every = flush_every
        # Today's labels over the adapter's (renamed, merged, retired, new): see camel.label_view.
        self._view: LabelView | None = None
        self._plan: tuple[Adapter, LabelView | None, LabelPlan] | None = None

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

    @property
    def label_view(self) -> LabelView | None:
        return self._view

    def set_label_view(self, view: LabelView | None) -> None:
        """Serve today's labels from now on (the next answer uses them; no swap, no restart)."""
        self._view = view

    def label_plan(self, adapter: Adapter | None = None) -> LabelPlan:
        """The current label view compiled for `adapter` (default: the serving one), cached."""
        adapter = adapter if adapter is not None else self._adapter
        view, cached = self._view, self._plan
        if cached is not None and cached[0] is adapter and cached[1] is view:
            return cached[2]
        compiled = plan(adapter, view, self.embed_prompts)
        self._plan = (adapter, view, compiled)
        return compiled

    def embed_prompts(self, adapter: Adapter, prompts: list[str]) -> torch.Tensor:
        """The adaptation layer's output for each prompt: where `adapter`'s classifier reads."""
        out = torch.empty(len(prompts), adapter.classifier.in_features)
        with torch.inference_mode():
            for start in range(0, len(prompts), PREDICT_BATCH):
                chunk = prompts[start : start + PREDICT_BATCH]
                hidden, mask = self.cache.batch(chunk, adapter.split_layer, adapter.config.max_length)
                out[start : start + len(chunk)] = adapter.adapt(adapter.pool(hidden.float(), mask)).float()
        return out

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
        label_plan = self.label_plan(adapter)  # today's labels over this adapter's columns
        probabilities, threshold = calibrated(adapter, self._probabilities(adapter, texts, label_plan).numpy(), floor)
        latency_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(texts))
        self.flush_if_due()
        return answers_from(
            label_plan.labels, probabilities, threshold, out_of_scope_label, latency_ms, detector_of(adapter)
        )

    def probabilities(self, texts: list[str]) -> tuple[Adapter, torch.Tensor]:
        """The adapter used and its uncalibrated probabilities [texts, labels]: for evaluation and
        for fitting a calibration, never for answering users (that is `answer`)."""
        adapter = self._adapter
        return adapter, self._probabilities(adapter, texts)

    def flush(self) -> int:
        return self.cache.flush()

    def _probabilities(self, adapter: Adapter, texts: list[str], label_plan: LabelPlan | None = None) -> torch.Tensor:
        """Probabilities [texts, labels]: the adapter's own columns, or `label_plan`'s labels."""
        overlay = label_plan is not None and not label_plan.identity
        width = len(label_plan.labels) if label_plan is not None else len(adapter.labels)
        if not texts:
            return torch.empty(0, width)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = torch.empty(len(texts), width)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for start in range(0, len(order), PREDICT_BATCH):
                chunk = order[start : start + PREDICT_BATCH]
                hidden, mask = self.cache.batch(
                    [texts[i] for i in chunk], adapter.split_layer, adapter.config.max_length
                )
                if overlay and label_plan is not None:
                    embedding, logits = adapter.embed_and_classify(adapter.pool(hidden, mask))
                    result[chunk] = label_plan.probabilities(
                        logits.float(), embedding.float(), adapter.config.multi_label
                    )
                else:
                    result[chunk] = adapter.probabilities(adapter(hidden, mask).float())
        return result

    def flush_if_due(self) -> None:
        """Write the cache's pending entries once `flush_every` are waiting (every pass that fills
        the cache calls this, so memory stays bounded over many texts)."""
        if self.cache.directory and self.cache.pending >= self.flush_every:
            try:
                self.cache.flush(wait=False)  # never wait here for an erasure of the folder
            except CacheError as exc:
                # The cache only saves work; a full or read-only disk must not fail a prediction.
                log.warning("%s (entries stay in memory and are retried)", exc)


def _check_cache(adapter: Adapter, cache: FeatureCache | None) -> None:
    if cache is not None and cache.base.fingerprint != adapter.base.fingerprint:
        raise IncompatibleAdapterError(
            f"feature cache is for base {cache.base.path} but the adapter uses {adapter.base.path}"
        )
