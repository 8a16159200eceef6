"""Who of the loop's own threads is using the store right now, so that `stop()` can wait for them.

The loop shares the bot's one database connection, which its owner (`camel-bot serve`, a test)
closes right after `LearningLoop.stop()`. Round threads outlive a stop: they wait for a child
that may train for minutes. So each piece of work such a thread does on the store runs inside
`StoreUse.using()`: `close()` waits for the pieces under way and refuses new ones with
`LoopStoppedError`. A round still training at the stop leaves its bookkeeping to the next start
(the child records its own end; `LearningLoop.recover` fails runs whose child died).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from bot.errors import LoopStoppedError


class StoreUse:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._users = 0
        self._closed = False

    @contextmanager
    def using(self) -> Iterator[None]:
        """Work on the store; raises LoopStoppedError once `close()` was called."""
        with self._changed:
            if self._closed:
                raise LoopStoppedError("the learning loop is stopped")
            self._users += 1
        try:
            yield
        finally:
            with self._changed:
                self._users -= 1
                self._changed.notify_all()

    def close(self, timeout: float) -> bool:
        """Refuse new work and wait for the work under way; True when it finished in time."""
        with self._changed:
            self._closed = True
            return self._changed.wait_for(lambda: self._users == 0, timeout)
