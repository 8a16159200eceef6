"""What answers for a task right now, and the one function that decides who answers a text.

The registry (`bot.loop.registry`) replaces a task's `Serving` whole when another version goes
live, never one half of it. Whoever took a `Serving` answers with exactly that version's adapter
and records exactly that version, even when a hot swap happens while it answers.

`answer_texts` is the bot's answer everywhere (a channel message, `/camel predict`, `camel-bot
predict --task` with a database, the demo's team through Slack): the team's memory when it has
the text (the label people gave it, stated as theirs), else the serving model's answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlite_utils import Database

import camel
import storage
from bot.memory import Recall, TeamMemory


@dataclass(frozen=True, eq=False)
class Serving:
    version: int
    predictor: camel.Predictor


@dataclass(frozen=True)
class BotAnswer:
    """One text's answer and where it came from: `source` "memory" (the team's label; `recall`
    says how it was found, `version` None) or "adapter" (`version` is the one that answered)."""

    answer: camel.Answer
    source: str
    version: int | None
    recall: Recall | None = None

    def as_prediction(self, message_id: int, task: str) -> storage.NewPrediction:
        a = self.answer
        return storage.NewPrediction(
            message_id=message_id,
            task=task,
            adapter_version=self.version,
            label=a.stated,
            confidence=a.confidence,
            top3=a.top3,
            latency_ms=a.latency_ms,
            abstained=a.abstained,
            source=self.source,
        )


ModelAnswers = Callable[[list[str]], list[camel.Answer]]


def model_answers(serving: Serving, task: storage.Task) -> ModelAnswers:
    """The serving predictor's answers with the task's floor and out-of-scope label."""
    return lambda texts: serving.predictor.answer(
        texts, floor=task.abstain_threshold, out_of_scope_label=task.out_of_scope_label
    )


def answer_texts(
    task: storage.Task,
    texts: Sequence[str],
    *,
    memory: TeamMemory | None,
    serving: Serving | None,
    model: ModelAnswers | None = None,
    max_chars: int | None = None,
) -> list[BotAnswer | None]:
    """The memory's answer where it has one, else the model's (`model`, by default `serving`'s
    predictor; a caller may pass a batched one, or the CLI its adapter folder's). None for a text
    neither can answer (no label remembered, no adapter yet: the caller falls back to the
    zero-shot guess). The memory
    compares whole texts; the model reads the first `max_chars` characters (the bot's cap)."""
    started = time.perf_counter()
    recalled = memory.recall(task, texts) if memory is not None else [None] * len(texts)
    recall_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(texts))
    results: list[BotAnswer | None] = [
        BotAnswer(remembered(task, recall, recall_ms), "memory", None, recall) if recall is not None else None
        for recall in recalled
    ]
    rest = [i for i, found in enumerate(results) if found is None]
    ask = model if model is not None else model_answers(serving, task) if serving is not None else None
    if rest and ask is not None:
        version = serving.version if serving is not None else None  # the CLI's adapter folder has none
        for i, answer in zip(rest, ask([texts[i][:max_chars] for i in rest])):
            results[i] = BotAnswer(answer, "adapter", version)
    return results


def remembered(task: storage.Task, recall: Recall, latency_ms: float) -> camel.Answer:
    """The team's label as an answer: stated whatever the floor (people gave it), its confidence
    the similarity to the labelled text (1.0 for the same text)."""
    out_of_scope = task.out_of_scope_label is not None and recall.label == task.out_of_scope_label
    return camel.Answer(
        outcome="out_of_scope" if out_of_scope else "label",
        label=recall.label,
        confidence=recall.similarity,
        top3=[(recall.label, recall.similarity)],
        threshold=0.0,
        latency_ms=latency_ms,
        stated=recall.label,
    )


def label_view(db: Database, task: str) -> camel.LabelView:
    """The task's labels as stored now (names, history, retired, descriptions), for the predictors."""
    current = storage.tasks.require_task(db, task)
    return camel.LabelView(
        labels=tuple(current.labels),
        renamed=storage.labels.name_map(db, task),
        retired=frozenset(storage.labels.retired(db, task)),
        descriptions=dict(current.descriptions),
        mark=storage.labels.mark(db, task),
    )
