"""rosbags messages from plain field values (:mod:`vision_banana_ros.outputs`).

rosbags' message classes need every field; :func:`build` fills the ones not given with the
type's zero values (numbers 0, strings empty, sequences empty, nested messages built the same
way), from the type store's field definitions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vision_banana_ros.bags.messages import typestore

_NUMPY = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8,
          "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
          "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "float32": np.float32,
          "float64": np.float64}


def _zero(node: tuple[Any, Any]) -> Any:
    kind, detail = node
    name = getattr(kind, "name", kind)
    if name == "BASE":
        base = detail[0]
        return "" if base == "string" else (False if base == "bool" else 0)
    if name == "NAME":
        return build(detail, {})
    if name == "ARRAY":
        (inner_kind, inner), count = detail
        if getattr(inner_kind, "name", inner_kind) == "BASE" and inner[0] in _NUMPY:
            return np.zeros(count, _NUMPY[inner[0]])
        return [_zero((inner_kind, inner)) for _ in range(count)]
    (inner_kind, inner), _ = detail  # SEQUENCE
    if getattr(inner_kind, "name", inner_kind) == "BASE" and inner[0] in _NUMPY:
        return np.zeros(0, _NUMPY[inner[0]])
    return []


def _value(node: tuple[Any, Any], value: Any) -> Any:
    kind, detail = node
    name = getattr(kind, "name", kind)
    if name == "NAME":
        return build(detail, value) if isinstance(value, dict) else value
    if name in ("ARRAY", "SEQUENCE"):
        (inner_kind, inner), _ = detail
        inner_name = getattr(inner_kind, "name", inner_kind)
        if inner_name == "BASE" and inner[0] in _NUMPY:
            return np.frombuffer(value, np.uint8) if inner[0] == "uint8" and not isinstance(
                value, np.ndarray) else np.asarray(value, _NUMPY[inner[0]])
        if inner_name == "NAME":
            return [build(inner, v) if isinstance(v, dict) else v for v in value]
    return value


def build(msgtype: str, fields: dict[str, Any]) -> Any:
    """A rosbags message of ``msgtype`` with ``fields`` (nested dicts for nested messages;
    objects that already are messages, such as a header read from a bag, pass through)."""
    ts = typestore()
    _, defs = ts.fielddefs[msgtype]
    known = {name for name, _ in defs}
    unknown = set(fields) - known
    if unknown:
        raise KeyError(f"{msgtype} has no fields {sorted(unknown)}")
    values = {name: (_value(node, fields[name]) if name in fields else _zero(node))
              for name, node in defs}
    return ts.types[msgtype](**values)
