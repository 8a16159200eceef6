"""Labels that change while the bot runs, on BANKING77, through the bot's own serving registry,
learning loop and training-round child (real SQLite, real child processes, real gate).

New intents arriving: a task starts with 10 of the 20 most frequent intents (every other one by
frequency) and gets 10 then 20 examples of each, a round after each. Then the other 10 appear,
each created as "New label…" creates one (a name and a one-line description written here, stored
with `storage.labels`, the serving model following at once), and get 5 then 20 examples, a round
after each. Per new label: test recall right after creation (0 examples: the prototype row),
after 5 and after 20 examples, and the seconds from its creation until the serving model first
answers one of its test messages correctly; beside them the day-one zero-shot recall of the same
labels (the bot's guesses from names and descriptions, before any model) and the frozen probe's
(logistic regression on MiniLM sentence embeddings) recall with the same 5 examples. The labels
there from the start are scored in the same final model, where they too have 20 examples each
(`old_labels_recall_at_20`): the proper comparison for the new ones at 20. Recall is top-1 over
the 20 intents' test messages (the bot's best label, also when it would abstain).

Merge: the two intents the final model confuses most (from its confusion matrix on the test
messages) are merged in Slack; accuracy on their test messages (the merged label counts as right)
right after the merge, before any round (the two columns' probabilities summed), and after the
next round (which trains on the merged label).

Large taxonomy: the bot in HTTP mode serves a synthetic 500-label task; signed block_suggestion
requests (what a label menu sends as someone types) go through its HTTP endpoint, and the time
until the options come back is measured per request (`options_ms_p99`, Slack wants them in 3 s).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import torch

import camel
import storage
from bench.common import (
    RESULTS,
    benchmark_parser,
    load_average,
    load_dataset,
    machine_line,
    markdown_table,
    recorded_command,
    require_data,
    shared_data,
    use_data_dir,
)
from bench.method.features import sentence_features
from bot import runtime
from bot.demo.local_slack import FakeSlackAPI
from bot.demo.slack_events import signed_headers
from bot.settings import LearningSettings, ModelSettings, Settings, TaskSettings
from bot.slack import blocks
from camel.zero_shot import ZeroShotClassifier

MODULE = "bench.system.taxonomy"
TASK, WORKSPACE, CHANNEL = "support", "T0BENCH", "C0BENCH"
ADMIN = "U0BENCHADMIN"
# One line each, as a person creating the label in Slack would write it.
DESCRIPTIONS = {
    "direct_debit_payment_not_recognised": "a direct debit was taken from my account that I did not set up",
    "wrong_amount_of_cash_received": "the ATM gave me a different amount of cash than I asked for",
    "transaction_charged_twice": "the same payment was charged to my account twice",
    "transfer_fee_charged": "I was charged a fee for making a transfer",
    "balance_not_updated_after_bank_transfer": "money transferred to my account has not shown up in my balance",
    "card_payment_not_recognised": "a card payment on my statement that I did not make",
    "extra_charge_on_statement": "an extra unexplained charge appeared on my statement",
    "Refund_not_showing_up": "a refund I was promised has not appeared in my account yet",
    "cash_withdrawal_not_recognised": "a cash withdrawal on my account that I did not make",
    "activate_my_card": "how to activate my new card so I can use it",
}
SECRET = "bench-taxonomy-secret"


class Stream:
    """BANKING77 training texts per intent in a fixed shuffled order, handed out as corrections."""

    def __init__(self, texts: list[str], labels: list[str]) -> None:
        self.pool: dict[str, list[str]] = {}
        order = list(range(len(texts)))
        random.Random(0).shuffle(order)
        for i in order:
            self.pool.setdefault(labels[i], []).append(texts[i])
        self.taken: Counter[str] = Counter()
        self.stored = 0

    def correct(self, db: Any, label: str, count: int) -> None:
        for text in self.pool[label][self.taken[label] : self.taken[label] + count]:
            self.stored += 1
            message_id = storage.messages.record_message(
                db, workspace=WORKSPACE, channel=CHANNEL, ts=f"{1700000000 + self.stored}.000100", text=text
            )
            storage.corrections.add_correction(
                db, message_id=message_id, task=TASK, label=label, source="menu", user="U0BENCHPEOPLE"
            )
        self.taken[label] += count


def recalls(predictor: camel.Predictor, texts: list[str], truths: list[str], labels: list[str]) -> dict[str, float]:
    """Top-1 recall per label over the test messages (the bot's best label, even when abstaining)."""
    answers = [a.label for a in predictor.answer(texts)]
    result = {}
    for label in labels:
        mine = [i for i, truth in enumerate(truths) if truth == label]
        result[label] = sum(answers[i] == label for i in mine) / len(mine)
    return result


def run_round(loop: Any, db: Any, what: str) -> dict[str, Any]:
    started = time.perf_counter()
    run = loop.run_round(TASK, "manual")
    seconds = time.perf_counter() - started
    record = storage.adapters.get_adapter(db, TASK, run.version) if run.version else None
    row = {
        "after": what,
        "outcome": run.outcome,
        "version": run.version,
        "reason": record.reason if record else (run.error or ""),
        "seconds": round(seconds, 1),
    }
    print(f"round after {what}: {run.outcome} v{run.version} in {seconds:.0f}s ({row['reason']})", flush=True)
    return row


def new_intents(data: Any, cache: camel.FeatureCache) -> dict[str, Any]:
    top = [label for label, _ in Counter(data.train_labels).most_common(20)]
    old, new = top[0::2], top[1::2]
    assert set(new) == set(DESCRIPTIONS)
    test = [(t, label) for t, label in zip(data.test_texts, data.test_labels) if label in top]
    texts, truths = [t for t, _ in test], [label for _, label in test]
    stream = Stream(data.train_texts, data.train_labels)
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="camel-taxonomy-") as folder:
        settings = Settings(
            data_dir=folder,
            admins=[ADMIN],
            learning=LearningSettings(reload_poll_s=3600.0),  # only the measured syncs swap versions
            tasks=[TaskSettings(name=TASK, kind="intent", labels=old, channels=[CHANNEL], new_labels="admins")],
        )
        db = runtime.open_store(settings)
        bot = runtime.start(settings, db=db, slack=False)
        assert bot.loop is not None
        loop, predictors = bot.loop, bot.predictors
        try:
            for label in old:
                stream.correct(db, label, 10)
            rounds.append(run_round(loop, db, "10 examples of each first label"))
            for label in old:
                stream.correct(db, label, 10)
            rounds.append(run_round(loop, db, "20 examples of each first label"))
            serving = predictors.get(TASK)
            assert serving is not None
            old_at_20_alone = recalls(serving, texts, truths, old)

            # Day one for comparison: the bot's zero-shot guesses over the 20 labels, before any model.
            background = storage.messages.recent_texts(db, [CHANNEL], limit=1000)  # as the bot's guesser centres
            zero_shot = ZeroShotClassifier(cache.base, top, DESCRIPTIONS, cache, background=background)
            guessed = [g.label for g in zero_shot.predict(texts)]
            day_one = {
                label: sum(guessed[i] == label for i, t in enumerate(truths) if t == label) / truths.count(label)
                for label in new
            }

            seconds_to_first: dict[str, float | None] = {}
            for label in new:  # each created as "New label…" does, then the serving model is asked
                created = time.perf_counter()
                storage.labels.change(db, TASK, "add", ADMIN, new_name=label, description=DESCRIPTIONS[label])
                predictors.follow_labels(db, TASK)
                seconds_to_first[label] = None
                for text, truth in test:
                    if truth == label and serving.answer([text])[0].label == label:
                        seconds_to_first[label] = round(time.perf_counter() - created, 3)
                        break
            at_0 = recalls(serving, texts, truths, new)

            for label in new:
                stream.correct(db, label, 5)
            rounds.append(run_round(loop, db, "5 examples of each new label"))
            at_5 = recalls(_serving(predictors), texts, truths, new)
            probe_5 = probe_recalls(db, cache, texts, truths, new, settings)
            for label in new:
                stream.correct(db, label, 15)
            rounds.append(run_round(loop, db, "20 examples of each new label"))
            final = _serving(predictors)
            at_20 = recalls(final, texts, truths, new)
            old_at_20 = recalls(final, texts, truths, old)

            merge = merge_most_confused(loop, db, predictors, final, texts, truths, top, rounds)
        finally:
            bot.stop()
            db.close()
    return {
        "old_labels": old,
        "new_labels_list": new,
        "n_test": len(texts),
        "rounds": rounds,
        "new_labels": {
            "recall_at_0": _mean(at_0),
            "recall_at_5": _mean(at_5),
            "recall_at_20": _mean(at_20),
            "seconds_to_first_correct": _median(seconds_to_first),
            "day_one_zero_shot_recall": _mean(day_one),
            "probe_recall_at_5": _mean(probe_5),
            "per_label": {
                label: {
                    "recall_at_0": at_0[label],
                    "recall_at_5": at_5[label],
                    "recall_at_20": at_20[label],
                    "seconds_to_first_correct": seconds_to_first[label],
                    "day_one_zero_shot_recall": day_one[label],
                    "probe_recall_at_5": probe_5[label],
                }
                for label in new
            },
        },
        "old_labels_recall_at_20": _mean(old_at_20),
        "old_labels_recall_at_20_before_new_labels": _mean(old_at_20_alone),
        "merge": merge,
    }


