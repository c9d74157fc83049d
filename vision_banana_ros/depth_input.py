"""The camera's depth as the generator's second input, the same in training and on the robot.

The network takes, beside RGB, two planes at its input resolution (DESIGN.md, data flow):

- ``0``: the sensor's depth in the canonical camera (``depth * canonical_focal_px / fx``, fx
  at the network resolution, like the depth target), through the depth codec's power transform
  ``f(d) = 1 - (1 + d / 10 m)^-2`` (in [0, 1), finer where depth is small); 0 where invalid;
- ``1``: the validity mask (1 where at least half of the input pixels under a network pixel had
  a valid depth, else 0).

Without a depth image both planes are zero: one checkpoint serves RGB-D and RGB-only cameras.
Downsampling averages valid pixels only (invalid ones never pull the depth towards 0).
"""

from __future__ import annotations

import numpy as np

from vision_banana_ros.codecs.depth import depth_to_walk
from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.letterbox import Letterbox

#: Number of depth input planes.
PLANES = 2
#: Fraction of valid input pixels under a network pixel for it to count as valid.
MIN_VALID_FRACTION = 0.5


def no_depth(height: int, width: int) -> np.ndarray:
    """(2, height, width) float32 zeros: the input of a frame without depth."""
    return np.zeros((PLANES, height, width), np.float32)


def sensor_planes(depth_m: np.ndarray, width: int, height: int, fx_small: float | None,
                  canonical_focal_px: float) -> np.ndarray:
    """The two input planes of a depth image.

    Args:
        depth_m: (H, W) float metres at the colour image's resolution; NaN, inf or <= 0 invalid.
        width, height: network input size.
        fx_small: focal length in pixels at the network resolution (None: the canonical camera).
        canonical_focal_px: the model's canonical focal length.

    Returns:
        (2, height, width) float32: power-transformed canonical depth (0 invalid) and the mask.
    """
    import cv2

    if depth_m.ndim != 2 or depth_m.size == 0:
        raise VisionBananaError(f"depth must be a non-empty (H, W) array, got {depth_m.shape}")
    d = np.asarray(depth_m, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    h, w = d.shape
    filled = np.where(valid, d, np.float32(0.0))
    mask = valid.astype(np.float32)
    if (w, h) != (width, height):
        interp = cv2.INTER_AREA if width <= w else cv2.INTER_LINEAR
        filled = cv2.resize(filled, (width, height), interpolation=interp)
        mask = cv2.resize(mask, (width, height), interpolation=interp)
    ok = mask >= MIN_VALID_FRACTION
    scale = np.float32(canonical_focal_px / fx_small) if fx_small else np.float32(1.0)
    mean = np.divide(filled, mask, out=np.zeros_like(filled), where=ok) * scale
    out = np.zeros((PLANES, height, width), np.float32)
    out[0] = np.where(ok, depth_to_walk(mean), np.float32(0.0))
    out[1] = ok
    return out


def letterboxed_planes(depth_m: np.ndarray, box: Letterbox, fx_small: float | None,
                       canonical_focal_px: float) -> np.ndarray:
    """The two planes of a depth image placed in the network input like its colour image
    (``box``; zeros, no depth, in the padding): (2, dst_h, dst_w) float32."""
    region = sensor_planes(depth_m, box.width, box.height, fx_small, canonical_focal_px)
    return np.ascontiguousarray(box.place(region.transpose(1, 2, 0), 0.0).transpose(2, 0, 1))
