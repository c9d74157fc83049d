"""ONNX metadata keys and file hashing (no torch import: used by the ONNX Runtime path)."""

from __future__ import annotations

import hashlib
from pathlib import Path

META_CONFIG = "vision_banana_ros.model_config"
META_GRAPH = "vision_banana_ros.graph"
META_TASKS = "vision_banana_ros.decoded_tasks"


def onnx_metadata(path: Path) -> dict[str, str]:
    """The metadata properties of an ONNX file (empty when it has none)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
