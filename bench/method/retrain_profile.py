"""Where the time of train() on BANKING77's 10k training messages goes (issue 22): a diagnosis of
bench.method.speed's retrain row, run by hand.

Each part prints JSON lines, each with the load average (the machine is shared: a 2-thread figure
means little above load 2, compare sides measured in one run):
  bottom     the bottom pass (cache fill) over --bottom-texts texts, per engine and thread count
  disk       the 10k states read from memory, flushed to a shard, read back from the shard
  phases     one full train() (shipped defaults, warm cache) with its phases timed: states, head
             start (prototypes, pooled top pass, probe fit), epochs; the torch threads seen in the steps
  head       the probe start's pieces side by side: pooled top pass float32 vs bfloat16, probe fit
             with 1 BLAS thread vs --threads
  optimizer  AdamW's step over the adapter's parameters: torch's per-parameter loop vs fused
  steps      per-step split (collate, forward+loss, backward, optimizer) of configurations
             threads:bf16 (--configs), interleaved in blocks over the same batches
  profile    cProfile of --profile-steps real steps (_Round._epoch), top functions by own time
  torchprof  torch.profiler of 30 steps, top ops by own CPU time
  flops      FLOPs of one step (torch's counter) and the GFLOP/s reached, vs a plain bf16 and fp32
             matmul of the blocks' shapes
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

import torch

from bench.common import benchmark_parser, load_dataset, machine_line, require_data, shared_data
from camel import CamelConfig, FeatureCache, TrainingArgs, load_base, make_engine, new_adapter, train
from camel import trainer as trainer_module
from camel.cache import pad_states
from camel.features import pooled_vectors
from camel.probe import fit_probe

PIECES = ("collate", "forward", "backward", "optimizer")
PARTS = ("bottom", "disk", "phases", "head", "optimizer", "steps", "profile", "torchprof", "flops")


def say(part: str, **fields: Any) -> None:
    fields = {k: round(v, 4) if isinstance(v, float) else v for k, v in fields.items()}
    print(json.dumps({"part": part, "load": [round(x, 2) for x in os.getloadavg()], **fields}), flush=True)


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> dict[str, float]:
    return {"wall_s": time.perf_counter() - start[0], "cpu_s": time.process_time() - start[1]}


def part_bottom(base: Any, texts: list[str], engines: list[str], thread_counts: list[int], split: int) -> None:
    for rep in range(2):
        for engine in engines:
            for threads in thread_counts:
                torch.set_num_threads(threads)
                cache = FeatureCache(base, engine=make_engine(engine, None))
                start = clock()
                cache.states(texts, split, 64)
                took = since(start)
                say(
                    "bottom",
                    rep=rep,
                    engine=engine,
                    threads=threads,
                    texts=len(texts),
                    **took,
                    msg_per_s=len(texts) / took["wall_s"],
                )


def part_disk(base: Any, texts: list[str], engine: str) -> None:
    torch.set_num_threads(2)
    split = base.num_layers - 2
    with tempfile.TemporaryDirectory() as folder:
        cache = FeatureCache(base, folder, engine=make_engine(engine, None))
        cache.states(texts, split, 64)
        start = clock()
        cache.states(texts, split, 64)
        say("disk", source="memory (same cache)", texts=len(texts), **since(start))
        start = clock()
        written = cache.flush()
        say("disk", source="flush to a shard", texts=written, **since(start))
        fresh = FeatureCache(base, folder, engine=make_engine(engine, None))
        start = clock()
        fresh.states(texts, split, 64)
        say("disk", source="disk shard (new cache object)", texts=len(texts), **since(start))


def part_phases(base: Any, texts: list[str], labels: list[str], engine: str, threads: int) -> None:
    """One full train() on a warm memory cache, with its phases wrapped in timers."""
    torch.set_num_threads(threads)
    cache = FeatureCache(base, engine=make_engine(engine, None))
    cache.states(texts, base.num_layers - 2, 64)
    times: dict[str, float] = {}
    seen_threads: set[int] = set()

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    names = ("TrainingFeatures", "new_adapter", "label_prototypes", "pooled_vectors", "fit_probe", "_epoch", "_finish")

    def owner(name: str) -> Any:
        return trainer_module._Round if name in ("_epoch", "_finish") else trainer_module

    originals: dict[str, Callable[..., Any]] = {name: getattr(owner(name), name) for name in names}
    original_step = torch.optim.AdamW.step

    def step_spy(self: Any, *a: Any, **k: Any) -> Any:
        seen_threads.add(torch.get_num_threads())
        return original_step(self, *a, **k)

    try:
        for name, fn in originals.items():
            setattr(owner(name), name, timed(name, fn))
        torch.optim.AdamW.step = step_spy  # type: ignore[method-assign]
        start = clock()
        result = train(texts, labels, config=CamelConfig(), args=TrainingArgs(num_threads=threads), cache=cache)
        took = since(start)
    finally:
        for name, fn in originals.items():
            setattr(owner(name), name, fn)
        torch.optim.AdamW.step = original_step  # type: ignore[method-assign]
    say(
        "phases",
        threads=threads,
        engine=engine,
        **took,
        phases={k: round(v, 3) for k, v in times.items()},
        threads_in_steps=sorted(seen_threads),
        steps=result.adapter.metrics["training"]["steps"],
        epochs=[(row["epoch"], row.get("seconds")) for row in result.history],
    )


class StepBench:
    """A _Round built like train() builds it, and its steps timed piece by piece."""

    def __init__(self, base: Any, texts: list[str], labels: list[str], engine: str) -> None:
        self.cache = FeatureCache(base, engine=make_engine(engine, None))
        self.args = TrainingArgs()
        config = CamelConfig()
        adapter = new_adapter(base, config, sorted(set(labels)))
        torch.manual_seed(self.args.seed)
        self.round = trainer_module._Round(adapter, texts, labels, self.args, self.cache, None, fresh_head={})
        self.adapter = adapter
        self.optimizer = trainer_module._optimizer(adapter, self.args)
        self.scheduler = trainer_module._warmup_then_linear_decay(
            self.optimizer, self.round.main_steps, self.args.warmup_fraction
        )
        self.batches = self.round._batches() + self.round._batches()

    def step(self, batch: list[int], bf16: bool) -> dict[str, float]:
        features, r = self.round.features, self.round
        self.adapter.train()  # as _Round._epoch: dropout on
        t0 = time.perf_counter()
        hidden, mask = pad_states([features.states[i] for i in batch])
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pooled = self.adapter.pool(hidden, mask)
            embedding, logits = self.adapter.embed_and_classify(pooled)
        loss = r.batch_loss(embedding.float(), logits.float(), torch.tensor([r.targets[i] for i in batch]), True)
        t2 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        self.optimizer.step()
        self.scheduler.step()
        t4 = time.perf_counter()
        float(loss.detach())
        return {
            "collate": t1 - t0,
            "forward": t2 - t1,
            "backward": t3 - t2,
            "optimizer": t4 - t3,
            "tokens": float(mask.shape[0] * mask.shape[1]),
            "real_tokens": float(mask.sum()),
        }

    def real_epoch_steps(self, steps: int) -> dict[str, float]:
        """The trainer's own loop (_Round._epoch) for `steps` steps: wall and CPU per step."""
        r = self.round
        r.step = 0
        start = clock()
        r._epoch(1, r.features.outputs, self.optimizer, self.scheduler, steps)
        took = since(start)
        return {"wall_ms_per_step": 1000 * took["wall_s"] / steps, "cpu_ms_per_step": 1000 * took["cpu_s"] / steps}


