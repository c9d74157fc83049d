"""Analytic tabletop scenes: spheres resting on a plane, ray cast in numpy.

Exact ground truth without a renderer: depth along the optical axis, normals, instance and
semantic ids. Used by the codec demo and by tests as an independent geometric reference.
Frames: camera optical frame (x right, y down, z forward), metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision_banana_ros.codecs.constants import INSTANCE_BACKGROUND

#: Semantic ids of the package's class table (see DEFAULT_SEMANTIC_PALETTE).
SEMANTIC_BACKGROUND, SEMANTIC_SUPPORT, SEMANTIC_OBJECT = 0, 1, 2


@dataclass(frozen=True)
class AnalyticFrame:
    """Ground truth of one view; all arrays (H, W[, 3]).

    Attributes:
        depth: float32 metres along z, +inf where the ray hits nothing.
        normals: float32 unit normals facing the camera, NaN where nothing is hit.
        instances: uint16 ids, 0 = not an object (plane or nothing).
        semantic: uint8 class ids (0 background, 1 support surface, 2 object).
        rgb: uint8 shaded colour image.
        k: (3, 3) float64 intrinsics.
    """

    depth: np.ndarray
    normals: np.ndarray
    instances: np.ndarray
    semantic: np.ndarray
    rgb: np.ndarray
    k: np.ndarray


def intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Pinhole K (3, 3) for a horizontal field of view, principal point at the pixel centre."""
    fx = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
    return np.array([[fx, 0.0, (width - 1) / 2.0], [0.0, fx, (height - 1) / 2.0], [0, 0, 1.0]])


def render_spheres_on_plane(width: int = 320, height: int = 240, *, n_spheres: int = 4,
                            seed: int = 0, hfov_deg: float = 60.0) -> AnalyticFrame:
    """A plane about 0.8 m below-ahead of the camera (tilted 40 deg) with resting spheres."""
    rng = np.random.default_rng(seed)
    k = intrinsics(width, height, hfov_deg)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)

    tilt = np.radians(40.0)
    normal = np.array([0.0, -np.cos(tilt), -np.sin(tilt)])  # faces the camera (up is -y)
    centre = np.array([0.0, 0.0, 0.9])
    plane_t = (centre @ normal) / (rays @ normal)
    plane_t[plane_t <= 0] = np.inf

    depth = plane_t.copy()
    normals = np.broadcast_to(normal, rays.shape).copy()
    instances = np.zeros((height, width), np.uint16)
    semantic = np.where(np.isfinite(plane_t), SEMANTIC_SUPPORT, SEMANTIC_BACKGROUND).astype(
        np.uint8)
    colours = np.zeros(rays.shape)
    colours[:] = (0.55, 0.45, 0.35)

    # In-plane axes for placing spheres.
    axis_x = np.array([1.0, 0.0, 0.0])
    axis_y = np.cross(normal, axis_x)
    for i in range(1, n_spheres + 1):
        radius = rng.uniform(0.03, 0.08)
        offset = rng.uniform(-0.25, 0.25) * axis_x + rng.uniform(-0.2, 0.2) * axis_y
        c = centre + offset + radius * normal
        # |t r - c|^2 = R^2  ->  t^2 |r|^2 - 2 t r.c + |c|^2 - R^2 = 0
        a = (rays * rays).sum(-1)
        b = rays @ c
        disc = b * b - a * (c @ c - radius * radius)
        hit = disc >= 0
        t = np.where(hit, (b - np.sqrt(np.where(hit, disc, 0.0))) / a, np.inf)
        closer = hit & (t > 0) & (t < depth)
        depth[closer] = t[closer]
        point = rays[closer] * t[closer, None]
        normals[closer] = (point - c) / radius
        instances[closer] = i
        semantic[closer] = SEMANTIC_OBJECT
        colours[closer] = rng.uniform(0.2, 1.0, 3)

    miss = ~np.isfinite(depth)
    normals[miss] = np.nan
    light = np.array([0.3, -0.8, -0.5]) / np.linalg.norm([0.3, -0.8, -0.5])
    shade = np.clip(np.nan_to_num((normals * light).sum(-1)), 0.0, 1.0) * 0.7 + 0.3
    rgb = np.where(miss[..., None], 0.1, colours * shade[..., None])
    instances[semantic != SEMANTIC_OBJECT] = INSTANCE_BACKGROUND
    return AnalyticFrame(depth=depth.astype(np.float32), normals=normals.astype(np.float32),
                         instances=instances, semantic=semantic,
                         rgb=np.rint(rgb * 255).astype(np.uint8), k=k)
