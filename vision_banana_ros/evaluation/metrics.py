"""Accuracy metrics for depth, instances, semantics and normals.

Conventions follow the benchmarks they come from:

- depth (monocular metric depth benchmarks): only pixels with valid ground truth count
  (finite and > 0); AbsRel = mean(|d - g| / g), RMSE = sqrt(mean((d - g)^2)) in metres,
  delta_k = fraction with max(d / g, g / d) < 1.25^k. Non-finite predictions count as wrong.
- instances (unseen object instance segmentation, Xie et al., UOIS-Net-3D; the OCID and OSD
  protocol): objects are matched one to one by the Hungarian method on pairwise F-measure;
  overlap precision = sum |P_i & G_m(i)| / sum |P_i|, recall = sum |P_i & G_m(i)| / sum |G_j|,
  F = 2PR / (P + R); the share of ground-truth objects whose matched pair has F >= 0.75
  (``objects_f75``); the mean IoU of matched pairs. Boundary P/R/F the same way on instance
  outlines, a pixel of one outline counting when the other passes within 0.3 % of the image
  diagonal (UOIS's tolerance); unlike UOIS, recall counts ground-truth outline pixels near the
  prediction's (UOIS reuses the predicted pixels' count).
- semantic: mean IoU over classes present in the ground truth or the prediction (ignore id
  255 in the ground truth).
- normals: angle between unit vectors in degrees, mean and median, where both are valid.
"""

from __future__ import annotations

import math
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


def _depth_ratio(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """q = d / g of valid-GT pixels (1-D float32); NaN where the prediction is missing
    (non-finite or <= 0)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = np.divide(d, g, dtype=np.float32)
    q[~(q > 0) | ~np.isfinite(q)] = np.nan
    return q


def _errors(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|d - g| / g = |q - 1| and max(d / g, g / d) = max(q, 1 / q) from q = d / g (float32).

    A missing prediction (NaN q) is off by the whole depth: relative error 1, ratio infinite.
    """
    missing = np.isnan(q)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(q - np.float32(1.0))
        ratio = np.maximum(q, np.float32(1.0) / q)
    rel[missing] = 1.0
    ratio[missing] = np.inf
    return rel, ratio


def _summarise(rel: np.ndarray, ratio: np.ndarray, g: np.ndarray) -> DepthMetrics:
    n = len(rel)
    return DepthMetrics(abs_rel=float(rel.sum(dtype=np.float64) / n),
                        rmse=float(np.sqrt(np.square(rel * g).sum(dtype=np.float64) / n)),
                        delta1=float(np.count_nonzero(ratio < 1.25) / n),
                        delta2=float(np.count_nonzero(ratio < 1.25 ** 2) / n),
                        delta3=float(np.count_nonzero(ratio < 1.25 ** 3) / n), valid_pixels=n)


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
    g = gt[valid].astype(np.float32)
    return _summarise(*_errors(_depth_ratio(pred[valid], g)), g)


@dataclass
class DepthReport:
    """Everything the evaluator reports about one depth frame, from one selection of its pixels.

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
    range mask, but selects the valid pixels once and sums the ranges from per-bin counts (the
    evaluator used to make seven full-frame passes). ``None`` when no ground-truth pixel is
    valid.

    Args:
        pred: (H, W) predicted metres; gt: (H, W) ground-truth metres (valid: finite, > 0).
        ranges: half-open [lo, hi) ground-truth ranges in metres, each whole ``bin_m`` bins
            below ``(bins - 1) * bin_m`` or open-ended (hi = inf).
    """
    _same_shape(pred, gt, "depth")
    valid = np.isfinite(gt) & (gt > 0)
    if not valid.any():
        return None
    g, d = gt[valid].astype(np.float32, copy=False), pred[valid]
    q = _depth_ratio(d, g)
    rel, ratio = _errors(q)
    overall = _summarise(rel, ratio, g)
    finite = ~np.isnan(q)
    scale = _median_ratio(g[finite], d[finite])
    median_scaled = _summarise(*_errors(q * np.float32(scale)), g)
    # Everything per depth bin in one set of bincounts; the ranges are sums of whole bins.
    b = (g / np.float32(bin_m)).astype(np.int32)
    np.minimum(b, bins - 1, out=b)
    # Pixel counts per (bin, within 1.25, missing) from one unweighted bincount (weighted
    # ones are 3x slower); a missing prediction's ratio is infinite, so never "good".
    code = b * np.int32(4)
    code += (ratio < 1.25).view(np.int8) * np.int8(2)
    code += (~finite).view(np.int8)
    cells = np.bincount(code, minlength=bins * 4)
    cells = cells.reshape(bins, 4).astype(np.float64)
    count, good, missing = cells.sum(axis=1), cells[:, 2:].sum(axis=1), cells[:, 1::2].sum(axis=1)
    rel_sum = np.bincount(b, weights=rel, minlength=bins)
    by_range = {}
    for lo, hi in ranges:
        first = round(lo / bin_m)
        last = bins if math.isinf(hi) else round(hi / bin_m)
        exact_lo = math.isclose(first * bin_m, lo, abs_tol=1e-9) and 0 <= first < bins
        exact_hi = math.isinf(hi) or (math.isclose(last * bin_m, hi) and first < last < bins)
        if not (exact_lo and exact_hi):  # the last bin also holds everything farther
            raise VisionBananaError(f"depth range {lo}-{hi} m must be whole {bin_m} m bins "
                                    f"below {(bins - 1) * bin_m} m, or open-ended")
        n = count[first:last].sum()
        if n > 0:
            by_range[(lo, hi)] = (float(good[first:last].sum() / n),
                                  float(rel_sum[first:last].sum() / n))
    return DepthReport(metrics=overall, median_scale=scale, median_scaled=median_scaled,
                       by_range=by_range,
                       bin_error=rel_sum - missing, bin_count=count - missing)


def constant_baseline(gt: np.ndarray) -> DepthMetrics | None:
    """:func:`depth_metrics` of a constant prediction at the median of the ground truth's
    positive pixels (the trivial baseline every depth figure is read against); ``None`` when
    no pixel is valid. The same figures as predicting ``np.full_like(gt, median)``, without
    the full-frame prediction.

    Args:
        gt: (H, W) ground truth metres (valid: finite, > 0; the median ignores NaN).
    """
    positive = gt[gt > 0]
    valid = np.isfinite(gt) & (gt > 0)
    if not valid.any():
        return None
    value = np.float32(np.median(positive))
    g = gt[valid].astype(np.float32)
    return _summarise(*_errors(_depth_ratio(np.full(g.shape, value, np.float32), g)), g)


def median_scale(pred: np.ndarray, gt: np.ndarray) -> float:
    """median(g) / median(d) over valid pixels (1.0 when undefined)."""
    valid = np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0)
    return _median_ratio(gt[valid], pred[valid])


