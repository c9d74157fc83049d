"""Name -> builder registry of generator architectures (as segment-anything's build_sam)."""

from __future__ import annotations

from collections.abc import Callable

from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.model.config import ModelConfig
from vision_banana_ros.model.network import LiteEncoder, TinyEncoder, VisionBananaNet


def _build_lite0(config: ModelConfig) -> VisionBananaNet:
    return VisionBananaNet(config, LiteEncoder(config.pretrained), LiteEncoder.CHANNELS)


def _build_tiny(config: ModelConfig) -> VisionBananaNet:
    return VisionBananaNet(config, TinyEncoder(), TinyEncoder.CHANNELS, embed_dim=8)


#: Architectures by name.
MODEL_BUILDERS: dict[str, Callable[[ModelConfig], VisionBananaNet]] = {
    "vb-lite0": _build_lite0,
    "vb-tiny": _build_tiny,
}


def build_model(config: ModelConfig) -> VisionBananaNet:
    """Build the network a config describes (weights random or ImageNet-initialised)."""
    config.validate()
    try:
        builder = MODEL_BUILDERS[config.arch]
    except KeyError:
        raise VisionBananaError(f"unknown architecture {config.arch!r}; known: "
                                f"{', '.join(MODEL_BUILDERS)}") from None
    return builder(config)