def part_steps(bench: StepBench, configs: list[tuple[int, bool]], block: int, rounds: int) -> None:
    """Interleave configurations (threads, bf16) in blocks of `block` steps, `rounds` times, over
    the same batches in the same order for each."""
    pieces: dict[tuple[int, bool], list[dict[str, float]]] = {c: [] for c in configs}
    cpu: dict[tuple[int, bool], float] = {c: 0.0 for c in configs}
    wall: dict[tuple[int, bool], float] = {c: 0.0 for c in configs}
    for rnd in range(rounds):
        batches = bench.batches[rnd * block : (rnd + 1) * block]
        for config in configs:
            threads, bf16 = config
            torch.set_num_threads(threads)
            bench.step(batches[0], bf16)  # untimed: a first step of this configuration
            start = clock()
            for batch in batches:
                pieces[config].append(bench.step(batch, bf16))
            took = since(start)
            cpu[config] += took["cpu_s"]
            wall[config] += took["wall_s"]
    for config in configs:
        rows = pieces[config]
        n = len(rows)
        mean = {k: 1000 * statistics.fmean(r[k] for r in rows) for k in PIECES}
        say(
            "steps",
            threads=config[0],
            bf16=config[1],
            steps=n,
            ms_per_step=1000 * wall[config] / n,
            cpu_ms_per_step=1000 * cpu[config] / n,
            cores_used=cpu[config] / wall[config],
            split_ms={k: round(v, 2) for k, v in mean.items()},
            rest_ms=1000 * wall[config] / n - sum(mean.values()),
            median_step_ms=1000
            * statistics.median(sum(r[k] for k in ("collate", "forward", "backward", "optimizer")) for r in rows),
            padded_tokens_per_step=statistics.fmean(r["tokens"] for r in rows),
            real_tokens_per_step=statistics.fmean(r["real_tokens"] for r in rows),
        )


