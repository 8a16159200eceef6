"""The parent-child contract of a training round: flags both ways, and the summary back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import camel
from bot.loop.options import RoundOptions, RoundSummary, parser, summary_path
from bot.loop.runner import child_command
from bot.settings import LearningSettings, ModelSettings, Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=str(tmp_path / "data"),
        admin_weight=3.0,
        model=ModelSettings(base_model="/models/tiny", trainable_layers=1, training_threads=2, max_epochs=5),
        learning=LearningSettings(heldout_fraction=0.3, gate_macro_f1_epsilon=0.05, gate_max_recall_drop=0.2),
    )


def test_the_child_reads_back_exactly_what_the_parent_passes(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    command = child_command(settings, "support", "threshold", 7)
    assert command[1:3] == ["-m", "bot.loop.round"]
    received = RoundOptions.from_argv(command[3:])
    assert received == RoundOptions.from_settings(settings, "support", "threshold", 7)
    assert received.max_epochs == 5 and received.db == settings.db_path  # --max-epochs is passed now


def test_the_child_gets_the_engine_serving_chose_not_the_setting(tmp_path: Path) -> None:
    settings = _settings(tmp_path)  # [model] engine = auto
    command = child_command(settings, "support", "manual", 3, engine="ort-fp32")
    assert command[command.index("--engine") + 1] == "ort-fp32"
    assert RoundOptions.from_argv(command[3:]).engine == "ort-fp32"
    assert RoundOptions.from_argv(child_command(settings, "support", "manual", 3)[3:]).engine == "auto"


def test_every_flag_the_child_parses_is_one_the_parent_passes(tmp_path: Path) -> None:
    parsed = {action.dest for action in parser()._actions if action.dest != "help"}
    assert parsed == {f.name for f in dataclasses.fields(RoundOptions)}
    passed = child_command(_settings(tmp_path), "support", "manual", 1)[3::2]
    assert {flag[2:].replace("-", "_") for flag in passed} == parsed


def test_a_hand_run_child_uses_the_bots_defaults(tmp_path: Path) -> None:
    db = str(tmp_path / "camel.db")
    by_hand = RoundOptions.from_argv(["--db", db, "--task", "support"])
    defaults = RoundOptions.from_settings(Settings(data_dir=str(tmp_path)), "support", "manual", None)
    assert by_hand == dataclasses.replace(defaults, db=db)
    assert ModelSettings().max_epochs == camel.TrainingArgs().max_epochs  # one default, kept in step


def test_summary_round_trips_through_its_file(tmp_path: Path) -> None:
    summary = RoundSummary(
        task="support",
        outcome="promoted",
        run_id=3,
        trigger="manual",
        reason="better",
        n_train=10,
        n_heldout=4,
        n_new=6,
        version=2,
        new_metrics={"accuracy": 0.9},
        decision={"promote": True, "reason": "better", "per_label_changes": []},
    )
    path = summary_path(str(tmp_path), 3)
    summary.write(path)
    assert path.name == "run-000003.json"
    read = RoundSummary.read(path)
    assert read.finished_at and dataclasses.replace(read, finished_at="") == summary
