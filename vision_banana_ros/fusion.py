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


def align_scale(model: np.ndarray, sensor: np.ndarray) -> float:
    """Median of sensor / model over pixels where both are valid (1 when none), clipped to
    :data:`SCALE_BOUNDS`: the factor that puts the model's depth on the camera's scale."""
    both = np.isfinite(model) & np.isfinite(sensor) & (model > 0) & (sensor > 0)
    if both.sum() < 16:
        return 1.0
    return float(np.clip(np.median(sensor[both] / model[both]), *SCALE_BOUNDS))


def fuse_depth(model: np.ndarray | None, sensor: np.ndarray | None, mode: str,
               consistency: float) -> tuple[np.ndarray, np.ndarray]:
    """(depth, source) of one frame.

    With both depths, the model's is first put on the camera's scale (:func:`align_scale`):
    the camera's depth is metric where it is valid, and the model's shape fills its holes at
    the right scale.

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
        model = model * np.float32(align_scale(model, sensor))
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
