"""Team's memory benchmark: is a text people labelled ever answered with another label again?

The bot's own path without Slack's servers: a real SQLite store made by `bot.runtime.open_store`,
every BANKING77 training text stored as a message of a bound channel with its label as a menu
correction (10,003 labelled messages, 77 intents), then messages sent again and answered by
`bot.serving.answer_texts` (the one function Slack's channel path, `/camel predict` and
`camel-bot predict --task` call) with `bot.memory.TeamMemory`, each one stored first as the
bot stores a message. No adapter serves, so every answer counted here is the memory's; a text the
memory does not answer is left to the model (counted as such, not as a mistake or a hit).

Repeats, each training text once per variant: as is; case changed; whitespace changed; one
punctuation change; one typo (a letter swapped, dropped, doubled or replaced inside a word of
four letters or more). Unseen: BANKING77's test texts (none of them labelled), to count what the
near-duplicate answers get wrong on genuinely new messages.

Reported: `repeat_mistakes` (a repeat answered with a label other than the one its text was given)
for the exact and normalised variants (as is, case, whitespace); for the near-duplicate answers
(punctuation, typo, unseen) their precision and coverage at the threshold, chosen on a
development split (half of the training texts' variants and half of the test texts, drawn at
random) as the lowest similarity whose development precision is at least 99% (a point of margin
over the 98% target), then measured on the other half; also the recall time per message and the
near-duplicate index's build time and size.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import storage
from bench.common import (
    benchmark_parser,
    load_dataset,
    machine_line,
    markdown_table,
    recorded_command,
    require_data,
    shared_data,
    write_results,
)
from bot import runtime
from bot.memory import TeamMemory, text_key
from bot.serving import answer_texts
from bot.settings import Settings, TaskSettings

MODULE = "bench.system.memory"
TASK, CHANNEL = "support", "C0BENCH"
EXACT_VARIANTS = ("as_is", "case", "whitespace")
NEAR_VARIANTS = ("punctuation", "typo")
DEV_PRECISION = 0.99  # the rule: one point of margin over the 98% the repeats' answers must reach
# ... and the near answers to genuinely new messages at least this right: 98% is out of reach on
# BANKING77, whose near-identical texts carry different labels (see the result file).
DEV_UNSEEN_PRECISION = 0.95
TARGET_PRECISION = 0.98
GRID = [round(0.30 + 0.01 * i, 2) for i in range(70)]  # 0.30 .. 0.99


def vary_case(text: str, rng: random.Random) -> str:
    choice = rng.randrange(3)
    changed = text.upper() if choice == 0 else text.lower() if choice == 1 else text.swapcase()
    return changed if changed != text else text.upper() if text != text.upper() else text.lower()


def vary_whitespace(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    if len(words) > 1:
        at = rng.randrange(1, len(words))
        words[at] = rng.choice(["  ", "\t", "\n"]) + words[at]
    return rng.choice(["", " ", "  "]) + " ".join(words) + rng.choice([" ", "\n", "  "])


PUNCTUATION = ".,!?'"


def vary_punctuation(text: str, rng: random.Random) -> str:
    """Drop one punctuation mark if there is one (at random), else add one at the end or after a word."""
    marks = [i for i, ch in enumerate(text) if ch in PUNCTUATION]
    if marks and rng.random() < 0.6:
        at = rng.choice(marks)
        return text[:at] + text[at + 1 :]
    if text and text[-1] in PUNCTUATION:
        return text + rng.choice("!?")
    return text + rng.choice("?!.")


def vary_typo(text: str, rng: random.Random) -> str:
    """One edit inside one word of 4+ letters: swap two neighbours, drop, double or replace a letter."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if sum(ch.isalpha() for ch in w) >= 4]
    if not candidates:
        return text + "s"
    i = rng.choice(candidates)
    word = words[i]
    letters = [j for j, ch in enumerate(word) if ch.isalpha()]
    j = rng.choice(letters[1:-1] or letters)
    kind = rng.randrange(4)
    if kind == 0 and j + 1 < len(word) and word[j + 1] != word[j]:
        word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    elif kind == 1:
        word = word[:j] + word[j + 1 :]
    elif kind == 2:
        word = word[:j] + word[j] + word[j:]
    else:
        replacement = rng.choice([c for c in "abcdefghijklmnopqrstuvwxyz" if c != word[j].lower()])
        word = word[:j] + replacement + word[j + 1 :]
    words[i] = word
    return " ".join(words)


