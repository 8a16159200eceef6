"""No space for the new adapter -> one line in the channel, no temp folder left,
the old version serving. A real full disk (a small tmpfs under the task's adapter folder) and a
real training child; skipped where mounting is not allowed (CI runs as root)."""

from __future__ import annotations

import shutil
from pathlib import Path

from slack_sdk import WebClient

import storage
from bot.demo.local_slack import FakeSlackAPI
from bot.loop import LearningLoop, versions
from bot.loop.registry import PredictorRegistry
from bot.slack.publisher import SlackPublisher
from tests.faults import small_tmpfs
from tests.loop.conftest import TASK, install_adapter, label_messages


def test_no_space_for_the_new_adapter_is_one_line_and_leaves_nothing_behind(loop_env, tmp_path: Path) -> None:
    settings, db = loop_env
    installed = install_adapter(settings, db, 1)
    kept = tmp_path / "kept" / TASK / installed.name  # v1 lives off the full disk
    kept.parent.mkdir(parents=True)
    shutil.move(str(installed), kept)
    with storage.db.transaction(db) as conn:
        conn.execute("UPDATE adapters SET path = ? WHERE task = ? AND version = 1", (str(kept), TASK))
    label_messages(db, 30)
    task_dir = versions.adapters_root(settings.data_dir) / TASK
    with small_tmpfs(task_dir, 16 * 1024):  # room for folders, not for the weights
        predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
        with FakeSlackAPI() as slack:
            loop = LearningLoop(settings, db, predictors, SlackPublisher(WebClient(token="xoxb-t", base_url=slack.url)))
            loop.start()
            try:
                run = loop.run_round(TASK, "manual")
                posted = [str(c.params["text"]) for c in slack.wait_for("chat.postMessage", 1)]
            finally:
                loop.stop()
        leftovers = sorted(p.name for p in task_dir.iterdir())
    assert run.outcome == "failed" and "\n" not in (run.error or "")
    assert "cannot write adapter" in (run.error or "") and "Traceback" not in (run.error or "")
    assert leftovers == []  # no hidden temp folder, no half version
    assert len(posted) == 1 and "\n" not in posted[0] and "Traceback" not in posted[0]
    assert "cannot write adapter" in posted[0]
    assert predictors.version(TASK) == 1 and storage.tasks.get_task(db, TASK).active_version == 1
