"""The nightly retention pass: what `[retention]` says to keep, and nothing more on disk.

Storage deletes old predictions and erases old unlabelled text (`storage.retention.apply_retention`);
this pass then deletes the run files of expired runs, the folders of adapter versions beyond
the active one, its parent and the newest `keep_versions` (each recorded with
`storage.retention.mark_adapter_pruned`), and compacts the feature cache without erased texts and within
`cache_max_bytes` (least recently used states go first).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

import camel
import storage
from bot import erasure
from bot.loop.options import summary_path
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionSummary:
    predictions: int
    unlabelled_texts: int
    run_files: list[str] = field(default_factory=list)
    pruned: dict[str, list[int]] = field(default_factory=dict)
    cache: camel.CompactionReport | None = None

    def line(self) -> str:
        pruned = sum(len(v) for v in self.pruned.values())
        cache = (
            "no feature cache"
            if self.cache is None
            else f"feature cache {self.cache.bytes_before} -> {self.cache.bytes_after} bytes"
        )
        return (
            f"retention: {self.predictions} predictions, {self.unlabelled_texts} unlabelled texts, "
            f"{len(self.run_files)} run files, {pruned} adapter folders removed; {cache}"
        )


def run_files(data_dir: str, run_id: int) -> list[Path]:
    summary = summary_path(data_dir, run_id)
    return [summary, summary.with_suffix(".log")]


def apply(
    settings: Settings,
    db: Database,
    cache: camel.FeatureCache | None = None,
    *,
    keep_bases: set[str] | None = None,
) -> RetentionSummary:
    """One pass of the retention policy (what the nightly job runs). `keep_bases`: fingerprints of
    the bases in use; the feature-cache states of any other base (one a base change left) go."""
    policy = settings.retention
    report, _derived = erasure.retention(settings, db, cache)
    removed_files = []
    for run_id in report.expired_runs:
        for path in run_files(settings.data_dir, run_id):
            if path.exists():
                path.unlink()
                removed_files.append(str(path))
    pruned: dict[str, list[int]] = {}
    for task, found in report.prunable.items():
        for version in found:
            shutil.rmtree(version.path, ignore_errors=True)
            storage.retention.mark_adapter_pruned(db, task, version.version)
            pruned.setdefault(task, []).append(version.version)
    compaction = erasure.compact_cache(settings, db, cache, max_bytes=policy.cache_max_bytes, keep_bases=keep_bases)
    summary = RetentionSummary(
        predictions=report.predictions,
        unlabelled_texts=report.erased.messages,
        run_files=removed_files,
        pruned=pruned,
        cache=compaction,
    )
    log.info("%s", summary.line())
    return summary
