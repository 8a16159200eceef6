"""Interim versions: a correction moves the serving model within seconds, between rounds.

A full round (child process, top blocks trained, calibration fitted) takes 30-40 s on a 2-core
machine and waits for `threshold_new_labels` and a debounce. Meanwhile, right after a correction
is stored, the loop refits only the serving adapter's classifier, in this process:

1. The adapter's own features (top blocks, pooling, adaptation layer) of every labelled message
   are computed once per set of blocks and kept in memory (an interim's blocks are its parent's,
   so a chain of interims over one round's version shares one cache); a new label costs one pass.
2. The classifier is refitted on the training split (L-BFGS on cross-entropy with a pull towards
   the serving weights, so what it knew stays), with a row added for a label it has not seen.
3. The gate (`bot.loop.gate.decide`, the rule rounds pass) compares the refit with the serving
   head on the held-out split; only a refit it promotes is served.
4. It is published as a version like any other: a full adapter folder (7 MB for MiniLM, the
   parent's blocks and files, calibration included, with the new classifier), registered with
   its parent and `metrics["interim"]`, made active and hot-swapped. `/camel history` lists it as
   an interim of its parent; rollback and the fallback treat it as any version. An interim that
   a newer interim over the same parent replaces is pruned at once (folder removed, record kept),
   so interims never pile up on disk; the round that follows trains from whatever serves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from sqlite_utils import Database

import camel
import storage
from camel.cache import text_digest
from camel.evaluation import metrics_from_predictions
from bot.loop import gate, versions
from bot.loop.versions import blocks_version, interim_of
from bot.loop.registry import PredictorRegistry
from bot.settings import Settings

log = logging.getLogger(__name__)
FEATURE_BATCH = 64
# How strongly the refit stays near the serving weights (per unit of mean cross-entropy).
PULL = 1e-3
MAX_ITERATIONS = 60
# A flood of corrections must not keep a core refitting while the bot answers messages: after a
# refit that took d seconds, the next one of the task starts at least max(d, MIN_GAP_S) later, so
# refits take at most half a core; corrections meanwhile are folded into that next refit.
MIN_GAP_S = 1.0


@dataclass(frozen=True)
class InterimResult:
    """What one refit did: "promoted" (served as `version`), "rejected" (by the gate), or "skipped"."""

    task: str
    outcome: str
    reason: str
    version: int | None = None
    parent: int | None = None
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)


class FeatureStore:
    """The adapter's features (adaptation layer output) of labelled texts, per set of blocks, keyed
    by the text's digest (the one the deletion list records, so an erased text's features go too)."""

    def __init__(self) -> None:
        self._by_blocks: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
        self._lock = threading.Lock()

    def features(
        self, task: str, blocks_of: int, predictor: camel.Predictor, adapter: camel.Adapter, texts: list[str]
    ) -> torch.Tensor:
        digests = [text_digest(t) for t in texts]
        with self._lock:
            known = self._by_blocks.setdefault((task, blocks_of), {})
            for key in [k for k in self._by_blocks if k[0] == task and k[1] != blocks_of]:
                del self._by_blocks[key]  # another version's blocks serve now: its features are of no use
            wanted = {d: t for d, t in zip(digests, texts) if d not in known}
        missing = sorted(wanted.items(), key=lambda item: len(item[1]))
        # no_grad, not inference_mode: the refit differentiates through products with these features.
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=predictor.bf16):
            for start in range(0, len(missing), FEATURE_BATCH):
                chunk = missing[start : start + FEATURE_BATCH]
                hidden, mask = predictor.cache.batch(
                    [t for _d, t in chunk], adapter.split_layer, adapter.config.max_length
                )
                out = adapter.adapt(adapter.pool(hidden, mask)).float()
                with self._lock:
                    known.update(zip([d for d, _t in chunk], out))
        predictor.flush_if_due()
        with self._lock:
            rows = [known[d] for d in digests]
        return torch.stack(rows) if rows else torch.empty(0, adapter.base.hidden_size)

    def forget(self, digests: Sequence[str]) -> int:
        """Drop the features of erased texts (their digests, from storage's deletion list)."""
        gone = set(digests)
        dropped = 0
        with self._lock:
            for known in self._by_blocks.values():
                for digest in gone & known.keys():
                    del known[digest]
                    dropped += 1
        return dropped


def refit_classifier(
    features: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy on (features, targets) plus PULL * squared distance to the starting weights,
    minimised by L-BFGS from them: few iterations, deterministic, no learning rate to tune."""
    start_w, start_b = weight.detach().clone(), bias.detach().clone()
    w, b = start_w.clone().requires_grad_(True), start_b.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([w, b], max_iter=MAX_ITERATIONS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(features @ w.T + b, targets)
        loss = loss + PULL * (((w - start_w) ** 2).sum() + ((b - start_b) ** 2).sum())
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return w.detach(), b.detach()


class InterimRefitter:
    """Refits and serves interim versions, one task at a time, in a background thread per request
    burst (requests while a refit runs are folded into one more refit after it)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        predictors: PredictorRegistry,
        reload_lock: threading.Lock,
        on_result: Callable[[InterimResult], None] | None = None,
    ) -> None:
        self.settings, self.db, self.predictors = settings, db, predictors
        self.reload_lock = reload_lock
        self.on_result = on_result
        self.features = FeatureStore()
        self.last: dict[str, InterimResult] = {}  # each task's latest refit, for reports and benchmarks
        self._pending: set[str] = set()
        self._running: set[str] = set()
        self._guard = threading.Lock()
        self._idle = threading.Condition(self._guard)
        self.stopped = False

    def request(self, task: str) -> bool:
        """A correction was stored: refit soon (True if a new worker started for it)."""
        with self._guard:
            if self.stopped:
                return False
            self._pending.add(task)
            if task in self._running:
                return False  # the running worker takes it when its refit ends
            self._running.add(task)
        threading.Thread(target=self._work, args=(task,), name=f"interim-{task}", daemon=True).start()
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no refit runs or waits (for stop, and for tests that wait on the event)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self, timeout: float) -> bool:
        with self._guard:
            self.stopped = True
            self._idle.notify_all()  # a worker resting between refits stops now
        return self.wait_idle(timeout)

    def _work(self, task: str) -> None:
        rest = 0.0
        try:
            while True:
                with self._guard:
                    if task not in self._pending or self.stopped:
                        return
                    if rest > 0:  # more corrections came during the last refit: rest first
                        self._idle.wait_for(lambda: self.stopped, timeout=rest)
                        if self.stopped:
                            return
                    self._pending.discard(task)
                began = time.monotonic()
                try:
                    result = self.refit(task)
                except Exception:  # a refit is an optimisation: the round still follows
                    log.exception("interim refit of %s failed", task)
                    continue
                finally:
                    rest = max(MIN_GAP_S, time.monotonic() - began)
                self.last[task] = result
                if self.on_result is not None:
                    self.on_result(result)
        finally:
            with self._idle:
                self._running.discard(task)
                self._idle.notify_all()

    # one refit ---------------------------------------------------------------------------
    def refit(self, task: str) -> InterimResult:
        started = time.perf_counter()
        serving = self.predictors.serving(task)
        known = storage.tasks.get_task(self.db, task)
        if serving is None or known is None:
            return InterimResult(task, "skipped", "no adapter serves the task yet")
        parent = storage.adapters.get_adapter(self.db, task, serving.version)
        if parent is None:
            return InterimResult(task, "skipped", f"v{serving.version} is not registered")
        learning = self.settings.learning
        resolution = storage.resolution.resolve_labels(
            self.db, task, admin_weight=self.settings.admin_weight, heldout_fraction=learning.heldout_fraction
        )
        adapter = serving.predictor.adapter
        train = [m for m in resolution.labelled if m.split == "train" and m.label in known.labels]
        heldout = [m for m in resolution.labelled if m.split == "heldout" and m.label in adapter.labels]
        if not train or not heldout:
            return InterimResult(task, "skipped", "needs labelled messages in both the training and held-out split")
        labels = list(adapter.labels) + sorted({m.label for m in train} - set(adapter.labels))
        blocks_of = blocks_version(parent)
        texts = [m.text for m in train] + [m.text for m in heldout]
        features = self.features.features(task, blocks_of, serving.predictor, adapter, texts)
        train_x, held_x = features[: len(train)], features[len(train) :]
        weight, bias = self._start_rows(adapter, len(labels), train_x, train, labels)
        index = {label: i for i, label in enumerate(labels)}
        new_w, new_b = refit_classifier(train_x, torch.tensor([index[m.label] for m in train]), weight, bias)
        gold = [m.label for m in heldout]
        new_logits = held_x @ new_w.T + new_b
        new_answers = [labels[i] for i in new_logits.argmax(1).tolist()]
        old_logits = held_x @ adapter.classifier.weight.float().T + adapter.classifier.bias.float()
        old_answers = [adapter.labels[i] for i in old_logits.argmax(1).tolist()]
        new_scores = metrics_from_predictions(gold, new_answers)
        old_scores = metrics_from_predictions(gold, old_answers)
        decision = gate.decide(
            new_scores,
            old_scores,
            epsilon=learning.gate_macro_f1_epsilon,
            max_recall_drop=learning.gate_max_recall_drop,
            min_support=learning.gate_min_label_support,
            paired=gate.PairedOutcomes(gold, new_answers, old_answers),
        )
        info = {"parent": parent.version, "blocks_of": blocks_of, "n_train": len(train), "n_heldout": len(heldout)}
        metrics = {**new_scores, "gate": decision.as_dict(), "interim": info}
        if not decision.promote:
            result = InterimResult(
                task, "rejected", decision.reason, None, parent.version, time.perf_counter() - started, metrics
            )
            log.info("interim refit of %s over v%d rejected: %s", task, parent.version, decision.reason)
            return result
        return self._publish(task, parent, adapter, labels, new_w, new_b, metrics, decision.reason, started)

    @staticmethod
    def _start_rows(
        adapter: camel.Adapter, n_labels: int, features: torch.Tensor, train: list[Any], labels: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The serving rows, and for a label the head has not seen the mean feature of its messages
        (a prototype row, scaled like the others) with the mean bias."""
        old_w, old_b = adapter.classifier.weight.detach().float(), adapter.classifier.bias.detach().float()
        weight, bias = torch.zeros(n_labels, old_w.shape[1]), torch.full((n_labels,), float(old_b.mean()))
        weight[: old_w.shape[0]], bias[: old_b.shape[0]] = old_w, old_b
        scale = float(old_w.norm(dim=1).mean())
        for i in range(old_w.shape[0], n_labels):
            rows = [j for j, m in enumerate(train) if m.label == labels[i]]
            prototype = features[rows].mean(0)
            weight[i] = prototype / prototype.norm().clamp_min(1e-6) * scale
        return weight, bias

    def _publish(
        self,
        task: str,
        parent: storage.AdapterVersion,
        adapter: camel.Adapter,
        labels: list[str],
        weight: torch.Tensor,
        bias: torch.Tensor,
        metrics: dict[str, Any],
        reason: str,
        started: float,
    ) -> InterimResult:
        interim = camel.Adapter(adapter.base, adapter.config, list(adapter.labels))
        interim.load_state_dict(adapter.state_dict())
        interim.extend_labels(labels)
        interim.set_classifier(weight.to(interim.classifier.weight.dtype), bias.to(interim.classifier.bias.dtype))
        interim.round_to_storage()
        interim.eval()
        interim.metrics = metrics
        data_dir = self.settings.data_dir
        version = versions.free_version(data_dir, task, storage.adapters.next_version(self.db, task))
        temp, final = versions.temp_dir(data_dir, task, version), versions.version_dir(data_dir, task, version)
        camel.save_adapter(interim, str(temp), extra_files=adapter.extra_files)
        versions.publish(temp, final)
        storage.adapters.register_adapter(
            self.db,
            storage.NewAdapterVersion(
                task=task,
                version=version,
                path=str(final),
                parent_version=parent.version,
                run_id=None,
                metrics=metrics,
                reason=f"interim: {reason}",
            ),
        )
        with self.reload_lock:
            now = storage.tasks.get_task(self.db, task)
            if now is None or now.active_version != parent.version:
                # A round (or a rollback) changed what serves meanwhile: this refit is of an old head.
                storage.adapters.set_adapter_status(self.db, task, version, "rejected", "superseded before serving")
                return InterimResult(task, "skipped", "another version went live meanwhile", None, parent.version)
            storage.adapters.activate_adapter(self.db, task, version, reason="interim refit")
            self.predictors.load(task, version, str(final))
        if interim_of(parent) is not None:
            self._prune(task, parent)
        seconds = time.perf_counter() - started
        log.info("task %s serves interim v%d over v%d (%.2f s)", task, version, parent.version, seconds)
        return InterimResult(task, "promoted", reason, version, parent.version, seconds, metrics)

    def _prune(self, task: str, superseded: storage.AdapterVersion) -> None:
        """An interim replaced by a newer one over the same blocks: its folder goes, its record stays."""
        import shutil

        shutil.rmtree(superseded.path, ignore_errors=True)
        storage.retention.mark_adapter_pruned(self.db, task, superseded.version)
