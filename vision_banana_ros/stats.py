"""Rolling statistics for diagnostics: rates, latency percentiles, counters."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and self._times[0] < now - self.window_s:
                self._times.popleft()
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], 1e-9)
            return len(self._times) / span


class Percentiles:
    """Percentiles of the last ``size`` samples."""

    def __init__(self, size: int = 300) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(value)

    def get(self, *qs: float) -> list[float]:
        with self._lock:
            if not self._values:
                return [float("nan")] * len(qs)
            arr = np.fromiter(self._values, dtype=np.float64)
        return [float(np.percentile(arr, q)) for q in qs]


class ErrorCounter:
    """Counts of input problems by kind, with the last message of each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.last: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, kind: str, message: str) -> None:
        with self._lock:
            self.counts[kind] += 1
            self.last[kind] = message

    def snapshot(self) -> tuple[dict[str, int], dict[str, str]]:
        with self._lock:
            return dict(self.counts), dict(self.last)
