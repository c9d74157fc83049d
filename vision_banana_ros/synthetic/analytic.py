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


@dataclass(frozen=True)
class Shape:
    """An object standing on the table, in the table's frame (z up, metres).

    ``kind`` is ``box`` (``size`` = (sx, sy, sz), axis-aligned), ``cylinder`` (``size`` =
    (radius, radius, height)) or ``cup`` (an open cylinder: ``size`` = (outer radius, inner
    radius, height); its inside is visible from above, its bottom ``wall`` thick). ``at`` is
    the centre of its foot on the table (x, y); ``base`` lifts the foot (stacking).
    """

    kind: str
    at: tuple[float, float]
    size: tuple[float, float, float]
    base: float = 0.0


def _hits_box(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Entry distance of rays ``o + t d`` (N, 3) into an axis-aligned box (inf: miss)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (lo - o) / d, (hi - o) / d
    near = np.nanmax(np.minimum(t0, t1), axis=-1)
    far = np.nanmin(np.maximum(t0, t1), axis=-1)
    return np.where((far >= near) & (near > 0), near, np.inf)


def _hits_cylinder(o: np.ndarray, d: np.ndarray, c: np.ndarray, r: float, z0: float,
                   z1: float, inside: bool = False) -> np.ndarray:
    """Distance to the side of an upright cylinder (axis through ``c``, z0..z1): the first
    crossing from outside, or (``inside``) the far crossing, seen from within."""
    ox, oy = o[:, 0] - c[0], o[:, 1] - c[1]
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = ox * d[:, 0] + oy * d[:, 1]
    disc = b * b - a * (ox * ox + oy * oy - r * r)
    root = np.sqrt(np.where(disc >= 0, disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b + root) / a if inside else (-b - root) / a
    z = o[:, 2] + t * d[:, 2]
    ok = (disc >= 0) & (t > 0) & (z >= z0) & (z <= z1)
    return np.where(ok, t, np.inf)


def _hits_disc(o: np.ndarray, d: np.ndarray, c: np.ndarray, z: float, r_out: float,
               r_in: float = 0.0) -> np.ndarray:
    """Distance to a horizontal disc (or annulus r_in..r_out) at height z, centre c."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (z - o[:, 2]) / d[:, 2]
    x, y = o[:, 0] + t * d[:, 0] - c[0], o[:, 1] + t * d[:, 1] - c[1]
    rr = x * x + y * y
    return np.where((t > 0) & (rr <= r_out * r_out) & (rr >= r_in * r_in), t, np.inf)


def _shape_hits(o: np.ndarray, d: np.ndarray, s: Shape) -> np.ndarray:
    """Distance along rays to one shape (inf: miss)."""
    c = np.array([s.at[0], s.at[1], 0.0])
    z0 = s.base
    if s.kind == "box":
        half = np.array([s.size[0] / 2, s.size[1] / 2, 0.0])
        return _hits_box(o, d, c - half + [0, 0, z0], c + half + [0, 0, z0 + s.size[2]])
    top = z0 + s.size[2]
    outer = np.minimum(_hits_cylinder(o, d, c, s.size[0], z0, top),
                       _hits_disc(o, d, c, top, s.size[0], s.size[1] if s.kind == "cup" else 0))
    if s.kind == "cylinder":
        return outer
    if s.kind != "cup":
        raise ValueError(f"unknown shape {s.kind!r}")
    # Through the opening: the inside wall (far side) or the inside bottom.
    t_open = _hits_disc(o, d, c, top, s.size[1])
    inner = np.minimum(_hits_cylinder(o, d, c, s.size[1], z0 + 0.005, top, inside=True),
                       _hits_disc(o, d, c, z0 + 0.005, s.size[1]))
    return np.minimum(outer, np.where(np.isfinite(t_open), inner, np.inf))


def render_tabletop(shapes: list[Shape], width: int = 320, height: int = 240, *,
                    hfov_deg: float = 60.0, tilt_deg: float = 45.0, distance_m: float = 0.8,
                    table_m: tuple[float, float] = (1.2, 0.8), table_height_m: float = 0.75,
                    wall: bool = True) -> AnalyticFrame:
    """A table (its edge and the floor 0.75 m below in view, a wall behind it) with objects.

    The camera looks at the table's centre from ``distance_m``, pitched down ``tilt_deg``.
    Ground truth as :func:`render_spheres_on_plane` (instance i is ``shapes[i - 1]``;
    semantic support is the table top and the floor).
    """
    k = intrinsics(width, height, hfov_deg)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    cam_rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
    # Table frame: x right, y away from the camera, z up; optical axis pitched down.
    t = np.radians(tilt_deg)
    r_table_cam = np.array([[1.0, 0.0, 0.0],
                            [0.0, -np.sin(t), np.cos(t)],
                            [0.0, -np.cos(t), -np.sin(t)]])
    origin = np.array([0.0, -distance_m * np.cos(t), distance_m * np.sin(t)])
    d = cam_rays.reshape(-1, 3) @ r_table_cam.T
    o = np.broadcast_to(origin, d.shape)
    hx, hy = table_m[0] / 2, table_m[1] / 2
    surfaces = [_hits_box(o, d, np.array([-hx, -hy, -0.04]), np.array([hx, hy, 0.0])),
                _hits_disc(o, d, np.zeros(3), -table_height_m, 50.0)]
    if wall:
        surfaces.append(_hits_box(o, d, np.array([-5.0, hy + 0.3, -table_height_m]),
                                  np.array([5.0, hy + 0.35, 2.0])))
    objects = [_shape_hits(o, d, s) for s in shapes]
    stack = np.stack(surfaces + objects)
    first = np.argmin(stack, axis=0)
    dist = stack[first, np.arange(len(d))]
    depth = (dist * (cam_rays.reshape(-1, 3)[:, 2])).reshape(height, width)
    instances = np.where(first >= len(surfaces), first - len(surfaces) + 1, 0)
    instances = np.where(np.isfinite(dist), instances, 0).reshape(height, width)
    semantic = np.where(instances > 0, SEMANTIC_OBJECT,
                        np.where(np.isin(first, (0, 1)).reshape(height, width)
                                 & np.isfinite(depth), SEMANTIC_SUPPORT, SEMANTIC_BACKGROUND))
    shade = 0.35 + 0.5 * ((instances * 37) % 11) / 10.0 + 0.15 * (first.reshape(height, width)
                                                                  == 0)
    rgb = np.rint(np.clip(np.stack([shade, shade * 0.9, shade * 0.8], -1), 0, 1) * 255)
    depth = np.where(np.isfinite(depth), depth, np.inf).astype(np.float32)
    from vision_banana_ros.geometry.camera import normals_from_depth

    normals = normals_from_depth(np.where(np.isfinite(depth), depth, np.nan), k)
    return AnalyticFrame(depth=depth, normals=normals, instances=instances.astype(np.uint16),
                         semantic=semantic.astype(np.uint8), rgb=rgb.astype(np.uint8), k=k)
