"""Depth fusion: the camera's depth where it is valid and consistent with the model, the
model's completion elsewhere, and where each published pixel came from."""

from __future__ import annotations

import numpy as np

from vision_banana_ros.errors import VisionBananaError

#: ``~/depth/source`` values (mono8).
SOURCE_NONE, SOURCE_SENSOR, SOURCE_MODEL = 0, 1, 2
FILL_MODES = ("holes", "all", "none")


#: Bounds of the scale that aligns the model's depth to the camera's (a model further off
#: than this is not trusted to be rescaled).
SCALE_BOUNDS = (0.5, 2.0)
#: Ratios this far (relative) from the first pass of the local scale field are outliers.
LOCAL_OUTLIER = 0.3


def align_scale(model: np.ndarray, sensor: np.ndarray) -> float:
    """Median of sensor / model over pixels where both are valid (1 when none), clipped to
    :data:`SCALE_BOUNDS`: the factor that puts the model's depth on the camera's scale."""
    both = np.isfinite(model) & np.isfinite(sensor) & (model > 0) & (sensor > 0)
    if both.sum() < 16:
        return 1.0
    return float(np.clip(np.median(sensor[both] / model[both]), *SCALE_BOUNDS))


#: Scales (fractions of the image diagonal) of the spreading, coarse to fine.
SPREAD_SIGMAS = (0.16, 0.08, 0.04, 0.02, 0.01)


