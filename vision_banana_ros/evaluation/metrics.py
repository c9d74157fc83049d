"""Accuracy metrics for depth, instances, semantics and normals.

Conventions follow the benchmarks they come from:

- depth (monocular metric depth benchmarks): only pixels with valid ground truth count
  (finite and > 0); AbsRel = mean(|d - g| / g), RMSE = sqrt(mean((d - g)^2)) in metres,
  delta_k = fraction with max(d / g, g / d) < 1.25^k. Non-finite predictions count as wrong.
- instances (unseen object instance segmentation, Xie et al.): objects are matched one to one
  by the Hungarian method on pairwise F-measure; overlap precision = sum |P_i & G_m(i)| /
  sum |P_i|, recall = sum |P_i & G_m(i)| / sum |G_j|, F = 2PR / (P + R); plus the mean IoU of
  matched pairs.
- semantic: mean IoU over classes present in the ground truth or the prediction (ignore id
  255 in the ground truth).
- normals: angle between unit vectors in degrees, mean and median, where both are valid.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from vision_banana_ros.errors import VisionBananaError


def _same_shape(pred: np.ndarray, gt: np.ndarray, what: str) -> None:
    if pred.shape != gt.shape:
        raise VisionBananaError(f"{what}: prediction shape {pred.shape} differs from ground "
                                f"truth {gt.shape}")


@dataclass
class DepthMetrics:
    """Depth accuracy over ``valid_pixels`` ground-truth pixels (metres)."""

    abs_rel: float
    rmse: float
    delta1: float
    delta2: float
    delta3: float
    valid_pixels: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _depth_errors(d: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel |d - g|, |d - g| / g and max(d / g, g / d) of valid-GT pixels (1-D float64).

    A missing prediction (non-finite or <= 0) is off by the whole depth (relative error 1) and
    its ratio is infinite.
    """
    g = g.astype(np.float64)
    d = d.astype(np.float64)
    bad = ~np.isfinite(d) | (d <= 0)
    d_safe = np.where(bad, 1e-6, d)
    with np.errstate(over="ignore"):
        ratio = np.maximum(d_safe / g, g / d_safe)
    ratio[bad] = np.inf
    err = np.abs(d_safe - g)
    err[bad] = g[bad]
    return err, err / g, ratio


def _summarise(err: np.ndarray, rel: np.ndarray, ratio: np.ndarray) -> DepthMetrics:
    return DepthMetrics(abs_rel=float(rel.mean()), rmse=float(np.sqrt(np.mean(err ** 2))),
                        delta1=float(np.mean(ratio < 1.25)),
                        delta2=float(np.mean(ratio < 1.25 ** 2)),
                        delta3=float(np.mean(ratio < 1.25 ** 3)), valid_pixels=len(err))


def depth_metrics(pred: np.ndarray, gt: np.ndarray,
                  mask: np.ndarray | None = None) -> DepthMetrics | None:
    """Depth metrics on valid ground truth; ``None`` when no pixel is valid.

    Args:
        pred: (H, W) predicted metres (non-finite = no prediction: counts as an error).
        gt: (H, W) ground truth metres; valid where finite and > 0.
        mask: optional extra (H, W) bool selection.
    """
    _same_shape(pred, gt, "depth")
    valid = np.isfinite(gt) & (gt > 0)
    if mask is not None:
        valid &= mask
    if not valid.any():
        return None
    return _summarise(*_depth_errors(pred[valid], gt[valid]))


@dataclass
class DepthReport:
    """Everything the evaluator reports about one depth frame, from one pass over its pixels.

    ``by_range`` maps each (lo, hi) metre range of ground truth to (delta1, AbsRel), or is
    missing the range when it holds no valid pixel. ``bin_error`` / ``bin_count`` are sums of
    |d - g| / g and pixel counts per ground-truth bin of ``bin_m`` metres (finite predictions
    only), for error-versus-depth plots.
    """

    metrics: DepthMetrics
    median_scale: float
    median_scaled: DepthMetrics
    by_range: dict[tuple[float, float], tuple[float, float]]
    bin_error: np.ndarray
    bin_count: np.ndarray


def depth_report(pred: np.ndarray, gt: np.ndarray, ranges: tuple[tuple[float, float], ...],
                 bin_m: float = 0.25, bins: int = 40) -> DepthReport | None:
    """:func:`depth_metrics`, median-scaled metrics, per-range metrics and error bins at once.

    Equal to calling :func:`depth_metrics` on the frame, on ``pred * median_scale`` and once per
    range mask, but selects the valid pixels once (the evaluator's per-frame cost was seven
    full-frame passes). ``None`` when no ground-truth pixel is valid.

    Args:
        pred: (H, W) predicted metres; gt: (H, W) ground-truth metres (valid: finite, > 0).
        ranges: half-open [lo, hi) ground-truth ranges in metres, ascending, not overlapping.
    """
    _same_shape(pred, gt, "depth")
    if any(a[1] != b[0] for a, b in itertools.pairwise(ranges)):
        raise VisionBananaError(f"depth ranges must be contiguous and ascending, got {ranges}")
    valid = np.isfinite(gt) & (gt > 0)
    if not valid.any():
        return None
    g, d = gt[valid], pred[valid]
    err, rel, ratio = _depth_errors(d, g)
    overall = _summarise(err, rel, ratio)
    finite = np.isfinite(ratio)
    scale = (float(np.median(g[finite]) / np.median(d[finite])) if finite.any() else 1.0)
    median_scaled = _summarise(*_depth_errors(d * scale, g))
    edges = np.array([r[0] for r in ranges] + [ranges[-1][1]])
    which = np.searchsorted(edges, g, side="right") - 1  # range index; -1 / len = outside
    inside = (which >= 0) & (which < len(ranges))
    n = len(ranges)
    count = np.bincount(which[inside], minlength=n)
    good = np.bincount(which[inside], weights=(ratio[inside] < 1.25), minlength=n)
    rel_sum = np.bincount(which[inside], weights=rel[inside], minlength=n)
    by_range = {r: (float(good[i] / count[i]), float(rel_sum[i] / count[i]))
                for i, r in enumerate(ranges) if count[i] > 0}
    b = np.clip((g[finite] / bin_m).astype(np.int64), 0, bins - 1)
    return DepthReport(metrics=overall, median_scale=scale, median_scaled=median_scaled,
                       by_range=by_range,
                       bin_error=np.bincount(b, weights=rel[finite], minlength=bins),
                       bin_count=np.bincount(b, minlength=bins).astype(np.float64))


