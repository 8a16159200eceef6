"""Waiting in tests for something another thread or process does."""

from __future__ import annotations

import time
from typing import Any, Callable


def wait_until(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """The first truthy `check()`, polled every 20 ms; the timeout is generous (a busy machine),
    and only bounds a wait that would otherwise never end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout}s")
