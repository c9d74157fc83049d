"""Pairing stamped messages (camera_info, depth) with images by header stamp.

``message_filters`` is not on PyPI, and the node needs something it does not do: a bounded
wait for the message of exactly the image's stamp. Camera drivers publish the colour image,
its camera_info and the aligned depth with one stamp, but they arrive on separate topics; the
worker can take an image before the executor has delivered its partners (on a loaded machine,
a third of 640x480 pairs came more than 5 ms late). So :meth:`StampMatcher.wait_match` waits
until the exact stamp arrives, a newer one arrives (the exact one will not come), or the
bounded wait ends, and only then falls back to the nearest message within a tolerance and,
where allowed, to the latest one: only for a stream that has not been per-frame lately (a
camera that publishes its camera_info once a second), never for one that comes with every
frame, so a frame whose own message is missing or late is not paired with another frame's
(another frame's intrinsics would put its cloud at the wrong geometry). Every answer says
how it was found, so callers count the non-exact ones.

Waiting only happens while the stream is per-frame (one of the last ``PER_FRAME_WINDOW``
matches was exact) and alive (its newest stamp is less than the wait behind the image's): a
camera that publishes camera_info once a second costs a few waits at start, not one per frame;
a depth stream that stops costs one wait, after which frames run without it at once; a
per-frame stream whose messages come late now and then (large frames delay their camera_info
on the same transport) is always waited for.

The evaluator uses the same class on bags, where every message is already there: see
:meth:`StampMatcher.match`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from typing import Any

#: How a match was found. ``exact``: the stamp itself; ``nearest``: the closest within the
#: tolerance; ``latest``: the newest message, whatever its stamp (fallback); ``none``: nothing.
HOW = ("exact", "nearest", "latest", "none")
#: Matches looked back on to decide whether a stream comes with every frame.
PER_FRAME_WINDOW = 10


def stamp_ns(header: Any) -> int:
    """Nanoseconds of a std_msgs/Header-like object's stamp (rclpy or rosbags messages)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class StampMatcher:
    """The last ``history`` messages of one stream, by stamp (nanoseconds).

    Args:
        name: what the stream is, for the reasons given when nothing matches.
        tolerance_ns: largest stamp difference of a ``nearest`` match.
        fallback_latest: answer the newest message when nothing is within the tolerance.
        wait_s: longest wait of :meth:`wait_match` for the exact stamp.
        history: messages kept.
        wait_for_first: also wait before the stream's first message (camera_info, which every
            camera has); False for optional streams (depth), which may never come.
    """

    def __init__(self, name: str = "camera_info", tolerance_ns: int = 5_000_000,
                 fallback_latest: bool = True, wait_s: float = 1.0, history: int = 30,
                 wait_for_first: bool = True) -> None:
        self.name = name
        self.tolerance_ns = tolerance_ns
        self.fallback_latest = fallback_latest
        self.wait_s = wait_s
        self.history = history
        self.wait_for_first = wait_for_first
        self._msgs: OrderedDict[int, Any] = OrderedDict()
        self._newest = -1
        self._recent_exact: deque[bool] = deque(maxlen=PER_FRAME_WINDOW)
        self._cond = threading.Condition()

    def add(self, stamp: int, msg: Any) -> None:
        """Keep ``msg`` under ``stamp`` (the oldest one goes beyond ``history``)."""
        with self._cond:
            self._msgs[stamp] = msg
            self._msgs.move_to_end(stamp)
            self._newest = max(self._newest, stamp)
            while len(self._msgs) > self.history:
                self._msgs.popitem(last=False)
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._msgs.clear()
            self._newest = -1
            self._recent_exact.clear()

    @property
    def seen(self) -> bool:
        """A message of this stream has arrived since the last :meth:`clear`."""
        return self._newest >= 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._msgs)

    def wait_match(self, stamp: int, timeout_s: float | None = None,
                   expect: bool | None = None) -> tuple[Any | None, str]:
        """:meth:`match` after waiting up to ``timeout_s`` (default ``wait_s``) for the
        message of exactly ``stamp``; the wait ends early when a newer message arrives or
        when the stream has not been per-frame lately (no exact match among the last
        :data:`PER_FRAME_WINDOW`). ``expect`` overrides ``wait_for_first`` (the caller knows
        a publisher of the stream is matched)."""
        wait = self.wait_s if timeout_s is None else timeout_s
        with self._cond:
            per_frame = not self._recent_exact or any(self._recent_exact)
            if self._newest < 0:
                alive = self.wait_for_first if expect is None else expect
            else:
                alive = stamp - self._newest <= wait * 1e9
            if per_frame and alive and wait > 0:
                self._cond.wait_for(lambda: stamp in self._msgs or self._newest > stamp,
                                    timeout=wait)
            msg, how = self._match_locked(stamp)
            self._recent_exact.append(how == "exact")
        return msg, how

    def match(self, stamp: int) -> tuple[Any | None, str]:
        """(message, how) without waiting: how is one of :data:`HOW`, or, for ``none``, the
        reason (``"no camera_info received"``, ``"no camera_info within 5.0 ms ..."``)."""
        with self._cond:
            return self._match_locked(stamp)

    def _match_locked(self, stamp: int) -> tuple[Any | None, str]:
        if not self._msgs:
            return None, f"no {self.name} received"
        if stamp in self._msgs:
            return self._msgs[stamp], "exact"
        nearest = min(self._msgs, key=lambda s: abs(s - stamp))
        if abs(nearest - stamp) <= self.tolerance_ns:
            return self._msgs[nearest], "nearest"
        if self.fallback_latest and not any(self._recent_exact):
            return next(reversed(self._msgs.values())), "latest"
        if self.fallback_latest:
            return None, (f"no {self.name} with the image's stamp, and the stream comes with "
                          "every frame: another frame's is not used")
        return None, (f"no {self.name} within {self.tolerance_ns / 1e6:.1f} ms of the image "
                      "stamp")