def _serving(predictors: Any) -> camel.Predictor:
    predictor = predictors.get(TASK)
    assert predictor is not None
    return predictor


def probe_recalls(
    db: Any, cache: camel.FeatureCache, texts: list[str], truths: list[str], labels: list[str], settings: Settings
) -> dict[str, float]:
    """The frozen probe on exactly the round's training split (logistic regression, C=10)."""
    from sklearn.linear_model import LogisticRegression

    resolution = storage.resolution.resolve_labels(
        db, TASK, admin_weight=settings.admin_weight, heldout_fraction=settings.learning.heldout_fraction
    )
    train = [m for m in resolution.labelled if m.split == "train"]
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=0)
    model.fit(sentence_features(cache, [m.text for m in train]), [m.label for m in train])
    predicted = list(model.predict(sentence_features(cache, texts)))
    return {
        label: sum(predicted[i] == label for i, t in enumerate(truths) if t == label) / truths.count(label)
        for label in labels
    }


def merge_most_confused(
    loop: Any,
    db: Any,
    predictors: Any,
    serving: camel.Predictor,
    texts: list[str],
    truths: list[str],
    labels: list[str],
    rounds: list[dict[str, Any]],
) -> dict[str, Any]:
    answers = [a.label for a in serving.answer(texts)]
    confused: Counter[tuple[str, str]] = Counter()
    for truth, said in zip(truths, answers):
        if truth != said and said in labels:
            confused[tuple(sorted((truth, said)))] += 1  # type: ignore[index]
    (first, second), count = confused.most_common(1)[0]
    # the intent with more training examples keeps its name
    source, target = sorted((first, second), key=lambda name: (truths.count(name), name))
    pair = [i for i, t in enumerate(truths) if t in (source, target)]
    before_merge = sum(answers[i] == truths[i] for i in pair) / len(pair)
    storage.labels.change(db, TASK, "merge", ADMIN, source, target)
    predictors.follow_labels(db, TASK)
    merged = [a.label for a in _serving(predictors).answer([texts[i] for i in pair])]
    before_round = sum(said == target for said in merged) / len(pair)
    rounds.append(run_round(loop, db, f"merging {source} into {target}"))
    after = [a.label for a in _serving(predictors).answer([texts[i] for i in pair])]
    return {
        "merged": source,
        "into": target,
        "confusions": count,
        "n_test": len(pair),
        "accuracy_two_labels": before_merge,
        "accuracy_before_round": before_round,
        "accuracy_after_round": sum(said == target for said in after) / len(pair),
    }


