"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

Works on any object with the message's fields (rclpy messages, rosbags messages), so it is
testable without ROS. Decoding is zero-copy where the layout allows it (``np.frombuffer`` over
the message's buffer, a strided view for padded rows); colour conversions copy once.

Supported input encodings: rgb8, bgr8, rgba8, bgra8, mono8, mono16, yuv422 / yuyv (YUYV) and
uyvy (UYVY, ROS's ``yuv422``), 16UC1, 32FC1; CompressedImage in JPEG or PNG.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError


class ImageConversionError(VisionBananaError):
    """An image message cannot be converted: unsupported encoding, bad size or truncated data."""


#: encoding -> (channels, dtype)
ENCODINGS: dict[str, tuple[int, np.dtype]] = {
    "rgb8": (3, np.dtype(np.uint8)), "bgr8": (3, np.dtype(np.uint8)),
    "rgba8": (4, np.dtype(np.uint8)), "bgra8": (4, np.dtype(np.uint8)),
    "mono8": (1, np.dtype(np.uint8)), "8UC1": (1, np.dtype(np.uint8)),
    "mono16": (1, np.dtype(np.uint16)), "16UC1": (1, np.dtype(np.uint16)),
    "32FC1": (1, np.dtype(np.float32)), "32FC3": (3, np.dtype(np.float32)),
    "8UC3": (3, np.dtype(np.uint8)),
    # Packed 4:2:2, two bytes per pixel. ROS "yuv422" is UYVY; "yuv422_yuy2"/"yuyv" is YUYV.
    "yuv422": (2, np.dtype(np.uint8)), "uyvy": (2, np.dtype(np.uint8)),
    "yuv422_yuy2": (2, np.dtype(np.uint8)), "yuyv": (2, np.dtype(np.uint8)),
}
_YUV_ORDER = {"yuv422": "uyvy", "uyvy": "uyvy", "yuv422_yuy2": "yuyv", "yuyv": "yuyv"}


def image_array(msg: Any) -> np.ndarray:
    """The pixel array of an Image message, as (H, W) or (H, W, C), without colour conversion.

    Zero-copy view over ``msg.data`` when possible (read-only). Big-endian multi-byte data is
    byte-swapped (copied).

    Raises:
        ImageConversionError: unsupported encoding, zero size, step smaller than a row,
            or fewer bytes than ``step * height``.
    """
    enc = msg.encoding
    if enc not in ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {enc!r}; supported: "
                                   f"{', '.join(sorted(ENCODINGS))}")
    channels, dtype = ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise ImageConversionError(f"image has zero size ({w}x{h})")
    row = w * channels * dtype.itemsize
    if step < row:
        raise ImageConversionError(f"image step {step} is smaller than a row of {w} {enc} "
                                   f"pixels ({row} bytes)")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < step * (h - 1) + row:
        raise ImageConversionError(f"image data is truncated: {buf.size} bytes for {w}x{h} "
                                   f"{enc} with step {step} (need {step * h})")
    rows = np.lib.stride_tricks.as_strided(buf, shape=(h, row), strides=(step, 1))
    if dtype.itemsize == 1:
        arr = rows.reshape(h, w, channels)  # a view: rows keep their stride, pixels are dense
    else:
        contiguous = np.ascontiguousarray(rows) if step != row else buf[: h * row]
        arr = contiguous.view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))
        arr = arr.reshape(h, w, channels)
        if msg.is_bigendian:
            arr = arr.astype(dtype)
    return arr[..., 0] if channels == 1 else arr


def _yuv422_to_rgb(packed: np.ndarray, order: str) -> np.ndarray:
    import cv2

    if packed.shape[1] % 2:
        raise ImageConversionError(f"4:2:2 images need an even width (two pixels share their "
                                   f"colour), got width {packed.shape[1]}")

    code = cv2.COLOR_YUV2RGB_UYVY if order == "uyvy" else cv2.COLOR_YUV2RGB_YUYV
    return cv2.cvtColor(np.ascontiguousarray(packed), code)


