"""Every storage failure is a `StorageError` with a one-line message the CLI and Slack can show."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by `storage`."""


class SchemaTooNewError(StorageError):
    """The database was written by a newer camel-bot; refusing to touch it."""


class UnknownTaskError(StorageError):
    """No task of that name."""


class UnknownLabelError(StorageError):
    """A label that the task does not have."""


class UnknownMessageError(StorageError):
    """No message with that id."""


class UnknownAdapterError(StorageError):
    """No adapter version with that number for the task."""


class UnknownRunError(StorageError):
    """No training run with that id."""


class InvalidValueError(StorageError):
    """A value outside its allowed set (kind, source, status, trigger, ...)."""


class ChannelBoundError(StorageError):
    """The channel already belongs to another task."""


class ImportFormatError(StorageError):
    """An import or export file that cannot be read or written as asked."""


class CorruptDatabaseError(StorageError):
    """The database file is damaged (quick_check fails, or SQLite reports a malformed image)."""


class DatabaseWriteError(StorageError):
    """The database cannot be written (read-only file or folder, full disk, I/O error, busy)."""
