"""Pinhole camera geometry in the camera optical frame (x right, y down, z forward, metres).

Pixel coordinates follow ROS CameraInfo and OpenCV: pixel (u, v) has its centre at (u, v),
so an image of width W spans u in [-0.5, W - 0.5]. The principal point is read from K, never
assumed at the image centre.
"""

from __future__ import annotations

import numpy as np

from vision_banana_ros.errors import VisionBananaError

__all__ = ["backproject", "backproject_pixels", "check_intrinsics", "normals_from_depth",
           "quaternion_to_rotation", "scale_intrinsics"]


def check_intrinsics(k: np.ndarray, what: str = "K") -> np.ndarray:
    """Validate a (3, 3) pinhole matrix; return it as float64.

    Raises:
        VisionBananaError: wrong shape, non-finite, or non-positive focal lengths.
    """
    k = np.asarray(k, dtype=np.float64)
    if k.shape != (3, 3):
        raise VisionBananaError(f"{what} must be 3x3, got shape {k.shape}")
    if not np.isfinite(k).all():
        bad = ", ".join(f"{_K_NAMES.get((r, c), f'k[{r},{c}]')}={k[r, c]}"
                        for r, c in zip(*np.nonzero(~np.isfinite(k)), strict=True))
        raise VisionBananaError(f"{what} has non-finite entries: {bad}")
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise VisionBananaError(f"{what} has non-positive focal lengths fx={k[0, 0]}, "
                                f"fy={k[1, 1]}")
    return k


_K_NAMES = {(0, 0): "fx", (1, 1): "fy", (0, 2): "cx", (1, 2): "cy", (0, 1): "skew"}


