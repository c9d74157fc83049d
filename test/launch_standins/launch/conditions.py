"""Stand-in for ``launch.conditions`` (see ../README.md)."""

from __future__ import annotations

from typing import Any


class IfCondition:
    def __init__(self, predicate: Any) -> None:
        self.predicate = predicate

    def evaluate(self, context: dict[str, str]) -> bool:
        from launch import perform

        return str(perform(self.predicate, context)).lower() in ("true", "1")
