"""Metric scale without a depth camera, anchored on the support plane the robot knows.

The model's RGB-only depth has a fair shape but a scale that is off by 0.5x to 8x from one
camera to the next (the shared real bags and held-out frames). A manipulation robot nearly
always knows where its table is: a fixed camera is calibrated against the robot base, a wrist
camera's pose comes from the arm's kinematics, and the table's height in the base frame is
known. That is one metric plane in the camera frame. The pixels the model paints as
``support_surface`` lie on it, so the one factor that puts their back-projected points on the
plane is the depth's scale: ``s_i = -d / (n . p_i)`` per pixel (``n . p + d = 0`` the plane,
``p_i`` the model's point), and the scale is their median.

The anchor refuses rather than guesses: too few support pixels, or the model's support points
on a plane whose normal disagrees with the known one (the painting marked something else, or
the plane is not the one in view), give no scale.

Frames: the camera optical frame (x right, y down, z forward), metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.geometry.camera import _rays
from vision_banana_ros.geometry.objects import Plane

#: Support pixels read at most (evenly strided): the median settles long before.
ANCHOR_SAMPLES = 8000


@dataclass
class Anchor:
    """The scale of one frame's depth, or why there is none.

    Attributes:
        scale: factor to multiply the model's depth with, or None (refused).
        support_fraction: fraction of the image's pixels used (painted support with depth).
        angle_deg: angle between the known normal and the model's support plane's.
        reason: ``anchored``, or why not (``too few support pixels``, ``normals disagree``).
    """

    scale: float | None
    support_fraction: float
    angle_deg: float | None
    reason: str


def parse_plane(text: str) -> Plane | None:
    """``"nx ny nz d"`` (camera optical frame; the plane ``n . p + d = 0``) -> a
    :class:`~vision_banana_ros.geometry.objects.Plane` with a unit normal facing the camera;
    ``""`` -> None.

    Raises:
        VisionBananaError: not four finite numbers, or a zero normal.
    """
    if not text.strip():
        return None
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        values = []
    if len(values) != 4 or not np.isfinite(values).all():
        raise VisionBananaError(f"a support plane is four numbers 'nx ny nz d' (the plane "
                                f"n . p + d = 0 in the camera optical frame), got {text!r}")
    return plane_of(np.array(values[:3]), values[3])


def plane_of(normal: np.ndarray, offset: float) -> Plane:
    """A plane ``normal . p + offset = 0`` normalised, its normal facing the camera."""
    norm = float(np.linalg.norm(normal))
    if norm < 1e-9:
        raise VisionBananaError("a support plane needs a non-zero normal")
    n, d = np.asarray(normal, np.float64) / norm, float(offset) / norm
    if d < 0:
        n, d = -n, -d
    return Plane(normal=n, offset=d, inliers=0)


def plane_from_pose(position: np.ndarray, rotation: np.ndarray) -> Plane:
    """The z = 0 plane of a pose (a frame on the support, z along its normal), both given in
    the camera optical frame: ``position`` (3,), ``rotation`` (3, 3) with columns the axes."""
    normal = np.asarray(rotation, np.float64)[:, 2]
    return plane_of(normal, -float(normal @ np.asarray(position, np.float64)))


def anchor_scale(depth: np.ndarray, k: np.ndarray, support: np.ndarray, plane: Plane, *,
                 min_fraction: float = 0.02, max_angle_deg: float = 20.0) -> Anchor:
    """The factor that puts the painted support pixels on the known plane.

    Args:
        depth: (H, W) float32 metres, the model's (RGB-only) depth, NaN invalid.
        k: (3, 3) intrinsics of ``depth``.
        support: (H, W) bool, the pixels the semantic painting calls support surface.
        plane: the support plane the robot knows, camera optical frame.
        min_fraction: fewest support pixels, as a fraction of the image.
        max_angle_deg: largest angle between the known normal and that of the plane fitted to
            the model's support points (scale-free: a wrong plane shows here).

    Returns:
        :class:`Anchor`.
    """
    step = max(1, int(np.sqrt(depth.size / (4 * ANCHOR_SAMPLES))))  # a regular subsample
    sub = depth[::step, ::step]
    with np.errstate(invalid="ignore"):
        index = np.flatnonzero(support[::step, ::step] & (sub > 0))  # NaN > 0 is False
    fraction = len(index) / sub.size
    if fraction < min_fraction or len(index) < 20:
        return Anchor(None, fraction, None, f"too few support pixels ({fraction:.1%} of the "
                      f"image, {min_fraction:.0%} needed)")
    index = index[:: max(1, len(index) // ANCHOR_SAMPLES)]
    v, u = np.divmod(index, sub.shape[1])
    rx, ry = _rays(u * float(step), v * float(step), np.asarray(k, np.float64))
    z = sub.ravel()[index].astype(np.float64)
    pts = np.stack([rx * z, ry * z, z], -1)
    centre = np.median(pts, axis=0)
    fitted = np.linalg.svd(pts - centre, full_matrices=False)[2][2]
    angle = float(np.degrees(np.arccos(min(1.0, abs(float(fitted @ plane.normal))))))
    if angle > max_angle_deg:
        return Anchor(None, fraction, angle, f"normals disagree by {angle:.0f} deg (at most "
                      f"{max_angle_deg:.0f})")
    along = pts @ plane.normal  # n . p_i: negative for points beyond the plane's camera side
    per_pixel = -plane.offset / along[along < 0]
    if len(per_pixel) < 20:
        return Anchor(None, fraction, angle, "the support pixels are not in front of the "
                      "camera's side of the plane")
    return Anchor(float(np.median(per_pixel)), fraction, angle, "anchored")
