"""Write RGB-D frames as a ROS 2 bag with the RealSense-style topic layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.bags.messages import (
    REALSENSE_TOPICS,
    camera_info_msg,
    depth_mm_from_metres,
    image_msg,
    typestore,
)
from vision_banana_ros.errors import VisionBananaError

#: First stamp of written bags (2023-11-14T22:13:20Z), as in the evaluation bags.
DEFAULT_START_NS = 1_700_000_000_000_000_000


class RgbdBagWriter:
    """Context manager writing rgb8 colour, camera_info, 16UC1 mm depth and 16UC1 instances.

    Args:
        path: bag folder to create (must not exist).
        storage: ``"mcap"`` or ``"sqlite3"``.
        frame_id: header frame of every message.
        rate_hz: stamps advance by 1 / rate_hz per frame.
    """

    def __init__(self, path: Path, *, storage: str = "mcap",
                 frame_id: str = "camera_color_optical_frame", rate_hz: float = 10.0,
                 start_ns: int = DEFAULT_START_NS) -> None:
        from vision_banana_ros.bags.mcap_stream import open_writer

        if storage not in ("mcap", "sqlite3"):
            raise VisionBananaError(f"unknown bag storage {storage!r}; use mcap or sqlite3")
        self.path = Path(path)
        if self.path.exists():
            raise VisionBananaError(f"bag {self.path} already exists")
        self._writer = open_writer(self.path, storage)
        self.frame_id = frame_id
        self.period_ns = round(1e9 / rate_hz)
        self.start_ns = start_ns
        self.count = 0
        self._conns: dict[str, Any] = {}

    def __enter__(self) -> RgbdBagWriter:
        self._writer.open()
        ts = typestore()
        for key, topic in REALSENSE_TOPICS.items():
            msgtype = ("sensor_msgs/msg/CameraInfo" if key.endswith("info")
                       else "sensor_msgs/msg/Image")
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=ts)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._writer.close()

    def write_message(self, topic: str, msgtype: str, stamp_ns: int, msg: Any) -> None:
        """Write any rosbags message on ``topic`` (the connection is added on first use; the
        RealSense topics exist from the start)."""
        ts = typestore()
        if topic not in self._conns:
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=ts)
        self._writer.write(self._conns[topic], stamp_ns, ts.serialize_cdr(msg, msgtype))

    def write(self, rgb: np.ndarray, depth_m: np.ndarray, k: np.ndarray,
              instances: np.ndarray | None = None) -> int:
        """Write one frame; returns its stamp in nanoseconds."""
        ts = typestore()
        stamp = self.start_ns + self.count * self.period_ns
        h, w = rgb.shape[:2]
        msgs = {
            "image": image_msg(rgb, "rgb8", stamp, self.frame_id),
            "camera_info": camera_info_msg(k, w, h, stamp, self.frame_id),
            "depth": image_msg(depth_mm_from_metres(depth_m), "16UC1", stamp, self.frame_id),
            "depth_info": camera_info_msg(k, w, h, stamp, self.frame_id),
        }
        if instances is not None:
            msgs["instances"] = image_msg(instances, "16UC1", stamp, self.frame_id)
        for key, msg in msgs.items():
            conn = self._conns[REALSENSE_TOPICS[key]]
            self._writer.write(conn, stamp, ts.serialize_cdr(msg, conn.msgtype))
        self.count += 1
        return stamp
