"""Model configuration: everything needed to rebuild a network and to decode its paintings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vision_banana_ros.errors import VisionBananaError

#: ImageNet statistics, applied inside the network (inputs are RGB in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and input contract of a generator.

    Attributes:
        arch: registry name of the builder (``vb-lite0``, ``vb-tiny``).
        tasks: task names in embedding order (``TaskSpec.index`` order).
        input_width, input_height: network input size in pixels (multiples of 32).
        decoder_channels: width of the decoder.
        canonical_focal_px: focal length (pixels, at the input size) of the canonical camera:
            depth is painted as ``depth * canonical_focal_px / fx`` and rescaled by
            ``fx / canonical_focal_px`` after decoding (Metric3D's canonical camera). Without
            intrinsics, fx is taken equal to it.
        mean, std: per-channel normalisation applied inside the network.
        pretrained: whether the encoder started from ImageNet weights.
        depth_input: the network also takes the camera's depth (two planes,
            :mod:`vision_banana_ros.depth_input`); checkpoints made before it have False.
    """

    arch: str = "vb-lite0"
    tasks: tuple[str, ...] = ("depth", "instances", "semantic", "normals")
    input_width: int = 256
    input_height: int = 192
    decoder_channels: int = 32
    canonical_focal_px: float = 200.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    pretrained: bool = True
    depth_input: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`VisionBananaError` for an impossible configuration."""
        from vision_banana_ros.codecs import TASKS

        if self.input_width % 32 or self.input_height % 32 or self.input_width < 32 \
                or self.input_height < 32:
            raise VisionBananaError(f"input size must be positive multiples of 32, got "
                                    f"{self.input_width}x{self.input_height}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise VisionBananaError(f"unknown or no tasks {unknown}; known: {', '.join(TASKS)}")
        if self.canonical_focal_px <= 0:
            raise VisionBananaError("canonical_focal_px must be > 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain-types dict (lists for tuples), as stored in checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        extra = set(data) - known
        if extra:
            raise VisionBananaError(f"unknown model config keys: {sorted(extra)}")
        values = dict(data)
        for key in ("tasks", "mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        cfg = cls(**values)
        cfg.validate()
        return cfg
