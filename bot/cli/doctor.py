"""`camel-bot doctor`: one line per check of an install; exit status 1 if any check found a problem."""

from __future__ import annotations

import argparse
import logging
import os

from bot.cli.checks import iter_checks


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check settings, Slack tokens, database, base model, adapters and disk",
        description="Check an install and print each problem with its fix. Exit status 1 if any.",
    )
    parser.add_argument(
        "--config", metavar="PATH", default=None, help="settings TOML (default: $CAMEL_BOT_CONFIG or ./camel-bot.toml)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.verbose:
        # The checks' own lines say what failed; the Slack client's retry log would repeat it.
        logging.getLogger("slack_sdk").setLevel(logging.CRITICAL)
    results = []
    for result in iter_checks(args.config, dict(os.environ)):
        print(result.line(), flush=True)
        results.append(result)
    problems = [r for r in results if not r.ok and not r.skipped]
    print(f"{len(problems)} problem(s)" if problems else "all checks passed")
    return 1 if problems or any(r.skipped for r in results) else 0
