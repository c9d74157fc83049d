"""Support surfaces (tables, shelves, the floor) and walls from an organised depth image.

The geometry half of the instance step (:mod:`.instances`): planes found by RANSAC on the
points, kept where they form large connected regions of the image (the top of a box is a
plane too, but a small one), the primary support chosen among them with a prior on where a
robot's camera sees its table, and the depth noise measured on it.

Frames: the camera optical frame (x right, y down, z forward), metres. Plane normals face the
camera (``n . p + d > 0`` on the camera's side), as :class:`~.objects.Plane`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision_banana_ros.geometry.camera import _pixel_rays
from vision_banana_ros.geometry.objects import Plane, least_squares_plane

#: Points the RANSAC reads at most, and single-point hypotheses per plane (a hypothesis is a
#: point and its smoothed normal: one sample suffices, so few are needed).
RANSAC_SAMPLES = 2000
RANSAC_HYPOTHESES = 48


@dataclass
class Grid:
    """The working grid: every ``stride``-th pixel of the input, with its points and normals.

    Coordinates are planar (one (h, w) float32 array each) so that per-pixel dot products
    stay contiguous.

    Attributes:
        stride: input pixels per grid pixel (grid pixel (j, i) is input pixel (j*s, i*s)).
        xyz: (3, h, w) float32 points in metres (NaN invalid); ``xyz[2]`` is the depth.
        normals: (3, h, w) float32 unit normals of the smoothed surface, facing the camera
            (NaN invalid).
        valid: (h, w) bool, finite depth > 0.
        k: (3, 3) intrinsics of the grid.
    """

    stride: int
    xyz: np.ndarray
    normals: np.ndarray
    valid: np.ndarray
    k: np.ndarray

    @property
    def z(self) -> np.ndarray:
        return self.xyz[2]

    @property
    def shape(self) -> tuple[int, int]:
        return self.valid.shape  # type: ignore[return-value]

    def window(self, y0: int, y1: int, x0: int, x1: int) -> Grid:
        """The grid's rows y0:y1 and columns x0:x1 (views; K shifted to the window)."""
        k = self.k.copy()
        k[0, 2] -= x0
        k[1, 2] -= y0
        return Grid(stride=self.stride, xyz=self.xyz[:, y0:y1, x0:x1],
                    normals=self.normals[:, y0:y1, x0:x1], valid=self.valid[y0:y1, x0:x1], k=k)

    def points(self, index: np.ndarray) -> np.ndarray:
        """(N, 3) float32 points of flat grid indices ``index``."""
        return self.xyz.reshape(3, -1)[:, index].T

    def normals_at(self, index: np.ndarray) -> np.ndarray:
        """(N, 3) float32 normals of flat grid indices ``index``."""
        return self.normals.reshape(3, -1)[:, index].T

    def heights(self, plane: Plane) -> np.ndarray:
        """(h, w) float32 signed distance of every grid point to ``plane`` (NaN invalid)."""
        n = plane.normal.astype(np.float32)
        return self.xyz[0] * n[0] + self.xyz[1] * n[1] + self.xyz[2] * n[2] + np.float32(
            plane.offset)


