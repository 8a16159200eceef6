"""camel-bot's SQLite store: plain functions over a `sqlite_utils.Database`.

No torch and no Slack here. Open with `open_store(path)`; every other function takes the
database first. Failures raise `StorageError` subclasses with one-line messages.
"""

from storage.adapters import (
    activate_adapter, get_adapter, list_adapters, next_version, register_adapter, set_adapter_status,
)
from storage.corrections import add_correction, count_user_corrections_since, withdraw_correction
from storage.db import checkpoint_wal, database_path, open_store, quick_check, require_healthy, schema_version, transaction
from storage.errors import (
    ChannelBoundError, CorruptDatabaseError, DatabaseWriteError, ImportFormatError, InvalidValueError, SchemaTooNewError, StorageError,
    UnknownAdapterError, UnknownLabelError, UnknownMessageError, UnknownRunError, UnknownTaskError,
)
from storage.files import loose_permissions, make_private, make_private_dirs, secrets_file_warning, unwritable_paths
from storage.events import audit, claim_event, list_audit
from storage.lifecycle import (
    channel_pause, list_channel_pauses, list_workspace_stops, pause_channel, resume_channel,
    resume_workspace, stop_workspace, workspace_stop,
)
from storage.inbox import (
    claim_next, count_unfinished, enqueue_event, finish, outcomes, probe_write, purge_done, release_claims,
    requeue,
)
from storage.live import live_accuracy
from storage.messages import (
    find_message, find_prediction_by_reply, forget_message, get_message, latest_prediction, recent_texts,
    record_message, record_prediction, set_prediction_reply, storable_text, update_message_text,
)
from storage.migrations import SCHEMA_VERSION
from storage.deletions import deleted_text_hashes, deletion_version
from storage.privacy import delete_user_data, erase_user, purge_unlabelled, purge_unlabelled_text
from storage.records import (
    AdapterVersion, AuditEntry, ChannelPause, DeletionReport, Dispute, ImportReport, InboxItem, LabelledMessage,
    Message, Resolution, ReviewCandidate, StoredPrediction, Task, TrainingRun, WorkspaceStop,
)
from storage.rounds import Reconciliation, finish_round, reconcile_task, record_fallback
from storage.retention import (
    RetentionReport, adapter_versions_to_prune, apply_retention, delete_old_predictions, expired_runs,
    mark_adapter_pruned, pruned_versions,
)
from storage.review import (
    ask_candidates, asked_since, confused_pairs_since, count_review_scores, delete_review_scores,
    disputed_in_channel, coverage_by_version, record_ask, review_candidates, review_scores_version,
    store_review_scores,
    unlabelled_messages,
)
from storage.resolution import count_new_labels_since, resolve_labels, split_for
from storage.runs import finish_run, get_run, last_run, list_runs, start_run
from storage.tasks import (
    add_labels, bind_channel, config_seed, get_task, list_tasks, set_config_seed, set_description,
    set_out_of_scope_label, task_for_channel, upsert_task,
)
from storage.transfer import export_corrections, export_labelled, import_file, import_labelled, text_sha256

__all__ = [
    "ReviewCandidate", "ask_candidates", "asked_since", "confused_pairs_since", "delete_review_scores", "disputed_in_channel", "count_review_scores", "coverage_by_version", "record_ask",
    "review_candidates", "review_scores_version", "set_out_of_scope_label", "store_review_scores", "unlabelled_messages",
    "AdapterVersion", "AuditEntry", "RetentionReport", "adapter_versions_to_prune", "apply_retention",
    "delete_old_predictions", "expired_runs", "mark_adapter_pruned", "pruned_versions", "loose_permissions",
    "unwritable_paths", "make_private", "make_private_dirs", "secrets_file_warning", "DeletionReport",
    "checkpoint_wal", "deleted_text_hashes", "deletion_version", "erase_user", "purge_unlabelled", "ImportReport",
    "import_file", "text_sha256", "CorruptDatabaseError", "DatabaseWriteError", "database_path", "quick_check",
    "require_healthy", "Reconciliation", "finish_round", "reconcile_task", "record_fallback", "ChannelBoundError",
    "Dispute", "ImportFormatError",
    "InboxItem", "claim_next", "count_unfinished", "enqueue_event", "finish", "outcomes", "probe_write",
    "purge_done", "release_claims", "requeue",
    "InvalidValueError", "LabelledMessage", "Message", "Resolution", "StoredPrediction",
    "SCHEMA_VERSION", "SchemaTooNewError", "StorageError", "Task", "TrainingRun",
    "UnknownAdapterError", "UnknownLabelError", "UnknownMessageError", "UnknownRunError",
    "UnknownTaskError", "activate_adapter", "add_correction", "add_labels", "audit",
    "bind_channel", "claim_event", "count_new_labels_since", "count_user_corrections_since",
    "delete_user_data", "export_corrections", "export_labelled", "finish_run", "find_message",
    "find_prediction_by_reply", "get_adapter", "get_message", "get_run", "get_task", "import_labelled",
    "last_run", "latest_prediction", "list_adapters", "list_audit", "list_runs", "list_tasks",
    "live_accuracy", "next_version", "open_store", "purge_unlabelled_text", "record_message",
    "record_prediction", "register_adapter", "resolve_labels", "schema_version",
    "set_adapter_status", "set_prediction_reply", "split_for", "start_run", "task_for_channel",
    "transaction", "upsert_task", "withdraw_correction",
    # deletions and edits, the app's life in a workspace (issue 10)
    "ChannelPause", "WorkspaceStop", "channel_pause", "forget_message", "list_channel_pauses",
    "list_workspace_stops", "pause_channel", "resume_channel", "resume_workspace", "stop_workspace",
    "storable_text", "update_message_text", "workspace_stop",
    "set_description", "config_seed", "set_config_seed", "recent_texts",
]
