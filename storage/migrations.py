"""Numbered schema migrations: MIGRATIONS[i] takes the schema from version i to i + 1.

The version lives in `PRAGMA user_version`, set in the same transaction as the migration,
so a crash mid-migration leaves the previous version intact. Never edit a released
migration; append a new one. Statements run one by one because `executescript` would commit
the surrounding transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_V1_STATEMENTS = (
    """CREATE TABLE tasks (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('intent', 'sentiment', 'other')),
        labels TEXT NOT NULL,
        emoji_map TEXT NOT NULL DEFAULT '{}',
        channels TEXT NOT NULL DEFAULT '[]',
        abstain_threshold REAL NOT NULL DEFAULT 0.5,
        quiet INTEGER NOT NULL DEFAULT 0,
        active_version INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        workspace TEXT NOT NULL,
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        thread_ts TEXT,
        user TEXT,
        text TEXT NOT NULL,
        received_at TEXT NOT NULL,
        UNIQUE (workspace, channel, ts)
    )""",
    "CREATE INDEX messages_user ON messages (user)",
    "CREATE INDEX messages_received_at ON messages (received_at)",
    """CREATE TABLE predictions (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        task TEXT NOT NULL REFERENCES tasks (name),
        adapter_version INTEGER,
        label TEXT NOT NULL,
        confidence REAL NOT NULL,
        top3 TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        abstained INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        reply_channel TEXT,
        reply_ts TEXT
    )""",
    "CREATE INDEX predictions_message_task ON predictions (message_id, task)",
    "CREATE INDEX predictions_task_created ON predictions (task, created_at)",
    "CREATE INDEX predictions_reply ON predictions (reply_channel, reply_ts)",
    """CREATE TABLE corrections (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        task TEXT NOT NULL REFERENCES tasks (name),
        label TEXT,
        source TEXT NOT NULL CHECK (source IN
            ('reaction', 'menu', 'command', 'import', 'confirm', 'reject')),
        user TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        withdrawn_at TEXT
    )""",
    "CREATE INDEX corrections_task_message_user ON corrections (task, message_id, user, id)",
    "CREATE INDEX corrections_user_created ON corrections (user, created_at)",
    "CREATE INDEX corrections_message ON corrections (message_id)",
    """CREATE TABLE adapters (
        task TEXT NOT NULL REFERENCES tasks (name),
        version INTEGER NOT NULL,
        path TEXT NOT NULL,
        parent_version INTEGER,
        run_id INTEGER REFERENCES runs (id),
        metrics TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'rejected', 'retired')),
        reason TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (task, version)
    )""",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        task TEXT NOT NULL REFERENCES tasks (name),
        trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'threshold', 'manual')),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        outcome TEXT,
        n_train INTEGER NOT NULL DEFAULT 0,
        n_heldout INTEGER NOT NULL DEFAULT 0,
        n_new INTEGER NOT NULL DEFAULT 0,
        version INTEGER,
        error TEXT
    )""",
    "CREATE INDEX runs_task ON runs (task, id)",
    """CREATE TABLE processed_events (
        event_id TEXT PRIMARY KEY,
        claimed_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    "CREATE INDEX processed_events_expires ON processed_events (expires_at)",
    """CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT
    )""",
)


def _v1_initial_schema(conn: sqlite3.Connection) -> None:
    for statement in _V1_STATEMENTS:
        conn.execute(statement)


def _v2_deletion_list(conn: sqlite3.Connection) -> None:
    """Hashes (never text) of deleted texts, so caches of derived data (the feature cache's
    hidden states) can drop them; `id` only grows, so readers poll MAX(id) as a version."""
    conn.execute(
        """CREATE TABLE deleted_texts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            text_sha256 TEXT NOT NULL UNIQUE CHECK (length(text_sha256) = 64),
            deleted_at TEXT NOT NULL,
            reason TEXT NOT NULL
        )"""
    )


def _v3_pruned_adapters(conn: sqlite3.Connection) -> None:
    """When a version's folder was removed by retention (the record stays, for history)."""
    conn.execute("ALTER TABLE adapters ADD COLUMN pruned_at TEXT")


