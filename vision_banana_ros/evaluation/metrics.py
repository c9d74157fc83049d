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
    n = int(valid.sum())
    if n == 0:
        return None
    g = gt[valid].astype(np.float64)
    d = pred[valid].astype(np.float64)
    bad = ~np.isfinite(d) | (d <= 0)
    d_safe = np.where(bad, 1e-6, d)
    ratio = np.maximum(d_safe / g, g / d_safe)
    ratio[bad] = np.inf
    err = np.abs(d_safe - g)
    err[bad] = g[bad]  # a missing prediction is off by the whole depth
    return DepthMetrics(abs_rel=float(np.mean(err / g)), rmse=float(np.sqrt(np.mean(err ** 2))),
                        delta1=float(np.mean(ratio < 1.25)),
                        delta2=float(np.mean(ratio < 1.25 ** 2)),
                        delta3=float(np.mean(ratio < 1.25 ** 3)), valid_pixels=n)


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
