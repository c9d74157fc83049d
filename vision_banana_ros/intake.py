"""Checking and converting one frame's input messages, for the node and the evaluator alike.

Works on any object with the messages' fields (rclpy or rosbags). Every refusal is an
:class:`InputProblem` whose ``kind`` is what /diagnostics and evaluation reports count
(``too_large``, ``bad_image``, ``bad_camera_info``, ``camera_info_mismatch``...), with a message
that names the problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.imageconv import (
    ImageConversionError,
    compressed_size,
    compressed_to_rgb,
    image_to_rgb,
)


class InputProblem(VisionBananaError):
    """An input message the pipeline cannot use; ``kind`` names the class of problem."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def is_compressed(msg: Any) -> bool:
    """CompressedImage-like (has ``format``), as opposed to Image."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def declared_size(msg: Any) -> tuple[int, int] | None:
    """(width, height) an image message declares, read without decoding (None: a compressed
    payload whose header is neither PNG nor JPEG)."""
    if is_compressed(msg):
        return compressed_size(msg.data)
    return int(msg.width), int(msg.height)


def colour_image(msg: Any, max_pixels: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an Image or CompressedImage message.

    The size is checked from the message fields (Image) or the PNG/JPEG header
    (CompressedImage) before any decoding, so an oversized frame costs no memory.

    Raises:
        InputProblem: ``too_large`` above ``max_pixels``; ``bad_image`` for what cannot be
            converted (encoding, size, step, truncated or undecodable data).
    """
    size = declared_size(msg)
    if size is not None and size[0] * size[1] > max_pixels:
        raise InputProblem("too_large", f"image is {size[0]}x{size[1]} "
                           f"({size[0] * size[1]} pixels), above max_input_pixels "
                           f"{max_pixels}; skipping the frame")
    try:
        rgb = compressed_to_rgb(msg) if is_compressed(msg) else image_to_rgb(msg)
    except ImageConversionError as err:
        raise InputProblem("bad_image", str(err)) from err
    if rgb.shape[0] * rgb.shape[1] > max_pixels:  # a header that lied about its size
        raise InputProblem("too_large", f"image decoded to {rgb.shape[1]}x{rgb.shape[0]}, "
                           f"above max_input_pixels {max_pixels}; skipping the frame")
    return np.ascontiguousarray(rgb)


def intrinsics(info: Any, width: int, height: int) -> np.ndarray:
    """(3, 3) float64 K of a CameraInfo-like message for an image of ``width`` x ``height``.

    Raises:
        InputProblem: ``camera_info_mismatch`` when it is for another resolution;
            ``bad_camera_info`` when K is not a usable pinhole matrix (naming the bad entries).
    """
    from vision_banana_ros.geometry import check_intrinsics

    if (int(info.width), int(info.height)) != (width, height):
        raise InputProblem("camera_info_mismatch", f"camera_info is {info.width}x{info.height}"
                           f" but the image is {width}x{height}; skipping the frame")
    try:
        return check_intrinsics(np.asarray(info.k, dtype=np.float64).reshape(3, 3),
                                "camera_info K")
    except (VisionBananaError, ValueError) as err:
        raise InputProblem("bad_camera_info", f"{err}; skipping the frame") from err


def sensor_depth(msg: Any, width: int, height: int) -> np.ndarray:
    """(H, W) float32 metres of a depth Image aligned to a ``width`` x ``height`` colour image
    (REP 118: 16UC1 millimetres with 0 invalid, or 32FC1 metres with NaN, inf or <= 0
    invalid; invalid pixels become NaN).

    Raises:
        InputProblem: ``bad_depth`` for an encoding other than 16UC1/32FC1 or a broken
            message; ``depth_mismatch`` when it is not at the colour image's resolution.
    """
    from vision_banana_ros.imageconv import depth_to_metres

    try:
        depth = depth_to_metres(msg)
    except ImageConversionError as err:
        raise InputProblem("bad_depth", f"{err}; this frame runs without depth") from err
    if depth.shape != (height, width):
        raise InputProblem("depth_mismatch", f"depth is {depth.shape[1]}x{depth.shape[0]} but "
                           f"the colour image is {width}x{height} (depth must be aligned to "
                           "colour); this frame runs without depth")
    return depth
