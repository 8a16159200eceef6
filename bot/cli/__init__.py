"""The `camel-bot` command line: one entry point, subcommands registered by `bot/cli/<group>.py`.

This is the boundary where library errors become one line on stderr and exit status 2,
so no user ever sees a traceback for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sqlite3
import sys
from typing import Sequence

from bot import log_format

# Subcommand groups, imported lazily so `camel-bot --help` stays fast and a broken
# optional group cannot stop the others from working.
COMMAND_GROUPS = ("model", "data", "serve", "demo", "doctor")

EXIT_USAGE = 2


def _known_errors() -> tuple[type[BaseException], ...]:
    # Only packages the command actually imported can have raised their error; looking them
    # up in sys.modules keeps a storage-only command from importing torch just to say "no".
    errors: list[type[BaseException]] = []
    for module, name in (("camel", "CamelError"), ("storage", "StorageError"), ("bot.errors", "BotError")):
        error = getattr(sys.modules.get(module), name, None)
        if error is not None:
            errors.append(error)
    return tuple(errors)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camel-bot",
        description="A Slack bot that classifies messages and learns from its users' corrections.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        try:
            module = importlib.import_module(f"bot.cli.{group}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bot.cli.{group}":
                continue  # group not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # One JSON object per line: no input (a Slack body, a header) can forge or start a log line.
    log_format.configure(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except _known_errors() as exc:
        print(f"camel-bot {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as exc:  # one that no library translated: still one line
        print(f"camel-bot {args.command}: error: database: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a read-only folder, a full disk, a path under a file
        where = f" {exc.filename}" if exc.filename else ""
        print(f"camel-bot {args.command}: error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"camel-bot {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
