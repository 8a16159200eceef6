"""What listeners need, in one object that middleware attaches to Bolt's `context`.

The loop and the registry appear here only as protocols, so `bot.slack` never imports `bot.loop`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlite_utils import Database

import storage
from bot.memory import TeamMemory
from bot.metrics import BotMetrics
from bot.serving import Serving
from bot.settings import Settings
from bot.slack.batching import PredictionBatcher
from bot.slack.pacing import ChannelPacer
import camel
from camel.base import BaseEncoder
from camel.zero_shot import ZeroShotGuess

log = logging.getLogger(__name__)
ADMIN_CACHE_S = 300.0  # user-group membership changes rarely; don't ask Slack on every click


class Learning(Protocol):
    """What the Slack surface asks of the learning loop (`bot.loop.LearningLoop` is one)."""

    def note_new_labels(self, task: str) -> bool: ...
    def run_now(self, task: str, actor: str) -> int: ...
    def rollback(self, task: str, version: int | None, actor: str) -> storage.AdapterVersion: ...
    def next_run_time(self, task: str) -> datetime | None: ...


class Predictors(Protocol):
    """Which predictor serves each task (`bot.loop.registry.PredictorRegistry` is one)."""

    def serving(self, task: str) -> Serving | None: ...
    def version(self, task: str) -> int | None: ...
    def guess(self, task: storage.Task, text: str) -> ZeroShotGuess | None: ...
    def base(self) -> BaseEncoder: ...
    def follow_labels(self, db: Database, task: str) -> object: ...
    @property
    def cache(self) -> camel.FeatureCache | None: ...
    def caches(self) -> list[camel.FeatureCache]: ...


class AdminDirectory:
    """Admins are listed user ids plus the members of one user group (cached)."""

    def __init__(self, admins: list[str], usergroup: str, ttl_s: float = ADMIN_CACHE_S) -> None:
        self.admins = set(admins)
        self.usergroup = usergroup
        self.ttl_s = ttl_s
        self._members: set[str] = set()
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def is_admin(self, user: str, client: WebClient | None) -> bool:
        if user in self.admins:
            return True
        if not self.usergroup or client is None:
            return False
        return user in self._group_members(client)

    def everyone(self, client: WebClient | None) -> list[str]:
        """Every admin: the listed ones, then the user group's members."""
        members = self._group_members(client) if self.usergroup and client is not None else set()
        return sorted(self.admins) + sorted(members - self.admins)

    def _group_members(self, client: WebClient) -> set[str]:
        with self._lock:
            if time.monotonic() - self._fetched_at < self.ttl_s:
                return self._members
            try:
                response = client.usergroups_users_list(usergroup=self.usergroup)
                self._members = set(response.get("users") or [])
                self._fetched_at = time.monotonic()
            except SlackApiError as exc:
                # Keep the last known members: a Slack hiccup must not lock admins out.
                log.warning("usergroups.users.list failed: %s", exc.response.get("error"))
            return self._members


class EventPathHealth:
    """Whether acknowledged events can be stored; GET /readyz answers from here.

    Set by the inbox middleware when a write fails (a full disk), cleared by the next write
    that succeeds, or by `probe` (a small real write) when /readyz asks, so the bot turns
    ready by itself once space returns even if no event comes. `failed` is True exactly once
    per outage, so the admins are told once.
    """

    def __init__(self, probe: Callable[[], None] | None = None) -> None:
        self._reason = ""
        self._lock = threading.Lock()
        self.probe = probe

    def failed(self, reason: str) -> bool:
        with self._lock:
            first = not self._reason
            self._reason = reason
            return first

    def recovered(self) -> bool:
        with self._lock:
            was_down = bool(self._reason)
            self._reason = ""
            return was_down

    def not_ready_reason(self) -> str:
        if self._reason and self.probe is not None:
            try:
                self.probe()
            except Exception:
                return self._reason
            if self.recovered():
                log.warning("events can be stored again; the bot is ready")
        return self._reason


@dataclass(eq=False)
class Services:
    settings: Settings
    db: Database  # from storage.open_store
    predictors: Predictors
    learning: Learning | None = None
    metrics: BotMetrics = field(default_factory=BotMetrics)
    admins: AdminDirectory = field(init=False)
    pacer: ChannelPacer = field(init=False)
    # Set when an event lands in the inbox, so an idle inbox worker takes it at once.
    inbox_wakeup: threading.Event = field(default_factory=threading.Event)
    health: EventPathHealth = field(init=False)
    batcher: PredictionBatcher = field(default_factory=PredictionBatcher)
    memory: TeamMemory = field(init=False)  # the team's labels, found again by text
    _bot_user: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.admins = AdminDirectory(self.settings.admins, self.settings.admin_usergroup)
        self.pacer = ChannelPacer(self.settings.channel_posts_per_s, self.settings.channel_burst)
        self.health = EventPathHealth(probe=lambda: storage.inbox.probe_write(self.db))
        self.memory = TeamMemory(
            self.db, admin_weight=self.settings.admin_weight, near_similarity=self.settings.memory_near_similarity
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> "Services":
        # Bolt deep-copies the context for lazy listeners; services are shared, not copied.
        return self

    def is_admin(self, user: str, client: WebClient | None) -> bool:
        return self.admins.is_admin(user, client)

    def bot_user_id(self, client: WebClient) -> str:
        """The bot's own user id, asked of Slack once (auth.test): Bolt's context knows it for a
        request, but inbox handlers run outside Bolt, possibly after a restart."""
        if not self._bot_user:
            self._bot_user = str(client.auth_test().get("user_id") or "")
        return self._bot_user
