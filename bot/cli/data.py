"""`camel-bot import | export | delete-user | purge`: the labelled data and its privacy, offline.

Each takes `--db PATH` (default: the settings' data_dir, camel-data/camel.db) and `--config`
(for delete-user and purge: the feature cache to clean and `max_predict_chars`). None of them
creates a database: a missing one is an error, so a typo in `--db` leaves nothing behind. Each
checks the file first (`PRAGMA quick_check`) and refuses a damaged one with how to restore it.
StorageError becomes one stderr line and exit status 2 in bot.cli.
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

import sqlite_utils

import storage
from storage.privacy import check_days
from bot.settings import DataPaths, Settings, load_settings

DEFAULT_DB = Settings().db_path
FORMATS = ("csv", "jsonl")


def _existing_store(path: str) -> sqlite_utils.Database:
    """Open a database that must already exist and pass quick_check: importing into, exporting
    from or deleting in nothing (or in a damaged file) is a mistake that must change nothing."""
    if not Path(path).is_file():
        raise storage.StorageError(f"no database at {path} (pass --db PATH, or start the bot once to create it)")
    storage.db.require_healthy_file(path)  # read-only: opening for writing may migrate or switch to WAL
    return storage.open_store(path, create=False)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, metavar="PATH", help=f"database file (default {DEFAULT_DB})")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH", default=None, help="settings TOML (default: $CAMEL_BOT_CONFIG or ./camel-bot.toml)"
    )


def _db_path(args: argparse.Namespace, settings: Settings | None = None) -> str:
    if args.db:
        return str(args.db)
    return settings.db_path if settings is not None else DEFAULT_DB


def _settings_for(args: argparse.Namespace) -> Settings:
    """The settings, with data_dir where `--db` points (so the feature cache beside it is cleaned)."""
    settings = load_settings(getattr(args, "config", None))
    if not args.db:
        return settings
    values = {name: getattr(settings, name) for name in settings.__dataclass_fields__}
    values["data_dir"] = DataPaths(str(Path(args.db).parent)).root
    return Settings(**values)


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
    delete = subparsers.add_parser(
        "delete-user", help="delete every message and correction of a Slack user, also from the feature cache"
    )
    delete.add_argument("user", help="Slack user id, e.g. U012ABCDEF")
    _add_db(delete)
    _add_config(delete)
    delete.set_defaults(func=run_delete_user)

    purge = subparsers.add_parser("purge", help="erase the text of old messages nobody labelled")
    purge.add_argument("--older-than-days", type=float, required=True, metavar="N")
    _add_db(purge)
    _add_config(purge)
    purge.set_defaults(func=run_purge)


def run_import(args: argparse.Namespace) -> int:
    db = _existing_store(_db_path(args))
    # The audit row is written in the import's own transaction (storage.transfer.import_file).
    report = storage.transfer.import_file(db, args.path, task=args.task, fmt=args.format, actor=_actor())
    storage.files.make_private(Path(_db_path(args)).parent)
    print(
        f"imported {report.rows} labelled rows into task {args.task!r}: {report.new} new, "
        f"{report.duplicates} already stored"
    )
    for old, new in sorted(report.renamed.items()):
        print(f"label {old!r} is called {new!r} now (renamed or merged in Slack): its rows were stored as {new!r}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    if not args.corrections and not args.task:
        args.parser.error("--task is required unless --corrections is given")
    db = _existing_store(_db_path(args))
    if args.corrections:
        count = storage.transfer.export_corrections(db, args.path, fmt=args.format)
        print(f"exported {count} corrections to {args.path}")
    else:
        count = storage.transfer.export_labelled(db, args.task, args.path, fmt=args.format)
        print(f"exported {count} labelled messages of task {args.task!r} to {args.path}")
    return 0


def run_delete_user(args: argparse.Namespace) -> int:
    from bot import erasure  # loads camel (torch) only when a cache has to be cleaned

    settings = _settings_for(args)
    report = erasure.erase_user(settings, _existing_store(_db_path(args, settings)), args.user, actor=_actor())
    print(f"deleted from {args.user}'s data: {report.summary()}")
    return 0


def run_purge(args: argparse.Namespace) -> int:
    from bot import erasure

    settings = _settings_for(args)
    check_days("--older-than-days", args.older_than_days)  # before opening anything
    report = erasure.purge(
        settings, _existing_store(_db_path(args, settings)), older_than_days=args.older_than_days, actor=_actor()
    )
    print(f"erased the text of unlabelled messages older than {args.older_than_days:g} days: {report.summary()}")
    return 0
