"""The node's output topics and their messages, in one place and without ROS.

:data:`OUTPUT_TOPICS` is the contract (DESIGN.md): name relative to the node, message type,
encoding, and which tasks it needs. :func:`output_messages` turns one frame's results into
``(topic, msgtype, fields)`` triples of plain values (nested dicts, numpy arrays, and the input
header object passed through), which :mod:`vision_banana_ros.ros.messages` turns into rclpy
messages for the node and :mod:`vision_banana_ros.bags.build` into rosbags messages for the
evaluator's output bag: both publish exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vision_banana_ros.codecs import TASKS, instance_palette
from vision_banana_ros.imageconv import array_to_image_fields

#: Namespace of the outputs when the node has its default name.
NODE_NAMESPACE = "/vision_banana"

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINT_CLOUD = "sensor_msgs/msg/PointCloud2"
MARKER_ARRAY = "visualization_msgs/msg/MarkerArray"


@dataclass(frozen=True)
class OutputTopic:
    """One output topic of the node.

    Attributes:
        key: short name used in code and records (``depth``, ``points``...).
        name: topic name relative to the node's private namespace (``depth/image``).
        msgtype: ROS message type (``sensor_msgs/msg/Image``).
        encoding: image encoding, for Image topics.
        needs: tasks that must all run for the topic to exist.
        needs_any: tasks of which at least one must run (empty: no such condition).
        rgbd: exists only when the node takes the camera's depth.
    """

    key: str
    name: str
    msgtype: str
    encoding: str | None = None
    needs: frozenset[str] = frozenset()
    needs_any: frozenset[str] = frozenset()
    rgbd: bool = False

    def wanted(self, tasks: Iterable[str], rgbd: bool = False) -> bool:
        """Whether the node publishes this topic when it runs ``tasks``."""
        tasks = set(tasks)
        return (self.needs <= tasks and (not self.needs_any or bool(self.needs_any & tasks))
                and (rgbd or not self.rgbd))


def _task_topic(name: str) -> OutputTopic:
    spec = TASKS[name]
    return OutputTopic(name, spec.topic, IMAGE, spec.ros_encoding, frozenset({name}))


#: Every output topic of the contract except the per-task paintings (:func:`topics_for`).
OUTPUT_TOPICS: tuple[OutputTopic, ...] = (
    *(_task_topic(name) for name in TASKS),
    OutputTopic("depth_info", "depth/camera_info", CAMERA_INFO, None, frozenset({"depth"})),
    OutputTopic("depth_source", "depth/source", IMAGE, "mono8", frozenset({"depth"}),
                rgbd=True),
    OutputTopic("overlay", "segmentation/overlay", IMAGE, "rgb8",
                needs_any=frozenset({"instances", "semantic"})),
    OutputTopic("points", "points", POINT_CLOUD, None, frozenset({"depth"})),
    OutputTopic("objects", "objects", MARKER_ARRAY, None, frozenset({"depth", "instances"})),
)
BY_KEY = {t.key: t for t in OUTPUT_TOPICS}
#: Outputs that carry the depth's metric scale (withheld when it cannot be anchored).
METRIC_KEYS = frozenset({"depth", "depth_info", "depth_source", "points", "objects"})


def painting_topic(task: str) -> OutputTopic:
    """``task_images/<task>``: the raw painting of a task (rgb8)."""
    return OutputTopic(f"task_{task}", f"task_images/{task}", IMAGE, "rgb8", frozenset({task}))


def topics_for(tasks: Iterable[str], rgbd: bool = False,
               paintings: bool = True) -> list[OutputTopic]:
    """The topics a node running ``tasks`` publishes (with the painting topics)."""
    tasks = list(tasks)
    out = [t for t in OUTPUT_TOPICS if t.wanted(tasks, rgbd)]
    if paintings:
        out += [painting_topic(t) for t in tasks]
    return out


# -- message fields ---------------------------------------------------------------------------

def image_fields(array: np.ndarray, encoding: str, header: Any) -> dict[str, Any]:
    """sensor_msgs/Image fields of ``array`` (one memory copy of the pixels)."""
    return {"header": header, **array_to_image_fields(array, encoding)}


def camera_info_fields(info: Any, header: Any) -> dict[str, Any]:
    """sensor_msgs/CameraInfo fields: ``info`` (any CameraInfo-like object) restamped."""
    out: dict[str, Any] = {"header": header}
    for name in ("height", "width", "distortion_model", "d", "k", "r", "p", "binning_x",
                 "binning_y"):
        out[name] = getattr(info, name)
    roi = info.roi
    out["roi"] = {n: getattr(roi, n) for n in ("x_offset", "y_offset", "height", "width",
                                               "do_rectify")}
    return out


def cloud_fields(cloud: Any, header: Any) -> dict[str, Any]:
    """sensor_msgs/PointCloud2 fields of a :class:`~vision_banana_ros.geometry.pointcloud.
    CloudBuffer` (the data is the packed buffer, copied once)."""
    import array as pyarray

    from vision_banana_ros.geometry.pointcloud import FIELDS

    data = pyarray.array("B")
    data.frombytes(np.ascontiguousarray(cloud.points).view(np.uint8).data)
    return {"header": header, "height": cloud.height, "width": cloud.width,
            "fields": [{"name": n, "offset": o, "datatype": t, "count": c}
                       for n, o, t, c in FIELDS],
            "is_bigendian": False, "point_step": cloud.point_step, "row_step": cloud.row_step,
            "data": data, "is_dense": cloud.is_dense}


#: visualization_msgs/Marker constants.
MARKER_CUBE, MARKER_ADD, MARKER_DELETEALL = 1, 0, 3
_PALETTE = instance_palette(60)


def markers_fields(objects: list[Any], header: Any) -> dict[str, Any]:
    """visualization_msgs/MarkerArray fields: DELETEALL (clears the previous frame's boxes),
    then one oriented CUBE per object (:class:`~vision_banana_ros.geometry.objects.
    ObjectGeometry`), coloured like its instance in the overlay."""
    from vision_banana_ros.geometry import rotation_to_quaternion

    markers: list[dict[str, Any]] = [{"header": header, "ns": "objects",
                                      "action": MARKER_DELETEALL}]
    for obj in objects:
        x, y, z, w = rotation_to_quaternion(obj.rotation)
        r, g, b = _PALETTE[(obj.instance - 1) % len(_PALETTE)]
        cx, cy, cz = (float(v) for v in obj.center)
        ex, ey, ez = (float(v) for v in obj.extent)
        markers.append({
            "header": header, "ns": "objects", "id": int(obj.instance), "type": MARKER_CUBE,
            "action": MARKER_ADD,
            "pose": {"position": {"x": cx, "y": cy, "z": cz},
                     "orientation": {"x": x, "y": y, "z": z, "w": w}},
            "scale": {"x": ex, "y": ey, "z": ez},
            "color": {"r": float(r), "g": float(g), "b": float(b), "a": 0.5}})
    return {"markers": markers}


def output_messages(result: Any, header: Any, info: Any | None,
                    wanted: set[str] | None = None,
                    cloud: Any | None = None) -> list[tuple[OutputTopic, dict[str, Any]]]:
    """Every output of one frame as (topic, message fields).

    Args:
        result: a :class:`~vision_banana_ros.processing.FrameResult`.
        header: the input image's header (stamp and frame_id), passed through as is.
        info: the input's CameraInfo (for ``depth/camera_info``), or None.
        wanted: topic keys to build (None: every one the result has).
        cloud: the cloud to publish instead of ``result.cloud`` (the evaluator's strided one).
    """
    out = result.outputs
    msgs: list[tuple[OutputTopic, dict[str, Any]]] = []

    def want(key: str) -> bool:
        return wanted is None or key in wanted

    for name in TASKS:
        value = getattr(out, name)
        if value is not None and want(name):
            msgs.append((BY_KEY[name], image_fields(value, TASKS[name].ros_encoding, header)))
    if out.depth is not None and info is not None and want("depth_info"):
        msgs.append((BY_KEY["depth_info"], camera_info_fields(info, header)))
    if result.depth_source is not None and want("depth_source"):
        msgs.append((BY_KEY["depth_source"], image_fields(result.depth_source, "mono8",
                                                          header)))
    if result.overlay is not None and want("overlay"):
        msgs.append((BY_KEY["overlay"], image_fields(result.overlay, "rgb8", header)))
    cloud = cloud if cloud is not None else result.cloud
    if cloud is not None and want("points"):
        msgs.append((BY_KEY["points"], cloud_fields(cloud, header)))
    if result.objects_done and want("objects"):
        msgs.append((BY_KEY["objects"], markers_fields(result.objects, header)))
    for task, painting in out.paintings.items():
        topic = painting_topic(task)
        if want(topic.key):
            msgs.append((topic, image_fields(painting, "rgb8", header)))
    return msgs
