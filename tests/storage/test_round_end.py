"""A round's end, its version's registration and activation agree in every kill window."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils

import storage
from storage.errors import InvalidValueError

ROOT = Path(__file__).resolve().parents[2]


def assert_records_agree(db: sqlite_utils.Database, task: str) -> None:
    """Every run finished; every version names its run and its run names it; the active one was promoted."""
    runs = {run.id: run for run in storage.runs.list_runs(db, task, limit=1000)}
    assert all(run.finished_at is not None for run in runs.values())
    for version in storage.adapters.list_adapters(db, task):
        assert version.status != "candidate"
        if version.run_id is not None:
            run = runs[version.run_id]
            assert run.version == version.version
            if version.status in ("active", "retired"):
                assert run.outcome == "promoted"
            else:  # rejected by the gate, or interrupted before the gate decided
                assert run.outcome in ("rejected", "failed")
    active = storage.tasks.get_task(db, task).active_version
    if active is not None:
        assert storage.adapters.get_adapter(db, task, active).status == "active"


def test_finish_round_promotes_registers_and_finishes_in_one_go(db: sqlite_utils.Database) -> None:
    run_id = storage.runs.start_run(db, "support", "manual")
    run = storage.rounds.finish_round(
        db,
        run_id,
        storage.RoundEnd(
            outcome="promoted",
            version=1,
            path="/a/v0001",
            parent_version=None,
            metrics={"macro_f1": 0.8},
            reason="first",
            n_train=4,
            n_heldout=1,
            n_new=4,
        ),
    )
    assert (run.outcome, run.version, run.n_train, run.finished_at is not None) == ("promoted", 1, 4, True)
    assert storage.tasks.get_task(db, "support").active_version == 1
    assert storage.adapters.get_adapter(db, "support", 1).run_id == run_id
    second = storage.runs.start_run(db, "support", "manual")
    storage.rounds.finish_round(
        db,
        second,
        storage.RoundEnd(outcome="rejected", version=2, path="/a/v0002", parent_version=1, metrics={}, reason="worse"),
    )
    assert storage.adapters.get_adapter(db, "support", 2).status == "rejected"
    assert storage.tasks.get_task(db, "support").active_version == 1
    assert_records_agree(db, "support")


def test_finish_round_refuses_inconsistent_arguments_and_writes_nothing(db: sqlite_utils.Database) -> None:
    run_id = storage.runs.start_run(db, "support", "manual")
    with pytest.raises(InvalidValueError):
        storage.rounds.finish_round(db, run_id, storage.RoundEnd(outcome="promoted"))  # no version
    with pytest.raises(InvalidValueError):
        storage.rounds.finish_round(db, run_id, storage.RoundEnd(outcome="failed", version=1, path="/x"))
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(task="support", version=1, path="/x", parent_version=None, run_id=None, metrics={}),
    )
    with pytest.raises(InvalidValueError, match="already has an adapter version 1"):
        storage.rounds.finish_round(
            db, run_id, storage.RoundEnd(outcome="promoted", version=1, path="/x", parent_version=None, metrics={})
        )
    assert storage.runs.list_runs(db, "support")[0].finished_at is None


def test_reconcile_repairs_a_failed_run_whose_version_is_active(db: sqlite_utils.Database) -> None:
    # Today's main: the child registered and activated, was killed before finish_run, and the
    # loop then recorded the run as failed with no version.
    run_id = storage.runs.start_run(db, "support", "threshold")
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support", version=1, path="/a/v0001", parent_version=None, run_id=run_id, metrics={}
        ),
    )
    storage.adapters.activate_adapter(db, "support", 1, reason="better")
    storage.runs.finish_run(db, run_id, outcome="failed", error="killed by SIGKILL")
    report = storage.rounds.reconcile_task(db, "support")
    assert any("run" in note and "promoted" in note for note in report.notes)
    assert_records_agree(db, "support")
    assert storage.events.list_audit(db, 1)[0].action == "reconcile"


def test_reconcile_finishes_interrupted_runs_and_rejects_their_candidates(db: sqlite_utils.Database) -> None:
    bare = storage.runs.start_run(db, "support", "manual")
    gated = storage.runs.start_run(db, "support", "manual")
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support", version=1, path="/a/v0001", parent_version=None, run_id=gated, metrics={}
        ),
    )
    report = storage.rounds.reconcile_task(db, "support", version_folders=[1, 2])
    assert report.orphan_versions == [2]
    runs = {run.id: run for run in storage.runs.list_runs(db, "support")}
    assert runs[bare].outcome == "failed" and "interrupted" in runs[bare].error
    assert storage.adapters.get_adapter(db, "support", 1).status == "rejected"
    assert_records_agree(db, "support")
    assert storage.rounds.reconcile_task(db, "support", version_folders=[1]).notes == []  # nothing left to do


def _spawn_round(db_path: Path, folder: Path, step: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.writer", "round", str(db_path), str(folder), step],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("step", ["started", "folder", "in-transaction", "committed"])
def test_a_kill_at_each_step_of_a_round_end_reconciles_to_agreeing_records(
    db_path: Path, tmp_path: Path, step: str
) -> None:
    folder = tmp_path / "adapters" / "support"
    process = _spawn_round(db_path, folder, step)
    try:
        line = process.stdout.readline().strip()
        assert line == step, process.stderr.read()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    db = storage.open_store(db_path)
    on_disk = sorted(int(p.name[1:]) for p in folder.glob("v*")) if folder.exists() else []
    report = storage.rounds.reconcile_task(db, "support", version_folders=on_disk)
    assert_records_agree(db, "support")
    active = storage.tasks.get_task(db, "support").active_version
    if step in ("in-transaction", "folder"):
        assert active is None and report.orphan_versions == [1]
    if step == "committed":
        assert active == 1 and report.orphan_versions == [] and report.notes == []
        assert storage.runs.list_runs(db, "support")[0].outcome == "promoted"
    if step == "started":
        assert storage.runs.list_runs(db, "support")[0].outcome == "failed"


def test_reconcile_finishes_an_unfinished_run_whose_version_is_active(db: sqlite_utils.Database) -> None:
    run_id = storage.runs.start_run(db, "support", "schedule")
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support", version=1, path="/a/v0001", parent_version=None, run_id=run_id, metrics={}
        ),
    )
    storage.adapters.activate_adapter(db, "support", 1, reason="better")  # killed before finish_run on today's main
    storage.rounds.reconcile_task(db, "support", version_folders=[1])
    assert_records_agree(db, "support")
    assert storage.runs.list_runs(db, "support")[0].outcome == "promoted"


def _registered(db: sqlite_utils.Database, versions: list[int], active: int) -> None:
    for version in versions:
        storage.adapters.register_adapter(
            db,
            storage.NewAdapterVersion(
                task="support",
                version=version,
                path=f"/a/v{version:04d}",
                parent_version=version - 1 or None,
                run_id=None,
                metrics={},
            ),
        )
        storage.adapters.activate_adapter(db, "support", version, reason="test")
    storage.adapters.activate_adapter(db, "support", active, reason="test")


def test_record_fallback_activates_the_version_that_loads_and_records_why(db: sqlite_utils.Database) -> None:
    _registered(db, [1, 2, 3], active=3)
    found = storage.rounds.record_fallback(
        db, "support", 1, failures=[(3, "corrupt adapter.safetensors"), (2, "adapter folder not found")]
    )
    assert found.version == 1 and storage.tasks.get_task(db, "support").active_version == 1
    assert storage.adapters.get_adapter(db, "support", 3).status == "rejected"
    assert "does not load: corrupt adapter.safetensors" in storage.adapters.get_adapter(db, "support", 3).reason
    entry = storage.events.list_audit(db, 1)[0]
    assert (entry.actor, entry.action, entry.detail["version"]) == ("recovery", "adapter_fallback", 1)
    assert entry.detail["failed"] == {"3": "corrupt adapter.safetensors", "2": "adapter folder not found"}


def test_record_fallback_does_not_reject_a_version_trained_on_another_base(db: sqlite_utils.Database) -> None:
    _registered(db, [1, 2, 3], active=3)
    failures = [(3, "trained on base fingerprint abc"), (2, "corrupt adapter.safetensors")]
    storage.rounds.record_fallback(db, "support", 1, failures=failures, other_base=[3])
    statuses = {v.version: v.status for v in storage.adapters.list_adapters(db, "support")}
    assert statuses == {1: "active", 2: "rejected", 3: "retired"}
    assert storage.events.list_audit(db, 1)[0].detail["other_base"] == [3]


def test_record_fallback_with_nothing_loadable_changes_no_status(db: sqlite_utils.Database) -> None:
    # Every version failing usually means the base model is missing, not that every folder broke.
    _registered(db, [1, 2], active=2)
    assert storage.rounds.record_fallback(db, "support", None, failures=[(2, "x"), (1, "y")]) is None
    assert [v.status for v in storage.adapters.list_adapters(db, "support")] == ["retired", "active"]
    assert storage.events.list_audit(db, 1)[0].detail == {
        "task": "support",
        "version": None,
        "failed": {"2": "x", "1": "y"},
    }