def part_profile(bench: StepBench, steps: int, threads: int) -> None:
    torch.set_num_threads(threads)
    profiler = cProfile.Profile()
    profiler.enable()
    took = bench.real_epoch_steps(steps)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    say("profile", threads=threads, steps=steps, **took)
    print(out.getvalue(), flush=True)


def part_torch_profile(bench: StepBench, steps: int, threads: int) -> None:
    torch.set_num_threads(threads)
    from torch.profiler import ProfilerActivity, profile

    batches = bench.batches[:steps]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            bench.step(batch, True)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30), flush=True)


def part_flops(bench: StepBench, threads: int) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    batches = bench.batches[:200]
    counter = FlopCounterMode(display=False)
    tokens = []
    with counter:
        for batch in batches[:50]:
            tokens.append(bench.step(batch, True)["tokens"])
    flops_per_step = counter.get_total_flops() / 50
    # time those 50 steps again, outside the counter
    start = time.perf_counter()
    for batch in batches[:50]:
        bench.step(batch, True)
    step_s = (time.perf_counter() - start) / 50
    seq = round(statistics.fmean(tokens) / 32)
    # the blocks' matmuls at this step's mean shape, plain bf16, forward and the two backward matmuls
    m = 32 * seq
    shapes = [(m, 384, 384)] * 4 + [(m, 384, 1536), (m, 1536, 384)]
    plain = matmul_gflops(shapes)
    say(
        "flops",
        threads=threads,
        gflop_per_step=flops_per_step / 1e9,
        step_ms=1000 * step_s,
        achieved_gflop_s=flops_per_step / 1e9 / step_s,
        mean_padded_seq=seq,
        plain_bf16_matmul_gflop_s=plain["bf16"],
        plain_fp32_matmul_gflop_s=plain["fp32"],
    )


def matmul_gflops(shapes: list[tuple[int, int, int]], repeats: int = 200) -> dict[str, float]:
    result = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        pairs = [(torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)) for m, k, n in shapes]
        for a, b in pairs:
            a @ b
        flop = sum(2 * m * k * n for m, k, n in shapes) * repeats
        start = time.perf_counter()
        for _ in range(repeats):
            for a, b in pairs:
                a @ b
        result[name] = flop / 1e9 / (time.perf_counter() - start)
    return result


