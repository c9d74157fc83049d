"""pybullet camera conventions: look-at poses, OpenGL matrices, and metric depth.

Frames: world z up (metres); camera optical frame x right, y down, z forward. pybullet's
renderer uses OpenGL's eye frame (x right, y up, z backward), so the view matrix is the inverse
of the optical pose with y and z flipped. Intrinsics follow the ROS convention (pixel centres at
integer coordinates). pybullet's TinyRenderer samples pixels at integer window coordinates and
returns rows top-down, so the symmetric frustum's axis lands at (W / 2, H / 2 - 1) in those
coordinates, not at ((W - 1) / 2, (H - 1) / 2): fitted to micrometres on rendered planes seen by
rolled cameras at several sizes, and checked by the geometry tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision_banana_ros.errors import VisionBananaError

#: Clip planes of the renderer (metres). Depth at or beyond FAR * (1 - 1e-4) means no surface.
NEAR_M, FAR_M = 0.02, 20.0


@dataclass(frozen=True)
class Camera:
    """One view: image size, horizontal field of view, and the optical frame's pose in world.

    Attributes:
        width, height: image size in pixels.
        hfov_deg: horizontal field of view in degrees, in (0, 180).
        pose: (4, 4) T_world_optical (rotation columns are the optical x, y, z axes in world).
    """

    width: int
    height: int
    hfov_deg: float
    pose: np.ndarray

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise VisionBananaError(f"image size must be positive, got {self.width}x"
                                    f"{self.height}")
        if not 0.0 < self.hfov_deg < 180.0:
            raise VisionBananaError(f"horizontal field of view must be in (0, 180) degrees, got "
                                    f"{self.hfov_deg}")

    @property
    def k(self) -> np.ndarray:
        """(3, 3) float64 intrinsics of the rendered image (square pixels).

        The principal point is where TinyRenderer puts the frustum's axis (module docstring).
        """
        fx = (self.width / 2.0) / np.tan(np.radians(self.hfov_deg) / 2.0)
        return np.array([[fx, 0.0, self.width / 2.0],
                         [0.0, fx, self.height / 2.0 - 1.0],
                         [0.0, 0.0, 1.0]])

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view for pybullet's projection (degrees)."""
        half = np.arctan(np.tan(np.radians(self.hfov_deg) / 2.0) * self.height / self.width)
        return float(np.degrees(2.0 * half))

    def view_matrix(self) -> list[float]:
        """pybullet's 16-float column-major view matrix (world -> OpenGL eye)."""
        r = self.pose[:3, :3]
        gl_axes = r * np.array([1.0, -1.0, -1.0])  # columns x, -y, -z of the optical frame
        view = np.eye(4)
        view[:3, :3] = gl_axes.T
        view[:3, 3] = -gl_axes.T @ self.pose[:3, 3]
        return view.T.ravel().tolist()

    def projection_matrix(self) -> list[float]:
        """pybullet's 16-float column-major projection matrix."""
        import pybullet

        return list(pybullet.computeProjectionMatrixFOV(
            self.vfov_deg, self.width / self.height, NEAR_M, FAR_M))


_WORLD_UP = np.array([0.0, 0.0, 1.0])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = _WORLD_UP) -> np.ndarray:
    """T_world_optical of a camera at ``eye`` looking at ``target`` with image-up near ``up``.

    When the view is parallel to ``up`` (looking straight down), world +y is used as image up.
    """
    z = np.asarray(target, float) - np.asarray(eye, float)
    norm = np.linalg.norm(z)
    if norm < 1e-9:
        raise VisionBananaError("camera eye and target coincide")
    z /= norm
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose


def depth_buffer_to_metres(buffer: np.ndarray) -> np.ndarray:
    """pybullet's non-linear depth buffer in [0, 1] -> metres along the optical axis.

    ``z = far * near / (far - (far - near) * b)``; pixels at the far plane (nothing rendered)
    become +inf.
    """
    b = np.asarray(buffer, dtype=np.float64)
    z = FAR_M * NEAR_M / (FAR_M - (FAR_M - NEAR_M) * b)
    z[z >= FAR_M * (1.0 - 1e-4)] = np.inf
    return z.astype(np.float32)
