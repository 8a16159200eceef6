"""The project's benchmarks, in two rooms (bench/README.md lists each one and what it writes).

bench.method: the method alone (camel, its data sets, its baselines); never bot, storage or bench.system.
bench.system: what drives the bot, its storage or its CLI; it may reuse bench.method's scoring.
Shared helpers (data, timing, results, child environments) live in bench.common. Run each one as
`python -m bench.<room>.<name>` from the repository root; `--help` says what it measures and writes.
"""
