"""Second-base benchmark: the memory a base-model change costs while tasks migrate.

After `[model] base_model` changes, the serving registry keeps each task's active adapter on the
base it was trained on until a round on the new base passes the gate, so two bases are in memory
(bot.loop.bases). This measures the resident memory of a serving process in two fresh children:

- one base: the registry configured with all-MiniLM-L6-v2 (the shipped folder) serving an adapter
  trained on it;
- two bases: the registry configured with a second base (a copy of the same folder whose
  config.json differs, so its fingerprint differs: a base of the same size), still serving that
  adapter on its own base, with the new base loaded too (zero-shot guesses, reading, rounds).

Each child answers the same BANKING77 messages (five intents) before its resident set size is
read, and then runs the configured base's bottom on them (as a zero-shot guess or a reading does).
The difference is the cost of the second base; its bound is its weights file (model.safetensors,
float32, mapped from the file: pages become resident as they are used).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    benchmark_parser,
    machine_line,
    markdown_table,
    peak_rss_mb,
    read_split,
    project_env,
    recorded_command,
    rss_mb,
    require_data,
    shared_data,
    write_results,
)

MODULE = "bench.system.second_base"
TASK = "support"
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked", "top_up_failed"]
PER_LABEL = 20


def read_texts() -> tuple[list[str], list[str]]:
    """The first PER_LABEL training texts of each of LABELS, in file order."""
    texts, labels = [], []
    taken = dict.fromkeys(LABELS, 0)
    for text, label in zip(*read_split("banking77", "train")):
        if label in taken and taken[label] < PER_LABEL:
            taken[label] += 1
            texts.append(text)
            labels.append(label)
    return texts, labels


def prepare(work: Path) -> dict[str, Any]:
    """The shipped base (A), a same-size copy with another fingerprint (B), an adapter on A, a store."""
    import camel
    import storage

    shipped = Path(camel.default_base_model_path())
    second = work / "second-base"
    shutil.copytree(shipped, second)
    config = json.loads((second / "config.json").read_text(encoding="utf-8"))
    config["camel_bench_copy"] = True  # another config.json: another fingerprint, the same weights' size
    (second / "config.json").write_text(json.dumps(config), encoding="utf-8")
    texts, labels = read_texts()
    base_config = camel.CamelConfig(base_model=str(shipped), trainable_layers=2)
    adapter = camel.train(
        texts, labels, config=base_config, args=camel.TrainingArgs(max_epochs=2, num_threads=1)
    ).adapter
    data = work / "data"
    folder = data / "adapters" / TASK / "v0001"
    camel.save_adapter(adapter, str(folder))
    db = storage.open_store(data / "camel.db")
    storage.tasks.upsert_task(db, storage.TaskSpec(TASK, kind="intent", labels=LABELS))
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(task=TASK, version=1, path=str(folder), parent_version=None, run_id=None, metrics={}),
    )
    storage.adapters.activate_adapter(db, TASK, 1, reason="bench")
    db.close()
    weights = shipped / "model.safetensors"
    return {
        "shipped": str(shipped),
        "second": str(second),
        "data": str(data),
        "texts": texts,
        "weights_mb": weights.stat().st_size / 1e6,
        "parameters": sum(p.numel() for p in camel.load_base(str(shipped)).model.parameters()),
    }


def child(mode: str, spec_path: str) -> None:
    """Serve the adapter as `camel-bot serve` would, answer the texts, print the memory as JSON."""
    import torch

    torch.set_num_threads(1)
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    import storage
    from bot.loop.registry import PredictorRegistry

    before = rss_mb()
    configured = spec["shipped"] if mode == "one" else spec["second"]
    registry = PredictorRegistry(configured, str(Path(spec["data"]) / "feature_cache"))
    db = storage.open_store(Path(spec["data"]) / "camel.db")
    started = time.perf_counter()
    notices = registry.sync(db)
    registry.base()  # the configured base is in memory while the task migrates (guesses, reading, rounds)
    sync_s = time.perf_counter() - started
    predictor = registry.get(TASK)
    assert predictor is not None and not notices, notices
    answers = predictor.answer(spec["texts"])
    held = rss_mb()  # the configured base loaded but not yet run: its weights' pages may not be resident
    base = registry.base()
    base.bottom(spec["texts"][:32], base.num_layers)  # as a zero-shot guess or a reading would run it
    print(
        json.dumps(
            {
                "mode": mode,
                "bases_in_memory": 1 + len(registry.bases.others()),
                "served_on": predictor.adapter.base.path,
                "answered": len(answers),
                "rss_after_imports_mb": before,
                "rss_held_mb": held,
                "rss_mb": rss_mb(),
                "peak_rss_mb": peak_rss_mb(),
                "sync_s": sync_s,
            }
        )
    )


def run_child(mode: str, spec_path: Path) -> dict[str, Any]:
    found = subprocess.run(
        [sys.executable, "-m", MODULE, "--child", mode, "--spec", str(spec_path)],
        env=project_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(found.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        MODULE,
        __doc__,
        writes="bench/results/second_base.json, bench/results/second_base.md",
        data=shared_data("banking77"),
    )
    parser.add_argument("--child", choices=["one", "two"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.spec)
        return 0
    require_data(["banking77"])
    machine = machine_line(1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="camel-second-base-") as tmp:
        work = Path(tmp)
        spec = prepare(work)
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        one, two = run_child("one", spec_path), run_child("two", spec_path)
    assert one["bases_in_memory"] == 1 and two["bases_in_memory"] == 2, (one, two)
    cost = two["rss_mb"] - one["rss_mb"]
    held_cost = two["rss_held_mb"] - one["rss_held_mb"]
    data = {
        "command": recorded_command(MODULE, argv),
        "machine": machine,
        "load_average_end": os.getloadavg()[0],
        "base": "all-MiniLM-L6-v2 (shipped) and a same-size copy with another fingerprint",
        "base_weights_mb": spec["weights_mb"],
        "base_parameters": spec["parameters"],
        "texts_answered": len(spec["texts"]),
        "one_base": one,
        "two_bases": two,
        "second_base_rss_mb": cost,
        "second_base_rss_held_only_mb": held_cost,
        "second_base_over_weights": cost / spec["weights_mb"],
        "total_s": time.perf_counter() - started,
    }
    rows = [
        [name, r["bases_in_memory"], f"{r['rss_held_mb']:.0f}", f"{r['rss_mb']:.0f}", f"{r['peak_rss_mb']:.0f}"]
        for name, r in (("one base", one), ("two bases", two))
    ]
    markdown = "\n".join(
        [
            "# Memory of a second base model while tasks migrate",
            "",
            f"Command: `{data['command']}`  ",
            f"Machine: {machine}",
            "",
            markdown_table(
                ["serving process", "bases in memory", "RSS MB, serving", "RSS MB, configured base run", "peak RSS MB"],
                rows,
            ),
            "",
            f"Held but not run, the second base costs {held_cost:.0f} MB (safetensors weights are mapped from "
            "the file; pages become resident as they are used). Once it has run (a zero-shot guess, a reading), "
            f"it costs {cost:.0f} MB of resident memory: {data['second_base_over_weights']:.2f} times "
            f"its weights file ({spec['weights_mb']:.0f} MB, {spec['parameters'] / 1e6:.1f} M parameters, "
            "float32). The weights are mapped from the file, so the bound is the whole file (every page used); the "
            "embedding rows of tokens a channel never writes stay on disk, which matters for a multilingual "
            "base whose vocabulary is most of its weights.",
        ]
    )
    json_path, md_path = write_results("second_base", data, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
