"""Input checks shared by the codecs: clear errors instead of failures deep inside numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

from vision_banana_ros.errors import CodecError

_FLOAT_KINDS = "f"


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__}"


def float_painting(painting: Any, what: str = "painting") -> np.ndarray:
    """Check an RGB painting and return it as float32 in [0, 1], channels last.

    Args:
        painting: (..., H, W, 3) uint8 in [0, 255] or float in [0, 1]. Float values slightly
            outside [0, 1] (a network's output) are clipped.
        what: name used in error messages.

    Returns:
        (..., H, W, 3) float32 in [0, 1]; the input itself when it already is float32 in range
        is never modified (a copy is made when clipping).

    Raises:
        CodecError: not an ndarray, wrong dtype, last axis not 3, empty, or non-finite values.
    """
    check_painting(painting, what)
    if painting.dtype == np.uint8:
        return painting.astype(np.float32) * np.float32(1.0 / 255.0)
    out = painting.astype(np.float32, copy=False)
    if out.min() < 0.0 or out.max() > 1.0:
        out = np.clip(out, 0.0, 1.0)
    return out


def float_array(values: Any, what: str, *, trailing: tuple[int, ...] = ()) -> np.ndarray:
    """Check a non-empty floating array whose last axes are ``trailing``; return a float32 view.

    Raises:
        CodecError: not an ndarray, integer/bool dtype where floats are needed, wrong trailing
            shape, or empty.
    """
    if not isinstance(values, np.ndarray):
        raise CodecError(f"{what} must be a numpy array, got {_describe(values)}")
    if values.dtype.kind not in _FLOAT_KINDS:
        raise CodecError(f"{what} must be floating point, got dtype {values.dtype}")
    if trailing and values.shape[values.ndim - len(trailing):] != trailing:
        raise CodecError(f"{what} must have shape (..., {', '.join(map(str, trailing))}), "
                         f"got {values.shape}")
    if values.ndim < 2 + len(trailing):
        raise CodecError(f"{what} must be at least an image (H, W"
                         f"{''.join(', ' + str(t) for t in trailing)}), got shape {values.shape}")
    if values.size == 0:
        raise CodecError(f"{what} is empty (shape {values.shape})")
    return values.astype(np.float32, copy=False)


def integer_image(values: Any, what: str) -> np.ndarray:
    """Check a non-empty integer image (..., H, W) and return it unchanged.

    Raises:
        CodecError: not an ndarray, not an integer dtype, fewer than 2 axes, or empty.
    """
    if not isinstance(values, np.ndarray):
        raise CodecError(f"{what} must be a numpy array, got {_describe(values)}")
    if values.dtype.kind not in "ui":
        raise CodecError(f"{what} must have an integer dtype, got {values.dtype}")
    if values.ndim < 2:
        raise CodecError(f"{what} must be an image (..., H, W), got shape {values.shape}")
    if values.size == 0:
        raise CodecError(f"{what} is empty (shape {values.shape})")
    return values


def torch_painting(painting: Any, what: str = "painting") -> Any:
    """Check a torch painting (..., 3, H, W), uint8 or float; return float in [0, 1].

    Float inputs are clamped to [0, 1] (differentiably: gradients vanish outside the cube).
    Non-finite values are not checked here: that needs a device sync on hot GPU paths.
    """
    import torch

    if not isinstance(painting, torch.Tensor):
        raise CodecError(f"{what} must be a torch.Tensor, got {type(painting).__name__}")
    if painting.ndim < 3 or painting.shape[-3] != 3:
        raise CodecError(f"{what} must have shape (..., 3, H, W), got {tuple(painting.shape)}")
    if painting.numel() == 0:
        raise CodecError(f"{what} is empty (shape {tuple(painting.shape)})")
    if painting.dtype == torch.uint8:
        return painting.float() / 255.0
    if not painting.is_floating_point():
        raise CodecError(f"{what} must be uint8 or floating point, got dtype {painting.dtype}")
    return painting.clamp(0.0, 1.0)


def painting_planes_into(painting: Any, planes: np.ndarray, what: str = "painting") -> None:
    """Write a checked painting into float32 channel planes, without temporaries.

    Args:
        painting: (..., H, W, 3) uint8 or float in [0, 1] (floats outside are clipped).
        planes: (3, ..., H, W) float32 destination.

    Raises:
        CodecError: as :func:`float_painting`.
    """
    check_painting(painting, what)
    for c in range(3):
        src = painting[..., c]
        if painting.dtype == np.uint8:
            np.multiply(src, np.float32(1.0 / 255.0), out=planes[c])
        else:
            np.clip(src, 0.0, 1.0, out=planes[c])


def check_painting(painting: Any, what: str = "painting") -> None:
    """Validate a painting as :func:`float_painting` does, without converting it."""
    if not isinstance(painting, np.ndarray):
        raise CodecError(f"{what} must be a numpy array, got {_describe(painting)}")
    if painting.ndim < 3 or painting.shape[-1] != 3:
        raise CodecError(f"{what} must have shape (..., H, W, 3), got {painting.shape}")
    if painting.size == 0:
        raise CodecError(f"{what} is empty (shape {painting.shape})")
    if painting.dtype == np.uint8:
        return
    if painting.dtype.kind not in _FLOAT_KINDS:
        raise CodecError(f"{what} must be uint8 or floating point, got dtype {painting.dtype}")
    if not (np.isfinite(painting.min()) and np.isfinite(painting.max())):
        raise CodecError(f"{what} contains NaN or infinite values")
