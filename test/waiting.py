"""Waiting for conditions in tests, with generous deadlines (the suite runs on loaded 2-core
machines, next to other test runs)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(done: Callable[[], object], timeout: float = 30.0, step: float = 0.01) -> bool:
    """Poll ``done`` until it is true or ``timeout`` seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(step)
    return bool(done())
