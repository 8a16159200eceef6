"""camel-bot's SQLite store: plain functions over a `sqlite_utils.Database`, one module per kind of record.

No torch and no Slack here. Open with `storage.open_store(path)`; every other function takes the
database first and is called through the module that owns it (`storage.messages.record_message`,
`storage.tasks.get_task`), so a reader sees where it lives. The top level keeps only what every
caller needs: `open_store`, the record types and the errors (one-line `StorageError` subclasses).
"""

from storage import (
    adapters as adapters,
    corrections as corrections,
    db as db,
    deletions as deletions,
    errors as errors,
    events as events,
    files as files,
    inbox as inbox,
    labels as labels,
    lifecycle as lifecycle,
    live as live,
    memory as memory,
    messages as messages,
    migrations as migrations,
    notices as notices,
    privacy as privacy,
    records as records,
    resolution as resolution,
    retention as retention,
    review as review,
    rounds as rounds,
    runs as runs,
    tasks as tasks,
    transfer as transfer,
)
from storage.db import open_store as open_store
from storage.migrations import SCHEMA_VERSION as SCHEMA_VERSION
from storage.errors import (
    ChannelBoundError as ChannelBoundError,
    CorruptDatabaseError as CorruptDatabaseError,
    DatabaseWriteError as DatabaseWriteError,
    ImportFormatError as ImportFormatError,
    InvalidValueError as InvalidValueError,
    SchemaTooNewError as SchemaTooNewError,
    StorageError as StorageError,
    UnknownAdapterError as UnknownAdapterError,
    UnknownLabelError as UnknownLabelError,
    UnknownMessageError as UnknownMessageError,
    UnknownRunError as UnknownRunError,
    UnknownTaskError as UnknownTaskError,
)
from storage.records import (
    AdapterVersion as AdapterVersion,
    AuditEntry as AuditEntry,
    ChannelPause as ChannelPause,
    DeletionReport as DeletionReport,
    Dispute as Dispute,
    ImportReport as ImportReport,
    InboxItem as InboxItem,
    KeyLabel as KeyLabel,
    LabelledMessage as LabelledMessage,
    Message as Message,
    MessageVerdict as MessageVerdict,
    NewPrediction as NewPrediction,
    NewAdapterVersion as NewAdapterVersion,
    Resolution as Resolution,
    ReviewCandidate as ReviewCandidate,
    RoundEnd as RoundEnd,
    StoredPrediction as StoredPrediction,
    Task as Task,
    TaskSpec as TaskSpec,
    TrainingRun as TrainingRun,
    WorkspaceStop as WorkspaceStop,
)
