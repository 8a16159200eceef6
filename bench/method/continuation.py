"""Continuation vs refit: a round on top of the serving adapter, two ways, on BANKING77.

Scenarios: `small` = an adapter trained on 3 examples per intent, then 5 more per intent arrive;
`large` = an adapter trained on the training set less 500 messages, then those 500 arrive. Each
round gets the new examples plus every older one as replay (what bot.loop.round passes) and
runs either as a continuation (`refit_below=0`: start from the adapter, replay sample, smaller
learning rates) or as a refit (the shipped default below `refit_below`: a fresh training with the
shipped recipe on all of it). Test accuracy (3,080 messages) before/after and round seconds on a warm cache.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import torch

from bench.common import (
    RESULTS,
    benchmark_parser,
    load_dataset,
    machine_line,
    markdown_table,
    recorded_command,
    require_data,
    sample_per_class,
    shared_data,
)
from bench.method.curve import evaluate_camel
from bench.method.features import open_cache
from camel import CamelConfig, TrainingArgs, train


def scenario(name: str, data: Any) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    if name == "small":
        old = sample_per_class(data.train_texts, data.train_labels, 3, 0)
        both = sample_per_class(data.train_texts, data.train_labels, 8, 0)
        seen = set(old[0])
        new = ([t for t in both[0] if t not in seen], [label for t, label in zip(*both) if t not in seen])
        return old, new
    cut = len(data.train_texts) - 500
    return (data.train_texts[:cut], data.train_labels[:cut]), (data.train_texts[cut:], data.train_labels[cut:])


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.method.continuation",
        __doc__,
        writes="bench/results/continuation.json and continuation.md; MiniLM states in bench/.cache/states",
        data=shared_data("banking77"),
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    options = parser.parse_args(argv)
    require_data(["banking77"])
    wall = time.perf_counter()
    torch.set_num_threads(options.threads)
    machine = machine_line(options.threads)
    data, cache = load_dataset("banking77"), open_cache()
    results: dict[str, Any] = {}
    for name in ("small", "large"):
        (old_t, old_l), (new_t, new_l) = scenario(name, data)
        args = TrainingArgs(num_threads=options.threads)
        serving = train(old_t, old_l, config=CamelConfig(), args=args, cache=cache).adapter
        before = evaluate_camel(serving, cache, data.test_texts, data.test_labels, "accuracy")
        row: dict[str, Any] = {"old": len(old_t), "new": len(new_t), "before": before}
        for mode, refit_below in (("continue", 0), ("refit", args.refit_below)):
            started = time.perf_counter()
            adapter = train(
                new_t,
                new_l,
                init=serving,
                replay=(old_t, old_l),
                cache=cache,
                args=TrainingArgs(num_threads=options.threads, refit_below=refit_below),
            ).adapter
            row[f"{mode}_s"] = time.perf_counter() - started
            row[mode] = evaluate_camel(adapter, cache, data.test_texts, data.test_labels, "accuracy")
        results[name] = row
        print(name, row, flush=True)
    command = recorded_command("bench.method.continuation", argv)
    results["meta"] = {"command": command, "machine": machine, "total_s": round(time.perf_counter() - wall, 1)}
    (RESULTS / "continuation.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        [
            name,
            r["old"],
            r["new"],
            f"{100 * r['before']:.2f}",
            f"{100 * r['continue']:.2f}",
            f"{r['continue_s']:.1f}",
            f"{100 * r['refit']:.2f}",
            f"{r['refit_s']:.1f}",
        ]
        for name, r in results.items()
        if name != "meta"
    ]
    md = [
        "# Continuation vs refit",
        "",
        f"Command: `{command}`",
        "",
        machine,
        "",
        __doc__.split("\n\n")[1].strip(),
        "",
        markdown_table(["scenario", "old", "new", "before %", "continue %", "continue s", "refit %", "refit s"], rows),
    ]
    (RESULTS / "continuation.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