def options_latency(requests: int) -> dict[str, Any]:
    """p50/p99 of block_suggestion requests over HTTP for a synthetic 500-label task."""
    rng = random.Random(0)
    words = ["card", "payment", "transfer", "refund", "cash", "fee", "balance", "crypto", "pin", "account"]
    labels = [f"{rng.choice(words)}_{rng.choice(words)}_{i:03d}" for i in range(500)]
    descriptions = {
        label: f"messages about {label.replace('_', ' ')[:-4]} number {i}" for i, label in enumerate(labels)
    }
    with FakeSlackAPI(team_id=WORKSPACE) as fake, tempfile.TemporaryDirectory(prefix="camel-options-") as folder:
        settings = Settings(
            data_dir=folder,
            slack_api_url=fake.url,
            http_port=0,
            http_host="127.0.0.1",
            bot_token="xoxb-bench",
            signing_secret=SECRET,
            token_verification_enabled=False,
            admins=[ADMIN],
            model=ModelSettings(zero_shot=False),
            tasks=[
                TaskSettings(name="big", kind="intent", labels=labels, channels=[CHANNEL], descriptions=descriptions)
            ],
        )
        db = runtime.open_store(settings)
        bot = runtime.start(settings, db=db, learning=False, http=True)
        try:
            message_id = storage.messages.record_message(
                db, workspace=WORKSPACE, channel=CHANNEL, ts="1700000000.000100", text="where is my money"
            )
            queries = ["", "c", "ca", "card", "card_pay", "refund fee", "crypto", "number 42", "zzz", "transfer_"]
            timings, sizes = [], []
            for i in range(requests):
                typed = rng.choice(queries) if i % 3 else rng.choice(labels)[: rng.randint(1, 12)]
                status, body, ms = _ask_options(bot.url, message_id, typed)
                if status != 200:
                    raise SystemExit(f"{MODULE}: an options request got HTTP {status}")
                timings.append(ms)
                sizes.append(len(json.loads(body)["options"]))
        finally:
            bot.stop()
            db.close()
    ordered = sorted(timings)
    return {
        "labels": 500,
        "requests": requests,
        "options_ms_p50": round(statistics.median(ordered), 2),
        "options_ms_p99": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
        "options_ms_max": round(ordered[-1], 2),
        "most_options": max(sizes),
    }


