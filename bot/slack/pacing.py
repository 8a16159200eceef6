"""Per-channel pacing of the bot's posts: Slack allows about one chat.postMessage a second per channel.

A token bucket per channel: `channel_burst` posts at once, then `channel_posts_per_s`. A post
that must wait is not slept on: `reserve` says how long, and the inbox worker puts the event
back with that not-before time. A 429's Retry-After closes the channel's bucket for that long.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class ChannelPacer:
    def __init__(self, per_s: float = 1.0, burst: int = 3, clock: Callable[[], float] | None = None) -> None:
        self.per_s = per_s
        self.burst = float(burst)
        self.clock = clock or time.monotonic
        self._tokens: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)
        self._held_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, channel: str) -> float:
        """0 and a post is reserved now, or the seconds to wait before asking again."""
        with self._lock:
            now = self.clock()
            held = self._held_until.get(channel, 0.0) - now
            if held > 0:
                return held
            tokens, at = self._tokens.get(channel, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.per_s)
            if tokens >= 1.0:
                self._tokens[channel] = (tokens - 1.0, now)
                return 0.0
            self._tokens[channel] = (tokens, now)
            return (1.0 - tokens) / self.per_s

    def hold(self, channel: str, seconds: float) -> None:
        """Slack said 429: no post in this channel for `seconds`, and the burst is spent."""
        with self._lock:
            now = self.clock()
            self._held_until[channel] = max(self._held_until.get(channel, 0.0), now + seconds)
            self._tokens[channel] = (0.0, now + seconds)
