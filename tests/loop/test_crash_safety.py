"""SIGKILL of the training child, and recovery at the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import camel
import storage
from bot.loop import versions
from bot.errors import TaskBusyError
from bot.loop.runner import child_env
from bot.loop.registry import PredictorRegistry
from tests.loop.conftest import TASK, install_adapter, label_messages


def _wait(condition, timeout: float = 300.0) -> bool:
    """Whether `condition()` came true; the timeout is generous (the training child runs niced,
    and a busy machine holds it back) and only bounds a wait that would never end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0.0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for_round_to_write(loop, db, folder: Path, deadline_s: float = 540.0, stall_s: float = 90.0) -> None:
    """Wait until the round's child has renamed `folder` into place.

    The child runs niced, so on a machine busy with other work it may take minutes: no fixed
    timeout decides. The wait fails at once if the round ends without the folder, and if the
    child makes no progress (no CPU time used) for `stall_s`; `deadline_s` only bounds a child
    that keeps working without ever writing.
    """
    deadline = time.monotonic() + deadline_s
    last_cpu, last_progress = -1.0, time.monotonic()
    while not folder.is_dir():
        now = time.monotonic()
        run = storage.runs.last_run(db, TASK)
        assert run is None or run.finished_at is None, f"the round ended ({run.outcome}: {run.error}) without {folder}"
        child = loop.children.get(TASK)
        cpu = _cpu_seconds(child.pid) if child is not None else -1.0
        if child is None or cpu > last_cpu:  # not spawned yet, or working
            last_cpu, last_progress = cpu, now
        assert now - last_progress < stall_s, f"the training child used no CPU for {stall_s:.0f} s"
        assert now < deadline, f"{folder} not written within {deadline_s:.0f} s though the child kept working"
        time.sleep(0.005)


def _child_holds_lock(settings) -> bool:
    try:
        with versions.task_lock(settings.data_dir, TASK):
            return False
    except TaskBusyError:
        return True


def test_sigkill_of_the_training_child_leaves_active_adapter_and_db_intact(loop_env, new_loop) -> None:
    settings, db = loop_env
    v1 = install_adapter(settings, db, 1)
    label_messages(db, 30)
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    loop.start()
    try:
        run_id = loop.run_now(TASK, actor="U0ADMIN")
        assert _wait(lambda: TASK in loop.children and _child_holds_lock(settings))
        time.sleep(1.0)  # inside the round: loading, training or writing
        os.kill(loop.children[TASK].pid, signal.SIGKILL)
        assert _wait(lambda: storage.runs.last_run(db, TASK).finished_at is not None)
    finally:
        loop.stop()
    run = storage.runs.last_run(db, TASK)
    assert (run.id, run.outcome) == (run_id, "failed") and "SIGKILL" in run.error
    assert storage.tasks.get_task(db, TASK).active_version == 1
    assert camel.load_adapter(str(v1)).labels == ["card_arrival", "feelings", "refund"]
    assert predictors.version(TASK) == 1 and predictors.get(TASK).answer(["refund fee"])[0].label

    again = new_loop(settings, PredictorRegistry(settings.model.base_model))
    again.start()
    again.stop()
    leftovers = [p.name for p in (v1.parent).iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert storage.tasks.get_task(db, TASK).active_version == 1
    assert storage.db.schema_version(db) >= 1 and storage.runs.list_runs(db, TASK)[0].outcome == "failed"


def test_start_removes_half_written_folders_and_fails_interrupted_runs(loop_env, new_loop) -> None:
    settings, db = loop_env
    v1 = install_adapter(settings, db, 1)
    run_id = storage.runs.start_run(db, TASK, "schedule")  # its process died: never finished
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task=TASK, version=2, path=str(v1.parent / "v0002"), parent_version=1, run_id=run_id, metrics={}
        ),
    )
    ours = versions.temp_dir(settings.data_dir, TASK, 2)
    ours.mkdir()
    (ours / camel.WEIGHTS_FILE).write_bytes(b"half a tensor")
    camels = v1.parent / ".v0002.tmp-0123abcd"  # camel.save_adapter's own temp name
    camels.mkdir()

    notes = new_loop(settings, PredictorRegistry(settings.model.base_model)).recover()
    assert not ours.exists() and not camels.exists() and v1.is_dir()
    run = storage.runs.list_runs(db, TASK)[0]
    assert run.outcome == "failed" and run.error.startswith("interrupted")
    assert storage.adapters.get_adapter(db, TASK, 2).status == "rejected"
    assert storage.tasks.get_task(db, TASK).active_version == 1
    assert len(notes) == 4  # two folders, the candidate rejected, the run failed


def test_recovery_leaves_a_round_that_is_still_running_alone(loop_env, new_loop) -> None:
    settings, db = loop_env
    run_id = storage.runs.start_run(db, TASK, "manual")
    temp = versions.temp_dir(settings.data_dir, TASK, 1)
    temp.mkdir(parents=True)
    with versions.task_lock(settings.data_dir, TASK):  # another process's round holds it
        new_loop(settings, PredictorRegistry(settings.model.base_model)).recover()
    assert temp.is_dir() and storage.runs.list_runs(db, TASK)[0].finished_at is None
    assert storage.runs.list_runs(db, TASK)[0].id == run_id


def test_training_child_rejects_an_unknown_task_with_exit_status_2(loop_env) -> None:
    settings, _ = loop_env
    done = subprocess.run(
        [sys.executable, "-m", "bot.loop.round", "--db", settings.db_path, "--task", "nope"],
        env=child_env(1),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "training round for nope: error: unknown task 'nope'"


def test_sigkill_as_soon_as_the_version_folder_appears_leaves_records_that_agree(loop_env, new_loop) -> None:
    """Through the real child: the run's end, the version's registration and its
    activation agree whenever the kill lands (here: right after the folder is renamed into place)."""
    settings, db = loop_env
    label_messages(db, 30)
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    loop.start()
    folder = versions.version_dir(settings.data_dir, TASK, 1)
    try:
        loop.run_now(TASK, actor="U0ADMIN")
        _wait_for_round_to_write(loop, db, folder)
        child = loop.children.get(TASK)
        if child is not None:
            os.kill(child.pid, signal.SIGKILL)
        assert _wait(lambda: storage.runs.last_run(db, TASK).finished_at is not None)
    finally:
        loop.stop()
    run = storage.runs.last_run(db, TASK)
    record = storage.adapters.get_adapter(db, TASK, 1)
    active = storage.tasks.get_task(db, TASK).active_version
    if record is None:  # killed before the round's one transaction: nothing names v1
        assert (run.outcome, run.version, active) == ("failed", None, None)
        again = new_loop(settings, PredictorRegistry(settings.model.base_model))
        assert any("no record" in note for note in again.recover())
        assert not folder.exists()  # the orphan folder is gone at the next start
    else:  # the transaction committed: the run, the version and the activation say the same
        assert run.version == 1 and run.outcome in ("promoted", "rejected")
        assert (active == 1) == (run.outcome == "promoted") == (record.status == "active")
