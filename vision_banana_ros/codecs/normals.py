"""Surface normals <-> RGB painting.

Camera optical frame (x right, y down, z forward) unit normals, components in [-1, 1] mapped
linearly to [0, 1] per channel. NaN (invalid) normals paint mid-grey, the zero vector, and decode
back to NaN, so invalidity survives the round trip; that is the documented value for NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vision_banana_ros.codecs._validate import float_array, float_painting, torch_painting
from vision_banana_ros.errors import CodecError

__all__ = ["decode_normals", "decode_normals_torch", "encode_normals", "encode_normals_torch"]

#: Decoded vectors shorter than this (a grey painting) are invalid: NaN.
_MIN_NORM = 0.05


def encode_normals(normals: np.ndarray) -> np.ndarray:
    """Paint normals: (..., H, W, 3) vectors -> (..., H, W, 3) float32 in [0, 1].

    Vectors are normalised first; NaN or zero vectors paint grey (0.5, 0.5, 0.5).

    Raises:
        CodecError: wrong type, dtype, shape, empty, or infinite components.
    """
    n = float_array(normals, "normals", trailing=(3,))
    if np.isinf(n).any():
        raise CodecError("normals contain infinite components")
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    valid = np.isfinite(norm) & (norm > 1e-12)
    unit = np.where(valid, n / np.where(valid, norm, 1.0), 0.0)
    return (unit * 0.5 + 0.5).astype(np.float32)


def decode_normals(painting: np.ndarray) -> np.ndarray:
    """Decode: (..., H, W, 3) painting -> (..., H, W, 3) float32 unit normals, NaN if grey."""
    n = float_painting(painting, "normals painting") * np.float32(2.0) - np.float32(1.0)
    norm = np.sqrt(np.einsum("...c,...c->...", n, n))[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        n /= norm
    n[norm[..., 0] < _MIN_NORM] = np.nan
    return n


def encode_normals_torch(normals: Any) -> Any:
    """Torch: (..., 3, H, W) vectors -> (..., 3, H, W) painting; NaN/zero vectors paint grey."""
    import torch

    if not isinstance(normals, torch.Tensor) or not normals.is_floating_point():
        raise CodecError("normals must be a floating torch.Tensor")
    if normals.ndim < 3 or normals.shape[-3] != 3:
        raise CodecError(f"normals must have shape (..., 3, H, W), got {tuple(normals.shape)}")
    n = torch.nan_to_num(normals, nan=0.0)
    norm = n.norm(dim=-3, keepdim=True)
    unit = torch.where(norm > 1e-12, n / norm.clamp_min(1e-12), torch.zeros_like(n))
    return unit * 0.5 + 0.5


def decode_normals_torch(painting: Any) -> Any:
    """Torch: (..., 3, H, W) painting -> (..., 3, H, W) unit normals, NaN where grey."""
    import torch

    n = torch_painting(painting, "normals painting") * 2.0 - 1.0
    norm = n.norm(dim=-3, keepdim=True)
    return torch.where(norm >= _MIN_NORM, n / norm.clamp_min(1e-12),
                       torch.full_like(n, float("nan")))
