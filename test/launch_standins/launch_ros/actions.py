"""Stand-in for ``launch_ros.actions`` (see ../README.md)."""

from __future__ import annotations

from typing import Any


class LifecycleNode:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