def grid_stride(shape: tuple[int, int], max_pixels: int) -> int:
    """The smallest stride whose grid of an (H, W) image has at most ``max_pixels`` pixels."""
    return max(1, int(np.ceil(np.sqrt(shape[0] * shape[1] / max_pixels))))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of planar (3, h, w) vector fields."""
    return np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                     a[0] * b[1] - a[1] * b[0]])


def make_grid(depth: np.ndarray, k: np.ndarray, stride: int, *, normal_window: int = 5,
              normal_offset: int = 2) -> Grid:
    """Subsample a depth image and compute its points and smoothed normals.

    Args:
        depth: (H, W) float metres along the optical axis, NaN or <= 0 invalid.
        k: (3, 3) intrinsics of ``depth``.
        stride: grid stride (:func:`grid_stride`).
        normal_window: box filter (grid pixels) smoothing the points before differencing.
        normal_offset: the tangents are differences of smoothed points this many grid pixels
            apart on either side.
    """
    import cv2

    z = np.array(np.asarray(depth)[::stride, ::stride], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        valid = z > 0
    valid &= np.isfinite(z)
    z[~valid] = np.nan
    ks = np.asarray(k, np.float64).copy()
    ks[:2] /= stride  # grid pixel j is input pixel j * stride
    rx, ry = _pixel_rays(z.shape, ks)
    xyz = np.stack([rx * z, ry * z, z])
    win = (normal_window, normal_window)
    count = cv2.boxFilter(valid.astype(np.float32), -1, win, normalize=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        smooth = np.stack([cv2.boxFilter(np.where(valid, c, np.float32(0)), -1, win,
                                         normalize=False) for c in xyz]) / count
    o = normal_offset
    du = np.full(xyz.shape, np.nan, np.float32)
    dv = np.full(xyz.shape, np.nan, np.float32)
    du[:, :, o:-o] = smooth[:, :, 2 * o:] - smooth[:, :, :-2 * o]
    dv[:, o:-o] = smooth[:, 2 * o:] - smooth[:, :-2 * o]
    n = _cross(du, dv)
    with np.errstate(invalid="ignore", divide="ignore"):
        facing = n[0] * xyz[0] + n[1] * xyz[1] + n[2] * xyz[2]
        n *= np.where(facing > 0, np.float32(-1), np.float32(1)) / np.sqrt(
            n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
    n[:, ~valid] = np.nan
    return Grid(stride=stride, xyz=xyz, normals=n, valid=valid, k=ks)


def ransac_planes(points: np.ndarray, normals: np.ndarray, tol_m: float, *,
                  max_planes: int = 4, min_fraction: float = 0.06,
                  rng: np.random.Generator | None = None) -> list[Plane]:
    """The largest planes of a point set, one after the other (sequential RANSAC).

    Hypotheses are single points with their (smoothed) normals; the best is refined by least
    squares on its inliers, whose points are then removed before the next plane.

    Args:
        points: (N, 3) finite points (a subsample: every hypothesis reads all of them);
            normals: (N, 3) their unit normals (NaN allowed).
        tol_m: inlier distance.
        max_planes: planes at most; min_fraction: a plane holds at least this fraction of
            the points, else the search stops.

    Returns:
        Planes (normals facing the camera), largest first; ``inliers`` counts sampled points.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    usable = np.isfinite(normals).all(1)
    points, normals = points[usable], normals[usable]
    total = len(points)
    planes: list[Plane] = []
    while len(planes) < max_planes and len(points) >= max(30, min_fraction * total):
        seeds = rng.choice(len(points), min(RANSAC_HYPOTHESES, len(points)), replace=False)
        hyp_n = normals[seeds]
        hyp_d = -np.einsum("hc,hc->h", hyp_n, points[seeds])
        counts = (np.abs(points @ hyp_n.T + hyp_d) <= tol_m).sum(0)
        best = int(np.argmax(counts))
        inliers = np.abs(points @ hyp_n[best] + hyp_d[best]) <= tol_m
        if inliers.sum() < 3:
            break
        normal, offset = least_squares_plane(points[inliers].astype(np.float64))
        inliers = np.abs(points @ normal + offset) <= tol_m
        if inliers.sum() < min_fraction * total:
            break
        planes.append(Plane(normal=normal, offset=offset, inliers=int(inliers.sum())))
        points, normals = points[~inliers], normals[~inliers]
    return planes


def merge_coincident(planes: list[Plane], tol_m: float, cos_parallel: float) -> list[Plane]:
    """Planes that are parallel and within ``2 * tol_m`` of each other become one (the first)."""
    out: list[Plane] = []
    for p in planes:
        for i, q in enumerate(out):
            if p.normal @ q.normal >= cos_parallel and abs(p.offset - q.offset) < 2 * tol_m:
                out[i] = Plane(q.normal, q.offset, q.inliers + p.inliers)
                break
        else:
            out.append(p)
    return out


