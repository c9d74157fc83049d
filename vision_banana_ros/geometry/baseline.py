"""A non-learned instance baseline: the support plane by RANSAC, Euclidean clusters above it.

The classic tabletop segmentation (Rusu, "Semantic 3D Object Maps for Everyday Manipulation in
Human Living Environments", 2009; PCL's organized multi-plane and Euclidean cluster
extraction): every RGB-D result of the evaluator is read against it.
"""

from __future__ import annotations

import numpy as np

from vision_banana_ros.geometry.camera import backproject
from vision_banana_ros.geometry.clusters import euclidean_clusters, sample_stride, spread_ids
from vision_banana_ros.geometry.objects import fit_support_plane

#: Points the support plane's RANSAC reads at most.
_RANSAC_SAMPLES = 4000


def inside_convex_hull(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """(N,) bool: which of (N, 2) ``points`` lie in the convex hull of (M, 2) ``corners``
    (on the same side of every hull edge; boundary included)."""
    import cv2

    hull = cv2.convexHull(np.asarray(corners, np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 3:
        return np.zeros(len(points), bool)
    edges = np.roll(hull, -1, axis=0) - hull
    rel = points[:, None, :] - hull[None, :, :]
    cross = edges[None, :, 0] * rel[..., 1] - edges[None, :, 1] * rel[..., 0]
    return (cross >= -1e-9).all(1) | (cross <= 1e-9).all(1)


def plane_cluster_instances(depth: np.ndarray, k: np.ndarray, *, stride: int | None = None,
                            plane_tol_m: float = 0.012, cluster_m: float = 0.02,
                            min_points: int = 30, max_height_m: float = 0.5) -> np.ndarray:
    """Instance ids from the camera's depth alone.

    Args:
        depth: (H, W) float metres (NaN or <= 0 invalid); k: (3, 3) intrinsics.
        stride: use every ``stride``-th pixel (ids are spread to the skipped ones); None: 2,
            or more for frames above about 80,000 pixels (at most 20,000 samples).
        plane_tol_m: RANSAC inlier distance of the support plane.
        cluster_m: Euclidean clustering distance (DBSCAN eps).
        min_points: smallest cluster, in sampled points.
        max_height_m: points farther above the plane are not objects (walls, people).

    Returns:
        (H, W) uint16 ids, 0 = no object, numbered by decreasing size.
    """
    h, w = depth.shape
    stride = stride if stride is not None else max(2, sample_stride((h, w)))
    sub = np.asarray(depth, np.float32)[::stride, ::stride]
    ks = k.astype(np.float64).copy()
    ks[:2] /= stride  # sampled pixel j is pixel j * stride
    pts = backproject(sub, ks).reshape(-1, 3)
    valid = np.isfinite(pts).all(1) & (pts[:, 2] > 0)
    ids = np.zeros(sub.size, np.int32)
    if valid.sum() < 100:
        return np.zeros((h, w), np.uint16)
    p = pts[valid]
    rng = np.random.default_rng(0)
    # RANSAC on a seeded subsample (a plane needs few points); inliers are then all points
    # within the tolerance.
    sample = p[rng.choice(len(p), min(len(p), _RANSAC_SAMPLES), replace=False)]
    plane = fit_support_plane(sample, plane_tol_m, 200, seed=0)
    if plane is None:
        return np.zeros((h, w), np.uint16)
    normal, offset = plane.normal, plane.offset  # the camera (origin) on its positive side
    height = p @ normal + offset
    # The support's extent: objects project inside the convex hull of the plane's inliers.
    basis = np.linalg.svd(np.eye(3) - np.outer(normal, normal))[0][:, :2]
    on_plane = p[np.abs(height) <= plane_tol_m] @ basis
    if len(on_plane) < 10:
        return np.zeros((h, w), np.uint16)
    hull = on_plane[rng.choice(len(on_plane), min(len(on_plane), 3000), replace=False)]
    above = (height > plane_tol_m) & (height < max_height_m)
    above[above] = inside_convex_hull(p[above] @ basis, hull)
    if above.sum() < min_points:
        return np.zeros((h, w), np.uint16)
    index = np.flatnonzero(valid)[above]
    ids[index] = euclidean_clusters(p[above], cluster_m, min_points, neighbours=5)
    return spread_ids(ids.reshape(sub.shape), (h, w), np.isfinite(depth) & (depth > 0))
