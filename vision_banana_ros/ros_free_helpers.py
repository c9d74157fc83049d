"""Tiny helpers on message-like objects shared by the ROS layer and bag tools (no rclpy)."""

from __future__ import annotations

from typing import Any

import numpy as np


def k_of(info: Any) -> np.ndarray:
    """(3, 3) float64 K of a CameraInfo-like object."""
    return np.asarray(info.k, dtype=np.float64).reshape(3, 3)
