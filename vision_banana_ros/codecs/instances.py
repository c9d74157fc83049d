"""Instance segmentation <-> RGB painting: one distinct solid colour per instance.

Painting: id 0 (no object) is black; instance ids take colours from a palette built by farthest
point sampling of the RGB cube, far from black and from each other, so the first few colours (a
typical tabletop) are the most distinct. Colours carry no meaning beyond "same colour, same
instance".

Decoding clusters colours in three steps, robust to noise and to blur and JPEG ringing at edges:

1. interior pixels (whose neighbours have nearly the same colour) are binned in a 32^3 RGB
   histogram; bins are merged greedily, most populated first, into colour centres;
2. every pixel takes the nearest centre, black (background) included, so blurred edge pixels go
   to one of the two sides they mix (looked up per 32^3 colour cell, not searched per pixel);
3. clusters smaller than ``min_area`` pixels become background; ids are renumbered 1..k by
   decreasing area.
"""

from __future__ import annotations

import numpy as np

from vision_banana_ros.codecs._validate import float_painting, integer_image
from vision_banana_ros.codecs.constants import (
    INSTANCE_BACKGROUND,
    INSTANCE_BACKGROUND_RGB,
    INSTANCE_BACKGROUND_THRESHOLD,
    INSTANCE_INTERIOR_GRADIENT,
    INSTANCE_MERGE_THRESHOLD,
    INSTANCE_MIN_AREA,
)
from vision_banana_ros.errors import CodecError

__all__ = ["INSTANCE_PALETTE_MAX", "decode_instances", "encode_instances", "instance_palette"]

#: Colour grid for histograms and nearest-centre look-up (error at most 1/64 per channel).
_LUT_LEVELS = 32
#: Levels per channel of the palette's colour grid, and the most colours it offers (not black).
_PALETTE_LEVELS = 6
INSTANCE_PALETTE_MAX = _PALETTE_LEVELS ** 3 - 1


def instance_palette(count: int) -> np.ndarray:
    """``count`` distinct colours for instance ids 1..count, as (count, 3) float32 in [0, 1].

    Deterministic farthest point sampling over a 6-level RGB grid, starting from black (the
    background), so every colour is as far as possible from black and from the earlier ones.
    """
    if count < 0:
        raise CodecError(f"palette size must be >= 0, got {count}")
    if count > INSTANCE_PALETTE_MAX:
        raise CodecError(f"at most {INSTANCE_PALETTE_MAX} instance colours are available, "
                         f"asked {count}")
    levels = np.linspace(0.0, 1.0, _PALETTE_LEVELS, dtype=np.float32)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    chosen = [np.asarray(INSTANCE_BACKGROUND_RGB, np.float32)]
    nearest = np.linalg.norm(grid - chosen[0], axis=1)
    for _ in range(count):
        i = int(np.argmax(nearest))
        chosen.append(grid[i])
        nearest = np.minimum(nearest, np.linalg.norm(grid - grid[i], axis=1))
    return np.stack(chosen[1:]) if count else np.zeros((0, 3), np.float32)


def encode_instances(instance_ids: np.ndarray, colours: np.ndarray | None = None) -> np.ndarray:
    """Paint instance ids: (..., H, W) integer ids, 0 = none -> (..., H, W, 3) float32.

    Args:
        instance_ids: ids >= 0; any set of ids, not necessarily consecutive.
        colours: optional (M, 3) colours in [0, 1] for the distinct non-zero ids in increasing
            order; by default :func:`instance_palette` in that order.

    Raises:
        CodecError: bad ids (negative, not integer), or too few colours.
    """
    ids = integer_image(instance_ids, "instance ids")
    if ids.min() < 0:
        raise CodecError(f"instance ids must be >= 0, got {int(ids.min())}")
    unique, inverse = np.unique(ids, return_inverse=True)
    objects = unique[unique != INSTANCE_BACKGROUND]
    if colours is None:
        colours = instance_palette(len(objects))
    colours = np.asarray(colours, dtype=np.float32)
    if colours.ndim != 2 or colours.shape[1] != 3 or len(colours) < len(objects):
        raise CodecError(f"need ({len(objects)}, 3) instance colours, got {colours.shape}")
    table = np.zeros((len(unique), 3), np.float32)
    table[unique != INSTANCE_BACKGROUND] = colours[: len(objects)]
    return table[inverse.reshape(ids.shape)]


def _colour_keys(planes: np.ndarray) -> np.ndarray:
    """(3, ...) colour planes in [0, 1] -> (...) int32 keys of a _LUT_LEVELS^3 colour grid."""
    q = np.minimum((planes * _LUT_LEVELS).astype(np.int32), _LUT_LEVELS - 1)
    return (q[0] * _LUT_LEVELS + q[1]) * _LUT_LEVELS + q[2]


