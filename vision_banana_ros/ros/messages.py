"""rclpy messages from plain field values (:mod:`vision_banana_ros.outputs`), and message
classes by type name."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from diagnostic_msgs.msg import KeyValue


@cache
def message_class(msgtype: str) -> type:
    """The rclpy class of ``pkg/msg/Name``."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def _fill(msg: Any, fields: dict[str, Any]) -> Any:
    types = msg.get_fields_and_field_types()
    for name, value in fields.items():
        if isinstance(value, dict):
            _fill(getattr(msg, name), value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            kind = types[name]
            inner = kind[kind.index("<") + 1:kind.rindex(">")] if "<" in kind else kind
            cls = message_class(inner.replace("/", "/msg/", 1) if "/msg/" not in inner
                                else inner)
            setattr(msg, name, [_fill(cls(), v) for v in value])
        else:
            setattr(msg, name, value)
    return msg


def build(msgtype: str, fields: dict[str, Any]) -> Any:
    """An rclpy message of ``msgtype`` with ``fields`` (nested dicts for nested messages;
    message objects such as the input's header are assigned as they are)."""
    return _fill(message_class(msgtype)(), fields)


def key_values(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=str(v)) for k, v in values.items()]
