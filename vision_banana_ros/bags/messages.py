"""sensor_msgs messages as ``rosbags`` objects (CDR-serialisable without a ROS installation)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

#: Topic layout of RealSense drivers, as in the evaluation bags.
REALSENSE_TOPICS = {
    "image": "/camera/color/image_raw",
    "camera_info": "/camera/color/camera_info",
    "depth": "/camera/aligned_depth_to_color/image_raw",
    "depth_info": "/camera/aligned_depth_to_color/camera_info",
    "instances": "/camera/instances/image_raw",
}

_CHANNELS = {"rgb8": (3, np.uint8), "bgr8": (3, np.uint8), "mono8": (1, np.uint8),
             "16UC1": (1, np.uint16), "mono16": (1, np.uint16), "32FC1": (1, np.float32),
             "32FC3": (3, np.float32), "rgba8": (4, np.uint8), "bgra8": (4, np.uint8)}


@lru_cache(maxsize=1)
def typestore() -> Any:
    """The ROS 2 Jazzy type store of ``rosbags``."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def _header(stamp_ns: int, frame_id: str) -> Any:
    ts = typestore()
    time = ts.types["builtin_interfaces/msg/Time"](sec=int(stamp_ns // 1_000_000_000),
                                                  nanosec=int(stamp_ns % 1_000_000_000))
    return ts.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def image_msg(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Any:
    """sensor_msgs/Image from an (H, W[, C]) array in ``encoding`` (little endian)."""
    channels, dtype = _CHANNELS[encoding]
    arr = np.ascontiguousarray(array, dtype=dtype)
    h, w = arr.shape[:2]
    if (arr.shape[2] if arr.ndim == 3 else 1) != channels:
        raise ValueError(f"{encoding} needs {channels} channels, got shape {arr.shape}")
    return typestore().types["sensor_msgs/msg/Image"](
        header=_header(stamp_ns, frame_id), height=h, width=w, encoding=encoding,
        is_bigendian=0, step=w * channels * arr.itemsize,
        data=np.frombuffer(arr.tobytes(), dtype=np.uint8))


def camera_info_msg(k: np.ndarray, width: int, height: int, stamp_ns: int,
                    frame_id: str) -> Any:
    """sensor_msgs/CameraInfo: plumb_bob, zero distortion, P = [K | 0]."""
    ts = typestore()
    k = np.asarray(k, dtype=np.float64)
    p = np.zeros((3, 4))
    p[:, :3] = k
    roi = ts.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                       width=0, do_rectify=False)
    return ts.types["sensor_msgs/msg/CameraInfo"](
        header=_header(stamp_ns, frame_id), height=height, width=width,
        distortion_model="plumb_bob", d=np.zeros(5), k=k.ravel(), r=np.eye(3).ravel(),
        p=p.ravel(), binning_x=0, binning_y=0, roi=roi)


def depth_mm_from_metres(depth: np.ndarray) -> np.ndarray:
    """float metres -> uint16 millimetres as RealSense publishes (0 = invalid or out of range)."""
    mm = np.rint(np.where(np.isfinite(depth), depth, 0.0) * 1000.0)
    mm[(mm < 0) | (mm > 65535)] = 0
    return mm.astype(np.uint16)