def _ask_options(url: str, message_id: int, typed: str) -> tuple[int, bytes, float]:
    payload = {
        "type": "block_suggestion",
        "user": {"id": "U0BENCHPERSON", "username": "p", "name": "p", "team_id": WORKSPACE},
        "team": {"id": WORKSPACE, "domain": "bench"},
        "api_app_id": "A0BENCH",
        "token": "bench",
        "container": {
            "type": "message",
            "message_ts": "1700000001.000100",
            "channel_id": CHANNEL,
            "is_ephemeral": False,
        },
        "channel": {"id": CHANNEL, "name": "bench"},
        "action_id": blocks.CORRECT_MENU,
        "block_id": blocks.block_id_for(message_id),
        "value": typed,
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed_headers(SECRET, body, "application/x-www-form-urlencoded")
    request = urllib.request.Request(url + "/slack/events", data=body.encode(), method="POST", headers=headers)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = response.read()
        status = int(response.status)
    return status, answer, (time.perf_counter() - started) * 1000.0


def _mean(values: dict[str, float]) -> float:
    return round(statistics.mean(values.values()), 4)


def _median(values: dict[str, float | None]) -> float | None:
    known = [v for v in values.values() if v is not None]
    return round(statistics.median(known), 3) if known else None


def render(results: dict[str, Any]) -> str:
    meta, arriving, merge = results["meta"], results["new_intents"], results["new_intents"]["merge"]
    new = arriving["new_labels"]
    per = new["per_label"]
    rows = [
        [
            label,
            _pct(v["day_one_zero_shot_recall"]),
            _pct(v["recall_at_0"]),
            _pct(v["probe_recall_at_5"]),
            _pct(v["recall_at_5"]),
            _pct(v["recall_at_20"]),
            "" if v["seconds_to_first_correct"] is None else v["seconds_to_first_correct"],
        ]
        for label, v in per.items()
    ]
    rows.append(
        [
            "**mean**",
            _pct(new["day_one_zero_shot_recall"]),
            _pct(new["recall_at_0"]),
            _pct(new["probe_recall_at_5"]),
            _pct(new["recall_at_5"]),
            _pct(new["recall_at_20"]),
            f"median {new['seconds_to_first_correct']}",
        ]
    )
    round_rows = [[r["after"], r["outcome"], r["version"], r["seconds"], r["reason"]] for r in arriving["rounds"]]
    options = results["options"]
    return "\n".join(
        [
            "# Labels that change while the bot runs",
            "",
            f"Command: `{meta['command']}`",
            "",
            f"{meta['machine']}; {meta['total_s']:.0f} s wall, load average at the end {meta['load_end']:.2f}.",
            "",
            (__doc__ or "").strip(),
            "",
            f"## New intents arriving ({arriving['n_test']} test messages of the 20 intents)",
            "",
            markdown_table(
                [
                    "new label",
                    "day-one zero-shot",
                    "recall @0",
                    "probe @5",
                    "recall @5",
                    "recall @20",
                    "s to first correct",
                ],
                rows,
            ),
            "",
            f"The 10 labels there from the start, in the same final model (20 examples each): recall "
            f"{_pct(arriving['old_labels_recall_at_20'])} % (new labels at 20: {_pct(new['recall_at_20'])} %). "
            "Before the new labels existed (a 10-label task): "
            f"{_pct(arriving['old_labels_recall_at_20_before_new_labels'])} %.",
            "",
            "## Merge",
            "",
            f"Most confused pair in the final model: `{merge['merged']}` and `{merge['into']}` "
            f"({merge['confusions']} confusions); `{merge['merged']}` merged into `{merge['into']}`. "
            f"On their {merge['n_test']} test messages: {_pct(merge['accuracy_two_labels'])} % as two labels, "
            f"{_pct(merge['accuracy_before_round'])} % right after the merge (columns summed, no round), "
            f"{_pct(merge['accuracy_after_round'])} % after the next round.",
            "",
            "## Rounds (the real child process and gate)",
            "",
            markdown_table(["after", "outcome", "version", "seconds", "gate"], round_rows),
            "",
            "## Large taxonomy: the label menu's options over HTTP",
            "",
            f"{options['labels']} labels, {options['requests']} signed block_suggestion requests: p50 "
            f"{options['options_ms_p50']} ms, p99 {options['options_ms_p99']} ms (`options_ms_p99`), max "
            f"{options['options_ms_max']} ms; at most {options['most_options']} options per answer.",
            "",
            "![new labels' recall over examples](taxonomy.png)",
        ]
    )


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    new = results["new_intents"]["new_labels"]
    figure, axis = plt.subplots(figsize=(6, 4))
    shots = [0, 5, 20]
    for label, values in new["per_label"].items():
        axis.plot(shots, [100 * values[f"recall_at_{n}"] for n in shots], color="grey", alpha=0.35, linewidth=1)
    axis.plot(shots, [100 * new[f"recall_at_{n}"] for n in shots], marker="o", color="C0", label="new labels (mean)")
    axis.scatter([0], [100 * new["day_one_zero_shot_recall"]], marker="x", color="C1", label="day-one zero-shot")
    axis.scatter([5], [100 * new["probe_recall_at_5"]], marker="s", color="C2", label="frozen probe @5")
    axis.axhline(
        100 * results["new_intents"]["old_labels_recall_at_20"],
        linestyle="--",
        color="C3",
        label="first labels @20 (same model)",
    )
    axis.set_xlabel("examples of the new label")
    axis.set_ylabel("test recall (%)")
    axis.set_title("New BANKING77 intents created in Slack")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        MODULE,
        __doc__,
        writes="bench/results/taxonomy.json, taxonomy.md and taxonomy.png; MiniLM states in bench/.cache/states",
        data=shared_data("banking77"),
    )
    parser.add_argument(
        "--data", default="", help="the shared data folder (default: CAMEL_BENCH_DATA or ../shared/data)"
    )
    parser.add_argument("--requests", type=int, default=600, help="options requests for the 500-label task")
    options = parser.parse_args(argv)
    use_data_dir(options.data)
    require_data(["banking77"])
    torch.set_num_threads(1)
    started, machine = time.perf_counter(), machine_line(1)
    from bench.method.features import open_cache

    data = load_dataset("banking77")
    results: dict[str, Any] = {"new_intents": new_intents(data, open_cache())}
    results["options"] = options_latency(options.requests)
    results["options_ms_p99"] = results["options"]["options_ms_p99"]
    results["new_labels"] = results["new_intents"]["new_labels"]
    results["old_labels_recall_at_20"] = results["new_intents"]["old_labels_recall_at_20"]
    results["merge"] = results["new_intents"]["merge"]
    results["meta"] = {
        "command": recorded_command(MODULE, argv),
        "machine": machine,
        "total_s": round(time.perf_counter() - started, 1),
        "load_end": load_average(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "taxonomy.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    path.with_suffix(".md").write_text(render(results) + "\n")
    plot(results, path.with_suffix(".png"))
    print(json.dumps({k: results[k] for k in ("new_labels", "old_labels_recall_at_20", "merge", "options")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