def _median_ratio(g: np.ndarray, d: np.ndarray) -> float:
    """median(g) / median(d) of paired valid depths (1-D); 1.0 when empty."""
    return _median(g) / _median(d) if len(g) else 1.0


def _median(x: np.ndarray) -> float:
    """Median of a non-empty 1-D array without NaNs (the mean of the two middle values when
    the length is even), as ``np.median``: one single-pivot partition, then the maximum of the
    lower half. For even lengths ``np.median`` partitions around two pivots, which numpy does
    far more slowly on unordered data (2.45 ms against 0.16 ms for 260k random float32)."""
    k = len(x) // 2
    part = np.partition(x, k)
    upper = float(part[k])
    return upper if len(x) % 2 else (float(part[:k].max()) + upper) / 2


@dataclass
class InstanceMetrics:
    """Overlap precision/recall/F-measure, the share of ground-truth objects matched with
    F >= 0.75, and matched IoU of object instances."""

    precision: float
    recall: float
    f_measure: float
    matched_iou: float
    predicted: int
    ground_truth: int
    matched: int
    objects_f75: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def contingency(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                             np.ndarray, np.ndarray]:
    """Object ids and overlaps of two id images in one pass (ids > 0 are objects).

    Returns (pred ids (P,), gt ids (G,), intersections (P, G) in pixels, pred areas (P,),
    gt areas (G,)).
    """
    p_flat, g_flat = pred.ravel(), gt.ravel()
    p_max, g_max = int(p_flat.max(initial=0)), int(g_flat.max(initial=0))
    small = (p_max + 1) * (g_max + 1) <= 1 << 22 and min(p_flat.min(initial=0),
                                                         g_flat.min(initial=0)) >= 0
    if small:  # small non-negative ids (the usual case): one bincount, no sort
        joint_index = p_flat.astype(np.intp) * (g_max + 1)
        joint_index += g_flat
        joint = np.bincount(joint_index, minlength=(p_max + 1) * (g_max + 1))
        joint = joint.reshape(p_max + 1, g_max + 1)
        p_ids, g_ids = np.arange(p_max + 1), np.arange(g_max + 1)
        keep_p, keep_g = joint.sum(1) > 0, joint.sum(0) > 0
        joint, p_ids, g_ids = joint[np.ix_(keep_p, keep_g)], p_ids[keep_p], g_ids[keep_g]
    else:
        p_ids, p_inv = np.unique(p_flat.astype(np.int64), return_inverse=True)
        g_ids, g_inv = np.unique(g_flat.astype(np.int64), return_inverse=True)
        joint = np.bincount(p_inv * len(g_ids) + g_inv, minlength=len(p_ids) * len(g_ids))
        joint = joint.reshape(len(p_ids), len(g_ids))
    p_obj, g_obj = p_ids > 0, g_ids > 0
    p_area = joint.sum(1)[p_obj].astype(np.float64)
    g_area = joint.sum(0)[g_obj].astype(np.float64)
    return p_ids[p_obj], g_ids[g_obj], joint[np.ix_(p_obj, g_obj)], p_area, g_area