_V4_STATEMENTS = (
    # A message deleted in Slack keeps its row as a tombstone (text blanked, deleted_at set), so
    # a late redelivery of the original event cannot store its text again.
    "ALTER TABLE messages ADD COLUMN deleted_at TEXT",
    # A workspace that uninstalled the app or revoked its token: no work is done for it.
    """CREATE TABLE workspace_stops (
        workspace TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        stopped_at TEXT NOT NULL
    )""",
    # A bound channel the bot was removed from or that was archived: the binding is kept, paused.
    """CREATE TABLE channel_pauses (
        channel TEXT PRIMARY KEY,
        task TEXT,
        reason TEXT NOT NULL,
        paused_at TEXT NOT NULL
    )""",
)


def _v4_deletions_and_app_life(conn: sqlite3.Connection) -> None:
    for statement in _V4_STATEMENTS:
        conn.execute(statement)


def _v5_inbox(conn: sqlite3.Connection) -> None:
    """The durable inbox: a Slack event is one row here before its HTTP 200.

    `event_id` is unique: the row is also the de-duplication mark (replacing processed_events
    for events). `body` holds the event until it is handled, then is blanked; `user` lets the
    privacy functions find rows that still hold someone's text.
    """
    conn.execute(
        """CREATE TABLE inbox (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            channel TEXT,
            user TEXT,
            body TEXT NOT NULL,
            received_at TEXT NOT NULL,
            not_before TEXT NOT NULL,
            claimed_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            done_at TEXT,
            outcome TEXT
        )"""
    )
    conn.execute("CREATE INDEX inbox_due ON inbox (done_at, claimed_at, not_before)")
    conn.execute("CREATE INDEX inbox_user ON inbox (user)")
    conn.execute("CREATE INDEX inbox_received ON inbox (received_at)")


_V6_CORRECTIONS = """CREATE TABLE corrections_v6 (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        task TEXT NOT NULL REFERENCES tasks (name),
        label TEXT,
        source TEXT NOT NULL CHECK (source IN
            ('reaction', 'menu', 'command', 'import', 'confirm', 'reject', 'review', 'ask')),
        user TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        withdrawn_at TEXT
    )"""


def _v6_asking(conn: sqlite3.Connection) -> None:
    """Asking for labels: per-task target precision and out-of-scope label; corrections from `/camel
    review` ("review") and from the bot's questions in threads ("ask"); stored review scores
    and the questions asked, both deleted with their message (ON DELETE CASCADE)."""
    conn.execute("ALTER TABLE tasks ADD COLUMN target_precision REAL NOT NULL DEFAULT 0.9")
    conn.execute("ALTER TABLE tasks ADD COLUMN out_of_scope_label TEXT")
    # SQLite cannot change a CHECK constraint in place: copy into a new table (ids kept).
    conn.execute(_V6_CORRECTIONS)
    conn.execute(
        "INSERT INTO corrections_v6 SELECT id, message_id, task, label, source, user, is_admin, "
        "created_at, withdrawn_at FROM corrections"
    )
    conn.execute("DROP TABLE corrections")
    conn.execute("ALTER TABLE corrections_v6 RENAME TO corrections")
    conn.execute("CREATE INDEX corrections_task_message_user ON corrections (task, message_id, user, id)")
    conn.execute("CREATE INDEX corrections_user_created ON corrections (user, created_at)")
    conn.execute("CREATE INDEX corrections_message ON corrections (message_id)")
    conn.execute(
        """CREATE TABLE review_scores (
            task TEXT NOT NULL REFERENCES tasks (name),
            message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            adapter_version INTEGER NOT NULL,
            score REAL NOT NULL,
            top3 TEXT NOT NULL,
            embedding BLOB NOT NULL,
            computed_at TEXT NOT NULL,
            PRIMARY KEY (task, message_id)
        )"""
    )
    conn.execute("CREATE INDEX review_scores_task_score ON review_scores (task, score DESC)")
    conn.execute("CREATE INDEX review_scores_message ON review_scores (message_id)")
    conn.execute(
        """CREATE TABLE asked (
            task TEXT NOT NULL REFERENCES tasks (name),
            message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            channel TEXT NOT NULL,
            asked_at TEXT NOT NULL,
            PRIMARY KEY (task, message_id)
        )"""
    )
    conn.execute("CREATE INDEX asked_channel_at ON asked (channel, asked_at)")


