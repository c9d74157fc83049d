"""Keeping a long-running process's resident memory flat.

Each frame allocates and frees about 12 MB of large arrays. glibc raises its mmap threshold as
such blocks are freed, so later ones come from the heap, and freed heap pages are not returned
to the system: resident memory creeps up (measured by the node load benchmark). Calling
``malloc_trim`` now and then returns them.
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


def trim_heap() -> bool:
    """Return freed heap memory to the system (glibc); False where not available."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
