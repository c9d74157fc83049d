"""Object instances from geometry first: what stands on a support surface, split where objects
meet (the node's ``instances_source: geometry``).

The learned semantic painting is trained on renders and its ``object`` class does not hold on
real images; depth shapes do (UOIS-Net-3D, Xie et al. 2021: foreground and object centres from
the point cloud transfer from synthetic training to real cameras). So, on a working grid of at
most ``max_pixels`` pixels:

1. support surfaces and walls (:mod:`.support`): RANSAC planes kept where they cover large
   connected regions; the depth noise ``sigma(z) = c z^2`` measured on the primary support;
2. object evidence: points above a support (by more than three noise sigmas, less than
   ``max_height_m``) whose foot lies on that support's extent, never on a wall or support
   region; weak evidence (less than twice that height) counts only where connected to strong
   evidence, or where the painting calls the pixel an object (the painting votes, it does
   not veto);
3. cuts: depth discontinuities, concave creases (two surfaces meeting in a valley, as where
   two objects touch; Stein et al., "Object partitioning using local convexity", CVPR 2014),
   and, with the camera's depth, the pixels where the camera had none;
4. segments: connected components of the uncut evidence; cut and depth-less pixels join the
   nearest segment of compatible depth; depth-less regions nobody claims (glass) become
   segments of their own, split along image edges;
5. merging: two neighbouring segments not separated by a concave crease of continuous depth
   (where objects touch or stand on each other) become one when together they are no wider
   and cover no more of the support than apart: the inside of a mug and its outside;
6. fragments smaller than ``min_object_m`` across, and segments whose footprint is wider than
   ``max_width_m`` (furniture, the bottom band of a wall), are dropped.

Steps 3-5 run on the window of the grid around the evidence. Frames: the camera optical
frame, metres; ids are numbered by decreasing size (the node's tracker then keeps an
object's id across frames, :mod:`.tracking`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from vision_banana_ros.geometry.objects import Plane
from vision_banana_ros.geometry.support import (
    Grid,
    Surfaces,
    find_surfaces,
    grid_stride,
    make_grid,
    on_extent,
)


@dataclass(frozen=True)
class InstanceParams:
    """Parameters of :func:`segment_instances` (lengths in metres, sizes in grid pixels)."""

    #: Working grid size at most (a 640x480 frame is processed at 320x240).
    max_pixels: int = 80_000
    #: Plane inlier distance: at least ``plane_tol_m``, growing as ``plane_tol_per_m2 z^2``.
    plane_tol_m: float = 0.01
    plane_tol_per_m2: float = 0.008
    #: Object evidence: above a support by ``noise_sigmas`` noise sigmas, within these bounds.
    noise_sigmas: float = 3.0
    min_height_m: float = 0.006
    max_min_height_m: float = 0.03
    #: Objects end this far above their support (walls, people and shelves above are not).
    max_height_m: float = 0.5
    #: Depth discontinuity between grid neighbours: the largest of these.
    jump_m: float = 0.008
    jump_relative: float = 0.025
    jump_sigmas: float = 4.0
    #: Concave crease: normals of points ``crease_offset`` grid pixels apart on either side
    #: converge by more than this (``(n_b - n_a) . (p_b - p_a) / |p_b - p_a|``).
    crease_offset: int = 2
    crease_threshold: float = 0.35
    #: Cut and depth-less pixels join a segment at most this many grid pixels away.
    grow_px: int = 6
    #: Merging: neighbours within ``merge_gap_px``; at most ``merge_crease`` of their shared
    #: border along a concave crease with continuous camera depth; union no wider than
    #: ``merge_width_ratio`` times the wider and covering no more than ``merge_area_ratio``
    #: times the two apart.
    merge_gap_px: int = 4
    merge_min_border: int = 4
    merge_crease: float = 0.5
    merge_width_ratio: float = 1.2
    merge_area_ratio: float = 1.1
    #: Smallest object, across (metres), and the widest (footprint on the support: larger
    #: segments are furniture, or depth-less regions beyond the camera's range).
    min_object_m: float = 0.015
    max_width_m: float = 0.6


@dataclass
class InstanceResult:
    """Instances of one frame and what they were made from.

    Attributes:
        ids: (H, W) uint16 instance ids at the input resolution, 0 = no object.
        surfaces: support surfaces and walls (on the working grid).
        stride: the working grid's stride.
        timings_ms: per step.
    """

    ids: np.ndarray
    surfaces: Surfaces = field(default_factory=Surfaces)
    stride: int = 1
    timings_ms: dict[str, float] = field(default_factory=dict)


def segment_instances(depth: np.ndarray, k: np.ndarray, *,
                      sensor_valid: np.ndarray | None = None,
                      rgb: np.ndarray | None = None,
                      object_vote: np.ndarray | None = None,
                      support: Plane | None = None,
                      params: InstanceParams = InstanceParams()) -> InstanceResult:
    """Object instances of an organised depth image.

    Args:
        depth: (H, W) float metres along the optical axis, NaN or <= 0 invalid (the published,
            fused depth).
        k: (3, 3) intrinsics of ``depth``.
        sensor_valid: (H, W) bool, where the camera itself measured depth (None: everywhere
            ``depth`` is valid, as for the model's own depth).
        rgb: (H, W, 3) uint8 colour image (image edges split depth-less regions).
        object_vote: (H, W) bool, pixels the semantic painting calls objects.
        support: a support plane the robot knows (camera optical frame), or None.
        params: :class:`InstanceParams`.

    Returns:
        :class:`InstanceResult`.
    """
    t0 = time.perf_counter()
    h, w = depth.shape
    p = params
    s = grid_stride((h, w), p.max_pixels)
    grid = make_grid(depth, k, s, normal_offset=p.crease_offset)
    times = {"grid": time.perf_counter()}
    result = InstanceResult(ids=np.zeros((h, w), np.uint16), stride=s)
    if grid.valid.sum() >= 200:
        z_med = float(np.median(grid.z[::4, ::4][grid.valid[::4, ::4]]))
        tol = max(p.plane_tol_m, p.plane_tol_per_m2 * z_med ** 2)
        result.surfaces = find_surfaces(grid, tol_m=tol, known=support,
                                        wall_height_m=p.max_height_m)
        times["surfaces"] = time.perf_counter()
        if result.surfaces.supports:
            vote = None if object_vote is None else np.asarray(object_vote)[::s, ::s]
            evidence = object_evidence(grid, result.surfaces, p, vote)
            times["evidence"] = time.perf_counter()
            min_px = max(4, int(0.5 * (p.min_object_m * grid.k[0, 0] / z_med) ** 2))
            labels = _segment_window(grid, evidence, result.surfaces, sensor_valid, rgb,
                                     min_px, p)
            times["segments"] = time.perf_counter()
            result.ids = _finish(labels, min_px, s, (h, w), depth)
    steps = list(times)
    result.timings_ms = {f"instances_{k}": (times[k] - (times[steps[i - 1]] if i else t0))
                         * 1e3 for i, k in enumerate(steps)}
    return result


def _segment_window(grid: Grid, evidence: np.ndarray, surfaces: Surfaces,
                    sensor_valid: np.ndarray | None, rgb: np.ndarray | None, min_px: int,
                    p: InstanceParams) -> np.ndarray:
    """Steps 3-5 of the module docstring, on the window of the grid around the evidence
    (objects cover a part of most frames): (h, w) int segments of the whole grid."""
    labels = np.zeros(grid.shape, np.int32)
    rows, cols = np.flatnonzero(evidence.any(1)), np.flatnonzero(evidence.any(0))
    if not len(rows):
        return labels
    margin = p.grow_px + p.merge_gap_px + 2 * p.crease_offset + 2
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, grid.shape[0])
    x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, grid.shape[1])
    win = grid.window(y0, y1, x0, x1)
    s = grid.stride
    sensor = (np.ones(win.shape, bool) if sensor_valid is None
              else np.asarray(sensor_valid, bool)[y0 * s:y1 * s:s, x0 * s:x1 * s:s])
    colour = None if rgb is None else rgb[y0 * s:y1 * s:s, x0 * s:x1 * s:s]
    z = win.z
    jump = np.maximum(np.maximum(p.jump_m, p.jump_relative * z),
                      p.jump_sigmas * surfaces.noise_per_m2 * z * z)
    jump = np.where(win.valid, jump, np.float32(0)).astype(np.float32)
    cut, crease = cuts(win, jump, p)
    part = initial_segments(win, evidence[y0:y1, x0:x1], cut, sensor, jump, min_px, p, colour)
    zs = np.where(sensor, z, np.float32(np.nan))
    part, width = merge_enclosed(part, zs, jump, crease, win, surfaces.supports[0].normal, p)
    part[width[part] > p.max_width_m] = 0
    labels[y0:y1, x0:x1] = part
    return labels


def object_evidence(grid: Grid, surfaces: Surfaces, p: InstanceParams,
                    vote: np.ndarray | None) -> np.ndarray:
    """(h, w) bool: pixels standing on a support (see the module docstring, step 2)."""
    import cv2

    z = np.nan_to_num(grid.z, nan=1.0)
    min_h = np.clip(p.noise_sigmas * surfaces.noise_per_m2 * z * z, p.min_height_m,
                    p.max_min_height_m).astype(np.float32)
    free = grid.valid & ~surfaces.surface
    above = np.zeros(grid.shape, bool)
    strong = np.zeros(grid.shape, bool)
    for plane, region in zip(surfaces.supports, surfaces.support_regions, strict=True):
        height = grid.heights(plane)
        with np.errstate(invalid="ignore"):
            index = np.flatnonzero(free & (height > min_h) & (height < p.max_height_m))
        feet = np.flatnonzero(region)
        index = index[on_extent(grid.points(index), plane,
                                grid.points(feet[:: max(1, len(feet) // 4000)]))]
        above.ravel()[index] = True
        strong.ravel()[index[height.ravel()[index] > 2.0 * min_h.ravel()[index]]] = True
    if vote is not None:
        strong |= above & vote
    count, comp = cv2.connectedComponents(above.astype(np.uint8), connectivity=8)
    has_strong = np.zeros(count, bool)
    has_strong[comp[strong]] = True
    has_strong[0] = False
    return has_strong[comp]


def cuts(grid: Grid, jump: np.ndarray, p: InstanceParams) -> tuple[np.ndarray, np.ndarray]:
    """((h, w) bool pixels at a depth discontinuity, a concave crease or without depth,
    (h, w) bool pixels at a concave crease)."""
    z = grid.z
    cut = ~grid.valid
    crease = np.zeros(grid.shape, bool)
    o = p.crease_offset
    xyz, nrm = grid.xyz, grid.normals
    with np.errstate(invalid="ignore"):
        for axis in (1, 2):  # of the planar (3, h, w) arrays: rows, columns
            a = [slice(None)] * 3
            b = [slice(None)] * 3
            a[axis], b[axis] = slice(None, -1), slice(1, None)
            za, zb = tuple(a[1:]), tuple(b[1:])
            broken = ~(np.abs(z[zb] - z[za]) <= np.minimum(jump[za], jump[zb]))
            cut[za] |= broken
            cut[zb] |= broken
            a[axis], b[axis] = slice(None, -2 * o), slice(2 * o, None)
            c = [slice(None)] * 2
            c[axis - 1] = slice(o, -o)
            dp = xyz[tuple(b)] - xyz[tuple(a)]
            dn = nrm[tuple(b)] - nrm[tuple(a)]
            bend = (dn[0] * dp[0] + dn[1] * dp[1] + dn[2] * dp[2]) / np.sqrt(
                dp[0] * dp[0] + dp[1] * dp[1] + dp[2] * dp[2])
            crease[tuple(c)] |= bend < -p.crease_threshold
    return cut | crease, crease


def initial_segments(grid: Grid, evidence: np.ndarray, cut: np.ndarray, sensor: np.ndarray,
                     jump: np.ndarray, min_px: int, p: InstanceParams,
                     rgb: np.ndarray | None) -> np.ndarray:
    """(h, w) int32 segments of the evidence (module docstring, step 4), 0 = none; ``rgb``
    is the colour image on the grid (every stride-th pixel)."""
    import cv2

    core = evidence & ~cut & sensor
    count, labels = cv2.connectedComponents(core.astype(np.uint8), connectivity=4)
    sizes = np.bincount(labels.ravel(), minlength=count)
    keep = sizes >= min_px
    keep[0] = False
    labels = np.where(keep[labels], labels, 0).astype(np.int32)
    core = labels > 0
    if core.any() and (evidence & ~core).any():
        dist, nearest = cv2.distanceTransformWithLabels(
            (~core).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
        # DIST_LABEL_PIXEL numbers the zero pixels (the core) in raster order from 1.
        core_z, core_label = grid.z[core], labels[core]
        near = nearest - 1
        with np.errstate(invalid="ignore"):
            close = np.abs(grid.z - core_z[near]) <= jump * (1.0 + dist / 2.0)
        join = evidence & ~core & (dist <= p.grow_px) & close
        labels = np.where(join, core_label[near], labels)
    rest = evidence & (labels == 0)
    if rest.any() and rgb is not None:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        edges = cv2.Canny(grey, 50, 120) > 0
        _, more = cv2.connectedComponents((rest & ~edges & ~cut).astype(np.uint8),
                                          connectivity=4)
        labels = np.where(more > 0, more + labels.max(), labels)
    return labels


def _finish(labels: np.ndarray, min_px: int, stride: int, shape: tuple[int, int],
            depth: np.ndarray) -> np.ndarray:
    """Drop segments under ``min_px``, number the rest by decreasing size, bring them to the
    input resolution (each grid pixel covers ``stride`` x ``stride`` pixels), 0 where the
    depth is invalid."""
    import cv2

    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    order = np.argsort(-sizes, kind="stable")
    order = order[sizes[order] >= min_px]
    remap = np.zeros(len(sizes), np.uint16)
    remap[order] = np.arange(1, len(order) + 1)
    grid_ids = remap[labels]
    h, w = shape
    gh, gw = grid_ids.shape  # nearest-neighbour upsampling by a whole factor: a repeat
    ids = cv2.resize(grid_ids, (gw * stride, gh * stride), interpolation=cv2.INTER_NEAREST)
    ids = np.ascontiguousarray(ids[:h, :w])
    with np.errstate(invalid="ignore"):
        ids[~(depth > 0) | np.isinf(depth)] = 0
    return ids


def _border_pairs(labels: np.ndarray, zs: np.ndarray, jump: np.ndarray, crease: np.ndarray,
                  gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment pairs that face each other within ``gap`` grid pixels: (pairs (P, 2) ids
    lo < hi, border counts (P,), counts of those where the camera's depth ``zs`` is
    continuous across (within ``jump`` per grid pixel) at a concave ``crease`` (P,))."""
    import cv2

    hh, ww = labels.shape
    n = int(labels.max()) + 1
    near_crease = cv2.dilate(crease.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    segment = labels > 0
    codes, joined = [], []
    for dy, dx in [(0, g) for g in range(1, gap + 1)] + [(g, 0) for g in range(1, gap + 1)]:
        a, b = labels[: hh - dy, : ww - dx], labels[dy:, dx:]
        m = a != b
        m &= segment[: hh - dy, : ww - dx]
        m &= segment[dy:, dx:]
        if not m.any():
            continue
        za, zb = zs[: hh - dy, : ww - dx][m], zs[dy:, dx:][m]
        limit = np.minimum(jump[: hh - dy, : ww - dx], jump[dy:, dx:])[m] * max(dy, dx)
        with np.errstate(invalid="ignore"):  # NaN (no camera depth): not continuous
            continuous = np.abs(za - zb) <= limit
        joined.append(continuous & (near_crease[: hh - dy, : ww - dx][m]
                                    | near_crease[dy:, dx:][m]))
        lo, hi = np.minimum(a[m], b[m]), np.maximum(a[m], b[m])
        codes.append(lo.astype(np.int64) * n + hi)
    if not codes:
        return np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0)
    code = np.concatenate(codes)
    uniq, inv = np.unique(code, return_inverse=True)
    counts = np.bincount(inv.ravel())
    creased = np.bincount(inv.ravel(), weights=np.concatenate(joined).astype(np.float64))
    return np.stack([uniq // n, uniq % n], 1), counts, creased


#: Directions (in the support plane) of the footprint extents that bound segment widths.
_DIRECTIONS = np.stack([np.cos(np.arange(8) * np.pi / 8), np.sin(np.arange(8) * np.pi / 8)])
_ANGLES = np.arange(16) * np.pi / 8
_COS, _SIN = np.cos(_ANGLES), np.sin(_ANGLES)
_COS_F, _SIN_F = _COS.tolist(), _SIN.tolist()
_NEXT = np.roll(np.arange(16), -1)
_DET = np.sin(np.pi / 8)


def _dop_area(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Areas of the polygons bounded by extents along :data:`_DIRECTIONS`: (P, 8) lowest and
    highest projections -> (P,) areas (0 for empty footprints).

    The 16 supporting lines (each direction and its opposite) of a convex set, taken in
    angular order, meet consecutively at the polygon's corners.
    """
    h = np.concatenate([hi, -lo], axis=1).astype(np.float64)  # (P, 16) support values
    hn = h[:, _NEXT]
    with np.errstate(invalid="ignore"):
        x = (_SIN[_NEXT] * h - _SIN * hn) / _DET
        y = (_COS * hn - _COS[_NEXT] * h) / _DET
        area = 0.5 * np.abs((x * y[:, _NEXT] - x[:, _NEXT] * y).sum(1))
    return np.where(np.isfinite(area), area, 0.0)


def _dop_area_of(support: list[float]) -> float:
    """:func:`_dop_area` of one footprint given as its 16 support values (``hi`` then
    ``-lo``), in plain floats."""
    total = 0.0
    corners = []
    for j in range(16):
        k = (j + 1) % 16
        h, hn = support[j], support[k]
        corners.append(((_SIN_F[k] * h - _SIN_F[j] * hn) / _DET,
                        (_COS_F[j] * hn - _COS_F[k] * h) / _DET))
    for j in range(16):
        (x0, y0), (x1, y1) = corners[j], corners[(j + 1) % 16]
        total += x0 * y1 - x1 * y0
    return abs(total) / 2.0 if math.isfinite(total) else 0.0


def _footprint_extents(labels: np.ndarray, grid: Grid, basis: np.ndarray,
                       count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per label, the smallest and largest projection of its points' feet on 8 directions of
    the support plane: ((count, 8), (count, 8)) float32 (+inf / -inf for absent labels)."""
    index = np.flatnonzero(labels.ravel() > 0)
    index = index[np.argsort(labels.ravel()[index], kind="stable")]
    lab = labels.ravel()[index]
    feet = (grid.points(index) @ basis) @ _DIRECTIONS.astype(np.float32)  # (N, 8)
    lo = np.full((count, 8), np.inf, np.float32)
    hi = np.full((count, 8), -np.inf, np.float32)
    if len(lab):
        present, starts = np.unique(lab, return_index=True)
        lo[present] = np.fmin.reduceat(feet, starts, axis=0)
        hi[present] = np.fmax.reduceat(feet, starts, axis=0)
    return lo, hi


def merge_enclosed(labels: np.ndarray, zs: np.ndarray, jump: np.ndarray,
                   crease: np.ndarray, grid: Grid, up: np.ndarray,
                   p: InstanceParams) -> tuple[np.ndarray, np.ndarray]:
    """Merge neighbouring segments (module docstring, step 5).

    Footprints are described by their extents along 8 directions of the support plane: a
    segment's width is the largest (within 2 % of its diameter), its area that of the
    16-sided polygon the extents bound (:func:`_dop_area`, a few per cent above its convex
    hull's), and a union's are the extents' minima and maxima: no hull per pair.

    Args:
        labels: (h, w) int segments; zs: (h, w) the camera's depth on the grid (NaN where
            it had none); jump: (h, w) discontinuity thresholds; crease: (h, w) bool concave
            creases (a border mostly along one, with continuous camera depth across, is where
            two objects touch or stand on each other: never merged); grid: the working grid;
            up: the primary support's normal (footprints are projections on it).

    Returns:
        ((h, w) int segments, merged ones sharing the id of one of them; (n,) float footprint
        width in metres of each id, 0 for ids no longer used).
    """
    basis = np.linalg.svd(np.eye(3) - np.outer(up, up))[0][:, :2].astype(np.float32)
    n = int(labels.max()) + 1
    lo, hi = _footprint_extents(labels, grid, basis, n)
    pairs, counts, at_crease = _border_pairs(labels, zs, jump, crease, p.merge_gap_px)
    candidates = (counts >= p.merge_min_border) & (at_crease <= p.merge_crease * counts)
    if not candidates.any():
        return labels, np.nan_to_num((hi - lo).max(1, initial=0.0), neginf=0.0)
    area = _dop_area(lo, hi)
    # Per pair a handful of numbers: plain floats are faster than small arrays here.
    ext: dict[int, list[float]] = {}
    areas: dict[int, float] = {}

    def extents(x: int) -> list[float]:
        if x not in ext:
            ext[x] = hi[x].tolist() + (-lo[x]).tolist()
            areas[x] = float(area[x])
        return ext[x]

    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i in np.argsort(-counts, kind="stable"):
        if not candidates[i]:
            continue
        ra, rb = root(int(pairs[i, 0])), root(int(pairs[i, 1]))
        if ra == rb:
            continue
        ea, eb = extents(ra), extents(rb)
        union = [x if x > y else y for x, y in zip(ea, eb, strict=True)]
        if union == ea or union == eb:  # one footprint within the other's extents
            union_area = max(areas[ra], areas[rb])
        else:
            width = max(max(ea[j] + ea[j + 8] for j in range(8)),
                        max(eb[j] + eb[j + 8] for j in range(8)))
            if not max(union[j] + union[j + 8] for j in range(8)) <= (
                    p.merge_width_ratio * width):
                continue
            union_area = _dop_area_of(union)
            if union_area > p.merge_area_ratio * (areas[ra] + areas[rb]):
                continue
        parent[ra] = rb
        ext[rb], areas[rb] = union, union_area
    roots = np.array([root(i) for i in range(n)])
    np.minimum.at(lo, roots, lo.copy())
    np.maximum.at(hi, roots, hi.copy())
    return roots[labels], np.nan_to_num((hi - lo).max(1, initial=0.0), neginf=0.0)
