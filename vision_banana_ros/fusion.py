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


def _spread(values: np.ndarray, support: np.ndarray, glob: float) -> np.ndarray:
    """``values`` spread from ``support`` over the frame (``glob`` where none is near), coarse
    to fine (normalised convolution at each of :data:`SPREAD_SIGMAS` on a 4x coarser grid; a
    finer estimate replaces the coarser one where it has support): near valid pixels the field
    follows them closely, deep in a large hole it is smooth. (H, W) float32."""
    import cv2

    h, w = values.shape
    small = (max(1, w // 4), max(1, h // 4))
    num0 = cv2.resize(np.where(support, values, 0.0).astype(np.float32), small,
                      interpolation=cv2.INTER_AREA)
    den0 = cv2.resize(support.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    diagonal = float(np.hypot(*small))
    field = np.full(den0.shape, glob, np.float32)
    for frac in SPREAD_SIGMAS:
        sigma = max(0.5, frac * diagonal)
        num = cv2.GaussianBlur(num0, (0, 0), sigma)
        den = cv2.GaussianBlur(den0, (0, 0), sigma)
        weight = np.clip(den / 0.1, 0.0, 1.0)
        field = weight * (num / np.maximum(den, 1e-6)) + (1 - weight) * field
    return cv2.resize(field.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


#: Regulariser of the local slope (square metres): depth variations of the model below about
#: 3 cm within a neighbourhood are not trusted as shape, so there the completion leans on the
#: camera's depth around the hole (the guided filter's epsilon).
AFFINE_EPS_M2 = 1e-3


def _affine_fit(model: np.ndarray, sensor: np.ndarray,
                support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local least-squares ``sensor ~ a * model + b`` from the ``support`` pixels, the moments
    spread as the ratios are (:func:`_spread`); (a, b) fields, (H, W) float32."""
    m = np.where(support, model, 0.0).astype(np.float32)
    s = np.where(support, sensor, 0.0).astype(np.float32)
    m0, s0 = float(np.median(m[support])), float(np.median(s[support]))
    mean_m = _spread(m, support, m0)
    mean_s = _spread(s, support, s0)
    var = np.maximum(_spread(m * m, support, m0 * m0) - mean_m * mean_m, 0.0)
    cov = _spread(m * s, support, m0 * s0) - mean_m * mean_s
    a = np.clip(cov / (var + AFFINE_EPS_M2), 0.0, 1.0 / SCALE_BOUNDS[0])
    return a, mean_s - a * mean_m


def align_locally(model: np.ndarray, sensor: np.ndarray) -> np.ndarray:
    """The model's depth put on the camera's depth, locally: ``a * model + b`` with (a, b) a
    local linear fit (guided-filter style) to the pixels where both are valid, spread coarse
    to fine into the holes. Where the model's shape explains the camera's depth around a hole,
    the hole gets that shape at the camera's offset and scale; where it does not (a flat
    table, a wrong model), the fit's slope falls to 0 and the hole is interpolated from the
    camera's depth around it. Two passes: pixels more than :data:`LOCAL_OUTLIER` off the first
    fit (glass seen through, flying pixels) are left out of the second. (H, W) float32
    metres, NaN where the model has none."""
    both = np.isfinite(model) & np.isfinite(sensor) & (model > 0) & (sensor > 0)
    if both.sum() < 16:
        return (model * align_scale(model, sensor)).astype(np.float32)
    glob = align_scale(model, sensor)
    scaled = np.where(np.isfinite(model), model * glob, 0.0).astype(np.float32)
    ratio = np.where(both, sensor / np.where(both, scaled, 1.0), 0.0)
    both &= (ratio > SCALE_BOUNDS[0]) & (ratio < SCALE_BOUNDS[1])
    a, b = _affine_fit(scaled, sensor, both)
    first = a * scaled + b
    with np.errstate(invalid="ignore", divide="ignore"):
        inliers = both & (np.abs(sensor / first - 1.0) < LOCAL_OUTLIER)
    if inliers.sum() >= 16:
        a, b = _affine_fit(scaled, sensor, inliers)
    out = a * scaled + b
    out[~np.isfinite(model) | (out <= 0)] = np.nan
    return out.astype(np.float32)


def fuse_depth(model: np.ndarray | None, sensor: np.ndarray | None, mode: str,
               consistency: float) -> tuple[np.ndarray, np.ndarray]:
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
    source = np.zeros(ref.shape, np.uint8)
    if sensor is not None and model is not None and mode != "none":
        model = align_locally(model, sensor)
    if sensor is not None and model is not None and mode == "holes":
        with np.errstate(invalid="ignore", divide="ignore"):
            keep = np.isfinite(sensor) & ~(np.abs(sensor - model) > consistency * model)
        depth = np.where(keep, sensor, model).astype(np.float32)
        source[keep & np.isfinite(depth)] = SOURCE_SENSOR
        source[~keep & np.isfinite(depth)] = SOURCE_MODEL
        return depth, source
    if sensor is None or mode == "all":
        depth = (model.astype(np.float32, copy=True) if model is not None
                 else np.full(ref.shape, np.nan, np.float32))
        value = SOURCE_MODEL
    else:  # mode "none", or no model depth
        depth, value = sensor.astype(np.float32, copy=True), SOURCE_SENSOR
    source[np.isfinite(depth)] = value
    return depth, source