def scale_intrinsics(k: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """K of an image resized by (sx, sy) (new size = old size * s), pixel-centre convention.

    Pixel centres map as ``u' = (u + 0.5) * sx - 0.5``, so ``cx' = (cx + 0.5) * sx - 0.5``;
    focal lengths scale by sx and sy.
    """
    k = check_intrinsics(k)
    out = k.copy()
    out[0, 0] *= sx
    out[0, 1] *= sx
    out[1, 1] *= sy
    out[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
    out[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
    return out


def _rays(u: np.ndarray, v: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray (x, y) at z = 1 through pixel (u, v) (broadcast together, float64), with skew."""
    y = (v - k[1, 2]) / k[1, 1]
    return (u - k[0, 2] - k[0, 1] * y) / k[0, 0], y


def _pixel_rays(shape: tuple[int, int], k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    x, y = _rays(np.arange(w, dtype=np.float64)[None, :],
                 np.arange(h, dtype=np.float64)[:, None], k)
    return x.astype(np.float32), np.broadcast_to(y, (h, w)).astype(np.float32)


def backproject(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Depth image to points in the camera optical frame.

    Args:
        depth: (H, W) float metres along z; NaN or inf stays non-finite in the output.
        k: (3, 3) intrinsics of this image.

    Returns:
        (H, W, 3) float32 points (x, y, z).
    """
    k = check_intrinsics(k)
    if depth.ndim != 2:
        raise VisionBananaError(f"depth must be (H, W), got shape {depth.shape}")
    x, y = _pixel_rays(depth.shape, k)
    z = depth.astype(np.float32, copy=False)
    with np.errstate(invalid="ignore"):  # 0 * inf on the optical axis: NaN, as intended
        return np.stack([x * z, y * z, z], axis=-1)


def backproject_pixels(depth: np.ndarray, index: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Some pixels of a depth image to points in the camera optical frame.

    Args:
        depth: (H, W) float metres along z.
        index: (N,) int flat pixel indices (row-major, ``v * W + u``).
        k: (3, 3) intrinsics of this image.

    Returns:
        (N, 3) float64 points (x, y, z): ``backproject(depth, k).reshape(-1, 3)[index]``.
    """
    k = check_intrinsics(k)
    if depth.ndim != 2:
        raise VisionBananaError(f"depth must be (H, W), got shape {depth.shape}")
    v, u = np.divmod(np.asarray(index, dtype=np.int64), depth.shape[1])
    z = depth.ravel()[index].astype(np.float64)
    x, y = _rays(u, v, k)
    return np.stack([x * z, y * z, z], axis=-1)


def normals_from_depth(depth: np.ndarray, k: np.ndarray,
                       max_relative_jump: float = 0.05) -> np.ndarray:
    """Surface normals from a depth image, facing the camera.

    For each pixel, the horizontal and vertical tangents use the neighbour (left or right,
    up or down) whose depth is closer, so normals do not smear across depth edges. Where both
    neighbours jump by more than ``max_relative_jump`` of the depth, or depth is not finite,
    the normal is NaN.

    Args:
        depth: (H, W) float metres; non-finite = invalid.
        k: (3, 3) intrinsics.

    Returns:
        (H, W, 3) float32 unit normals in the optical frame, NaN where invalid.
    """
    pts = backproject(depth, k).astype(np.float64)
    z = pts[..., 2]
    valid = np.isfinite(z)

    def tangent(axis: int) -> tuple[np.ndarray, np.ndarray]:
        fwd = np.full(pts.shape, np.nan)
        bwd = np.full(pts.shape, np.nan)
        zf = np.full(z.shape, np.inf)
        zb = np.full(z.shape, np.inf)
        sl_a = [slice(None)] * 2
        sl_b = [slice(None)] * 2
        sl_a[axis], sl_b[axis] = slice(None, -1), slice(1, None)
        a, b = tuple(sl_a), tuple(sl_b)
        with np.errstate(invalid="ignore"):
            fwd[a] = pts[b] - pts[a]
            bwd[b] = pts[b] - pts[a]
            zf[a] = np.abs(z[b] - z[a])
            zb[b] = np.abs(z[b] - z[a])
        zf[~np.isfinite(zf)] = np.inf
        zb[~np.isfinite(zb)] = np.inf
        use_fwd = zf <= zb
        t = np.where(use_fwd[..., None], fwd, bwd)
        jump = np.minimum(zf, zb)
        return t, jump

    tu, ju = tangent(1)
    tv, jv = tangent(0)
    with np.errstate(invalid="ignore"):
        n = np.cross(tu, tv)
        norm = np.linalg.norm(n, axis=-1, keepdims=True)
        n = n / norm
        # Face the camera: the normal points against the viewing ray.
        flip = (n * pts).sum(-1) > 0
    n[flip] *= -1.0
    limit = max_relative_jump * np.abs(z)
    bad = ~valid | ~(ju <= limit) | ~(jv <= limit) | ~np.isfinite(norm[..., 0]) \
        | (norm[..., 0] == 0)
    n[bad] = np.nan
    return n.astype(np.float32)


def quaternion_to_rotation(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Unit quaternion (x, y, z, w; normalised here, identity if zero) -> (3, 3) rotation."""
    n = x * x + y * y + z * z + w * w
    if n < 1e-12:
        return np.eye(3)
    s = 2.0 / n
    return np.array([
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)]])


def rotation_to_quaternion(r: np.ndarray) -> tuple[float, float, float, float]:
    """(3, 3) rotation matrix -> unit quaternion (x, y, z, w), w >= 0."""
    r = np.asarray(r, dtype=np.float64)
    m = np.array([
        [r[0, 0] - r[1, 1] - r[2, 2], 0.0, 0.0, 0.0],
        [r[0, 1] + r[1, 0], r[1, 1] - r[0, 0] - r[2, 2], 0.0, 0.0],
        [r[0, 2] + r[2, 0], r[1, 2] + r[2, 1], r[2, 2] - r[0, 0] - r[1, 1], 0.0],
        [r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1], r[0, 0] + r[1, 1] + r[2, 2]],
    ]) / 3.0
    values, vectors = np.linalg.eigh(m + np.tril(m, -1).T)  # symmetric (Bar-Itzhack)
    q = vectors[:, int(np.argmax(values))]
    if q[3] < 0:
        q = -q
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])