def _v7_label_descriptions(conn: sqlite3.Connection) -> None:
    """A one-line description per label (zero-shot prototypes, the label-name prior), and the
    task's fields as the settings file last gave them (`config_seed`, JSON; NULL = never
    recorded), so a start can tell a value changed in Slack from one changed in the file."""
    conn.execute("ALTER TABLE tasks ADD COLUMN descriptions TEXT NOT NULL DEFAULT '{}'")
    conn.execute("ALTER TABLE tasks ADD COLUMN config_seed TEXT")


def _v8_one_event_mark(conn: sqlite3.Connection) -> None:
    """Every Slack event now goes through the inbox, whose unique event id is the de-duplication
    mark; processed_events, the mark of events that bypassed the inbox, has no reader left (its
    index goes with it)."""
    conn.execute("DROP TABLE IF EXISTS processed_events")


def _v9_admin_notices(conn: sqlite3.Connection) -> None:
    """Direct messages to admins that must be sent once per task and channel (e.g. that the base
    model cannot read a channel), remembered so a restart or the next hourly check does not repeat them.
    IF NOT EXISTS: a database set back to an older version by hand still holds the table."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS admin_notices (
            kind TEXT NOT NULL,
            task TEXT NOT NULL,
            channel TEXT NOT NULL,
            detail TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (kind, task, channel)
        )"""
    )


def _v10_evolving_labels(conn: sqlite3.Connection) -> None:
    """Labels that change in Slack: every add, rename, merge, retire and unretire (who, when, the
    names before and after), retired labels with what they had (description, emoji), members'
    proposed labels waiting for an admin, who may create labels, and a correction's label as it
    was first stored when a rename or merge later moved it (`original_label`).

    Migration 9 above is the lang branch's, word for word (its readers and writers come with
    lang), so that this one is 10 whichever of the two branches reaches main first."""
    conn.execute(
        """CREATE TABLE label_events (
            id INTEGER PRIMARY KEY,
            task TEXT NOT NULL REFERENCES tasks (name),
            kind TEXT NOT NULL CHECK (kind IN ('add', 'rename', 'merge', 'retire', 'unretire')),
            old_name TEXT,
            new_name TEXT,
            actor TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX label_events_task ON label_events (task, id)")
    conn.execute(
        """CREATE TABLE retired_labels (
            task TEXT NOT NULL REFERENCES tasks (name),
            label TEXT NOT NULL,
            description TEXT,
            emoji TEXT NOT NULL DEFAULT '[]',
            retired_at TEXT NOT NULL,
            PRIMARY KEY (task, label)
        )"""
    )
    conn.execute(
        """CREATE TABLE label_proposals (
            id INTEGER PRIMARY KEY,
            task TEXT NOT NULL REFERENCES tasks (name),
            label TEXT NOT NULL,
            description TEXT NOT NULL,
            proposer TEXT NOT NULL,
            message_id INTEGER REFERENCES messages (id) ON DELETE SET NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
            decided_by TEXT,
            decided_at TEXT,
            admin_messages TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX label_proposals_task_status ON label_proposals (task, status)")
    conn.execute("ALTER TABLE corrections ADD COLUMN original_label TEXT")
    conn.execute(
        "ALTER TABLE tasks ADD COLUMN new_labels TEXT NOT NULL DEFAULT 'propose' "
        "CHECK (new_labels IN ('admins', 'members', 'propose'))"
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1_initial_schema,
    _v2_deletion_list,
    _v3_pruned_adapters,
    _v4_deletions_and_app_life,
    _v5_inbox,
    _v6_asking,
    _v7_label_descriptions,
    _v8_one_event_mark,
    _v9_admin_notices,
    _v10_evolving_labels,
]
SCHEMA_VERSION = len(MIGRATIONS)
