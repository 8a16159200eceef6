"""`camel-bot import | export | delete-user | purge`: the labelled data and its privacy, offline.

Each takes `--db PATH` (default camel-data/camel.db). StorageError becomes one stderr line and
exit status 2 in bot.cli.
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

import sqlite_utils

import storage
from bot.settings import Settings

DEFAULT_DB = Settings().db_path
FORMATS = ("csv", "jsonl")


def _existing_store(path: str) -> sqlite_utils.Database:
    """Open a database that must already exist: exporting or deleting from nothing is a mistake."""
    if not Path(path).is_file():
        raise storage.StorageError(f"no database at {path} (pass --db PATH)")
    return storage.open_store(path)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=DEFAULT_DB, metavar="PATH", help=f"database file (default {DEFAULT_DB})")


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_transfer(subparsers)
    _register_privacy(subparsers)


def _register_transfer(subparsers: argparse._SubParsersAction) -> None:
    imp = subparsers.add_parser("import", help="import labelled data (CSV text,label[,task] or JSONL)")
    imp.add_argument("path", help="file to import")
    imp.add_argument("--task", required=True, help="task the rows belong to (unless a row names one)")
    imp.add_argument("--format", choices=FORMATS, default=None, help="default: from the file suffix")
    _add_db(imp)
    imp.set_defaults(func=run_import)

    exp = subparsers.add_parser("export", help="export a task's resolved labels, or the correction trail")
    exp.add_argument("path", help="file to write")
    exp.add_argument("--task", help="task to export (required unless --corrections)")
    exp.add_argument("--corrections", action="store_true", help="export every correction, withdrawn ones too")
    exp.add_argument("--format", choices=FORMATS, default=None, help="default: from the file suffix")
    _add_db(exp)
    exp.set_defaults(func=run_export, parser=exp)


def _register_privacy(subparsers: argparse._SubParsersAction) -> None:
    delete = subparsers.add_parser("delete-user", help="delete every message and correction of a Slack user")
    delete.add_argument("user", help="Slack user id, e.g. U012ABCDEF")
    _add_db(delete)
    delete.set_defaults(func=run_delete_user)

    purge = subparsers.add_parser("purge", help="erase the text of old messages nobody labelled")
    purge.add_argument("--older-than-days", type=float, required=True, metavar="N")
    _add_db(purge)
    purge.set_defaults(func=run_purge)


def run_import(args: argparse.Namespace) -> int:
    db = storage.open_store(args.db)
    count = storage.import_labelled(db, args.path, task=args.task, fmt=args.format)
    storage.audit(
        db, actor=_actor(), action="import", detail={"path": str(args.path), "task": args.task, "rows": count}
    )
    print(f"imported {count} labelled rows into task {args.task!r}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    if not args.corrections and not args.task:
        args.parser.error("--task is required unless --corrections is given")
    db = _existing_store(args.db)
    if args.corrections:
        count = storage.export_corrections(db, args.path, fmt=args.format)
        print(f"exported {count} corrections to {args.path}")
    else:
        count = storage.export_labelled(db, args.task, args.path, fmt=args.format)
        print(f"exported {count} labelled messages of task {args.task!r} to {args.path}")
    return 0


def run_delete_user(args: argparse.Namespace) -> int:
    result = storage.delete_user_data(_existing_store(args.db), args.user, actor=_actor())
    print(
        f"deleted {result['messages']} messages, {result['predictions']} predictions and "
        f"{result['corrections']} corrections of {args.user}"
    )
    return 0


def run_purge(args: argparse.Namespace) -> int:
    count = storage.purge_unlabelled_text(
        _existing_store(args.db), older_than_days=args.older_than_days, actor=_actor()
    )
    print(f"erased the text of {count} unlabelled messages older than {args.older_than_days:g} days")
    return 0