@dataclass
class Surfaces:
    """Support surfaces and walls of one frame, on its working grid.

    Attributes:
        supports: planes objects stand on, the primary first (all parallel to it).
        support_regions: (h, w) bool per support: the large connected regions on it.
        walls: large planes not parallel to the primary support (walls, cabinet fronts).
        surface: (h, w) bool, pixels on any support or wall region.
        noise_per_m2: depth noise model ``sigma(z) = noise_per_m2 * z**2`` (m^-1), measured
            on the primary support.
    """

    supports: list[Plane] = field(default_factory=list)
    support_regions: list[np.ndarray] = field(default_factory=list)
    walls: list[Plane] = field(default_factory=list)
    surface: np.ndarray | None = None
    noise_per_m2: float = 0.0

    @property
    def primary(self) -> Plane | None:
        return self.supports[0] if self.supports else None


def plane_regions(grid: Grid, plane: Plane, tol_m: float, normal_cos: float,
                  min_pixels: int) -> np.ndarray:
    """(h, w) bool: the connected regions of ``plane``'s inliers (within ``tol_m``, normal
    within ``acos(normal_cos)``) of at least ``min_pixels`` grid pixels."""
    import cv2

    n = plane.normal.astype(np.float32)
    with np.errstate(invalid="ignore"):
        agree = np.abs(grid.normals[0] * n[0] + grid.normals[1] * n[1]
                       + grid.normals[2] * n[2]) >= normal_cos
        inl = (np.abs(grid.heights(plane)) <= tol_m) & agree
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inl.astype(np.uint8),
                                                               connectivity=8)
    big = np.zeros(count, bool)
    big[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_pixels
    return big[labels]


def find_surfaces(grid: Grid, *, tol_m: float, max_planes: int = 4,
                  min_fraction: float = 0.06, region_fraction: float = 0.04,
                  normal_cos: float = 0.85, parallel_deg: float = 15.0,
                  up_bias: float = 0.3, wall_height_m: float = 0.5,
                  known: Plane | None = None,
                  rng: np.random.Generator | None = None) -> Surfaces:
    """Support surfaces and walls of a grid (RANSAC planes kept where their regions are large).

    The primary support is the plane whose region scores highest: its area times a prior
    that favours normals pointing up in an upright camera (``up_bias - n_y``, clipped: a
    table seen from above has n_y < 0, a wall facing a downward-looking camera n_y > 0).
    Every plane parallel to it (within ``parallel_deg``) is a support too (a shelf, the
    floor); the others are walls where they rise more than ``wall_height_m`` above the
    primary support, lie below it or stand off its extent (a wall, a cabinet front, the
    table's own side), else they are the faces of large objects standing on it (a cereal box
    seen up close) and belong to neither. With ``known`` (a support plane the robot knows),
    it is the primary support and only walls and other supports are searched.

    Args:
        grid: the working grid (:func:`make_grid`).
        tol_m: plane inlier distance.
        region_fraction: smallest connected region, as a fraction of the valid grid pixels.
        normal_cos: an inlier's normal is within ``acos(normal_cos)`` of the plane's.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    valid = grid.valid
    cos_par = float(np.cos(np.radians(parallel_deg)))
    index = np.flatnonzero(valid)
    if len(index) > RANSAC_SAMPLES:
        index = rng.choice(index, RANSAC_SAMPLES, replace=False)
    planes = ransac_planes(grid.points(index), grid.normals_at(index), tol_m,
                           max_planes=max_planes, min_fraction=min_fraction, rng=rng)
    if known is not None:
        planes = [known, *planes]
    planes = merge_coincident(planes, tol_m, cos_par)
    min_px = max(20, int(region_fraction * valid.sum()))
    regions = [plane_regions(grid, p, tol_m, normal_cos, min_px) for p in planes]
    areas = np.array([r.sum() for r in regions], np.float64)
    if known is not None:
        first = 0
    else:
        score = areas * np.clip([up_bias - p.normal[1] for p in planes], 0.05, 1.3)
        if not len(areas) or areas.max() == 0:
            return Surfaces(surface=np.zeros(grid.shape, bool))
        first = int(np.argmax(score))
    primary = planes[first]
    out = Surfaces(surface=np.zeros(grid.shape, bool))
    for i in [first, *[j for j in np.argsort(-areas) if j != first]]:
        if areas[i] == 0 and i != first:
            continue
        plane, region = planes[i], regions[i]
        if abs(plane.normal @ primary.normal) >= cos_par:
            out.supports.append(plane)
            out.support_regions.append(region)
        elif _is_wall(grid, region, primary, regions[first], wall_height_m):
            out.walls.append(plane)
        else:  # the face of a large object standing on the support
            continue
        out.surface |= region
    out.noise_per_m2 = _noise_per_m2(grid, primary, regions[first], tol_m)
    return out


def _is_wall(grid: Grid, region: np.ndarray, support: Plane, support_region: np.ndarray,
             height_m: float) -> bool:
    """Whether a plane region rises above ``height_m`` over the support (its 95th percentile
    height), lies mostly below it, or stands mostly off its extent."""
    index = np.flatnonzero(region)
    pts = grid.points(index[:: max(1, len(index) // 2000)])
    height = pts @ support.normal.astype(np.float32) + np.float32(support.offset)
    if np.percentile(height, 95) > height_m or np.median(height) < 0:
        return True
    feet = np.flatnonzero(support_region)
    return bool(on_extent(pts, support, grid.points(feet[:: max(1, len(feet) // 4000)]))
                .mean() < 0.5)


def on_extent(points: np.ndarray, plane: Plane, region_points: np.ndarray,
              cell_m: float = 0.01) -> np.ndarray:
    """(N,) bool: which points' feet (projections along the normal) fall in the convex hull
    of a support region's points, tested on a raster of ``cell_m`` cells of the plane."""
    import cv2

    if len(points) == 0 or len(region_points) < 3:
        return np.zeros(len(points), bool)
    basis = np.linalg.svd(np.eye(3) - np.outer(plane.normal, plane.normal))[0][:, :2]
    basis = basis.astype(np.float32)
    corners = cv2.convexHull((region_points @ basis).astype(np.float32)).reshape(-1, 2)
    lo = corners.min(0)
    size = np.ceil((corners.max(0) - lo) / cell_m).astype(int) + 2
    if size.prod() > 4_000_000:  # a support kilometres wide: coarser cells
        cell_m *= float(np.sqrt(size.prod() / 4_000_000))
        size = np.ceil((corners.max(0) - lo) / cell_m).astype(int) + 2
    raster = np.zeros((size[1] + 2, size[0] + 2), np.uint8)
    cv2.fillConvexPoly(raster, np.rint((corners - lo) / cell_m).astype(np.int32) + 1, 1)
    cells = np.rint((points @ basis - lo) / cell_m).astype(np.int64) + 1
    np.clip(cells, 0, [size[0] + 1, size[1] + 1], out=cells)  # the border is empty
    return raster[cells[:, 1], cells[:, 0]] > 0




def _noise_per_m2(grid: Grid, plane: Plane, region: np.ndarray, tol_m: float) -> float:
    """``c`` of ``sigma(z) = c z^2`` from the robust spread of a plane region's heights."""
    index = np.flatnonzero(region)
    if len(index) < 20:
        return tol_m / 3.0
    pts = grid.points(index[:: max(1, len(index) // 3000)]).astype(np.float64)
    height = pts @ plane.normal + plane.offset
    sigma = 1.4826 * float(np.median(np.abs(height - np.median(height))))
    return sigma / float(np.median(pts[:, 2])) ** 2


def support_plane_of_depth(depth: np.ndarray, k: np.ndarray,
                           max_pixels: int = 80_000) -> Plane | None:
    """The primary support plane of a depth image (as a calibration would give it: the
    evaluator's ``--support-plane-from-gt`` fits it on the ground truth), or None.

    Args:
        depth: (H, W) float metres, NaN or <= 0 invalid; k: (3, 3) intrinsics.
    """
    grid = make_grid(depth, k, grid_stride(depth.shape, max_pixels))
    if grid.valid.sum() < 200:
        return None
    z_med = float(np.median(grid.z[grid.valid]))
    return find_surfaces(grid, tol_m=max(0.01, 0.008 * z_med ** 2)).primary
