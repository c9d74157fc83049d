"""Where the node gets the support plane of a frame (the scale anchor,
:mod:`vision_banana_ros.scale_anchor`), in order: a TF frame whose z = 0 plane is the support
(``support_frame``, with ``tf2_ros`` where it is installed: in a ROS workspace), the newest
``geometry_msgs/PoseStamped`` on the ``support_plane`` topic (its z axis the normal, its
position on the plane, in the image's optical frame), or the static parameter of a fixed
camera (``support_plane_static``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from vision_banana_ros.geometry.camera import quaternion_to_rotation
from vision_banana_ros.geometry.objects import Plane
from vision_banana_ros.scale_anchor import parse_plane, plane_from_pose
from vision_banana_ros.sync import stamp_ns


def _rotation(q: Any) -> np.ndarray:
    """(3, 3) rotation of a geometry_msgs Quaternion."""
    return quaternion_to_rotation(q.x, q.y, q.z, q.w)


class SupportPlaneSource:
    """The support plane of each frame for one node.

    Args:
        node: the rclpy node (TF listener, clock).
        support_frame: TF frame of the support (z = 0 plane), or "".
        warn: called once with a line when ``support_frame`` is set but TF is missing.
    """

    def __init__(self, node: Any, support_frame: str, warn: Callable[[str], Any]) -> None:
        self.support_frame = support_frame
        self.pose: Any = None
        self._buffer: Any = None
        self._listener: Any = None
        if support_frame:
            try:
                import tf2_ros

                self._buffer = tf2_ros.Buffer()
                self._listener = tf2_ros.TransformListener(self._buffer, node)
            except ImportError:
                warn(f"support_frame {support_frame!r} needs tf2_ros, which is not installed "
                     "here (it comes with a ROS workspace); the support_plane topic and "
                     "support_plane_static still work")

    def on_pose(self, msg: Any) -> None:
        self.pose = msg

    def close(self) -> None:
        self._listener = self._buffer = None

    def plane(self, header: Any, static: str, max_age_s: float) -> tuple[Plane | None, str]:
        """(the plane in the optical frame of the image with ``header``, or None; why not:
        "" when no source is configured at all, else the reason)."""
        reasons = []
        if self.support_frame:
            plane, why = self._from_tf(header, max_age_s)
            if plane is not None:
                return plane, ""
            reasons.append(why)
        if self.pose is not None:
            plane, why = self._from_pose(header, max_age_s)
            if plane is not None:
                return plane, ""
            reasons.append(why)
        fixed = parse_plane(static)
        if fixed is not None:
            return fixed, ""
        return None, "; ".join(reasons)

    def _from_pose(self, header: Any, max_age_s: float) -> tuple[Plane | None, str]:
        pose = self.pose
        frame = pose.header.frame_id
        if frame and frame != header.frame_id:
            return None, (f"the support_plane pose is in frame {frame!r}, not the image's "
                          f"{header.frame_id!r} (other frames need TF: support_frame)")
        age = abs(stamp_ns(header) - stamp_ns(pose.header)) / 1e9
        if max_age_s > 0 and age > max_age_s:
            return None, f"the support_plane pose is {age:.1f} s from the image (stale)"
        p = pose.pose.position
        return plane_from_pose(np.array([p.x, p.y, p.z]),
                               _rotation(pose.pose.orientation)), ""

    def _from_tf(self, header: Any, max_age_s: float) -> tuple[Plane | None, str]:
        if self._buffer is None:
            return None, "no TF (tf2_ros is not installed)"
        try:
            from rclpy.duration import Duration
            from rclpy.time import Time

            stamp = Time(nanoseconds=stamp_ns(header))
            t = self._buffer.lookup_transform(header.frame_id, self.support_frame, stamp,
                                              timeout=Duration(seconds=0.05))
        except Exception as err:  # tf2's lookup errors (extrapolation, unconnected, ...)
            return None, f"no transform {header.frame_id} <- {self.support_frame}: {err}"
        age = abs(stamp_ns(header) - stamp_ns(t.header)) / 1e9
        if max_age_s > 0 and age > max_age_s:
            return None, f"the support transform is {age:.1f} s from the image (stale)"
        tr = t.transform.translation
        return plane_from_pose(np.array([tr.x, tr.y, tr.z]), _rotation(t.transform.rotation)), ""
