"""How fast `/camel review` answers for a task with 100k stored messages (target: < 1 s).

Builds a real SQLite store (storage.open_store, WAL, migrations) with 100,000 messages in one
channel, the review scores the learning loop keeps for them (the best `KEEP_PER_CHANNEL` of
the channel, 384-d float32 embeddings like MiniLM's), 10 % of the scored messages labelled
and 2 % erased, then times what the command does before it answers: the candidate query
(`storage.review.review_candidates`) and the diversity pick (`bot.slack.review.pick`, which calls
`camel.select_for_review`). The 5 `chat.getPermalink` calls to Slack are network and not
included. Also times `storage.review.store_review_scores` (the background write after a promotion).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sqlite_utils import Database

import storage
from bench.common import (
    benchmark_parser,
    load_average,
    machine_line,
    markdown_table,
    recorded_command,
    write_results,
)
from bot.loop.review_scoring import KEEP_PER_CHANNEL
from bot.slack import review
from storage import db as storage_db

MODULE = "bench.system.review_command"
MESSAGES = 100_000
DIM = 384
REPEATS = 20
CHANNEL = "C0SUPPORT"


def build(path: Path) -> tuple[Database, float]:
    db = storage.open_store(str(path))
    storage.tasks.upsert_task(
        db, storage.TaskSpec("support", kind="intent", labels=["a", "b", "c"], channels=[CHANNEL])
    )
    now = storage_db.utc_now()
    with storage_db.transaction(db) as conn:
        conn.executemany(
            "INSERT INTO messages (workspace, channel, ts, text, user, received_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("T1", CHANNEL, f"{1700000000 + i}.000100", f"message number {i}", f"U{i % 500}", now)
                for i in range(MESSAGES)
            ],
        )
    ids = [r[0] for r in storage_db.rows_as_tuples(db, "SELECT id FROM messages ORDER BY id")]
    rng = np.random.default_rng(0)
    scores = rng.random(MESSAGES)
    best = np.argsort(-scores)[:KEEP_PER_CHANNEL]
    embeddings = rng.normal(size=(len(best), DIM)).astype(np.float32)
    rows = [
        (ids[i], float(scores[i]), [("a", 0.4), ("b", 0.35), ("c", 0.25)], embeddings[k].tobytes())
        for k, i in enumerate(best)
    ]
    started = time.perf_counter()
    storage.review.store_review_scores(db, "support", 1, rows)
    store_s = time.perf_counter() - started
    with storage_db.transaction(db) as conn:
        for k, i in enumerate(best[: len(best) // 10]):  # the best-scored 10 % get labelled
            conn.execute(
                "INSERT INTO corrections (message_id, task, label, source, user, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (ids[i], "support", "a", "review", "U1", now),
            )
    storage.privacy.erase_user(db, "U7", actor="bench")  # 200 messages deleted, with their scores
    return db, store_s


def timed(fn: Callable[[], object], repeats: int = REPEATS) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def main(argv: list[str] | None = None) -> int:
    benchmark_parser(
        MODULE,
        __doc__,
        writes="bench/results/review_command.json and review_command.md",
        data="none: the messages, scores and embeddings are made up here (numpy, seed 0)",
    ).parse_args(argv)
    machine = machine_line(1)
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        db, store_s = build(Path(folder) / "camel.db")
        picked = review.pick(db, "support", CHANNEL, 5)
        assert len(picked) == 5
        query = timed(lambda: storage.review.review_candidates(db, "support", CHANNEL, 200))
        total = timed(lambda: review.pick(db, "support", CHANNEL, 5))
    data: dict[str, Any] = {
        "command": recorded_command(MODULE, argv),
        "machine": machine,
        "load_average_end": load_average(),
        "messages": MESSAGES,
        "stored_scores": KEEP_PER_CHANNEL,
        "review_ms_100k": {"median": statistics.median(total), "max": max(total)},
        "candidate_query_ms": {"median": statistics.median(query), "max": max(query)},
        "store_scores_s": store_s,
        "target_ms": 1000,
        "total_s": round(time.perf_counter() - wall, 1),
    }
    table = markdown_table(
        ["step", "median ms", "max ms"],
        [
            [
                "candidate query (200 best unlabelled of this channel)",
                f"{data['candidate_query_ms']['median']:.1f}",
                f"{data['candidate_query_ms']['max']:.1f}",
            ],
            [
                "whole pick (query + select_for_review, n = 5)",
                f"{data['review_ms_100k']['median']:.1f}",
                f"{data['review_ms_100k']['max']:.1f}",
            ],
        ],
    )
    markdown = f"""# /camel review on a task with {MESSAGES:,} stored messages

Command: `{data["command"]}`. Machine: {machine}; load average at the end {data["load_average_end"]:.2f}
(shared machine: other helpers' jobs were running).

{KEEP_PER_CHANNEL} review scores stored for the channel (what the loop keeps), 10 % of them labelled,
200 messages erased; {REPEATS} repeats. Target: the command answers in < 1 s.

{table}

Storing the {KEEP_PER_CHANNEL} scores after a promotion (one transaction): {store_s:.2f} s.
The 5 `chat.getPermalink` calls to Slack are not included (network).
"""
    write_results("review_command", data, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
