"""Benchmarks that drive the bot, its storage or its CLI (the real process, SQLite, children)."""