def image_to_rgb(msg: Any) -> np.ndarray:
    """An Image message as (H, W, 3) uint8 RGB (copies only when converting).

    mono16 is scaled to 8 bits by its maximum (for display-grade input to the network).
    """
    arr = image_array(msg)
    enc = msg.encoding
    if enc in ("rgb8", "8UC3"):
        return arr
    if enc == "bgr8":
        return arr[..., ::-1]
    if enc == "rgba8":
        return arr[..., :3]
    if enc == "bgra8":
        return arr[..., 2::-1]
    if enc in ("mono8", "8UC1"):
        return np.repeat(arr[..., None], 3, axis=2)
    if enc in ("mono16", "16UC1"):
        peak = max(int(arr.max()), 1)
        gray = (arr.astype(np.float32) * (255.0 / peak)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if enc in _YUV_ORDER:
        return _yuv422_to_rgb(arr, _YUV_ORDER[enc])
    raise ImageConversionError(f"encoding {enc!r} is not a colour image")


def compressed_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header without decoding the image; None when the
    data is neither (or its header is cut short).

    PNG: the IHDR chunk right after the signature. JPEG: the first start-of-frame marker
    (SOF0-SOF15 except DHT, JPG and DAC), found by walking the marker segments.
    """
    b = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data

    def be16(i: int) -> int:
        return int(b[i]) << 8 | int(b[i + 1])

    if len(b) >= 24 and bytes(b[:8]) == b"\x89PNG\r\n\x1a\n" and bytes(b[12:16]) == b"IHDR":
        return be16(16) << 16 | be16(18), be16(20) << 16 | be16(22)
    if len(b) < 4 or b[0] != 0xFF or b[1] != 0xD8:
        return None
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            return None
        marker = int(b[i + 1])
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return (be16(i + 7), be16(i + 5)) if i + 9 <= len(b) else None
        i += 2 + be16(i + 2)
    return None


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """A CompressedImage (JPEG or PNG) as (H, W, 3) uint8 RGB.

    Raises:
        ImageConversionError: empty data, or data that is not a decodable image.
    """
    import cv2

    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size == 0:
        raise ImageConversionError("compressed image has no data")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageConversionError(f"compressed image ({msg.format!r}, {data.size} bytes) "
                                   "cannot be decoded as JPEG or PNG")
    return img[..., ::-1]


def depth_to_metres(msg: Any) -> np.ndarray:
    """A depth Image (16UC1 millimetres or 32FC1 metres) as (H, W) float32 metres, NaN invalid.

    REP 118: 16UC1 0 is invalid; 32FC1 NaN/inf/<=0 are invalid.
    """
    arr = image_array(msg)
    if msg.encoding in ("16UC1", "mono16"):
        out = arr.astype(np.float32) * np.float32(0.001)
        out[arr == 0] = np.nan
        return out
    if msg.encoding == "32FC1":
        out = arr.astype(np.float32, copy=True)
        out[~np.isfinite(out) | (out <= 0)] = np.nan
        return out
    raise ImageConversionError(f"depth image must be 16UC1 (mm) or 32FC1 (m), got "
                               f"{msg.encoding!r}")


def array_to_image_fields(array: np.ndarray, encoding: str) -> dict[str, Any]:
    """Fields of an Image message for ``array``: height, width, encoding, is_bigendian, step,
    and ``data`` as ``array.array('B')`` filled by one memory copy (rclpy's fast path)."""
    import array as pyarray

    channels, dtype = ENCODINGS[encoding]
    arr = np.ascontiguousarray(array, dtype=dtype)
    h, w = arr.shape[:2]
    got = arr.shape[2] if arr.ndim == 3 else 1
    if got != channels:
        raise ImageConversionError(f"{encoding} needs {channels} channels, got {got}")
    data = pyarray.array("B")
    data.frombytes(arr.data.cast("B"))
    return {"height": h, "width": w, "encoding": encoding, "is_bigendian": 0,
            "step": w * channels * dtype.itemsize, "data": data}
