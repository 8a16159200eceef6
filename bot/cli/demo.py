"""`camel-bot demo`: the whole loop offline, with no Slack credentials and no configuration."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bot.demo import DemoError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="watch the bot learn: local Slack stand-in, simulated team, training rounds, report",
        description="Run the bot against a local stand-in for Slack with a simulated team that "
        "corrects it, and report accuracy after each training round.",
    )
    parser.add_argument(
        "--data", type=Path, metavar="PATH.csv", help="labelled CSV to use instead of the built-in sample data"
    )
    parser.add_argument("--text-col", metavar="NAME", help="text column of --data (default: text)")
    parser.add_argument("--label-col", metavar="NAME", help="label column of --data (default: label or category)")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write the report here and keep the bot's data in DIR/data "
        "(default: report in ./demo-output, data in a temporary folder)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds (about a minute)")
    parser.set_defaults(func=run)


def _echo(line: str) -> None:
    # One write per line: the reload monitor prints from its own thread.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    import torch

    from bot.demo.runner import DemoOptions, run_demo

    torch.set_num_threads(1)  # the training child gets the other core
    if not args.verbose:
        # The transcript is the output; the scheduler's and the bot's routine logs would bury it.
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
    try:
        run_demo(
            DemoOptions(
                out=args.out,
                data=args.data,
                text_col=args.text_col,
                label_col=args.label_col,
                quick=args.quick,
                echo=_echo,
            )
        )
    except DemoError as exc:
        print(f"camel-bot demo: error: {exc}", file=sys.stderr)
        return 2
    return 0
