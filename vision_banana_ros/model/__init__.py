"""The distilled generator: config, network, registry, checkpoints."""

from vision_banana_ros.model.checkpoint import (
    CheckpointError,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from vision_banana_ros.model.config import ModelConfig
from vision_banana_ros.model.network import VisionBananaNet
from vision_banana_ros.model.registry import MODEL_BUILDERS, build_model

__all__ = ["MODEL_BUILDERS", "CheckpointError", "ModelConfig", "VisionBananaNet", "build_model",
           "load_model", "read_checkpoint", "save_checkpoint"]
