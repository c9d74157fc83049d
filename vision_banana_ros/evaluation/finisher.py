"""The evaluator's second thread: metrics and output-bag writes, in order, beside the network.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any


class Finisher:
    """One worker thread running submitted jobs in order (metrics and output-bag writes).

    A bounded queue (``depth`` frames) keeps memory flat; a job's exception is re-raised in
    the submitting thread at the next :meth:`submit` or at :meth:`close`.
    """

    def __init__(self, depth: int = 3) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._cores_free = threading.Event()  # cleared while the network runs
        self._cores_free.set()
        self._thread = threading.Thread(target=self._work, name="eval-finisher", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None:
                try:
                    job[0](*job[1:])
                except BaseException as err:  # handed to the main thread
                    self._error = err

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    @contextlib.contextmanager
    def network(self) -> Iterator[None]:
        """Around a network call (main thread): jobs pause at their next :meth:`checkpoint`.

        The network runs on every core (ONNX Runtime's intra-op threads); a scoring job on one
        of them made each of its parallel steps wait, and doubled inference time on 2 cores.
        """
        self._cores_free.clear()
        try:
            yield
        finally:
            self._cores_free.set()

    def checkpoint(self) -> None:
        """Between steps of a job (finisher thread): wait while the network runs."""
        self._cores_free.wait()

    def submit(self, fn: Any, *args: Any) -> None:
        self._raise()
        self._jobs.put((fn, *args))

    def stop(self) -> None:
        """Finish every submitted job and stop the thread (idempotent)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def close(self) -> None:
        """:meth:`stop`, then re-raise a job's exception."""
        self.stop()
        self._raise()