def instance_metrics(pred: np.ndarray, gt: np.ndarray,
                     table: tuple | None = None) -> InstanceMetrics:
    """Match predicted and ground-truth instances (ids > 0) by Hungarian on F-measure.

    Args:
        pred, gt: (H, W) integer instance ids (0 = no object).
        table: ``contingency(pred, gt)`` when the caller already has it.
    """
    from scipy.optimize import linear_sum_assignment

    _same_shape(pred, gt, "instances")
    p_ids, g_ids, inter, p_area, g_area = table if table is not None else contingency(pred, gt)
    if len(p_ids) == 0 or len(g_ids) == 0:
        empty = len(p_ids) == 0 and len(g_ids) == 0
        return InstanceMetrics(precision=1.0 if empty or len(p_ids) == 0 else 0.0,
                               recall=1.0 if empty or len(g_ids) == 0 else 0.0,
                               f_measure=1.0 if empty else 0.0, matched_iou=0.0,
                               predicted=len(p_ids), ground_truth=len(g_ids), matched=0,
                               objects_f75=1.0 if len(g_ids) == 0 else 0.0)
    f_pair = 2 * inter / (p_area[:, None] + g_area[None, :])
    rows, cols = linear_sum_assignment(-f_pair)
    keep = inter[rows, cols] > 0
    rows, cols = rows[keep], cols[keep]
    tp = inter[rows, cols].sum()
    precision = float(tp / p_area.sum())
    recall = float(tp / g_area.sum())
    f = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    iou = inter[rows, cols] / (p_area[rows] + g_area[cols] - inter[rows, cols])
    f75 = float((f_pair[rows, cols] >= 0.75).sum() / len(g_ids))
    return InstanceMetrics(precision=precision, recall=recall, f_measure=float(f),
                           matched_iou=float(iou.mean()) if len(iou) else 0.0,
                           predicted=len(p_ids), ground_truth=len(g_ids), matched=len(rows),
                           objects_f75=f75)


