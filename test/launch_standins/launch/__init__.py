"""Stand-in for ``launch`` (see ../README.md): a description and substitution evaluation."""

from __future__ import annotations

from typing import Any


class LaunchDescription:
    def __init__(self, entities: list[Any]) -> None:
        self.entities = list(entities)


def perform(value: Any, context: dict[str, str]) -> Any:
    """The value of a substitution (or a list of them, or a plain value) in ``context``."""
    if isinstance(value, (list, tuple)):
        return "".join(str(perform(v, context)) for v in value)
    if hasattr(value, "perform"):
        return value.perform(context)
    return value
