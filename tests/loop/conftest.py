"""Fixtures for the learning loop: a data folder with a real SQLite store and generated labels.

The texts use only words the tiny test BERT knows, one distinct vocabulary per label, so a
round on correct labels learns the task and a round on shuffled labels visibly does not.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import storage
from bot.loop import LearningLoop
from bot.loop.registry import PredictorRegistry
from bot.settings import LearningSettings, ModelSettings, Settings, TaskSettings
from tests.tiny_model import INTENT_WORDS

TASK = "support"
CHANNEL = "C0SUPPORT"
WORDS = INTENT_WORDS


def make_texts(label: str, count: int, seed: int) -> list[str]:
    rng = random.Random(f"{label}-{seed}")
    return [" ".join(rng.choice(WORDS[label]) for _ in range(rng.randint(3, 6))) for _ in range(count)]


def make_settings(data_dir: Path, tiny_bert_dir: Path, **learning: object) -> Settings:
    defaults = {
        "reload_poll_s": 0.3,
        "debounce_s": 0.5,
        "threshold_new_labels": 5,
        "gate_macro_f1_epsilon": 0.02,
        "gate_max_recall_drop": 0.15,
    }
    return Settings(
        data_dir=str(data_dir),
        # The cold child (see tests/bot/conftest.py); test_warm_worker.py turns the worker on.
        model=ModelSettings(
            base_model=str(tiny_bert_dir),
            trainable_layers=1,
            training_threads=1,
            warm_worker=False,
            engine="torch-fp32",
        ),
        learning=LearningSettings(**{**defaults, **learning}),  # type: ignore[arg-type]
        tasks=[TaskSettings(name=TASK, kind="intent", labels=sorted(WORDS), channels=[CHANNEL])],
    )


def label_messages(
    db: object, per_label: int | dict[str, int], *, seed: int = 0, train_labels: dict[int, str] | None = None
) -> list[tuple[int, str]]:
    """Store corrected messages (a count per label); returns (message id, true label).

    `train_labels` (position -> label) overrides the label given to training-split messages.
    """
    counts = per_label if isinstance(per_label, dict) else {label: per_label for label in WORDS}
    stored: list[tuple[int, str]] = []
    first = db["messages"].count  # type: ignore[index]  # new timestamps: never an existing message
    for label in sorted(counts):
        for text in make_texts(label, counts[label], seed + first):
            ts = f"{1700000000 + first + len(stored)}.000100"
            mid = storage.messages.record_message(
                db, workspace="T1", channel=CHANNEL, ts=ts, text=text, user="U0AUTHOR"
            )
            given = label
            if train_labels is not None and storage.resolution.split_for("T1", CHANNEL, ts) == "train":
                given = train_labels.get(len(stored), label)
            storage.corrections.add_correction(
                db, message_id=mid, task=TASK, label=given, source="menu", user="U0LABEL"
            )
            stored.append((mid, label))
    return stored


def shuffled_positions(counts: dict[str, int], seed: int) -> dict[int, str]:
    """Position -> a label drawn by shuffling the true labels (same class sizes, no signal)."""
    labels = [label for label in sorted(counts) for _ in range(counts[label])]
    shuffled = list(labels)
    random.Random(seed).shuffle(shuffled)
    return dict(enumerate(shuffled))


@pytest.fixture()
def new_loop(loop_env: tuple[Settings, object]) -> Iterator[Callable[..., LearningLoop]]:
    """`new_loop(settings, predictors, **options)`: a LearningLoop on loop_env's store, stopped
    before the store closes (its review-scoring thread and rounds work on that connection)."""
    made: list[LearningLoop] = []

    def make(settings: Settings, predictors: PredictorRegistry, **options: Any) -> LearningLoop:
        loop = LearningLoop(settings, loop_env[1], predictors, **options)
        made.append(loop)
        return loop

    yield make
    for loop in made:
        loop.stop()


@pytest.fixture()
def loop_base_dir(request: pytest.FixtureRequest) -> Path:
    """The base model folder of loop_env: the tiny BERT, or another tiny model's fixture named by
    indirect parametrisation (`tiny_xlmr_dir`: the same loop on a sentencepiece-style tokenizer)."""
    return Path(request.getfixturevalue(getattr(request, "param", "tiny_bert_dir")))


BOTH_BASES = pytest.mark.parametrize("loop_base_dir", ["tiny_bert_dir", "tiny_xlmr_dir"], indirect=True)


@pytest.fixture()
def loop_env(tmp_path: Path, loop_base_dir: Path) -> Iterator[tuple[Settings, object]]:
    settings = make_settings(tmp_path / "data", loop_base_dir)
    db = storage.open_store(settings.db_path)
    storage.tasks.upsert_task(db, storage.TaskSpec(TASK, kind="intent", labels=sorted(WORDS), channels=[CHANNEL]))
    yield settings, db
    db.close()


def install_adapter(settings: Settings, db: object, version: int, *, seed: int = 0, activate: bool = True) -> Path:
    """Train a small adapter in-process, write it as `version` and register (and activate) it."""
    import camel
    from bot.loop import versions

    texts, labels = [], []
    for label in sorted(WORDS):
        texts += make_texts(label, 8, 1000 + seed)
        labels += [label] * 8
    config = camel.CamelConfig(base_model=settings.model.base_model, trainable_layers=1)
    adapter = camel.train(texts, labels, config=config, args=camel.TrainingArgs(max_epochs=2, seed=seed)).adapter
    folder = versions.version_dir(settings.data_dir, TASK, version)
    camel.save_adapter(adapter, str(folder))
    metrics = {"accuracy": 0.5 + version / 100, "macro_f1": 0.4 + version / 100}
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task=TASK, version=version, path=str(folder), parent_version=None, run_id=None, metrics=metrics
        ),
    )
    if activate:
        storage.adapters.activate_adapter(db, TASK, version, reason="installed by the test")
    return folder
