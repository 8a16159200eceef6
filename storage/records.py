"""The rows that storage functions return, and the values some of them take, as frozen dataclasses.

Times are ISO-8601 UTC strings (e.g. "2026-11-28T11:17:41.123456+00:00"), exactly as stored,
so records serialise to JSON without conversion and compare correctly as strings.

`TaskSpec`, `NewAdapterVersion` and `RoundEnd` are what a caller hands to one write (a task to
create or update, a version to register, a round's end): one value instead of nine to twelve
keyword arguments, so the values travel together and each one is named once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    labels: list[str]
    emoji_map: dict[str, str]
    channels: list[str]
    abstain_threshold: float
    quiet: bool
    active_version: int | None
    # The precision the calibrated threshold aims for, and the label meaning "none of the others".
    target_precision: float = 0.9
    out_of_scope_label: str | None = None
    descriptions: dict[str, str] = field(default_factory=dict)  # label -> one line (labels without one are absent)
    # Who may create a label from Slack: "admins", "members", or "propose" (an admin approves).
    new_labels: str = "propose"


@dataclass(frozen=True)
class Message:
    id: int
    workspace: str
    channel: str
    ts: str
    thread_ts: str | None
    user: str | None
    text: str
    received_at: str
    deleted_at: str | None = None  # set when the message was deleted in Slack (text blanked)


@dataclass(frozen=True)
class StoredPrediction:
    id: int
    message_id: int
    task: str
    adapter_version: int | None
    label: str
    confidence: float
    top3: list[tuple[str, float]]
    latency_ms: float
    abstained: bool
    created_at: str
    reply_channel: str | None
    reply_ts: str | None


@dataclass(frozen=True)
class NewPrediction:
    """What `storage.messages.record_prediction` stores (adapter_version None: a zero-shot guess)."""

    message_id: int
    task: str
    adapter_version: int | None
    label: str
    confidence: float
    top3: list[tuple[str, float]]
    latency_ms: float
    abstained: bool = False


@dataclass(frozen=True)
class LabelledMessage:
    message_id: int
    text: str
    label: str
    split: str
    resolved_at: str


@dataclass(frozen=True)
class Dispute:
    """A message whose users disagree (or rejected the bot), for review by an admin."""

    message_id: int
    text: str
    label: str | None
    votes: dict[str, float]
    rejections: int


@dataclass(frozen=True)
class Resolution:
    labelled: list[LabelledMessage] = field(default_factory=list)
    disputed: list[Dispute] = field(default_factory=list)


@dataclass(frozen=True)
class AdapterVersion:
    task: str
    version: int
    path: str
    parent_version: int | None
    run_id: int | None
    metrics: dict[str, Any]
    status: str
    reason: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class TrainingRun:
    id: int
    task: str
    trigger: str
    started_at: str
    finished_at: str | None
    outcome: str | None
    n_train: int
    n_heldout: int
    n_new: int
    version: int | None
    error: str | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class ImportReport:
    """What an import did: rows in the file, how many were new, how many were already stored."""

    path: str
    task: str
    rows: int
    new: int
    duplicates: int
    # labels the file names by an old name (renamed or merged in Slack) -> the name they were stored under
    renamed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeletionReport:
    """What an erasure removed. `text_hashes` are the hashes newly put on the deletion list: the
    bot passes them to the feature cache (`FeatureCache.forget`); `cache_keys` is their count."""

    messages: int
    predictions: int
    corrections: int
    text_hashes: list[str]
    checkpointed: bool
    user: str | None = None
    inbox: int = 0  # acknowledged events that still held the text, deleted from the inbox

    @property
    def cache_keys(self) -> int:
        return len(self.text_hashes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "messages": self.messages,
            "predictions": self.predictions,
            "corrections": self.corrections,
            "cache_keys": self.cache_keys,
            "checkpointed": self.checkpointed,
            "inbox": self.inbox,
        }


@dataclass(frozen=True)
class WorkspaceStop:
    """A workspace that uninstalled the app or revoked its tokens: no work is done for it."""

    workspace: str
    reason: str
    stopped_at: str


@dataclass(frozen=True)
class ChannelPause:
    """A bound channel the bot was removed from, or that was archived: its binding is paused."""

    channel: str
    task: str | None
    reason: str
    paused_at: str


@dataclass(frozen=True)
class InboxItem:
    """One acknowledged Slack event waiting in (or taken from) the durable inbox."""

    id: int
    event_id: str
    kind: str
    channel: str | None
    body: str
    received_at: str
    attempts: int


@dataclass(frozen=True)
class ReviewCandidate:
    """A scored unlabelled message for `/camel review`: how useful a label on it would be.

    score: the serving version's uncertainty (higher = ask sooner); top3: calibrated guesses;
    embedding: the base's pooled embedding (float32 bytes) for diversity among picks."""

    message_id: int
    channel: str
    ts: str
    workspace: str
    text: str
    adapter_version: int
    score: float
    top3: list[tuple[str, float]]
    embedding: bytes


@dataclass(frozen=True)
class TaskSpec:
    """A task as `storage.tasks.upsert_task` creates or updates it. `labels` are added to the stored
    ones (labels are never dropped); None for emoji_map, channels, descriptions or out_of_scope_label
    keeps the stored value (an out-of-scope label set in Slack survives a restart with none configured)."""

    name: str
    _: KW_ONLY
    labels: Sequence[str]
    kind: str = "other"
    emoji_map: dict[str, str] | None = None
    channels: Sequence[str] | None = None
    abstain_threshold: float = 0.5
    quiet: bool = False
    target_precision: float = 0.9
    out_of_scope_label: str | None = None
    descriptions: dict[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class NewAdapterVersion:
    """An adapter version for `storage.adapters.register_adapter`: the folder a round published."""

    task: str
    version: int
    path: str
    parent_version: int | None
    run_id: int | None
    metrics: dict[str, Any]
    status: str = "candidate"
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RoundEnd:
    """How a training round ended, for `storage.rounds.finish_round`. "promoted" and "rejected"
    carry the version they published (`version`, `path`, its parent and metrics); "skipped" and
    "failed" carry none."""

    outcome: str
    version: int | None = None
    path: str | None = None
    parent_version: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    n_train: int = 0
    n_heldout: int = 0
    n_new: int = 0
    error: str | None = None
