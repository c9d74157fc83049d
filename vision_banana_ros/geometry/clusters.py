"""Object instances as Euclidean clusters of 3D points (DBSCAN), shared by the node's
``instances_source: clusters`` and the non-learned plane+cluster baseline.

Measured on the held-out synthetic split (data/v2_val, 40 frames, simulated camera depth,
checkpoint of the RGB-D run at step 1200): the model's object pixels (semantic painting)
grouped by Euclidean clusters of the published depth score overlap F 0.69, the instance
painting's colours 0.55 and the plane+cluster baseline on the camera's depth 0.49; RGB only
(the model's own depth) 0.67 against 0.52.
"""

from __future__ import annotations

import numpy as np

from vision_banana_ros.geometry.camera import backproject

#: Sampled pixels at most (the stride grows with the image so clustering stays cheap).
CLUSTER_SAMPLES = 20_000
#: Smallest clustering distance (metres), and the distance in sampled-pixel footprints.
CLUSTER_MIN_EPS_M = 0.02
CLUSTER_FOOTPRINTS = 3.0


def euclidean_clusters(points: np.ndarray, eps_m: float, min_points: int,
                       neighbours: int = 4) -> np.ndarray:
    """Labels of DBSCAN clusters (open3d), 1.. by decreasing size.

    Args:
        points: (N, 3) float points (metres, any frame).
        eps_m: neighbour distance; min_points: smaller clusters are dropped.
        neighbours: DBSCAN's core-point neighbour count.

    Returns:
        (N,) int32 labels, 0 = noise or a dropped cluster.
    """
    import open3d as o3d

    if len(points) == 0:
        return np.zeros(0, np.int32)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(
        np.asarray(points, np.float64)))
    labels = np.asarray(cloud.cluster_dbscan(float(eps_m), neighbours))
    if not (labels >= 0).any():
        return np.zeros(len(points), np.int32)
    sizes = np.bincount(labels[labels >= 0])
    order = [int(c) for c in np.argsort(-sizes, kind="stable") if sizes[c] >= min_points]
    remap = np.zeros(len(sizes) + 1, np.int32)  # index -1 (noise) reads the last entry: 0
    for new, old in enumerate(order, start=1):
        remap[old] = new
    return remap[labels]


def spread_ids(grid: np.ndarray, shape: tuple[int, int], valid: np.ndarray) -> np.ndarray:
    """Ids of every ``stride``-th pixel -> (H, W) uint16 ids (nearest), 0 where not ``valid``."""
    import cv2

    h, w = shape
    full = cv2.resize(grid.astype(np.uint16), (w, h), interpolation=cv2.INTER_NEAREST)
    full[~valid] = 0
    return full


def sample_stride(shape: tuple[int, int], samples: int = CLUSTER_SAMPLES) -> int:
    """The pixel stride that keeps at most about ``samples`` pixels of an (H, W) image."""
    return max(1, round(float(np.sqrt(shape[0] * shape[1] / samples))))


def object_clusters(depth: np.ndarray, k: np.ndarray, objects: np.ndarray, *,
                    min_points: int = 20, eps_m: float | None = None) -> np.ndarray:
    """Instances: the ``objects`` pixels grouped by Euclidean clusters of their 3D points.

    Args:
        depth: (H, W) float32 metres along the optical axis, NaN invalid (published depth).
        k: (3, 3) intrinsics of ``depth``.
        objects: (H, W) bool, the pixels of objects (the semantic painting's ``object``).
        min_points: smallest instance in sampled pixels.
        eps_m: clustering distance; None: three sampled-pixel footprints at the median object
            depth, at least :data:`CLUSTER_MIN_EPS_M`.

    Returns:
        (H, W) uint16 ids, 0 = no object, numbered by decreasing size.
    """
    h, w = depth.shape
    stride = sample_stride((h, w))
    sub = np.asarray(depth, np.float32)[::stride, ::stride]
    ks = np.asarray(k, np.float64).copy()
    ks[:2] /= stride  # sampled pixel j is pixel j * stride
    pts = backproject(sub, ks).reshape(-1, 3)
    chosen = objects[::stride, ::stride].ravel() & np.isfinite(pts).all(1) & (pts[:, 2] > 0)
    if chosen.sum() < min_points:
        return np.zeros((h, w), np.uint16)
    if eps_m is None:
        z = float(np.median(pts[chosen, 2]))
        eps_m = max(CLUSTER_MIN_EPS_M, CLUSTER_FOOTPRINTS * z / float(ks[0, 0]))
    ids = np.zeros(sub.size, np.int32)
    ids[chosen] = euclidean_clusters(pts[chosen], eps_m, min_points)
    return spread_ids(ids.reshape(sub.shape), (h, w), objects & np.isfinite(depth))