#: Boundary tolerance as a fraction of the image diagonal (UOIS-Net's ``bound_th``).
BOUNDARY_FRACTION = 0.003


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of a bool mask with a 4-neighbour outside it (the image border counts)."""
    padded = np.pad(mask, 1)
    inner = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask & ~inner


#: Largest id searched as it is: scipy's ``find_objects`` lists every label up to the largest.
_DIRECT_LABELS = 1024


def _labels(ids: np.ndarray) -> np.ndarray:
    """Non-negative instance ids as labels scipy's ``find_objects`` takes cheaply: the ids
    themselves when the largest is small (the usual case: no pass over the image), else
    consecutive labels 1..n (0 stays 0), so that sparse ids (tracked ids, 16-bit labels) cost
    nothing."""
    if ids.dtype.kind in "ui" and int(ids.max(initial=0)) <= _DIRECT_LABELS:
        return ids
    present = np.bincount(ids.ravel().astype(np.int64)) > 0
    present[:1] = False
    lut = np.zeros(len(present), np.int32)
    lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    return lut[ids]


def boundary_metrics(pred: np.ndarray, gt: np.ndarray,
                     fraction: float = BOUNDARY_FRACTION) -> tuple[float, float, float]:
    """(precision, recall, F) of instance outlines, matched one to one by Hungarian on
    pairwise boundary F (module docstring).

    Args:
        pred, gt: (H, W) integer instance ids (0 = no object).
        fraction: tolerance as a fraction of the image diagonal (at least one pixel).
    """
    import cv2
    from scipy.ndimage import find_objects
    from scipy.optimize import linear_sum_assignment

    _same_shape(pred, gt, "instances")
    pred, gt = _labels(pred), _labels(gt)
    tol = max(1, int(np.ceil(fraction * np.hypot(*pred.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))

    def outlines(ids: np.ndarray) -> list[tuple[tuple[int, int], np.ndarray, np.ndarray]]:
        """Per instance: (top-left corner, outline, dilated outline) in a crop around it."""
        out = []
        h, w = ids.shape
        # Every instance's bounding box in one pass (a full-image search per instance made
        # this the evaluator's costliest metric: 29 ms of a 640x480 frame's 160).
        for i, box in enumerate(find_objects(ids), start=1):
            if box is None:
                continue
            y0, x0 = max(box[0].start - tol - 1, 0), max(box[1].start - tol - 1, 0)
            y1, x1 = min(box[0].stop + tol + 1, h), min(box[1].stop + tol + 1, w)
            mask = ids[y0:y1, x0:x1] == i
            edge = _outline(mask)
            # The crop's own border is not the object's outline unless the image ends there.
            edge[0, :] &= y0 == 0
            edge[-1, :] &= y1 == h
            edge[:, 0] &= x0 == 0
            edge[:, -1] &= x1 == w
            out.append(((y0, x0), edge, cv2.dilate(edge.astype(np.uint8), kernel) > 0))
        return out

    def overlap(a: tuple, b: tuple) -> float:
        """Pixels of ``a``'s outline within ``b``'s dilated outline."""
        (ay, ax), edge, _ = a
        (by, bx), _, dil = b
        y0, x0 = max(ay, by), max(ax, bx)
        y1 = min(ay + edge.shape[0], by + dil.shape[0])
        x1 = min(ax + edge.shape[1], bx + dil.shape[1])
        if y1 <= y0 or x1 <= x0:
            return 0.0
        return float((edge[y0 - ay:y1 - ay, x0 - ax:x1 - ax]
                      & dil[y0 - by:y1 - by, x0 - bx:x1 - bx]).sum())

    p, g = outlines(pred), outlines(gt)
    if not p or not g:
        empty = not p and not g
        return (1.0 if not p else 0.0, 1.0 if not g else 0.0, 1.0 if empty else 0.0)
    tp_p = np.array([[overlap(pi, gj) for gj in g] for pi in p])
    tp_g = np.array([[overlap(gj, pi) for gj in g] for pi in p])
    n_p = np.array([pi[1].sum() for pi in p], np.float64)
    n_g = np.array([gj[1].sum() for gj in g], np.float64)
    prec, rec = tp_p / n_p[:, None], tp_g / n_g[None, :]
    with np.errstate(invalid="ignore"):
        f_pair = np.nan_to_num(2 * prec * rec / (prec + rec))
    rows, cols = linear_sum_assignment(-f_pair)
    precision = float(tp_p[rows, cols].sum() / n_p.sum())
    recall = float(tp_g[rows, cols].sum() / n_g.sum())
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, float(f)


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


def completion_metrics(pred: np.ndarray, gt_depth: np.ndarray, extra: dict[str, np.ndarray],
                       source: np.ndarray | None) -> dict[str, float]:
    """Depth figures of an RGB-D frame on the pixels that matter for completion.

    Args:
        pred: (H, W) published depth, metres; gt_depth: (H, W) ground truth (NaN invalid).
        extra: optional (H, W) arrays: ``sensor_input`` (the camera depth fed to the model,
            NaN where it had none), ``transparent`` (bool mask), ``hidden`` (bool: blobs hidden
            from the input by the evaluator).
        source: (H, W) uint8 ``~/depth/source`` of the frame, or None.

    Returns:
        ``{holes,transparent,hidden}_{delta1,abs_rel}`` for the masks present (ground truth
        valid there), and ``sensor_kept``: the fraction of the camera's valid pixels published
        as the camera's own depth (source 1).
    """
    masks: dict[str, np.ndarray] = {}
    sensor = extra.get("sensor_input")
    if sensor is not None:
        masks["holes"] = ~np.isfinite(sensor)
    for name in ("transparent", "hidden"):
        if name in extra:
            masks[name] = extra[name].astype(bool)
    out: dict[str, float] = {}
    for name, mask in masks.items():
        m = depth_metrics(pred, np.where(mask, gt_depth, np.float32(np.nan)))
        if m is not None:
            out[f"{name}_delta1"], out[f"{name}_abs_rel"] = m.delta1, m.abs_rel
    if sensor is not None and source is not None and np.isfinite(sensor).any():
        out["sensor_kept"] = float(np.mean(source[np.isfinite(sensor)] == 1))
    return out
