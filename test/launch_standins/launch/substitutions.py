"""Stand-in for ``launch.substitutions`` (see ../README.md)."""

from __future__ import annotations

from typing import Any


class LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: dict[str, str]) -> str:
        return context[self.name]


class PythonExpression:
    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts

    def perform(self, context: dict[str, str]) -> str:
        from launch import perform

        return str(eval(perform(self.parts, context)))
