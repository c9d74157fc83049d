"""vision_banana_ros: a distilled Vision Banana generator as a ROS 2 perception node.

Only :mod:`vision_banana_ros.ros` imports rclpy and message packages; everything else is plain
Python on numpy and torch, testable without ROS.
"""

__version__ = "0.1.0"