VARIANTS: dict[str, Callable[[str, random.Random], str]] = {
    "as_is": lambda text, _rng: text,
    "case": vary_case,
    "whitespace": vary_whitespace,
    "punctuation": vary_punctuation,
    "typo": vary_typo,
}


def store_labelled(db: Any, texts: list[str], labels: list[str]) -> float:
    """Every training text as a message with its label, as a menu correction stores it; seconds taken."""
    started = time.perf_counter()
    for i, (text, label) in enumerate(zip(texts, labels)):
        message_id = storage.messages.record_message(
            db, workspace="T0BENCH", channel=CHANNEL, ts=f"{1_000_000 + i}.000100", text=text, user="U0TEAM"
        )
        storage.corrections.add_correction(
            db, message_id=message_id, task=TASK, label=label, source="menu", user="U0TEAM"
        )
    return time.perf_counter() - started


def ask(db: Any, memory: TeamMemory, task: storage.Task, queries: list[dict[str, Any]], first_ts: int) -> list[float]:
    """Store each query as a new message and answer it as the bot does; fills how/label/similarity,
    returns the recall time of each message (ms)."""
    times = []
    for n, query in enumerate(queries):
        storage.messages.record_message(
            db, workspace="T0BENCH", channel=CHANNEL, ts=f"{first_ts + n}.000100", text=query["text"], user="U0ASK"
        )
        started = time.perf_counter()
        found = answer_texts(task, [query["text"]], memory=memory, serving=None)[0]
        times.append(1000 * (time.perf_counter() - started))
        recall = found.recall if found is not None else None
        query["how"] = recall.how if recall is not None else None
        query["answer"] = recall.label if recall is not None else None
        query["similarity"] = recall.similarity if recall is not None else None
    return times


