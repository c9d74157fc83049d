"""Rolling statistics for diagnostics and reports: rates, latency percentiles, problem counts,
and throttled logging per kind of problem."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable

import numpy as np

#: Percentiles every latency summary reports (node diagnostics, evaluator, live evaluation,
#: benchmarks).
LATENCY_QS = (50, 90, 99)


def latency_summary(values_ms: Iterable[float]) -> dict[str, float]:
    """``{"p50", "p90", "p99", "max", "mean", "total_s"}`` of latencies in milliseconds (NaN
    values ignored; all NaN when there are none)."""
    a = np.asarray([v for v in values_ms if v == v], dtype=np.float64)
    if a.size == 0:
        nan = float("nan")
        return {**{f"p{q}": nan for q in LATENCY_QS}, "max": nan, "mean": nan, "total_s": 0.0}
    out = {f"p{q}": float(v) for q, v in zip(LATENCY_QS, np.percentile(a, LATENCY_QS),
                                               strict=True)}
    out.update(max=float(a.max()), mean=float(a.mean()), total_s=float(a.sum() / 1e3))
    return out


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
    """Latency percentiles of the last ``size`` samples (:func:`latency_summary`)."""

    def __init__(self, size: int = 300) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(value)

    def summary(self) -> dict[str, float]:
        with self._lock:
            values = list(self._values)
        return latency_summary(values)

    def recent(self, n: int) -> list[float]:
        """The last ``n`` samples (fewer while fewer came), oldest first."""
        with self._lock:
            return list(self._values)[-n:]


class ProblemCounter:
    """Counts of problems by kind: totals since start, and within the last ``window_s``
    seconds (what a status should reflect: one bad frame long ago is not a problem now).

    Each kind keeps its last message.
    """

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self.totals: Counter[str] = Counter()
        self.last: dict[str, str] = {}
        self._recent: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def add(self, kind: str, message: str, now: float | None = None) -> None:
        with self._lock:
            self.totals[kind] += 1
            self.last[kind] = message
            self._recent.append((time.monotonic() if now is None else now, kind))

    def recent(self, now: float | None = None) -> dict[str, int]:
        """kind -> count within the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._recent and self._recent[0][0] < now - self.window_s:
                self._recent.popleft()
            return dict(Counter(kind for _, kind in self._recent))

    def snapshot(self) -> tuple[dict[str, int], dict[str, str]]:
        """(totals by kind, last message by kind)."""
        with self._lock:
            return dict(self.totals), dict(self.last)


class Throttle:
    """At most one log line per kind every ``period_s`` seconds (0: every one).

    rclpy's own throttling is tied to the call site and refuses a changed period there, and
    one call site for every kind lets one kind hide another; this keeps a clock per kind and
    logs through a plain function.
    """

    def __init__(self, emit: Callable[[str], object], period_s: float = 5.0) -> None:
        self.emit = emit
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, kind: str, message: str, now: float | None = None) -> bool:
        """Log ``message`` unless ``kind`` was logged less than ``period_s`` ago; returns
        whether it was logged. Suppressed lines are counted into the next one of that kind."""
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.period_s:
                self._suppressed[kind] += 1
                return False
            self._last[kind] = now
            skipped = self._suppressed.pop(kind, 0)
        suffix = f" ({skipped} more since the last report)" if skipped else ""
        self.emit(f"{kind}: {message}{suffix}")
        return True
