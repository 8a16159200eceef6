"""The app's life in a workspace: workspaces that stopped it, channels whose binding is paused.

A workspace that uninstalled the app or revoked its tokens is stopped: nothing more is stored,
answered or posted for it, until it installs the app again. A bound channel the bot was removed
from, or that was archived, keeps its binding but is paused until the bot is back in it. Every
change is audited.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from storage.db import one, rows, transaction, utc_now
from storage.errors import InvalidValueError
from storage.events import audit
from storage.records import ChannelPause, WorkspaceStop
from storage.tasks import task_for_channel


def stop_workspace(db: sqlite_utils.Database, workspace: str, *, reason: str, actor: str) -> bool:
    """Record that `workspace` stopped the app; False if it was already stopped (first reason kept)."""
    if not workspace or not reason:
        raise InvalidValueError("stopping a workspace needs its id and a reason")
    with transaction(db) as conn:
        inserted = conn.execute(
            "INSERT OR IGNORE INTO workspace_stops (workspace, reason, stopped_at) VALUES (?, ?, ?)",
            (workspace, reason, utc_now()),
        ).rowcount
        if inserted:
            audit(db, actor=actor, action="workspace_stopped", detail={"workspace": workspace, "reason": reason})
    return bool(inserted)


def resume_workspace(db: sqlite_utils.Database, workspace: str, *, actor: str) -> bool:
    """The app works for `workspace` again (it was installed again); False if it was not stopped."""
    with transaction(db) as conn:
        deleted = conn.execute("DELETE FROM workspace_stops WHERE workspace = ?", (workspace,)).rowcount
        if deleted:
            audit(db, actor=actor, action="workspace_resumed", detail={"workspace": workspace})
    return bool(deleted)


def _stop_from_row(row: sqlite3.Row) -> WorkspaceStop:
    return WorkspaceStop(row["workspace"], row["reason"], row["stopped_at"])


def workspace_stop(db: sqlite_utils.Database, workspace: str) -> WorkspaceStop | None:
    row = one(db, "SELECT * FROM workspace_stops WHERE workspace = ?", (workspace,))
    return _stop_from_row(row) if row else None


def list_workspace_stops(db: sqlite_utils.Database) -> list[WorkspaceStop]:
    return [_stop_from_row(r) for r in rows(db, "SELECT * FROM workspace_stops ORDER BY stopped_at")]


def pause_channel(db: sqlite_utils.Database, channel: str, *, reason: str, actor: str) -> ChannelPause | None:
    """Pause the binding of a bound channel; None if no task is bound to it. Idempotent."""
    if not channel or not reason:
        raise InvalidValueError("pausing a channel needs its id and a reason")
    with transaction(db) as conn:
        task = task_for_channel(db, channel)
        if task is None:
            return None
        inserted = conn.execute(
            "INSERT OR IGNORE INTO channel_pauses (channel, task, reason, paused_at) VALUES (?, ?, ?, ?)",
            (channel, task.name, reason, utc_now()),
        ).rowcount
        if inserted:
            audit(
                db,
                actor=actor,
                action="channel_paused",
                detail={"channel": channel, "task": task.name, "reason": reason},
            )
        return channel_pause(db, channel)


def resume_channel(db: sqlite_utils.Database, channel: str, *, actor: str) -> bool:
    """Un-pause a channel's binding; False if it was not paused."""
    with transaction(db) as conn:
        deleted = conn.execute("DELETE FROM channel_pauses WHERE channel = ?", (channel,)).rowcount
        if deleted:
            audit(db, actor=actor, action="channel_resumed", detail={"channel": channel})
    return bool(deleted)


def channel_pause(db: sqlite_utils.Database, channel: str) -> ChannelPause | None:
    row = one(db, "SELECT * FROM channel_pauses WHERE channel = ?", (channel,))
    return ChannelPause(row["channel"], row["task"], row["reason"], row["paused_at"]) if row else None


def list_channel_pauses(db: sqlite_utils.Database) -> list[ChannelPause]:
    return [
        ChannelPause(r["channel"], r["task"], r["reason"], r["paused_at"])
        for r in rows(db, "SELECT * FROM channel_pauses ORDER BY paused_at")
    ]
