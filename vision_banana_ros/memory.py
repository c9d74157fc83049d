"""Keeping a long-running process's resident memory flat, and its allocations cheap.

Each frame allocates and frees about 12 MB of large arrays. glibc raises its mmap threshold as
such blocks are freed, so later ones come from the heap, and freed heap pages are not returned
to the system: resident memory creeps up (measured by the node load benchmark). Calling
``malloc_trim`` now and then returns them (:func:`trim_heap`).

By default glibc also gives the top of the heap back whenever more than twice the (moving)
mmap threshold is free there, and maps the next frame's arrays afresh: every new page then
costs a fault and zeroing. That took half the time of the evaluator's depth metrics (10 ms ->
5 ms per 640x480 frame with :func:`reuse_freed_blocks`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def reuse_freed_blocks(block_mb: int = 32, keep_mb: int = 128) -> bool:
    """Have glibc serve blocks below ``block_mb`` MiB from the heap (not fresh mappings) and
    keep up to ``keep_mb`` MiB of freed memory at the heap's top for the next frame, for the
    whole process (a 640x480 frame's largest array is 3.7 MB). Returns False where glibc's
    ``mallopt`` is not available or refuses the values."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, block_mb << 20)
                and libc.mallopt(_M_TRIM_THRESHOLD, keep_mb << 20))


def trim_heap() -> bool:
    """Return freed heap memory to the system (glibc); False where not available."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
