"""Camera geometry on numpy: back-projection, normals from depth, intrinsics scaling."""

from vision_banana_ros.geometry.camera import (
    backproject,
    backproject_pixels,
    check_intrinsics,
    normals_from_depth,
    rotation_to_quaternion,
    scale_intrinsics,
)

__all__ = ["backproject", "backproject_pixels", "check_intrinsics", "normals_from_depth",
           "rotation_to_quaternion", "scale_intrinsics"]
