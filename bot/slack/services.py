"""What listeners need, in one object that middleware attaches to Bolt's `context`.

The loop and the registry appear here only as protocols, so `bot.slack` never imports `bot.loop`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlite_utils import Database

import camel
import storage
from bot.metrics import BotMetrics
from bot.settings import Settings
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

    def get(self, task: str) -> camel.Predictor | None: ...
    def version(self, task: str) -> int | None: ...
    def guess(self, task: storage.Task, text: str) -> ZeroShotGuess | None: ...


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


@dataclass(eq=False)
class Services:
    settings: Settings
    db: Database  # from storage.open_store
    predictors: Predictors
    learning: Learning | None = None
    metrics: BotMetrics = field(default_factory=BotMetrics)
    admins: AdminDirectory = field(init=False)

    def __post_init__(self) -> None:
        self.admins = AdminDirectory(self.settings.admins, self.settings.admin_usergroup)

    def __deepcopy__(self, memo: dict[int, Any]) -> "Services":
        # Bolt deep-copies the context for lazy listeners; services are shared, not copied.
        return self

    def is_admin(self, user: str, client: WebClient | None) -> bool:
        return self.admins.is_admin(user, client)
