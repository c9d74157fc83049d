"""Point clouds as PointCloud2 byte buffers, built by vectorised numpy (no per-point loops).

Layout (little endian, 20 bytes per point): x, y, z float32 at offsets 0, 4, 8 (metres, camera
optical frame), rgb float32 at 12 (packed 0x00RRGGBB bits, as PCL and RViz expect), instance
uint16 at 16, then 2 bytes of padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision_banana_ros.geometry.camera import _pixel_rays, check_intrinsics

#: PointField datatypes (sensor_msgs/PointField constants).
FLOAT32, UINT16 = 7, 4
POINT_DTYPE = np.dtype({"names": ["x", "y", "z", "rgb", "instance"],
                        "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
                        "offsets": [0, 4, 8, 12, 16], "itemsize": 20})
#: (name, offset, datatype, count) of every field, for sensor_msgs/PointField.
FIELDS = (("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1),
          ("rgb", 12, FLOAT32, 1), ("instance", 16, UINT16, 1))


@dataclass
class CloudBuffer:
    """A packed cloud: ``points`` is a structured array of POINT_DTYPE, (H, W) or (N,)."""

    points: np.ndarray
    height: int
    width: int
    is_dense: bool

    @property
    def point_step(self) -> int:
        return POINT_DTYPE.itemsize

    @property
    def row_step(self) -> int:
        return self.width * POINT_DTYPE.itemsize


class RayCache:
    """Per-pixel ray factors x/z and y/z for one (shape, K), computed once (depth_image_proc's
    precomputed camera-model constants)."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._rays: tuple[np.ndarray, np.ndarray] | None = None

    def rays(self, shape: tuple[int, int], k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = (shape, tuple(np.round(np.asarray(k, np.float64).ravel(), 9)))
        if key != self._key:
            self._rays = _pixel_rays(shape, check_intrinsics(k))
            self._key = key
        assert self._rays is not None
        return self._rays


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 -> (...) float32 whose bits are 0x00RRGGBB."""
    c = rgb.astype(np.uint32)
    return ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).view(np.float32)


def build_cloud(depth: np.ndarray, k: np.ndarray, rgb: np.ndarray | None = None,
                instances: np.ndarray | None = None, *, organized: bool = True,
                stride: int = 1, min_depth: float = 0.0, max_depth: float = np.inf,
                rays: RayCache | None = None) -> CloudBuffer:
    """Back-project depth into a packed cloud.

    Args:
        depth: (H, W) metres, NaN invalid.
        k: (3, 3) intrinsics of ``depth``.
        rgb: optional (H, W, 3) uint8 colours; instances: optional (H, W) uint16 ids.
        organized: keep the (H / stride, W / stride) grid with NaN points for invalid pixels;
            otherwise only valid points, as one row.
        stride: take every stride-th pixel in both directions.
        min_depth, max_depth: valid depth range in metres (outside becomes invalid).
        rays: optional cache of the per-pixel ray factors.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    x_f, y_f = (rays or RayCache()).rays(depth.shape, k)
    sl = (slice(None, None, stride), slice(None, None, stride))
    z = depth[sl].astype(np.float32, copy=True)
    z[~((z >= min_depth) & (z <= max_depth))] = np.nan  # NaN compares False: stays invalid
    valid = np.isfinite(z)
    pts = np.empty(z.shape, dtype=POINT_DTYPE)
    pts["x"] = x_f[sl] * z
    pts["y"] = y_f[sl] * z
    pts["z"] = z
    pts["rgb"] = pack_rgb(rgb[sl]) if rgb is not None else np.float32(0.0)
    pts["instance"] = instances[sl] if instances is not None else 0
    if organized:
        h, w = z.shape
        return CloudBuffer(points=pts, height=h, width=w, is_dense=bool(valid.all()))
    dense = pts[valid]
    return CloudBuffer(points=dense, height=1, width=len(dense), is_dense=True)


def unpack_xyz(data: bytes | memoryview | np.ndarray, count: int) -> np.ndarray:
    """(count, 3) float32 xyz from a packed buffer (for tests and tools)."""
    arr = np.frombuffer(data, dtype=POINT_DTYPE, count=count)
    return np.stack([arr["x"], arr["y"], arr["z"]], axis=-1)
