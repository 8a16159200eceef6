"""What the simulated team says: a task's messages split into seed, held-out and stream parts.

The split is deterministic (fixed seed) and stratified, so every label appears in the seed set
that makes round 1 possible, and the held-out sample measures every round on the same texts.
"""

from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from bot.demo import sample_data
from bot.errors import DemoDataError

Row = tuple[str, str]


@dataclass(frozen=True)
class DemoTask:
    """One task of the demo and the channel its messages go to."""

    name: str
    kind: str
    channel: str
    labels: list[str]
    seed: list[Row]
    heldout: list[Row]
    stream: list[Row]


@dataclass(frozen=True)
class Sizes:
    seed_per_label: int
    heldout_per_label: int
    stream_per_label: int


# (support-sized, sentiment-sized): three labels need more stream per label than ten do.
# The seed is small on purpose (round 1 should leave room to learn) but large enough that
# storage's held-out split gives the first round something to be judged on.
FULL = {
    "intent": Sizes(seed_per_label=3, heldout_per_label=6, stream_per_label=16),
    "sentiment": Sizes(seed_per_label=10, heldout_per_label=12, stream_per_label=32),
}
QUICK = {
    "intent": Sizes(seed_per_label=5, heldout_per_label=6, stream_per_label=14),
    "sentiment": Sizes(seed_per_label=7, heldout_per_label=8, stream_per_label=20),
}
QUICK_INTENTS = 4  # --quick: the first four intents, so even a tiny test model can learn them
# A CSV of many labels (BANKING77 has 77) is cut to this many so the demo stays a few minutes.
MAX_CSV_LABELS = 20


def read_labelled_csv(path: Path, text_col: str | None, label_col: str | None) -> list[Row]:
    """Rows of any CSV with a text and a label column (default: text, then label or category)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            text_key = text_col or "text"
            label_key = label_col or next((c for c in ("label", "category", "intent") if c in columns), "label")
            for key in (text_key, label_key):
                if key not in columns:
                    raise DemoDataError(
                        f"{path}: no column {key!r} (columns: {', '.join(columns)}); use --text-col/--label-col"
                    )
            rows = [
                (r[text_key].strip(), r[label_key].strip())
                for r in reader
                if (r[text_key] or "").strip() and (r[label_key] or "").strip()
            ]
    except FileNotFoundError:
        raise DemoDataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DemoDataError(f"{path}: cannot read as UTF-8 CSV: {exc}") from None
    return rows


def split(rows: list[Row], sizes: Sizes, seed: int = 0) -> tuple[list[Row], list[Row], list[Row]]:
    """Stratified (seed, heldout, stream); labels with too few rows for all three are dropped."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in rows:
        by_label[label].append(text)
    rng = random.Random(seed)
    need = sizes.seed_per_label + sizes.heldout_per_label + 1
    seeded, heldout, stream = [], [], []
    for label in sorted(by_label):
        texts = sorted(set(by_label[label]))
        if len(texts) < need:
            continue
        rng.shuffle(texts)
        cut = sizes.seed_per_label + sizes.heldout_per_label
        seeded += [(t, label) for t in texts[: sizes.seed_per_label]]
        heldout += [(t, label) for t in texts[sizes.seed_per_label : cut]]
        stream += [(t, label) for t in texts[cut : cut + sizes.stream_per_label]]
    rng.shuffle(stream)
    if len({label for _, label in seeded}) < 2:
        raise DemoDataError(f"need at least two labels with {need} or more distinct texts each")
    return seeded, heldout, stream


def build_task(name: str, kind: str, channel: str, rows: list[Row], sizes: Sizes) -> DemoTask:
    seeded, heldout, stream = split(rows, sizes)
    labels = sorted({label for _, label in seeded})
    return DemoTask(name, kind, channel, labels, seeded, heldout, stream)


def demo_tasks(data: Path | None, text_col: str | None, label_col: str | None, quick: bool) -> list[DemoTask]:
    """The built-in support + sentiment tasks, or one task from the user's CSV."""
    sizes = QUICK if quick else FULL
    if data is not None:
        rows = most_common_labels(read_labelled_csv(data, text_col, label_col), MAX_CSV_LABELS)
        return [build_task("support", "intent", "C0SUPPORT", rows, sizes["intent"])]
    support = sample_data.support_messages()
    if quick:
        support = [row for row in support if row[1] in sample_data.SUPPORT_LABELS[:QUICK_INTENTS]]
    return [
        build_task("support", "intent", "C0SUPPORT", support, sizes["intent"]),
        build_task("sentiment", "sentiment", "C0SOCIAL", sample_data.sentiment_posts(), sizes["sentiment"]),
    ]


def most_common_labels(rows: list[Row], limit: int) -> list[Row]:
    counts = Counter(label for _, label in rows)
    keep = {label for label, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]}
    return [row for row in rows if row[1] in keep]
