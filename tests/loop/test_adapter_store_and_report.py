"""Version folder naming, publishing, the task lock; the round report (as Slack shows it) and its chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.loop import versions as store
from bot.loop.options import RoundSummary
from bot.loop.round_report import build_report, metric_chart
from bot.slack.blocks import message
from storage import AdapterVersion


def rendered(summary: RoundSummary) -> tuple[str, list[dict[str, object]]]:
    """The loop's neutral report of `summary` as Slack gets it: fallback text and blocks."""
    shown = message(build_report(summary))
    return shown.text, shown.blocks


def test_version_names_and_the_next_free_version(tmp_path: Path) -> None:
    assert store.version_dir(tmp_path, "t", 7) == tmp_path / "adapters" / "t" / "v0007"
    for name in ("v0001", "v0003", ".tmp-v0004-1-ab", "notes"):
        (tmp_path / "adapters" / "t" / name).mkdir(parents=True)
    assert store.versions_on_disk(tmp_path, "t") == [1, 3]
    # v0003 was left by a killed round; v0004 is being written (a round's child and an interim
    # refit publish side by side, so a number taken by a temp folder is not handed out twice).
    assert store.free_version(tmp_path, "t", db_next=2) == 5
    assert store.free_version(tmp_path, "t", db_next=9) == 9
    assert store.temp_dir(tmp_path, "t", 4).name.startswith(".tmp-v0004-")


def test_publish_renames_whole_folder_and_refuses_to_overwrite(tmp_path: Path) -> None:
    temp = store.temp_dir(tmp_path, "t", 1)
    temp.mkdir(parents=True)
    (temp / "adapter.safetensors").write_bytes(b"x")
    final = store.version_dir(tmp_path, "t", 1)
    store.publish(temp, final)
    assert (final / "adapter.safetensors").read_bytes() == b"x" and not temp.exists()
    other = store.temp_dir(tmp_path, "t", 1)
    other.mkdir()
    with pytest.raises(FileExistsError):
        store.publish(other, final)


def test_task_lock_is_exclusive(tmp_path: Path) -> None:
    with store.task_lock(tmp_path, "t"):
        with pytest.raises(store.TaskBusyError, match="already running"):
            with store.task_lock(tmp_path, "t"):
                pass
        with store.task_lock(tmp_path, "other"):
            pass
    with store.task_lock(tmp_path, "t"):
        pass


SUMMARY = {
    "task": "support",
    "trigger": "threshold",
    "outcome": "rejected",
    "version": 4,
    "n_new": 12,
    "n_train": 80,
    "n_heldout": 20,
    "reason": "macro-F1 0.610 is below active 0.700 - 0.01",
    "old_metrics": {"accuracy": 0.75, "macro_f1": 0.70},
    "new_metrics": {"accuracy": 0.65, "macro_f1": 0.61},
    "decision": {
        "promote": False,
        "reason": "...",
        "per_label_changes": [
            {"label": "refund", "old_recall": 0.9, "new_recall": 0.5, "change": -0.4, "support": 10},
            {"label": "card_arrival", "old_recall": 0.5, "new_recall": 0.6, "change": 0.1, "support": 10},
        ],
    },
}


def test_report_has_decision_metrics_and_per_label_changes() -> None:
    text, blocks = rendered(RoundSummary.from_dict(SUMMARY))
    assert text.startswith(
        ":no_entry_sign: Training round for *support*: rejected v4"
    )  # one version format in every message
    assert "below active" in text
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    assert "accuracy 75.0%, macro-F1 70.0%" in fields and "accuracy 65.0%, macro-F1 61.0%" in fields
    assert "*New examples learned*\n12" in fields
    lines = blocks[2]["text"]["text"].splitlines()
    assert lines[1] == "`refund` recall 90% -> 50% (-40 pts, n=10)"


def test_report_of_a_failed_run_has_no_metrics() -> None:
    text, blocks = rendered(RoundSummary(task="support", outcome="failed", reason="killed by SIGKILL"))
    assert text == ":warning: Training round for *support*: failed: killed by SIGKILL" and len(blocks) == 1


def test_chart_is_a_png() -> None:
    history = [
        AdapterVersion("t", v, "", None, None, {"macro_f1": f}, s, "", "", "")
        for v, f, s in ((1, 0.5, "retired"), (2, 0.4, "rejected"), (3, 0.7, "active"))
    ]
    png = metric_chart(history)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert metric_chart([]).startswith(b"\x89PNG")
