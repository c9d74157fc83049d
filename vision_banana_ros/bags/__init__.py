"""ROS bags without ROS (the ``rosbags`` library): message building and RGB-D bag writing."""

from vision_banana_ros.bags.messages import (
    REALSENSE_TOPICS,
    camera_info_msg,
    depth_mm_from_metres,
    image_msg,
    typestore,
)
from vision_banana_ros.bags.writer import RgbdBagWriter

__all__ = ["REALSENSE_TOPICS", "RgbdBagWriter", "camera_info_msg", "depth_mm_from_metres",
           "image_msg", "typestore"]