def _colour_centres(keys: np.ndarray, pixels: np.ndarray, merge: float,
                    min_area: int) -> np.ndarray:
    """Greedy merge of the colour histogram of (N, 3) pixels (with their keys) into centres."""
    bins = _LUT_LEVELS ** 3
    counts = np.bincount(keys, minlength=bins)
    sums = np.stack([np.bincount(keys, weights=pixels[:, c], minlength=bins) for c in range(3)], 1)
    # Bins of one or two pixels are noise or edge colours; they cannot make an instance.
    occupied = np.nonzero(counts >= 3)[0]
    occupied = occupied[np.argsort(-counts[occupied], kind="stable")]
    centres: list[np.ndarray] = []
    weights: list[float] = []
    for b in occupied:
        mean = sums[b] / counts[b]
        if centres:
            dist = np.linalg.norm(np.asarray(centres) - mean, axis=1)
            j = int(np.argmin(dist))
            if dist[j] < merge:
                w = weights[j] + counts[b]
                centres[j] = (centres[j] * weights[j] + mean * counts[b]) / w
                weights[j] = w
                continue
        centres.append(mean)
        weights.append(float(counts[b]))
    keep = [c for c, w in zip(centres, weights, strict=True) if w >= min_area]
    return np.asarray(keep, np.float32).reshape(-1, 3)


def _nearest_lut(candidates: np.ndarray) -> np.ndarray:
    """For every cell of the colour grid, the index of the nearest of (K, 3) candidates."""
    centres = (np.arange(_LUT_LEVELS, dtype=np.float32) + 0.5) / _LUT_LEVELS
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    dist2 = (grid * grid).sum(1, keepdims=True) - 2.0 * grid @ candidates.T \
        + (candidates * candidates).sum(1)
    return np.argmin(dist2, axis=1).astype(np.int32)


def _decode_one(p: np.ndarray, background: float, merge: float, interior_gradient: float,
                min_area: int) -> np.ndarray:
    h, w, _ = p.shape
    planes = np.ascontiguousarray(p.transpose(2, 0, 1))  # (3, H, W): fast per-channel passes
    foreground = (planes * planes).sum(0) >= background * background
    dx = np.abs(np.diff(planes, axis=2)).max(0)
    dy = np.abs(np.diff(planes, axis=1)).max(0)
    grad = np.zeros((h, w), np.float32)
    np.maximum(grad[:, :-1], dx, out=grad[:, :-1])
    np.maximum(grad[:, 1:], dx, out=grad[:, 1:])
    np.maximum(grad[:-1], dy, out=grad[:-1])
    np.maximum(grad[1:], dy, out=grad[1:])
    interior = foreground & (grad < interior_gradient)
    keys = _colour_keys(planes)
    centres = _colour_centres(keys[interior], p[interior], merge, min_area)
    ids = np.zeros((h, w), np.uint16)
    if len(centres) == 0:
        return ids
    candidates = np.vstack([np.asarray(INSTANCE_BACKGROUND_RGB, np.float32), centres])
    label = _nearest_lut(candidates)[keys[foreground]]  # 0 = background
    areas = np.bincount(label, minlength=len(candidates))
    areas[0] = 0
    new_id = np.zeros(len(candidates), np.uint16)
    big = [c for c in np.argsort(-areas, kind="stable") if areas[c] >= min_area]
    new_id[big] = np.arange(1, len(big) + 1)
    ids[foreground] = new_id[label]
    return ids


def decode_instances(
    painting: np.ndarray,
    *,
    background_threshold: float = INSTANCE_BACKGROUND_THRESHOLD,
    merge_threshold: float = INSTANCE_MERGE_THRESHOLD,
    interior_gradient: float = INSTANCE_INTERIOR_GRADIENT,
    min_area: int = INSTANCE_MIN_AREA,
) -> np.ndarray:
    """Cluster an instance painting into ids.

    Args:
        painting: (..., H, W, 3) uint8 or float in [0, 1]; black is background.
        background_threshold: RGB distance to black below which a pixel is background.
        merge_threshold: colours closer than this belong to one instance.
        interior_gradient: largest neighbour difference of pixels used to find colours.
        min_area: smallest instance in pixels; smaller clusters become background.

    Returns:
        (..., H, W) uint16 ids: 0 background, 1..k by decreasing area.

    Raises:
        CodecError: bad painting or non-positive thresholds.
    """
    for name, value in (("background_threshold", background_threshold),
                        ("merge_threshold", merge_threshold),
                        ("interior_gradient", interior_gradient)):
        if not value > 0:
            raise CodecError(f"instance decoding: {name} must be > 0, got {value}")
    if min_area < 1:
        raise CodecError(f"instance decoding: min_area must be >= 1, got {min_area}")
    p = float_painting(painting, "instance painting")
    lead = p.shape[:-3]
    flat = p.reshape((-1, *p.shape[-3:]))
    out = np.stack([_decode_one(img, background_threshold, merge_threshold, interior_gradient,
                                min_area) for img in flat])
    return out.reshape(lead + p.shape[-3:-1])
