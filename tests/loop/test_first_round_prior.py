"""The first round's head starts from the label-name prior, sharpened by the task's descriptions:
the round reads them from the store and passes them on.

The round runs through `bot.loop.round.main` with the argv the runner gives its child, in this
process: what is tested is what the round reads, not the process boundary (the crash-safety and
round tests run real children), and each child costs seconds of imports.
"""

from __future__ import annotations

from pathlib import Path

import camel
import storage
from bot.loop import round as training_round
from bot.loop.options import RoundOptions
from tests.loop.conftest import CHANNEL, TASK, WORDS, label_messages, make_settings


def first_round(data_dir: Path, tiny_bert_dir: Path, descriptions: dict[str, str]) -> camel.Adapter:
    settings = make_settings(data_dir, tiny_bert_dir)
    db = storage.open_store(settings.db_path)
    storage.tasks.upsert_task(
        db, storage.TaskSpec(TASK, kind="intent", labels=sorted(WORDS), channels=[CHANNEL], descriptions=descriptions)
    )
    label_messages(db, 6, seed=5)
    argv = RoundOptions.from_settings(settings, TASK, "manual", None).to_argv()
    assert training_round.main(argv) == 0
    task = storage.tasks.get_task(db, TASK)
    assert task is not None and task.active_version is not None
    record = storage.adapters.get_adapter(db, TASK, task.active_version)
    db.close()
    assert record is not None
    return camel.load_adapter(record.path)


def test_the_first_round_reads_the_descriptions(tmp_path: Path, tiny_bert_dir: Path) -> None:
    plain = first_round(tmp_path / "plain", tiny_bert_dir, {})
    described = first_round(tmp_path / "described", tiny_bert_dir, {"refund": "money back after a charge"})
    assert plain.labels == described.labels == sorted(WORDS)
    # The round fine-tunes after the probe + prior start, so every row moves; what the training
    # saw is recorded with the adapter.
    assert plain.metrics["training"]["described_labels"] == []
    assert described.metrics["training"]["described_labels"] == ["refund"]
    assert not plain.classifier.weight.detach().equal(described.classifier.weight.detach())
