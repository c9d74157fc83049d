"""A depth-sensor model for training data, after active stereo cameras such as the D435.

Applied to the renderer's exact depth, it makes what such a camera would publish: 16UC1-like
depth with holes and errors where stereo matching fails. What it models, and where from:

- **Range limits**: no depth nearer than ``min_range_m`` (D435: about 0.1-0.3 m, the minimum
  Z grows with resolution) or farther than ``max_range_m`` (the projector pattern fades;
  3-6 m indoors). Intel, "Intel RealSense D400 Series Product Family Datasheet" (2023).
- **Noise growing with the square of distance**: stereo depth error
  ``sigma_z = z^2 * sigma_d / (f * B)`` with subpixel disparity error ``sigma_d`` (D435: 0.05-0.1
  px), baseline B = 50 mm, focal length f in pixels; plus a slowly varying (low-frequency)
  component, as the datasheet's RMS error figure and Intel's "Depth camera tuning" white paper
  (Grunnet-Jepsen et al., 2018) describe.
- **1 mm quantisation** of 16UC1 depth (REP 118).
- **Stereo and emitter shadows**: the depth of the left imager is unknown where the right
  imager (or the projector) cannot see the surface: a band on the left of every foreground edge
  as wide as the disparity step ``f * B * (1/z_near - 1/z_far)`` (the "invalid depth band" of
  the D400 series, Intel white paper "Projectors for D400 Series Depth Cameras").
- **Holes at depth discontinuities and flying pixels**: stereo windows straddling an edge give
  no match or a depth between foreground and background (Sweeney et al., "A Supervised
  Approach to Predicting Noise in Depth Images", ICRA 2019; Handa et al., ICL-NUIM noise
  model, ICRA 2014).
- **Transparent, specular and very dark surfaces**: glass returns no match or the depth of
  what lies behind it (ClearGrasp, Sajjan et al., ICRA 2020, report 25-78 % of transparent
  pixels without depth on a D435, as the shared real_cleargrasp_rgbd bag shows); specular
  highlights and dark (low-albedo) surfaces lose the projected pattern: blob-shaped holes.
- **Small speckle dropouts** everywhere (matching failures on low texture).

Inputs are per-pixel labels the renderers produce: exact depth, the depth with transparent
objects removed ("through" depth), and a material map (:data:`OPAQUE`, :data:`TRANSPARENT`,
:data:`SPECULAR`, :data:`DARK`). Everything is numpy and deterministic for a given generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Material classes of the per-pixel material map.
OPAQUE, TRANSPARENT, SPECULAR, DARK = 0, 1, 2, 3


@dataclass(frozen=True)
class SensorModel:
    """Parameters of the simulated depth camera (ranges are sampled per frame).

    Lengths in metres, disparity in pixels; ``*_fraction`` in [0, 1].
    """

    baseline_m: tuple[float, float] = (0.045, 0.055)       # D435: 50 mm
    subpixel_px: tuple[float, float] = (0.05, 0.12)         # disparity noise sigma
    min_range_m: tuple[float, float] = (0.12, 0.3)
    max_range_m: tuple[float, float] = (3.0, 6.0)
    edge_hole_px: tuple[int, int] = (0, 2)                  # half-width of edge holes
    edge_jump_m: float = 0.03                               # what counts as a discontinuity
    flying_fraction: tuple[float, float] = (0.1, 0.4)       # of edge pixels kept, interpolated
    transparent_hole_fraction: tuple[float, float] = (0.2, 0.8)
    transparent_through_fraction: tuple[float, float] = (0.0, 0.5)  # of the rest: background
    specular_hole_fraction: tuple[float, float] = (0.1, 0.6)
    dark_hole_fraction: tuple[float, float] = (0.2, 0.9)
    speckle_fraction: tuple[float, float] = (0.0, 0.008)
    shadow_probability: float = 0.9                         # frames with stereo shadows

    def to_dict(self) -> dict:
        return asdict(self)


def _uniform(rng: np.random.Generator, span: tuple[float, float]) -> float:
    return float(rng.uniform(span[0], span[1]))


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, cell_px: float) -> np.ndarray:
    """(H, W) float32 smooth random field in [0, 1] with features about ``cell_px`` wide
    (bilinearly upsampled uniform noise): thresholded, it gives blob-shaped regions."""
    import cv2

    h, w = shape
    gh, gw = max(2, int(np.ceil(h / cell_px)) + 1), max(2, int(np.ceil(w / cell_px)) + 1)
    coarse = rng.random((gh, gw)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def blob_mask(region: np.ndarray, fraction: float, rng: np.random.Generator,
              cell_px: float = 6.0) -> np.ndarray:
    """About ``fraction`` of ``region``'s pixels, as blobs (a thresholded smooth field)."""
    if fraction <= 0 or not region.any():
        return np.zeros_like(region)
    field = smooth_field(region.shape, rng, cell_px)
    level = np.quantile(field[region], min(max(fraction, 0.0), 1.0))
    return region & (field <= level)


