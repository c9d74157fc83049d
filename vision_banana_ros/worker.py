"""Latest-frame processing: bounded latency whatever the camera rate.

Callbacks call :meth:`LatestFrameWorker.submit`, which only stores the newest item (replacing,
and counting as dropped, one that was not yet taken). A single worker thread processes the
newest item when the previous one is done, at most ``max_rate_hz`` times per second. Queue
length is at most one, so latency is at most one processing time plus the wait for the current
one to finish.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any


class LatestFrameWorker:
    """One worker thread processing the newest submitted item."""

    def __init__(self, process: Callable[[Any], None], *, max_rate_hz: float = 0.0,
                 on_error: Callable[[BaseException], None] | None = None,
                 name: str = "vision_banana_worker") -> None:
        self._process = process
        self._on_error = on_error
        self.max_rate_hz = max_rate_hz
        self._cond = threading.Condition()
        self._item: Any = None
        self._has_item = False
        self._running = False
        self._paused = False
        self._thread: threading.Thread | None = None
        self._name = name
        self.submitted = 0
        self.dropped = 0
        self.processed = 0
        self.failed = 0

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after the current item; a pending item is dropped."""
        with self._cond:
            self._running = False
            if self._has_item:
                self.dropped += 1
            self._item, self._has_item = None, False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def pause(self, paused: bool) -> None:
        """Paused workers drop what is submitted (counted) and process nothing."""
        with self._cond:
            self._paused = paused

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._running

    @property
    def alive(self) -> bool:
        """The thread is running (False after :meth:`stop`, or if it died)."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, item: Any) -> None:
        """Store ``item`` as the newest; never blocks."""
        with self._cond:
            self.submitted += 1
            if not self._running or self._paused:
                self.dropped += 1
                return
            if self._has_item:
                self.dropped += 1
            self._item, self._has_item = item, True
            self._cond.notify()

    def _loop(self) -> None:
        last_start = 0.0
        while True:
            with self._cond:
                while self._running and not self._has_item:
                    self._cond.wait()
                if not self._running:
                    return
            if self.max_rate_hz > 0:
                wait = last_start + 1.0 / self.max_rate_hz - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # newer items may replace the pending one meanwhile
            with self._cond:
                if not self._running:
                    return
                if not self._has_item:
                    continue
                item, self._item, self._has_item = self._item, None, False
            last_start = time.monotonic()
            try:
                self._process(item)
            except Exception as err:  # the node must keep running; report and continue
                self.failed += 1
                self._report(err)
            finally:
                with self._cond:
                    self.processed += 1

    def _report(self, err: Exception) -> None:
        """Hand ``err`` to ``on_error``; an error there is printed, never raised, so the
        thread survives its own error path."""
        if self._on_error is None:
            return
        try:
            self._on_error(err)
        except Exception as inner:  # last resort: stderr, the thread goes on
            print(f"{self._name}: error while reporting {type(err).__name__}: {err}: "
                  f"{type(inner).__name__}: {inner}", file=sys.stderr, flush=True)
