"""Benchmarks of the method alone: camel, the shared data sets, baselines; no bot, no storage."""
