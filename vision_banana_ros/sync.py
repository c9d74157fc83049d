"""Matching CameraInfo to images by stamp (message_filters is not on PyPI, and this is small).

Exact match first, then the nearest info within a tolerance; optionally the latest info as a
fallback (documented: correct for fixed-intrinsics cameras, which is nearly all of them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class CameraInfoMatcher:
    """Keeps the last ``history`` camera_info messages by stamp (nanoseconds)."""

    def __init__(self, tolerance_ns: int = 5_000_000, fallback_latest: bool = True,
                 history: int = 30) -> None:
        self.tolerance_ns = tolerance_ns
        self.fallback_latest = fallback_latest
        self.history = history
        self._infos: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Condition()

    def add(self, stamp_ns: int, info: Any) -> None:
        with self._lock:
            self._infos[stamp_ns] = info
            self._infos.move_to_end(stamp_ns)
            while len(self._infos) > self.history:
                self._infos.popitem(last=False)
            self._lock.notify_all()

    def clear(self) -> None:
        with self._lock:
            self._infos.clear()

    def wait_match(self, stamp_ns: int, timeout_s: float = 0.1) -> tuple[Any | None, str]:
        """:meth:`match`, first waiting up to ``timeout_s`` for the info of exactly this stamp.

        Camera drivers publish image and camera_info together; the image can be taken by the
        worker before the executor has handed over its camera_info.
        """
        with self._lock:
            self._lock.wait_for(lambda: stamp_ns in self._infos, timeout=timeout_s)
        return self.match(stamp_ns)

    def match(self, stamp_ns: int) -> tuple[Any | None, str]:
        """(info, how): how is ``exact``, ``nearest``, ``latest`` or why there is none."""
        with self._lock:
            if not self._infos:
                return None, "no camera_info received"
            if stamp_ns in self._infos:
                return self._infos[stamp_ns], "exact"
            nearest = min(self._infos, key=lambda s: abs(s - stamp_ns))
            if abs(nearest - stamp_ns) <= self.tolerance_ns:
                return self._infos[nearest], "nearest"
            if self.fallback_latest:
                return next(reversed(self._infos.values())), "latest"
            return None, (f"no camera_info within {self.tolerance_ns / 1e6:.1f} ms of the "
                          "image stamp")
