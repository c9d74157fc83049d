"""Semantic segmentation <-> RGB painting: each class in the colour its prompt assigns.

A :class:`SemanticPalette` pairs class names with colours; the task prompt is written from it, so
the generator is told which colour means which class. Decoding takes the nearest palette colour
and writes :data:`~vision_banana_ros.codecs.constants.SEMANTIC_NONE` (255) where no colour lies
within ``threshold`` (Euclidean RGB distance, channels in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vision_banana_ros.codecs._validate import float_painting, integer_image, torch_painting
from vision_banana_ros.codecs.constants import SEMANTIC_DEFAULT_THRESHOLD, SEMANTIC_NONE
from vision_banana_ros.errors import CodecError

__all__ = [
    "DEFAULT_SEMANTIC_PALETTE",
    "SemanticPalette",
    "decode_semantic",
    "decode_semantic_torch",
    "encode_semantic",
]


@dataclass(frozen=True)
class SemanticPalette:
    """Class table: id i is ``names[i]``, painted as ``colours[i]`` (RGB floats in [0, 1])."""

    names: tuple[str, ...]
    colours: tuple[tuple[float, float, float], ...]
    colour_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.colours) == len(self.colour_names)):
            raise CodecError("semantic palette: names, colours and colour_names differ in length")
        if not 1 <= len(self.names) < SEMANTIC_NONE:
            raise CodecError(f"semantic palette must have 1 to {SEMANTIC_NONE - 1} classes")
        arr = self.array
        if arr.min() < 0 or arr.max() > 1:
            raise CodecError("semantic palette colours must lie in [0, 1]")

    @property
    def array(self) -> np.ndarray:
        """(K, 3) float32 colours."""
        return np.asarray(self.colours, dtype=np.float32).reshape(-1, 3)

    def min_separation(self) -> float:
        """Smallest RGB distance between two class colours."""
        arr = self.array
        dist = np.linalg.norm(arr[:, None] - arr[None], axis=-1)
        dist[np.eye(len(arr), dtype=bool)] = np.inf
        return float(dist.min())

    def prompt(self) -> str:
        """The instruction that assigns the colours, as the generator is conditioned on it."""
        parts = [f"{name.replace('_', ' ')} {colour}"
                 for name, colour in zip(self.names, self.colour_names, strict=True)]
        return "Paint the semantic segmentation: " + ", ".join(parts) + "."


#: Class table of the package (ids are what ``~/segmentation/semantic`` publishes). The colours
#: are four corners of the RGB cube forming a regular tetrahedron: every pair is sqrt(2) apart.
DEFAULT_SEMANTIC_PALETTE = SemanticPalette(
    names=("background", "support_surface", "object"),
    colours=((0.0, 0.0, 0.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0)),
    colour_names=("black", "cyan", "yellow"),
)


def encode_semantic(class_ids: np.ndarray,
                    palette: SemanticPalette = DEFAULT_SEMANTIC_PALETTE) -> np.ndarray:
    """Paint class ids: (..., H, W) integer ids in [0, K) -> (..., H, W, 3) float32 in [0, 1].

    Raises:
        CodecError: not an integer image, or an id outside the palette (255 "none" included).
    """
    ids = integer_image(class_ids, "class ids")
    k = len(palette.names)
    if ids.min() < 0 or ids.max() >= k:
        raise CodecError(f"class ids must lie in [0, {k}) for a palette of {k} classes, got "
                         f"range [{int(ids.min())}, {int(ids.max())}]")
    return palette.array[ids]


def decode_semantic(painting: np.ndarray,
                    palette: SemanticPalette = DEFAULT_SEMANTIC_PALETTE,
                    threshold: float = SEMANTIC_DEFAULT_THRESHOLD) -> np.ndarray:
    """Nearest palette colour: (..., H, W, 3) painting -> (..., H, W) uint8 ids, 255 = none.

    Raises:
        CodecError: bad painting, or a threshold that is not positive.
    """
    if not threshold > 0:
        raise CodecError(f"semantic threshold must be > 0, got {threshold}")
    p = float_painting(painting, "semantic painting")
    colours = palette.array
    # |p - c|^2 = |p|^2 - 2 p.c + |c|^2, with one small matrix product instead of K passes.
    dist2 = (p * p).sum(-1, keepdims=True) - 2.0 * (p @ colours.T) + (colours * colours).sum(-1)
    nearest = np.argmin(dist2, axis=-1)
    best = np.take_along_axis(dist2, nearest[..., None], axis=-1)[..., 0]
    ids = nearest.astype(np.uint8)
    ids[best > threshold * threshold] = SEMANTIC_NONE
    return ids


def decode_semantic_torch(painting: Any,
                          palette: SemanticPalette = DEFAULT_SEMANTIC_PALETTE,
                          threshold: float = SEMANTIC_DEFAULT_THRESHOLD) -> Any:
    """Torch version of :func:`decode_semantic`: (..., 3, H, W) -> (..., H, W) int64 ids."""
    import torch

    p = torch_painting(painting, "semantic painting")
    colours = torch.as_tensor(palette.array, dtype=p.dtype, device=p.device)
    diff = p.unsqueeze(-4) - colours.reshape(-1, 3, 1, 1)  # (..., K, 3, H, W)
    dist2 = (diff * diff).sum(-3)
    best, nearest = dist2.min(dim=-3)
    return torch.where(best > threshold * threshold, torch.full_like(nearest, SEMANTIC_NONE),
                       nearest)
