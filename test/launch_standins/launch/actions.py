"""Stand-in for ``launch.actions`` (see ../README.md)."""

from __future__ import annotations

from typing import Any


class DeclareLaunchArgument:
    def __init__(self, name: str, default_value: Any = None, description: str = "") -> None:
        self.name, self.default_value, self.description = name, default_value, description


class SetEnvironmentVariable:
    def __init__(self, name: str, value: Any, condition: Any = None) -> None:
        self.name, self.value, self.condition = name, value, condition