def _spread_small(values: list[np.ndarray], support: np.ndarray,
                  defaults: np.ndarray) -> np.ndarray:
    """``values`` ((H, W) float32 each, 0 outside ``support``) spread from ``support`` over
    the frame, coarse to fine, on a 4x coarser grid: normalised convolution at each of
    :data:`SPREAD_SIGMAS` (a finer estimate replaces the coarser one where it has support;
    ``defaults`` (C,) where no support is near). Near valid pixels the fields follow them
    closely, deep in a large hole they are smooth. Each blur runs on a grid coarse enough for
    a sigma of about 2 cells. Returns (h, w, C) float32 on the coarser grid (h = H // 4,
    w = W // 4)."""
    import cv2

    h, w = support.shape
    small = (max(1, w // 4), max(1, h // 4))
    stack = np.stack([cv2.resize(v, small, interpolation=cv2.INTER_AREA)
                      for v in [*values, support.astype(np.float32)]], axis=2)
    diagonal = float(np.hypot(*small))
    field = np.broadcast_to(np.asarray(defaults, np.float32),
                            (*stack.shape[:2], stack.shape[2] - 1)).copy()
    for frac in SPREAD_SIGMAS:
        sigma = max(0.5, frac * diagonal)
        factor = max(1.0, sigma / 2.0)
        grid = (max(1, round(small[0] / factor)), max(1, round(small[1] / factor)))
        coarse = _resize(stack, grid, cv2.INTER_AREA) if factor > 1 else stack
        blurred = cv2.GaussianBlur(coarse, (0, 0), sigma / factor).reshape(grid[1], grid[0], -1)
        if factor > 1:
            blurred = _resize(blurred, small, cv2.INTER_LINEAR)
        den = blurred[..., -1:]
        weight = np.clip(den / 0.1, 0.0, 1.0)
        field = weight * (blurred[..., :-1] / np.maximum(den, 1e-6)) + (1 - weight) * field
    return field


def _resize(img: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """cv2.resize of (H, W, C) float32 for any C (OpenCV's area resize takes at most 4)."""
    import cv2

    parts = [cv2.resize(np.ascontiguousarray(img[..., i:i + 4]), size,
                        interpolation=interpolation).reshape(size[1], size[0], -1)
             for i in range(0, img.shape[2], 4)]
    return np.concatenate(parts, axis=2) if len(parts) > 1 else parts[0]


def _to_full(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w[, C]) coarse field -> (H, W[, C]) float32 (bilinear)."""
    import cv2

    out = cv2.resize(np.ascontiguousarray(field, np.float32), (shape[1], shape[0]),
                     interpolation=cv2.INTER_LINEAR)
    return out.reshape(shape + field.shape[2:]) if field.ndim == 3 else out


#: Regulariser of the local slope (square metres): depth variations of the model below about
#: 3 cm within a neighbourhood are not trusted as shape, so there the completion leans on the
#: camera's depth around the hole (the guided filter's epsilon).
AFFINE_EPS_M2 = 1e-3


#: Pixels the local fit reads at most (every n-th pixel in both directions beyond that).
FIT_SAMPLES = 20_000


def _affine_fit(model: np.ndarray, sensor: np.ndarray,
                support: np.ndarray) -> np.ndarray:
    """Local least-squares ``sensor ~ a * model + b`` from the ``support`` pixels, the moments
    spread into the holes (:func:`_spread_small`); (h, w, 3) float32 (a, b, i) on its grid,
    with i the camera's depth alone spread (interpolation: the fit with a = 0)."""
    m = np.where(support, model, 0.0).astype(np.float32)
    s = np.where(support, sensor, 0.0).astype(np.float32)
    m0, s0 = float(np.median(m[support])), float(np.median(s[support]))
    moments = _spread_small([m, s, m * m, m * s], support,
                            np.array([m0, s0, m0 * m0, m0 * s0]))
    mean_m, mean_s = moments[..., 0], moments[..., 1]
    var = np.maximum(moments[..., 2] - mean_m * mean_m, 0.0)
    cov = moments[..., 3] - mean_m * mean_s
    a = np.clip(cov / (var + AFFINE_EPS_M2), 0.0, 1.0 / SCALE_BOUNDS[0])
    return np.stack([a, mean_s - a * mean_m, mean_s], axis=2)


#: The completion's self-check: blocks of about this fraction of the image's larger side,
#: covering about :data:`CHECK_FRACTION` of the camera's valid pixels, are held out.
CHECK_BLOCK = 1 / 12
CHECK_FRACTION = 0.15


def _held_out_blocks(support: np.ndarray, seed: int = 0) -> np.ndarray:
    """About :data:`CHECK_FRACTION` of ``support``'s pixels, as whole square blocks of
    :data:`CHECK_BLOCK` of the larger side chosen by a generator seeded with ``seed``
    (the same blocks every frame of a size): (H, W) bool."""
    h, w = support.shape
    block = max(2, round(max(h, w) * CHECK_BLOCK))
    rows, cols = -(-h // block), -(-w // block)
    pick = np.random.default_rng(seed).random((rows, cols)) < CHECK_FRACTION
    return support & np.kron(pick, np.ones((block, block), bool))[:h, :w]


def _shape_preference(first: np.ndarray, model: np.ndarray, sensor: np.ndarray,
                      held: np.ndarray) -> np.ndarray | None:
    """Where the model's shape fills a hole better than interpolating the camera's depth,
    checked on the camera's own pixels: ``first`` is the fit ((H, W, 3) a, b, i at the
    pixels of ``model``) made without the ``held`` pixels; at each of them the completion
    nearer the camera's depth (relative error, clipped at 1) wins, the difference spread over
    the frame. (h, w) float32 on the spread grid: 1 the model's shape, 0 interpolation;
    None (the model's shape everywhere) when fewer than 16 pixels are held."""
    if held.sum() < 16:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        err_shape = np.abs(first[..., 0] * model + first[..., 1] - sensor) / sensor
        err_interp = np.abs(first[..., 2] - sensor) / sensor
    gain = np.where(held, np.minimum(err_interp, 1.0) - np.minimum(err_shape, 1.0), 0.0)
    spread = _spread_small([np.nan_to_num(gain).astype(np.float32)], held, np.zeros(1))
    return (spread[..., 0] > 0).astype(np.float32)


def align_locally(model: np.ndarray, sensor: np.ndarray, *,
                  shape_check: bool = True) -> np.ndarray:
    """The model's depth put on the camera's depth, locally: ``a * model + b`` with (a, b) a
    local linear fit (guided-filter style) to the pixels where both are valid, spread coarse
    to fine into the holes. Where the model's shape explains the camera's depth around a hole,
    the hole gets that shape at the camera's offset and scale; where it does not (a flat
    table, a wrong model), the fit's slope falls to 0 and the hole is interpolated from the
    camera's depth around it. Two passes: pixels more than :data:`LOCAL_OUTLIER` off the first
    fit (glass seen through, flying pixels) are left out of the second. The first pass is
    also a self-check (:func:`_shape_preference`): blocks of the camera's own pixels are held
    out of it and filled both ways, and around each block the better of the model's shape
    and plain interpolation of the camera's depth is used (on the real bags the shape won on
    tabletops with objects and lost on flat scenes, before this check). The fit reads every
    n-th pixel (at most :data:`FIT_SAMPLES`); the fields are smooth, so the result is the
    same. ``shape_check`` False: no self-check (the model's shape wherever the fit trusts
    it; the evaluator's interpolation baseline, whose flat model has no shape to check).
    (H, W) float32 metres, NaN where the model has none."""
    shape = model.shape
    n = max(1, round(float(np.sqrt(model.size / FIT_SAMPLES))))
    m, s = model[::n, ::n], sensor[::n, ::n]
    both = np.isfinite(m) & np.isfinite(s) & (m > 0) & (s > 0)
    glob = align_scale(m, s)
    if both.sum() < 16:
        return (model * glob).astype(np.float32)
    scaled = np.where(both, m * glob, 0.0).astype(np.float32)
    ratio = np.where(both, s / np.where(both, scaled, 1.0), 0.0)
    both &= (ratio > SCALE_BOUNDS[0]) & (ratio < SCALE_BOUNDS[1])
    # The first pass leaves the self-check's blocks out: they are then scored as holes.
    held = _held_out_blocks(both) if shape_check else np.zeros_like(both)
    train = both & ~held
    ab = _affine_fit(scaled, s, train if train.sum() >= 16 else both)
    first = _to_full(ab, both.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        inliers = both & (np.abs(s / (first[..., 0] * scaled + first[..., 1]) - 1.0)
                          < LOCAL_OUTLIER)
    weight = _shape_preference(first, scaled, s, held & inliers)
    if inliers.sum() >= 16:
        ab = _affine_fit(scaled, s, inliers)
    if weight is None:
        slope, offset = ab[..., 0], ab[..., 1]
    else:  # w * (a * model + b) + (1 - w) * i, folded into the coefficients
        slope = weight * ab[..., 0]
        offset = weight * ab[..., 1] + (1.0 - weight) * ab[..., 2]
    out = np.multiply(model, np.float32(glob), dtype=np.float32)
    out *= _to_full(slope, shape)
    out += _to_full(offset, shape)
    out[~(out > 0) | ~np.isfinite(model)] = np.nan
    return out


def fuse_depth(model: np.ndarray | None, sensor: np.ndarray | None, mode: str,
               consistency: float, *, shape_check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(depth, source) of one frame.

    With both depths, the model's is first put on the camera's depth, locally
    (:func:`align_locally`): the camera's depth is metric where it is valid, and the model's
    shape fills its holes at the offset and scale of the camera's depth around them.

    Args:
        model: (H, W) float32 metres decoded from the painting (NaN invalid), or None.
        sensor: (H, W) float32 metres from the camera (NaN invalid), or None (RGB only).
        mode: ``holes``: the sensor's depth where it is valid and within ``consistency`` (a
            fraction) of the model's, the model's elsewhere; ``all``: the model's only;
            ``none``: the sensor's only.
        consistency: largest ``|sensor - model| / model`` for the sensor's depth to be kept.
        shape_check: :func:`align_locally`'s self-check of the model's shape.

    Returns:
        (H, W) float32 metres (NaN where neither has depth) and (H, W) uint8 source
        (:data:`SOURCE_NONE`, :data:`SOURCE_SENSOR`, :data:`SOURCE_MODEL`).
    """
    if mode not in FILL_MODES:
        raise VisionBananaError(f"depth fill must be one of {', '.join(FILL_MODES)}, got "
                                f"{mode!r}")
    ref = model if model is not None else sensor
    if ref is None:
        raise VisionBananaError("depth fusion needs the model's or the sensor's depth")
    if sensor is not None and model is not None and sensor.shape != model.shape:
        raise VisionBananaError(f"sensor depth {sensor.shape} and model depth {model.shape} "
                                "differ in size")
    if sensor is not None and model is not None and mode != "none":
        model = align_locally(model, sensor, shape_check=shape_check)
    if sensor is not None and model is not None and mode == "holes":
        with np.errstate(invalid="ignore", divide="ignore"):
            off = np.abs(np.subtract(sensor, model, dtype=np.float32))
            keep = ~(off > np.float32(consistency) * model)
        keep &= np.isfinite(sensor)
        depth = np.where(keep, sensor, model).astype(np.float32, copy=False)
        source = np.where(keep, np.uint8(SOURCE_SENSOR), np.uint8(SOURCE_MODEL))
        source[~np.isfinite(depth)] = SOURCE_NONE
        return depth, source
    if sensor is None or mode == "all":
        depth = (model.astype(np.float32, copy=True) if model is not None
                 else np.full(ref.shape, np.nan, np.float32))
        value = SOURCE_MODEL
    else:  # mode "none", or no model depth
        depth, value = sensor.astype(np.float32, copy=True), SOURCE_SENSOR
    source = np.where(np.isfinite(depth), np.uint8(value), np.uint8(SOURCE_NONE))
    return depth, source