def part_head(base: Any, texts: list[str], labels: list[str], engine: str, threads: int) -> None:
    """The probe start's pieces, side by side: what camel.trainer ran before issue 22 and now."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    cache = FeatureCache(base, engine=make_engine(engine, None))
    states = cache.states(texts, base.num_layers - 2, 64)
    names = sorted(set(labels))
    targets = [names.index(label) for label in labels]
    adapter = new_adapter(base, CamelConfig(), names)
    pooled: dict[bool, torch.Tensor] = {}
    for rep in range(2):
        for bf16 in (False, True):
            start = clock()
            pooled[bf16] = pooled_vectors(adapter, states, bf16)
            say("head", piece="pooled top pass", bf16=bf16, rep=rep, threads=threads, **since(start))
    cosine = torch.nn.functional.cosine_similarity(pooled[False], pooled[True])
    say("head", piece="pooled bf16 vs float32", lowest_cosine=f"{float(cosine.min()):.7f}")
    for rep in range(2):
        for blas in sorted({1, threads}):
            with threadpool_limits(limits=blas, user_api="blas"):
                start = clock()
                fit_probe(pooled[True], targets, len(names), TrainingArgs().probe_c)
                say("head", piece="probe fit", blas_threads=blas, rep=rep, **since(start))


def part_optimizer(base: Any, threads: int, steps: int = 100) -> None:
    torch.set_num_threads(threads)
    adapter = new_adapter(base, CamelConfig(), [f"label {i}" for i in range(77)])
    generator = torch.Generator().manual_seed(0)
    for parameter in adapter.parameters():
        parameter.grad = torch.randn(parameter.shape, generator=generator) * 1e-3
    for rep in range(2):
        for fused in (False, True):
            optimizer = torch.optim.AdamW(adapter.parameters(), lr=1e-4, weight_decay=0.01, fused=fused)
            optimizer.step()
            started = time.perf_counter()
            for _ in range(steps):
                optimizer.step()
            ms = 1000 * (time.perf_counter() - started) / steps
            say("optimizer", fused=fused, rep=rep, threads=threads, ms_per_step=ms)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.method.retrain_profile",
        __doc__,
        writes="nothing: one JSON line per measure on standard output (no result file)",
        data=shared_data("banking77"),
    )
    parser.add_argument("parts", nargs="+", choices=PARTS, help="what to measure (see above)")
    parser.add_argument("--engine", default="torch-bf16", help="engine of the bottom pass")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (steps: see --configs)")
    parser.add_argument("--bottom-texts", type=int, default=2000, help="texts of the bottom part")
    parser.add_argument("--block", type=int, default=25, help="steps: steps per configuration and turn")
    parser.add_argument("--rounds", type=int, default=4, help="steps: turns of every configuration")
    parser.add_argument("--configs", default="1:1,2:1", help="threads:bf16 pairs, comma-separated")
    parser.add_argument("--profile-steps", type=int, default=200, help="profile: steps under cProfile")
    options = parser.parse_args(argv)
    require_data(["banking77"])
    data = load_dataset("banking77")
    base = load_base(CamelConfig().resolved_base_model())
    texts, labels = data.train_texts, data.train_labels
    say("start", texts=len(texts), machine=machine_line(options.threads, options.engine))
    if "bottom" in options.parts:
        sample = random.Random(0).sample(texts, options.bottom_texts)
        part_bottom(base, sample, ["torch-bf16", "torch-fp32"], [1, 2], base.num_layers - 2)
    if "disk" in options.parts:
        part_disk(base, texts, options.engine)
    if "phases" in options.parts:
        part_phases(base, texts, labels, options.engine, options.threads)
    if "head" in options.parts:
        part_head(base, texts, labels, options.engine, options.threads)
    if "optimizer" in options.parts:
        part_optimizer(base, options.threads)
    if {"steps", "profile", "torchprof", "flops"} & set(options.parts):
        torch.set_num_threads(options.threads)
        start = clock()
        bench = StepBench(base, texts, labels, options.engine)
        say("setup", note="states of 10k filled for the step benches", **since(start))
        if "steps" in options.parts:
            configs = [(int(t), bool(int(b))) for t, b in (c.split(":") for c in options.configs.split(","))]
            part_steps(bench, configs, options.block, options.rounds)
        if "profile" in options.parts:
            part_profile(bench, options.profile_steps, options.threads)
        if "torchprof" in options.parts:
            part_torch_profile(bench, 30, options.threads)
        if "flops" in options.parts:
            part_flops(bench, options.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