def near_scores(queries: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Near-duplicate answers at `threshold`, apart for the repeats (punctuation and typo variants
    of labelled texts) and the unseen messages: answered, right, precision; and the repeats' coverage."""
    repeats = [q for q in queries if q["variant"] in NEAR_VARIANTS]
    unseen = [q for q in queries if q["variant"] == "unseen"]

    def answered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [q for q in rows if q["how"] == "near" and q["similarity"] >= threshold]

    near_repeats, near_unseen = answered(repeats), answered(unseen)
    right = sum(1 for q in near_repeats if q["answer"] == q["truth"])
    right_unseen = sum(1 for q in near_unseen if q["answer"] == q["truth"])
    covered = [q for q in repeats if q["how"] == "exact" or (q["how"] == "near" and q["similarity"] >= threshold)]
    return {
        "answered": len(near_repeats),
        "right": right,
        "precision": right / len(near_repeats) if near_repeats else None,
        "repeat_coverage": len(covered) / len(repeats) if repeats else None,
        "unseen_answered": len(near_unseen),
        "unseen_share_answered": len(near_unseen) / len(unseen) if unseen else None,
        "unseen_precision": right_unseen / len(near_unseen) if near_unseen else None,
    }


def choose_threshold(dev: list[dict[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
    sweep = [{"threshold": t, **near_scores(dev, t)} for t in GRID]

    def passes(row: dict[str, Any]) -> bool:
        repeats, unseen = row["precision"], row["unseen_precision"]
        return repeats is not None and repeats >= DEV_PRECISION and (unseen is None or unseen >= DEV_UNSEEN_PRECISION)

    return next((row["threshold"] for row in sweep if passes(row)), 1.0), sweep


def split_queries(queries: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Development and evaluation halves, by source text (all variants of one text on one side)."""
    sources = sorted({q["source"] for q in queries})
    random.Random(seed).shuffle(sources)
    dev_sources = set(sources[: len(sources) // 2])
    return [q for q in queries if q["source"] in dev_sources], [q for q in queries if q["source"] not in dev_sources]


def summary(queries: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    per_variant = {}
    for variant in (*EXACT_VARIANTS, *NEAR_VARIANTS, "unseen"):
        rows = [q for q in queries if q["variant"] == variant]
        answered = [q for q in rows if q["how"] == "exact" or (q["how"] == "near" and q["similarity"] >= threshold)]
        per_variant[variant] = {
            "messages": len(rows),
            "answered_by_memory": len(answered),
            "exact": sum(1 for q in answered if q["how"] == "exact"),
            "near": sum(1 for q in answered if q["how"] == "near"),
            "wrong": sum(1 for q in answered if q["answer"] != q["truth"]),
        }
    return per_variant


def build_queries(dataset: Any, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    labelled_keys = {text_key(text) for text in dataset.train_texts}
    queries = []
    for i, (text, label) in enumerate(zip(dataset.train_texts, dataset.train_labels)):
        for variant, vary in VARIANTS.items():
            queries.append({"source": f"train{i}", "variant": variant, "text": vary(text, rng), "truth": label})
    for i, (text, label) in enumerate(zip(dataset.test_texts, dataset.test_labels)):
        if text_key(text) not in labelled_keys:  # a test text that is also a training text is a repeat, not new
            queries.append({"source": f"test{i}", "variant": "unseen", "text": text, "truth": label})
    return queries


def run(seed: int) -> dict[str, Any]:
    dataset = load_dataset("banking77")
    labels = sorted(set(dataset.train_labels))
    queries = build_queries(dataset, seed)
    with tempfile.TemporaryDirectory(prefix="camel-memory-") as tmp:
        settings = Settings(
            data_dir=str(Path(tmp)), tasks=[TaskSettings(name=TASK, kind="intent", labels=labels, channels=[CHANNEL])]
        )
        db = runtime.open_store(settings)
        try:
            store_s = store_labelled(db, dataset.train_texts, dataset.train_labels)
            task = storage.tasks.require_task(db, TASK)
            # The lowest similarity the sweep can use, so each message's best near match is known once.
            memory = TeamMemory(db, admin_weight=settings.admin_weight, near_similarity=min(GRID))
            started = time.perf_counter()
            memory.recall(task, ["warm up: keys every labelled message and builds the index"])
            first_sync_s = time.perf_counter() - started
            index_bytes = memory.index_bytes(TASK)
            times = ask(db, memory, task, queries, 5_000_000)
            # After one more correction the next message pays the index rebuild: how long it takes.
            store_labelled(db, ["one more labelled message"], [labels[0]])
            started = time.perf_counter()
            memory.recall(task, ["the first message after a correction"])
            rebuild_s = time.perf_counter() - started
        finally:
            db.close()
    dev, held = split_queries(queries, seed)
    chosen, sweep = choose_threshold(dev)
    # The headline figures are at the chosen threshold; the bot's default (memory_near_similarity)
    # is set from this run, and the file says whether they agree.
    exact_rows = [q for q in queries if q["variant"] in EXACT_VARIANTS]
    mistakes = [q for q in exact_rows if q["how"] is not None and q["answer"] != q["truth"]]
    unanswered = [q for q in exact_rows if q["how"] is None]
    held_chosen = near_scores(held, chosen)
    return {
        "labelled_messages": len(dataset.train_texts),
        "labels": len(labels),
        "repeat_mistakes": len(mistakes) + len(unanswered),  # an unanswered exact repeat would be left to chance
        "repeat_mistakes_answered_wrong": len(mistakes),
        "exact_repeats_unanswered": len(unanswered),
        "near_duplicate_threshold": chosen,
        "bot_default_memory_near_similarity": Settings().memory_near_similarity,
        "threshold_chosen_on_dev": chosen,
        "threshold_rule": (
            f"lowest similarity on a 0.01 grid whose development precision is >= {DEV_PRECISION} on the repeats' "
            f"near answers and >= {DEV_UNSEEN_PRECISION} on unseen messages' near answers"
        ),
        "near_duplicate_precision": held_chosen["precision"],
        "near_duplicate_answers": held_chosen["answered"],
        "near_duplicate_coverage": held_chosen["repeat_coverage"],
        "unseen_near_answers": held_chosen["unseen_answered"],
        "unseen_share_answered_by_memory": held_chosen["unseen_share_answered"],
        "unseen_near_precision": held_chosen["unseen_precision"],
        "evaluation_at_chosen": held_chosen,
        "per_variant_evaluation": summary(held, chosen),
        "per_variant_all": summary(queries, chosen),
        "sweep_dev": sweep,
        "sweep_evaluation": [{"threshold": t, **near_scores(held, t)} for t in GRID],
        "recall_ms_p50": statistics.median(times),
        "recall_ms_p99": sorted(times)[int(0.99 * (len(times) - 1))],
        "store_labelled_s": store_s,
        "first_sync_s": first_sync_s,
        "rebuild_after_correction_s": rebuild_s,
        "near_index_bytes": index_bytes,
        "messages_asked": len(queries),
        "examples_of_wrong_near_answers": [
            {k: q[k] for k in ("variant", "text", "truth", "answer", "similarity")}
            for q in held
            if q["how"] == "near" and q["similarity"] >= chosen and q["answer"] != q["truth"]
        ][:8],
    }


SWEEP_HEADERS = ["threshold", "repeat answers", "precision", "repeat coverage", "unseen answers", "unseen precision"]


def markdown(result: dict[str, Any]) -> str:
    r = result
    rows = [
        [variant, v["messages"], v["answered_by_memory"], v["exact"], v["near"], v["wrong"]]
        for variant, v in r["per_variant_evaluation"].items()
    ]

    def share(value: float | None, digits: int = 4) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    shown = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, r["threshold_chosen_on_dev"], r["near_duplicate_threshold"])
    sweep = [
        [
            row["threshold"],
            row["answered"],
            share(row["precision"]),
            share(row["repeat_coverage"], 3),
            row["unseen_answered"],
            share(row["unseen_precision"]),
        ]
        for row in r["sweep_evaluation"]
        if row["threshold"] in shown
    ]
    precision = r["near_duplicate_precision"]
    measures = [
        ["`repeat_mistakes` (as is, case, whitespace: another label, or none)", r["repeat_mistakes"], "0"],
        [
            f"`near_duplicate_precision` (evaluation half, threshold {r['near_duplicate_threshold']})",
            f"{precision:.4f} ({r['near_duplicate_answers']} answers)" if precision is not None else "n/a",
            ">= 0.98",
        ],
        [
            "`near_duplicate_coverage` (punctuation and typo repeats the memory answers, evaluation half)",
            f"{r['near_duplicate_coverage']:.3f}",
            "reported",
        ],
        [
            "unseen test messages the memory answered as near-duplicates: share, precision",
            f"{share(r['unseen_share_answered_by_memory'], 3)}, {share(r['unseen_near_precision'])} "
            f"({r['unseen_near_answers']} answers)",
            "reported",
        ],
        ["threshold chosen on the development half", f"{r['threshold_chosen_on_dev']} ({r['threshold_rule']})", ""],
        ["recall time per message, p50 / p99", f"{r['recall_ms_p50']:.2f} / {r['recall_ms_p99']:.2f} ms", ""],
        ["first look (keys every labelled text, builds the index)", f"{r['first_sync_s']:.2f} s", ""],
        ["the message after a correction (the index grows by its row)", f"{r['rebuild_after_correction_s']:.2f} s", ""],
        ["near-duplicate index in memory", f"{r['near_index_bytes'] / 1e6:.1f} MB", ""],
    ]
    return f"""# Team's memory on BANKING77

Command: `{r["command"]}`. Machine: {r["machine"]}. Total {r["total_s"]:.0f} s.

{r["labelled_messages"]} labelled messages ({r["labels"]} intents) in a real SQLite store; {r["messages_asked"]}
messages asked through `bot.serving.answer_texts` (each stored first, as the bot stores it), no adapter serving.

{markdown_table(["measure", "result", "target"], measures)}

Per variant (evaluation half, threshold {r["near_duplicate_threshold"]}): "wrong" is a memory answer with another
label than the text's; an unanswered message is left to the model.

{markdown_table(["variant", "messages", "answered by memory", "exact", "near", "wrong"], rows)}

Near-duplicate answers by threshold (evaluation half): to the punctuation and typo repeats, and to unseen
test messages (BANKING77's test texts, none labelled, so any near answer to them rests on another text):

{markdown_table(SWEEP_HEADERS, sweep)}

Why two pools: a repeat with a typo is the labelled text, and its near answers are right
{share(r["near_duplicate_precision"])} of the time at the default. An unseen message within the threshold is a
different message that reads almost the same; BANKING77 has such pairs under different intents (examples in
memory.json, `examples_of_wrong_near_answers`), so no surface similarity reaches 98% on them without answering
almost none; the rule asks {DEV_UNSEEN_PRECISION} of them and the default errs on the side of fewer answers.
"""


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        MODULE, __doc__, writes="bench/results/memory.json, bench/results/memory.md", data=shared_data("banking77")
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the variants and of the dev/evaluation split")
    options = parser.parse_args(argv)
    require_data(["banking77"])
    machine = machine_line(1)
    wall = time.perf_counter()
    result = run(options.seed)
    result.update(command=recorded_command(MODULE, argv), machine=machine, total_s=round(time.perf_counter() - wall, 1))
    write_results("memory", result, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
