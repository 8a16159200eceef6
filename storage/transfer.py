"""Import and export of labelled data (CSV, JSONL) and of the correction audit trail.

CSV is UTF-8 with a `text,label,task` header and minimal quoting, so text with commas, quotes
and newlines survives and the file opens cleanly in a spreadsheet (a BOM added by one is
accepted on import). An import checks every row before writing any, then writes all of them
(and its audit row) in one transaction. An imported row is identified by (task, text, label),
whatever the file is called or where the row stands: a row already imported adds nothing and
is not a new label for training. A text already imported (from any file) gets the new label
as another correction on its message; a new text becomes a message of workspace "import",
channel = the file name and ts = line number plus a hash of the text (the key that decides
its train/held-out split, unchanged from earlier versions).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.db import rows, transaction, utc_now
from storage.errors import ImportFormatError, UnknownTaskError
from storage.events import audit
from storage.files import make_private_dirs, make_private_file
from storage.records import ImportReport, Task
from storage.resolution import resolve_labels
from storage.tasks import changed_in_slack, get_task, require_task

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
IMPORT_WORKSPACE = "import"
MAX_REPORTED_ROWS = 10
CORRECTION_FIELDS = (
    "id",
    "created_at",
    "withdrawn_at",
    "task",
    "message_id",
    "workspace",
    "channel",
    "ts",
    "user",
    "is_admin",
    "source",
    "label",
)
Row = tuple[int, dict[str, Any]]  # (line number, fields)


def _format_of(path: Path, fmt: str | None) -> str:
    chosen = fmt or FORMATS.get(path.suffix.lower())
    if chosen not in ("csv", "jsonl"):
        raise ImportFormatError(f"{path}: unknown format {fmt or path.suffix!r}; use csv or jsonl")
    return chosen


def _read_csv(handle: Any) -> Iterator[Row]:
    reader = csv.DictReader(handle)
    if reader.fieldnames is None:
        return  # an empty file: the caller says "no rows to import"
    missing = {"text", "label"} - set(reader.fieldnames or [])
    if missing:
        raise ImportFormatError(
            f"line 1: the header must have columns text,label[,task]; missing {', '.join(sorted(missing))}"
        )
    start = reader.line_num + 1
    for record in reader:
        if None in record:
            yield start, {"error": "more fields than the header"}
        else:
            yield start, record
        start = reader.line_num + 1


def _read_jsonl(handle: Any) -> Iterator[Row]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, {"error": f"invalid JSON ({exc.msg})"}
            continue
        yield number, record if isinstance(record, dict) else {"error": "not a JSON object"}


def _read_rows(path: Path, fmt: str) -> list[Row]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return list(_read_csv(handle) if fmt == "csv" else _read_jsonl(handle))
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFormatError(f"{path}: not a readable UTF-8 {fmt} file ({exc})") from exc


def _problem(record: dict[str, Any], task: str, tasks: dict[str, Task | None], db: sqlite_utils.Database) -> str | None:
    if "error" in record:
        return str(record["error"])
    text, label, row_task = record.get("text"), record.get("label"), record.get("task") or task
    if not isinstance(text, str) or not text.strip():
        return "empty text"
    if not isinstance(row_task, str):
        return f"unknown task {row_task!r}"
    known = tasks[row_task] if row_task in tasks else tasks.setdefault(row_task, get_task(db, row_task))
    if known is None:
        return f"unknown task {row_task!r}"
    if not isinstance(label, str) or _todays_label(db, known, label) is None:
        return f"label {label!r} is not a label of task {row_task!r}"
    return None


def _todays_label(db: sqlite_utils.Database, task: Task, label: str) -> str | None:
    """`label` as the task calls it today: a name renamed or merged away maps to its new name
    (retired and unknown names are None)."""
    if label in task.labels:
        return label
    now = changed_in_slack(db, task.name).get(label)
    return now if now in task.labels else None


def _validated_rows(db: sqlite_utils.Database, source: Path, task: str, fmt: str | None) -> list[Row]:
    """Every row of the file, or an ImportFormatError naming the bad rows by line number."""
    records = _read_rows(source, _format_of(source, fmt))
    tasks: dict[str, Task | None] = {}
    bad = [f"line {n}: {p}" for n, r in records if (p := _problem(r, task, tasks, db)) is not None]
    if bad:
        more = f"; and {len(bad) - MAX_REPORTED_ROWS} more" if len(bad) > MAX_REPORTED_ROWS else ""
        raise ImportFormatError(
            f"{source}: {len(bad)} bad rows, nothing imported: {'; '.join(bad[:MAX_REPORTED_ROWS])}{more}"
        )
    return records


def text_sha256(text: str) -> str:
    """The hash that names a text everywhere it must be found again (imports, deletion list).

    Same definition as camel's `text_digest` (camel and storage never import each other)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _already_imported(db: sqlite_utils.Database) -> set[tuple[str, str, str]]:
    """(text, task, label) of every live imported correction, whichever file it came from."""
    found = rows(
        db,
        """SELECT m.text, c.task, c.label FROM corrections AS c JOIN messages AS m ON m.id = c.message_id
           WHERE c.source = 'import' AND c.withdrawn_at IS NULL AND m.workspace = ?""",
        (IMPORT_WORKSPACE,),
    )
    return {(r["text"], r["task"], r["label"]) for r in found}


def _imported_messages(db: sqlite_utils.Database) -> dict[str, int]:
    """text -> id of the first imported message with that text."""
    found: dict[str, int] = {}
    for r in rows(
        db, "SELECT id, text FROM messages WHERE workspace = ? AND text != '' ORDER BY id", (IMPORT_WORKSPACE,)
    ):
        found.setdefault(r["text"], int(r["id"]))
    return found


