"""Which adapter serves each task, swapped while the bot keeps answering.

A new version is loaded and checked completely before it replaces the task's `Serving` (its
version and a predictor of its own, as one value), so a broken adapter folder never replaces a
working one, and an answer under way finishes with the version it started with.

When a task's active version does not load (at start-up or on a reload), the registry falls
back to the nearest earlier version that does, else the nearest later one (`fallback_candidates`),
records that in storage (`storage.rounds.record_fallback`: the broken versions are rejected with
their reason, the good one becomes active, audited) and returns one notice per task that says
what is really served now.

After a base change (`bot.loop.bases`), a task's active adapter trained on the previous base is
not broken: it keeps serving on its own base until a round on the new base passes the gate, or,
when that base's folder is gone, the task answers with zero-shot guesses on the new base. Such a
version is never rejected by the fallback.

Each task's labels as they are today (`bot.serving.label_view`: renames, merges, retirements,
new labels) are laid over whichever version serves, the moment they change (`follow_labels`,
called by whoever changed them, and on every sync for changes made by another process).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlite_utils import Database

import camel
import storage
from bot import texts
from bot.loop.bases import Bases, LoadedBase
from camel.cache import DEFAULT_MAX_ENTRIES
from bot.loop.zero_shot import Background, ZeroShotGuesser
from bot.metrics import BotMetrics
from bot.serving import Serving, label_view
from camel.zero_shot import ZeroShotGuess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadNotice:
    """What admins of `task` are told after its active version failed to load (one message)."""

    task: str
    text: str


class PredictorRegistry:
    def __init__(
        self,
        base_model_path: str,
        cache_dir: str | None = None,
        metrics: BotMetrics | None = None,
        *,
        zero_shot: bool = True,
        background: Background | None = None,
        engine: str = "torch-fp32",
        engines_dir: str | None = None,
        trainable_layers: int = 2,
        cache_memory_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.base_model_path = base_model_path or camel.default_base_model_path()
        self.cache_dir = cache_dir
        # [model] engine and where ONNX exports are kept: each base's engine is chosen when it loads.
        self.engine_setting, self.engines_dir = engine, engines_dir
        # The engine is checked where serving splits the base ([model] trainable_layers): that is
        # the export (for ort-fp32) serving and the rounds then use.
        self.trainable_layers = trainable_layers
        self.bases = Bases(self.base_model_path, cache_dir, self._choose_engine, cache_memory_entries)
        self._serving: dict[str, Serving] = {}
        # task -> active version trained on a base whose folder is gone (answered zero-shot), so
        # the reload poll does not try it again until another version becomes active.
        self._zero_shot_for: dict[str, int] = {}
        self._views: dict[str, camel.LabelView] = {}
        self._lock = threading.Lock()
        # task -> (active version, failures) last recorded, so a version that keeps failing on
        # every poll is recorded and audited once, not every reload_poll_s.
        self._recorded: dict[str, tuple[int, tuple[tuple[int, str], ...]]] = {}
        self.metrics = metrics
        # Before a task's first adapter: guesses from its label names (None when turned off).
        self.guesser = ZeroShotGuesser(self._shared, background) if zero_shot else None

    def _shared(self) -> tuple[camel.BaseEncoder, camel.FeatureCache]:
        """The configured base and its feature cache, loaded on first use and shared by every task."""
        current = self.bases.current()
        return current.base, current.cache

    def _choose_engine(self, base: camel.BaseEncoder) -> camel.EngineChoice:
        split = max(0, base.num_layers - self.trainable_layers)
        choice = camel.choose_engine(base, self.engine_setting, self.engines_dir, split_layer=split)
        log.info("bottom engine %s", choice.reason)
        return choice

    def engine(self) -> camel.EngineChoice:
        """The engine running the configured base's bottom (chosen, with its start-up check, on first use)."""
        return self.bases.current().engine

    @property
    def cache(self) -> camel.FeatureCache | None:
        """The configured base's feature cache, once it was loaded (None before)."""
        current = self.bases.loaded_current()
        return current.cache if current is not None else None

    def caches(self) -> list[camel.FeatureCache]:
        """Every loaded base's feature cache (erased texts are forgotten in each)."""
        return self.bases.caches()

    def bases_in_use(self) -> set[str]:
        """Fingerprints of the configured base and of every base a served adapter runs on: the
        feature-cache states of any other base can go."""
        with self._lock:
            used = {serving.predictor.adapter.base.fingerprint for serving in self._serving.values()}
        current = self.bases.loaded_current()
        return used | ({current.base.fingerprint} if current is not None else set())

    def serving(self, task: str) -> Serving | None:
        """The task's version and the predictor answering with it (None before its first adapter)."""
        with self._lock:
            return self._serving.get(task)

    def get(self, task: str) -> camel.Predictor | None:
        """The predictor serving now; to record which version answered, take `serving` instead."""
        serving = self.serving(task)
        return serving.predictor if serving is not None else None

    def version(self, task: str) -> int | None:
        serving = self.serving(task)
        return serving.version if serving is not None else None

    def base(self) -> camel.BaseEncoder:
        """The base model new rounds train on (loaded on first use)."""
        return self._shared()[0]

    def guess(self, task: storage.Task, text: str) -> ZeroShotGuess | None:
        """The top 3 by label-name similarity, for a task no trained adapter serves yet (else None)."""
        if self.guesser is None or self.get(task.name) is not None:
            return None
        if self.bases.current_or_none() is None:
            return None  # the configured base does not load (said once in the log): nothing to guess with
        return self.guesser.guess(task, text)

    def load(self, task: str, version: int, folder: str) -> None:
        """Load `folder` as `task`'s adapter `version` (on the base it was trained on) and serve it."""
        try:
            loaded = self._base_of(folder)
            if loaded is None:
                ref = camel.adapter_base(folder)
                raise camel.OtherBaseError(f"v{version} was trained on base {ref.label()}, whose folder is gone")
            adapter = camel.load_adapter(folder, loaded.base)
        except camel.CamelError:
            self._count(task, "failed")
            raise
        self._serve(task, version, adapter, loaded.cache)

    def _base_of(self, folder: str) -> LoadedBase | None:
        """The loaded base an adapter folder was trained on; None if it is gone (CamelError if the
        folder's config.json cannot be read)."""
        return self.bases.for_ref(camel.adapter_base(folder))

    def _serve(self, task: str, version: int, adapter: camel.Adapter, cache: camel.FeatureCache) -> None:
        # A predictor per version (they share their base's cache): one taken before this swap
        # keeps answering with its own adapter, under its own version.
        predictor = camel.Predictor(adapter, cache)
        with self._lock:
            predictor.set_label_view(self._views.get(task))
            serving = Serving(version, predictor)
            self._serving[task] = serving
            self._zero_shot_for.pop(task, None)
        self._count(task, "ok")
        log.info("task %s now serves adapter v%s", task, version)

    def release_unused_bases(self) -> list[str]:
        """Let go of previous bases no served adapter uses any more (after tasks migrated)."""
        with self._lock:
            used = {serving.predictor.adapter.base.fingerprint for serving in self._serving.values()}
        return self.bases.release_unused(used)

    def follow_labels(self, db: Database, task: str) -> camel.LabelView:
        """Serve the task's labels as stored now, over the version serving now and every later one."""
        view = label_view(db, task)
        self._lay_over(task, view)
        return view

    def _lay_over(self, task: str, view: camel.LabelView) -> None:
        """Serve `view` over the version serving now and every later one."""
        with self._lock:
            self._views[task] = view
            serving = self._serving.get(task)
            if serving is not None:
                serving.predictor.set_label_view(view)

    def _count(self, task: str, result: str, times: int = 1) -> None:
        if self.metrics is not None and times:
            self.metrics.reloads.labels(task=task, result=result).inc(times)

    def sync(self, db: Database) -> list[str]:
        """Serve every task's active version (or the nearest that loads); one line per task that fell back."""
        return [notice.text for notice in self.sync_notices(db)]

    def sync_notices(self, db: Database) -> list[ReloadNotice]:
        """Like `sync`, with the task of each notice (the loop tells that task's channel)."""
        notices: list[ReloadNotice] = []
        for task in storage.tasks.list_tasks(db):
            view = label_view(db, task.name)
            if self._views.get(task.name) != view:
                self._lay_over(task.name, view)
            active = task.active_version
            if active is None or self.version(task.name) == active or self._zero_shot_for.get(task.name) == active:
                continue
            notice = self._serve_nearest_loadable(db, task.name, active)
            if notice is not None:
                notices.append(notice)
                log.error("adapter reload: %s", notice.text)
        self.release_unused_bases()
        return notices

    def _serve_nearest_loadable(self, db: Database, task: str, active: int) -> ReloadNotice | None:
        """Serve `active`, else the nearest version that loads (`fallback_candidates`' order), each
        on the base it was trained on; record and describe a fallback. A version trained on another
        base model is never rejected: its folder is fine, only no loaded base can serve it. When
        no version loads and one was trained on a base whose folder is gone, the task answers
        zero-shot on the configured base until a round on it passes the gate."""
        failures: list[tuple[int, str]] = []
        other_base: list[int] = []
        base_gone: tuple[int, str] | None = None  # the nearest version whose base folder is gone
        served: int | None = None
        for version, folder in fallback_candidates(db, task, active):
            if folder is None:
                failures.append((version, "it is not registered"))
                continue
            try:
                loaded = self._base_of(folder)
            except camel.CamelError as exc:
                failures.append((version, _one_line(exc)))
                continue
            if loaded is None:
                # Trained on a base whose folder is gone: not broken, just unusable here.
                ref = camel.adapter_base(folder)
                failures.append((version, f"it was trained on base model {ref.label()}, whose folder is gone"))
                other_base.append(version)
                base_gone = base_gone or (version, folder)
                continue
            try:
                adapter = camel.load_adapter(folder, loaded.base)
            except camel.OtherBaseError as exc:
                failures.append((version, _one_line(exc)))
                other_base.append(version)
                continue
            except camel.CamelError as exc:
                failures.append((version, _one_line(exc)))
                continue
            self._serve(task, version, adapter, loaded.cache)
            served = version
            break
        if served is None and base_gone is not None:
            broken = [(v, why) for v, why in failures if v not in other_base]
            return self._answer_zero_shot(task, active, *base_gone, broken)
        self._count(task, "failed", len(failures))
        if not failures:
            return None
        key = (active, tuple(failures))
        if self._recorded.get(task) != key:
            storage.rounds.record_fallback(db, task, served, failures=failures, other_base=other_base)
            self._recorded[task] = key
        if served is not None:
            return ReloadNotice(
                task, texts.adapter_fallback(task, failures, served, active=active, other_base=other_base)
            )
        return ReloadNotice(task, texts.no_adapter_loads(task, failures, self.version(task)))

    def _answer_zero_shot(
        self, task: str, active: int, version: int, folder: str, failures: list[tuple[int, str]]
    ) -> ReloadNotice:
        with self._lock:
            self._serving.pop(task, None)
            self._zero_shot_for[task] = active
        self._count(task, "failed", len(failures))
        if failures:  # versions tried before this one that are really broken (kept for the next round to replace)
            log.error("adapter reload for %s: %s", task, "; ".join(f"v{v}: {why}" for v, why in failures))
        ref = camel.adapter_base(folder)
        return ReloadNotice(task, texts.base_gone(task, version, ref.label(), self.base_model_path))


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def fallback_candidates(db: Database, task: str, active: int) -> list[tuple[int, str | None]]:
    """(version, folder) to try in order: the active one, then the versions that served before
    (retired) and are older, nearest first (the direction an admin's rollback chose), then the
    newer ones, nearest first. Rejected, candidate and pruned versions never serve by fallback."""
    records = {v.version: v for v in storage.adapters.list_adapters(db, task)}
    pruned = set(storage.retention.pruned_versions(db, task))
    active_record = records.get(active)
    order: list[tuple[int, str | None]] = [(active, active_record.path if active_record else None)]
    servable = [v for v in records.values() if v.status == "retired" and v.version not in pruned]
    older = sorted((v for v in servable if v.version < active), key=lambda v: v.version, reverse=True)
    newer = sorted((v for v in servable if v.version > active), key=lambda v: v.version)
    return order + [(v.version, v.path) for v in older + newer]