def median_scale(pred: np.ndarray, gt: np.ndarray) -> float:
    """median(g) / median(d) over valid pixels (1.0 when undefined)."""
    valid = np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0)
    if not valid.any():
        return 1.0
    return float(np.median(gt[valid]) / np.median(pred[valid]))


@dataclass
class InstanceMetrics:
    """Overlap precision/recall/F-measure and matched IoU of object instances."""

    precision: float
    recall: float
    f_measure: float
    matched_iou: float
    predicted: int
    ground_truth: int
    matched: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def contingency(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                             np.ndarray, np.ndarray]:
    """Object ids and overlaps of two id images in one pass (ids > 0 are objects).

    Returns (pred ids (P,), gt ids (G,), intersections (P, G) in pixels, pred areas (P,),
    gt areas (G,)).
    """
    p_flat, g_flat = pred.ravel().astype(np.int64), gt.ravel().astype(np.int64)
    p_max, g_max = int(p_flat.max(initial=0)), int(g_flat.max(initial=0))
    if (p_max + 1) * (g_max + 1) <= 1 << 22:  # small ids (the usual case): no sort needed
        joint = np.bincount(p_flat * (g_max + 1) + g_flat, minlength=(p_max + 1) * (g_max + 1))
        joint = joint.reshape(p_max + 1, g_max + 1)
        p_ids, g_ids = np.arange(p_max + 1), np.arange(g_max + 1)
        keep_p, keep_g = joint.sum(1) > 0, joint.sum(0) > 0
        joint, p_ids, g_ids = joint[np.ix_(keep_p, keep_g)], p_ids[keep_p], g_ids[keep_g]
    else:
        p_ids, p_inv = np.unique(p_flat, return_inverse=True)
        g_ids, g_inv = np.unique(g_flat, return_inverse=True)
        joint = np.bincount(p_inv * len(g_ids) + g_inv, minlength=len(p_ids) * len(g_ids))
        joint = joint.reshape(len(p_ids), len(g_ids))
    p_obj, g_obj = p_ids > 0, g_ids > 0
    p_area = joint.sum(1)[p_obj].astype(np.float64)
    g_area = joint.sum(0)[g_obj].astype(np.float64)
    return p_ids[p_obj], g_ids[g_obj], joint[np.ix_(p_obj, g_obj)], p_area, g_area


def instance_metrics(pred: np.ndarray, gt: np.ndarray) -> InstanceMetrics:
    """Match predicted and ground-truth instances (ids > 0) by Hungarian on F-measure."""
    from scipy.optimize import linear_sum_assignment

    _same_shape(pred, gt, "instances")
    p_ids, g_ids, inter, p_area, g_area = contingency(pred, gt)
    if len(p_ids) == 0 or len(g_ids) == 0:
        empty = len(p_ids) == 0 and len(g_ids) == 0
        return InstanceMetrics(precision=1.0 if empty or len(p_ids) == 0 else 0.0,
                               recall=1.0 if empty or len(g_ids) == 0 else 0.0,
                               f_measure=1.0 if empty else 0.0, matched_iou=0.0,
                               predicted=len(p_ids), ground_truth=len(g_ids), matched=0)
    f_pair = 2 * inter / (p_area[:, None] + g_area[None, :])
    rows, cols = linear_sum_assignment(-f_pair)
    keep = inter[rows, cols] > 0
    rows, cols = rows[keep], cols[keep]
    tp = inter[rows, cols].sum()
    precision = float(tp / p_area.sum())
    recall = float(tp / g_area.sum())
    f = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    iou = inter[rows, cols] / (p_area[rows] + g_area[cols] - inter[rows, cols])
    return InstanceMetrics(precision=precision, recall=recall, f_measure=float(f),
                           matched_iou=float(iou.mean()) if len(iou) else 0.0,
                           predicted=len(p_ids), ground_truth=len(g_ids), matched=len(rows))


def semantic_miou(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                  ignore: int = 255) -> tuple[float, list[float | None]]:
    """Mean IoU over classes present in prediction or ground truth; per-class IoU (None absent)."""
    _same_shape(pred, gt, "semantic")
    valid = gt != ignore
    ious: list[float | None] = []
    for c in range(num_classes):
        p, g = (pred == c) & valid, (gt == c) & valid
        union = (p | g).sum()
        ious.append(None if union == 0 else float((p & g).sum() / union))
    present = [v for v in ious if v is not None]
    return (float(np.mean(present)) if present else float("nan")), ious


def normal_angles_deg(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Angles in degrees between (H, W, 3) unit normals where both are finite."""
    _same_shape(pred, gt, "normals")
    ok = np.isfinite(pred).all(-1) & np.isfinite(gt).all(-1)
    cos = np.clip((pred[ok] * gt[ok]).sum(-1), -1.0, 1.0)
    return np.degrees(np.arccos(cos))