def _new_import_message(conn: Any, file_name: str, line: int, text: str, digest: str, now: str) -> int:
    ts = f"{line:07d}-{digest[:12]}"
    conn.execute(
        """INSERT INTO messages (workspace, channel, ts, user, text, received_at)
           VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (workspace, channel, ts) DO NOTHING""",
        (IMPORT_WORKSPACE, file_name, ts, text, now),
    )
    message_id = int(
        conn.execute(
            "SELECT id FROM messages WHERE workspace = ? AND channel = ? AND ts = ?", (IMPORT_WORKSPACE, file_name, ts)
        ).fetchone()[0]
    )
    # The same key with its text erased (a purge): the import brings the text back.
    conn.execute("UPDATE messages SET text = ? WHERE id = ? AND text = ''", (text, message_id))
    return message_id


def import_file(
    db: sqlite_utils.Database,
    path: str | Path,
    *,
    task: str,
    fmt: str | None = None,
    user: str = "import",
    actor: str | None = None,
) -> ImportReport:
    """Import every row of a labelled file or none of them; rows already imported add nothing.

    An empty or header-only file is an ImportFormatError. With `actor`, the audit row is written
    in the import's own transaction, so there is never an import without its audit row."""
    source = Path(path)
    require_task(db, task)
    records = _validated_rows(db, source, task, fmt)
    if not records:
        raise ImportFormatError(f"{source}: no rows to import (the file is empty or has only a header)")
    now = utc_now()
    new = 0
    renamed: dict[str, str] = {}
    with transaction(db) as conn:
        seen = _already_imported(db)
        messages = _imported_messages(db)
        known: dict[str, Task] = {}
        for number, record in records:
            text, named = record["text"], record["label"]
            row_task = record.get("task") or task
            label = _todays_label(db, known.setdefault(row_task, require_task(db, row_task)), named) or named
            if label != named:
                renamed[named] = label
            identity = (text, row_task, label)
            if identity in seen:
                continue
            seen.add(identity)
            message_id = messages.get(text)
            if message_id is None:
                message_id = _new_import_message(conn, source.name, number, text, text_sha256(text), now)
                messages[text] = message_id
            conn.execute(
                """INSERT INTO corrections (message_id, task, label, source, user, is_admin, created_at)
                   VALUES (?, ?, ?, 'import', ?, 0, ?)""",
                (message_id, row_task, label, user, now),
            )
            new += 1
        report = ImportReport(
            path=str(source), task=task, rows=len(records), new=new, duplicates=len(records) - new, renamed=renamed
        )
        if actor is not None:
            audit(
                db,
                actor=actor,
                action="import",
                detail={
                    "path": str(source),
                    "task": task,
                    "rows": report.rows,
                    "new": report.new,
                    **({"renamed": renamed} if renamed else {}),  # old label names the file used
                },
            )
    return report


def import_labelled(
    db: sqlite_utils.Database, path: str | Path, *, task: str, fmt: str | None = None, user: str = "import"
) -> int:
    """`import_file` without an audit row; returns how many rows were new."""
    return import_file(db, path, task=task, fmt=fmt, user=user).new


def _write_atomically(path: Path, fmt: str, fields: tuple[str, ...], records: list[dict[str, Any]]) -> int:
    """Write to a temporary file and rename it, so a failed export never leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        make_private_dirs(path.parent)
        make_private_file(temporary)  # 0600 before any row is in it, whatever the umask
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            if fmt == "csv":
                writer = csv.DictWriter(handle, fieldnames=fields, quoting=csv.QUOTE_MINIMAL)
                writer.writeheader()
                writer.writerows(records)
            else:
                handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        os.replace(temporary, path)
    except OSError as exc:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass  # e.g. the "folder" is a file: there is no temporary file to remove
        raise ImportFormatError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(records)


def export_labelled(
    db: sqlite_utils.Database, task: str, path: str | Path, *, fmt: str | None = None, channel: str | None = None
) -> int:
    """Write the task's resolved labels (one row per message); returns the number of rows.

    `channel` keeps only the messages posted in that channel: a task bound to several channels
    (private ones among them) must not hand one channel's text to the people of another.
    """
    target = Path(path)
    chosen = _format_of(target, fmt)
    if get_task(db, task) is None:
        raise UnknownTaskError(f"unknown task {task!r}")
    labelled = resolve_labels(db, task).labelled
    if channel is not None:
        inside = {int(r["id"]) for r in rows(db, "SELECT id FROM messages WHERE channel = ?", (channel,))}
        labelled = [m for m in labelled if m.message_id in inside]
    records = [{"text": m.text, "label": m.label, "task": task} for m in labelled]
    return _write_atomically(target, chosen, ("text", "label", "task"), records)


def export_corrections(db: sqlite_utils.Database, path: str | Path, *, fmt: str | None = None) -> int:
    """Write every correction ever made, withdrawn ones included, oldest first."""
    target = Path(path)
    chosen = _format_of(target, fmt)
    found = rows(
        db,
        """SELECT c.id, c.created_at, c.withdrawn_at, c.task, c.message_id, m.workspace, m.channel,
                  m.ts, c.user, c.is_admin, c.source, c.label
           FROM corrections AS c JOIN messages AS m ON m.id = c.message_id ORDER BY c.id""",
    )
    return _write_atomically(target, chosen, CORRECTION_FIELDS, [dict(r) for r in found])
