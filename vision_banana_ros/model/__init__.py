"""The distilled generator: config, network, registry, checkpoints.

Attributes are imported lazily, so ``vision_banana_ros.model.config`` (and the ONNX Runtime
path that needs only it) does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CheckpointError": "checkpoint", "load_model": "checkpoint", "read_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint", "ModelConfig": "config", "VisionBananaNet": "network",
    "MODEL_BUILDERS": "registry", "build_model": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"vision_banana_ros.model.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vision_banana_ros.model' has no attribute {name!r}")