def stereo_shadow(depth: np.ndarray, fx: float, baseline_m: float) -> np.ndarray:
    """Pixels the second imager, ``baseline_m`` to the right, cannot see: (H, W) bool.

    A pixel at column u is hidden when a pixel to its right, s columns away, is nearer by more
    than s pixels of disparity (``d(u + s) - d(u) > s`` with ``d = fx * B / z``).
    """
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.inf)
    disp = (fx * baseline_m / z).astype(np.float32)
    max_shift = int(np.ceil(np.nanmax(np.where(np.isfinite(disp), disp, 0.0)))) if disp.size \
        else 0
    hidden = np.zeros(depth.shape, bool)
    for s in range(1, min(max_shift, depth.shape[1] - 1) + 1):
        hidden[:, :-s] |= disp[:, s:] - disp[:, :-s] > s
    return hidden


def _edges(depth: np.ndarray, jump_m: float) -> np.ndarray:
    """Pixels next to a depth discontinuity larger than ``jump_m`` (4-neighbourhood)."""
    z = np.where(np.isfinite(depth), depth, 1e3)
    edge = np.zeros(depth.shape, bool)
    dx = np.abs(np.diff(z, axis=1)) > jump_m
    dy = np.abs(np.diff(z, axis=0)) > jump_m
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:] |= dy
    edge[:-1] |= dy
    return edge


def simulate_sensor_depth(depth: np.ndarray, k: np.ndarray, rng: np.random.Generator,
                          material: np.ndarray | None = None,
                          depth_through: np.ndarray | None = None,
                          model: SensorModel | None = None) -> np.ndarray:
    """What an active stereo camera would measure of a rendered view.

    Args:
        depth: (H, W) exact depth along the optical axis, metres (inf/NaN: nothing hit).
        k: (3, 3) intrinsics of the view.
        rng: the frame's generator (the same generator gives the same depth).
        material: (H, W) uint8 material map (None: all opaque).
        depth_through: (H, W) depth with transparent objects removed (None: ``depth``).
        model: sensor parameters (default :class:`SensorModel`).

    Returns:
        (H, W) float32 metres, NaN where the sensor has no depth, quantised to 1 mm.
    """
    import cv2

    m = model or SensorModel()
    d = np.asarray(depth, np.float32)
    mat = np.zeros(d.shape, np.uint8) if material is None else material
    through = d if depth_through is None else np.asarray(depth_through, np.float32)
    fx = float(k[0, 0])
    out = d.copy()
    valid = np.isfinite(out) & (out > 0)
    out[~valid] = np.nan
    # Transparent surfaces: holes, else the background behind (or, less often, the surface).
    glass = (mat == TRANSPARENT) & valid
    if glass.any():
        holes = blob_mask(glass, _uniform(rng, m.transparent_hole_fraction), rng, 5.0)
        rest = glass & ~holes
        seen_through = blob_mask(rest, _uniform(rng, m.transparent_through_fraction), rng, 5.0)
        out[seen_through] = through[seen_through]
        out[holes] = np.nan
    for label, span in ((SPECULAR, m.specular_hole_fraction), (DARK, m.dark_hole_fraction)):
        region = (mat == label) & valid
        if region.any():
            out[blob_mask(region, _uniform(rng, span), rng, 4.0)] = np.nan
    # Noise grows with z^2: per-pixel plus a smooth component (a quarter of it).
    baseline = _uniform(rng, m.baseline_m)
    sigma = np.square(np.nan_to_num(out, nan=0.0)) * (_uniform(rng, m.subpixel_px)
                                                      / (fx * baseline))
    low = cv2.GaussianBlur(rng.standard_normal(d.shape).astype(np.float32), (0, 0), 8.0)
    low /= max(float(low.std()), 1e-6)
    out = out + sigma * (rng.standard_normal(d.shape).astype(np.float32) + 0.25 * low)
    # Discontinuities: holes of a random width, and flying pixels between the two sides.
    edge = _edges(d, m.edge_jump_m)
    width = int(rng.integers(m.edge_hole_px[0], m.edge_hole_px[1] + 1))
    if width > 0:
        edge = cv2.dilate(edge.astype(np.uint8), np.ones((2 * width + 1,) * 2, np.uint8)) > 0
    flying = edge & (rng.random(d.shape) < _uniform(rng, m.flying_fraction))
    blurred = cv2.blur(np.where(valid, d, np.float32(0.0)), (5, 5))
    out[flying] = blurred[flying]
    out[edge & ~flying] = np.nan
    if rng.random() < m.shadow_probability:
        out[stereo_shadow(d, fx, baseline)] = np.nan
    speckle = blob_mask(valid, _uniform(rng, m.speckle_fraction), rng, 2.0)
    out[speckle] = np.nan
    lo, hi = _uniform(rng, m.min_range_m), _uniform(rng, m.max_range_m)
    out[~np.isfinite(out) | (out < lo) | (out > hi)] = np.nan
    return np.round(out * 1000.0) / np.float32(1000.0)
