"""Helpers shared by both rooms of benchmarks: data sets, sampling, sizes, memory, timing, Markdown,
the command line every benchmark parses and the environment of the children they start.

The data lives outside the repository in ../shared/data (read-only); a benchmark run without it
prints one line saying where it looked and exits 0, so `make bench` on a fresh clone does not fail.
torch is imported only where a machine line is written: bench.system.store reads no model.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[1]
# A git worktree's parent is not the checkout's: CAMEL_BENCH_DATA points at the shared data then.
DATA_DIR = Path(os.environ.get("CAMEL_BENCH_DATA") or REPO.parent / "shared" / "data")
RESULTS = REPO / "bench" / "results"

# folder -> (label column, metric the literature reports for it)
DATASETS: dict[str, tuple[str, str]] = {
    "banking77": ("category", "accuracy"),
    "tweeteval_sentiment": ("label", "macro_recall"),
}


@dataclass
class Dataset:
    name: str
    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]


def use_data_dir(folder: str) -> None:
    """Read the shared data from `folder` (a git worktree is not next to ../shared like the main checkout)."""
    global DATA_DIR
    if folder:
        DATA_DIR = Path(folder).resolve()


def shared_data(*names: str) -> str:
    """What `--help` says about the data a benchmark reads from the shared folder."""
    return (
        f"{', '.join(str(DATA_DIR / name) for name in names)} (CAMEL_BENCH_DATA names another folder); "
        "without it the run prints where it looked and exits 0"
    )


def benchmark_parser(module: str, doc: str | None, *, writes: str, data: str) -> argparse.ArgumentParser:
    """Every benchmark's command line: `--help` shows what it measures (the module's docstring), the
    files it writes and the data it reads."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        epilog=f"writes: {writes}\ndata: {data}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def recorded_command(module: str, argv: list[str] | None) -> str:
    """The command line a result file names: run from the repository root with the project's venv."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join([".venv/bin/python", "-m", module, *args])


def project_env(**extra: str) -> dict[str, str]:
    """This process's environment with the project root first on PYTHONPATH, for the Python children a
    benchmark starts: they import this checkout even when the venv holds an editable install of
    another one (a git worktree sharing the main checkout's .venv) or their working folder is elsewhere."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def require_data(names: list[str]) -> None:
    """Exit 0 with one clear line when the shared benchmark data is not on this machine."""
    missing = [name for name in names if not (DATA_DIR / name / "train.csv").is_file()]
    if missing:
        print(f"skipping benchmark: data not found at {DATA_DIR} ({', '.join(missing)} missing)")
        sys.exit(0)


def read_split(name: str, split: str) -> tuple[list[str], list[str]]:
    label_col = DATASETS[name][0]
    with (DATA_DIR / name / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row[label_col] for row in rows]


def load_dataset(name: str, test_limit: int | None = None, seed: int = 0) -> Dataset:
    """Train and test split; `test_limit` takes a fixed random subsample of the test set (quick runs)."""
    train_texts, train_labels = read_split(name, "train")
    test_texts, test_labels = read_split(name, "test")
    if test_limit and test_limit < len(test_texts):
        keep = sorted(random.Random(seed).sample(range(len(test_texts)), test_limit))
        test_texts, test_labels = [test_texts[i] for i in keep], [test_labels[i] for i in keep]
    return Dataset(name, train_texts, train_labels, test_texts, test_labels)


def per_class_indices(labels: list[str], per_class: int, seed: int) -> list[int]:
    """Sorted indices of `per_class` random examples of every label (all of a label's if it has fewer)."""
    order = list(range(len(labels)))
    random.Random(seed).shuffle(order)
    taken: dict[str, int] = {}
    chosen = []
    for i in order:
        if taken.get(labels[i], 0) < per_class:
            taken[labels[i]] = taken.get(labels[i], 0) + 1
            chosen.append(i)
    return sorted(chosen)


def sample_per_class(texts: list[str], labels: list[str], per_class: int, seed: int) -> tuple[list[str], list[str]]:
    """`per_class` random examples of every label (all of a label's examples if it has fewer)."""
    chosen = per_class_indices(labels, per_class, seed)
    return [texts[i] for i in chosen], [labels[i] for i in chosen]


def folder_mb(path: str | Path) -> float:
    total = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return total / 1e6


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Resident set (VmRSS) or its peak (VmHWM) of a process, in MB; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def load_average() -> float:
    return os.getloadavg()[0]


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """Wall and CPU seconds of the block, filled into the yielded dict on exit."""
    result: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        result["wall_s"] = time.perf_counter() - wall
        result["cpu_s"] = time.process_time() - cpu


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


def machine_facts(threads: int, engine: str | None = None) -> dict[str, Any]:
    """What a result must name about its machine: CPU model, the flags that decide engines (AVX2,
    AVX512, AVX512-BF16, AMX), torch's capability, the engine, threads and the load at start
    (the caller adds `load_average_end` when it finishes)."""
    from camel.engines import cpu_facts

    return {
        **cpu_facts(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch_threads": threads,
        "engine": engine,
        "load_average_start": round(load_average(), 2),
    }


def machine_line(threads: int, engine: str | None = None, facts: dict[str, Any] | None = None) -> str:
    """One line naming the machine; from `facts` (machine_facts) when the caller has them already."""
    facts = facts or machine_facts(threads, engine)
    # The CPU's vector units decide whether bfloat16 and which engine pay, so results name them.
    return (
        f"Python {facts['python']}, {platform.machine()} {facts['cpu_model']}, {facts['cpus']} CPUs, "
        f"flags {', '.join(facts['flags']) or 'none of AVX2/AVX512/AVX512-BF16/AMX'}, "
        f"torch CPU capability {facts['torch_capability']}, native bfloat16 {'yes' if facts['native_bf16'] else 'no'}, "
        + (f"engine {engine}, " if engine else "")
        + f"torch threads {threads}, load average at start {facts['load_average_start']:.2f}"
    )


def result_meta(module: str, argv: list[str] | None, facts: dict[str, Any], started: float) -> dict[str, Any]:
    """A result's `meta`: its command, the machine of `facts` (machine_facts, taken when the run
    started) as a line and as facts with the load at the end, and the wall seconds since `started`
    (a time.perf_counter())."""
    load_end = load_average()
    return {
        "command": recorded_command(module, argv),
        "machine": machine_line(facts["torch_threads"], facts["engine"], facts),
        "machine_facts": {**facts, "load_average_end": round(load_end, 2)},
        "load_end": load_end,
        "total_s": time.perf_counter() - started,
    }


def percentile(values: list[float], q: float) -> float:
    """The value at quantile `q` (0..1) of `values`: the nearest rank, no interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def say(message: str) -> None:
    """A timestamped progress line on stderr (a long benchmark says what it is doing)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(stem: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS / f"{stem}.json", RESULTS / f"{stem}.md"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    md_path.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    return json_path, md_path
