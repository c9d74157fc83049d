"""Building ROS messages from the pure layer's arrays (zero per-element copies)."""

from __future__ import annotations

import array as pyarray
from typing import Any

import numpy as np
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from vision_banana_ros.codecs import instance_palette
from vision_banana_ros.geometry import rotation_to_quaternion
from vision_banana_ros.geometry.objects import ObjectGeometry
from vision_banana_ros.geometry.pointcloud import FIELDS, CloudBuffer
from vision_banana_ros.imageconv import array_to_image_fields

_PALETTE = instance_palette(60)


def image(array: np.ndarray, encoding: str, header: Header) -> Image:
    """sensor_msgs/Image with ``header`` (stamp and frame_id of the input image)."""
    return Image(header=header, **array_to_image_fields(array, encoding))


def camera_info_for(info: CameraInfo, header: Header) -> CameraInfo:
    """A copy of ``info`` restamped with ``header`` (outputs are at the input resolution)."""
    out = CameraInfo()
    out.header = header
    for name in ("height", "width", "distortion_model", "d", "k", "r", "p", "binning_x",
                 "binning_y", "roi"):
        setattr(out, name, getattr(info, name))
    return out


def point_cloud(cloud: CloudBuffer, header: Header) -> PointCloud2:
    """sensor_msgs/PointCloud2 whose data is the packed buffer, copied once."""
    data = pyarray.array("B")
    data.frombytes(np.ascontiguousarray(cloud.points).view(np.uint8).data)
    return PointCloud2(
        header=header, height=cloud.height, width=cloud.width,
        fields=[PointField(name=n, offset=o, datatype=t, count=c) for n, o, t, c in FIELDS],
        is_bigendian=False, point_step=cloud.point_step, row_step=cloud.row_step, data=data,
        is_dense=cloud.is_dense)


def object_markers(objects: list[ObjectGeometry], header: Header) -> MarkerArray:
    """One oriented CUBE marker per object, after a DELETEALL that clears the previous frame."""
    markers = [Marker(header=header, ns="objects", action=Marker.DELETEALL)]
    for obj in objects:
        x, y, z, w = rotation_to_quaternion(obj.rotation)
        r, g, b = _PALETTE[(obj.instance - 1) % len(_PALETTE)]
        markers.append(Marker(
            header=header, ns="objects", id=obj.instance, type=Marker.CUBE, action=Marker.ADD,
            pose=Pose(position=Point(x=float(obj.center[0]), y=float(obj.center[1]),
                                     z=float(obj.center[2])),
                      orientation=Quaternion(x=x, y=y, z=z, w=w)),
            scale=Vector3(x=float(obj.extent[0]), y=float(obj.extent[1]),
                          z=float(obj.extent[2])),
            color=ColorRGBA(r=float(r), g=float(g), b=float(b), a=0.5)))
    return MarkerArray(markers=markers)


def key_values(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=str(v)) for k, v in values.items()]
