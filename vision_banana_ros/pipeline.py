"""The perception pipeline shared by the node, the evaluator and training's evaluation.

``rgb (H, W, 3) uint8 + K -> resize to the network input (K rescaled exactly) -> backend ->
paintings -> codecs -> outputs at the input resolution``, with metric depth rescaled from the
canonical camera by ``fx / canonical_focal_px`` (fx of the network input).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np

from vision_banana_ros.codecs import TASKS, parse_tasks
from vision_banana_ros.depth_input import letterboxed_planes
from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.geometry import check_intrinsics
from vision_banana_ros.letterbox import PAD_RGB, Letterbox, letterbox
from vision_banana_ros.memory import reuse_freed_blocks
from vision_banana_ros.model.config import ModelConfig
from vision_banana_ros.runtime.base import Backend
from vision_banana_ros.runtime.threads import limit_blas_threads


@dataclass
class Outputs:
    """Decoded outputs of one frame at the input resolution (missing tasks are None)."""

    depth: np.ndarray | None = None       # (H, W) float32 metres, NaN invalid
    instances: np.ndarray | None = None   # (H, W) uint16
    semantic: np.ndarray | None = None    # (H, W) uint8
    normals: np.ndarray | None = None     # (H, W, 3) float32, NaN invalid
    paintings: dict[str, np.ndarray] = field(default_factory=dict)  # (h, w, 3) uint8
    timings_ms: dict[str, float] = field(default_factory=dict)


def resize_rgb(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 with area averaging when shrinking, bilinear when growing."""
    import cv2

    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb
    interp = cv2.INTER_AREA if width < w else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interp)


def network_input(rgb: np.ndarray, k: np.ndarray | None, depth: np.ndarray | None,
                  config: ModelConfig, use_intrinsics: bool = True
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, Letterbox]:
    """What the network gets of one frame (the node's preprocessing, also INT8 calibration's).

    (H, W, 3) uint8 (and (H, W) metres of the camera's depth, NaN invalid) -> ((1, 3, h, w)
    float32 in [0, 1], K at the network resolution, (1, 2, h, w) depth planes or None, and
    where the frame lies in the network input (aspect kept: :mod:`vision_banana_ros.letterbox`).
    Depth planes are made only for a model with depth input and a depth image.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
        raise VisionBananaError(f"image must be (H, W, 3) uint8, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    box = letterbox(w, h, config.input_width, config.input_height)
    small = box.place(resize_rgb(rgb, box.width, box.height), PAD_RGB)
    x = np.ascontiguousarray(small.transpose(2, 0, 1)[None], dtype=np.float32)
    x *= np.float32(1.0 / 255.0)
    k_small = None if k is None else box.k(check_intrinsics(k))
    planes = None
    if depth is not None and config.depth_input:
        if depth.shape != (h, w):
            raise VisionBananaError(f"depth is {depth.shape[1]}x{depth.shape[0]} but the "
                                    f"image is {w}x{h}")
        fx = float(k_small[0, 0]) if k_small is not None and use_intrinsics else None
        planes = letterboxed_planes(depth, box, fx, config.canonical_focal_px)[None]
    return x, k_small, planes, box


class Pipeline:
    """Preprocess, infer and decode frames with one backend.

    Args:
        backend: a loaded :class:`~vision_banana_ros.runtime.base.Backend`.
        config: the model's config (input size, tasks, canonical focal length).
        tasks: tasks to run, names or a comma-separated string.
        use_intrinsics: rescale depth with fx from K (False: the canonical camera is assumed).
        tune_process: tune the whole process for a frame loop: BLAS thread pools capped at one
            thread (:mod:`vision_banana_ros.runtime.threads`) and freed frame-sized blocks kept
            for reuse (:func:`vision_banana_ros.memory.reuse_freed_blocks`).
    """

    def __init__(self, backend: Backend, config: ModelConfig, tasks: str | list[str],
                 *, use_intrinsics: bool = True, tune_process: bool = True) -> None:
        specs = parse_tasks(tasks)
        missing = [s.name for s in specs if s.name not in config.tasks]
        if missing:
            raise VisionBananaError(f"the model was not trained for tasks {missing}; it knows "
                                    f"{', '.join(config.tasks)}")
        if tune_process:
            limit_blas_threads(1)
            reuse_freed_blocks()
        self.backend = backend
        self.config = config
        self.tasks = tuple(s.name for s in specs)
        self.task_ids = np.array([config.tasks.index(t) for t in self.tasks], dtype=np.int64)
        self.use_intrinsics = use_intrinsics
        #: Context entered around each network call; the evaluator uses it to keep its
        #: scoring thread off the cores while the backend runs.
        self.network_guard: Callable[[], AbstractContextManager] = contextlib.nullcontext

    def preprocess(self, rgb: np.ndarray, k: np.ndarray | None,
                   depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None,
                                                             np.ndarray | None, Letterbox]:
        """:func:`network_input` with this pipeline's model and intrinsics setting."""
        return network_input(rgb, k, depth, self.config, self.use_intrinsics)

    def depth_scale(self, k_small: np.ndarray | None) -> float:
        """Factor from decoded canonical depth to metres."""
        if k_small is None or not self.use_intrinsics:
            return 1.0
        return float(k_small[0, 0]) / self.config.canonical_focal_px

    def __call__(self, rgb: np.ndarray, k: np.ndarray | None = None,
                 depth: np.ndarray | None = None, *, keep_paintings: bool = False,
                 skip: Collection[str] = ()) -> Outputs:
        """Run every configured task on one frame (``depth``: the camera's, (H, W) metres,
        NaN invalid, aligned to ``rgb``; used by models with depth input). Tasks in ``skip``
        are neither run nor decoded this frame (their output stays None): the node skips the
        instance painting when geometry or clusters replace it (its decoding alone cost 59 of
        221 ms on a 640x480 frame)."""
        t0 = time.perf_counter()
        x, k_small, planes, box = self.preprocess(rgb, k, depth)
        t1 = time.perf_counter()
        run = [i for i, name in enumerate(self.tasks) if name not in skip]
        if not run:
            raise VisionBananaError(f"every task of {self.tasks} was skipped")
        names = [self.tasks[i] for i in run]
        ids = self.task_ids if len(run) == len(self.tasks) else self.task_ids[run]
        with self.network_guard():
            paint = self.backend.run(x, ids, planes)[0]  # (T, 3, h, w)
        t2 = time.perf_counter()
        h, w = rgb.shape[:2]
        out = Outputs()
        scale = np.float32(self.depth_scale(k_small))
        for i, name in enumerate(names):
            p = np.ascontiguousarray(box.crop(paint[i].transpose(1, 2, 0)))
            if keep_paintings:
                out.paintings[name] = resize_rgb(np.rint(np.clip(p, 0, 1) * 255.0)
                                                 .astype(np.uint8), w, h)
            spec = TASKS[name]
            decoded = spec.decode(p)
            if spec.metric:
                decoded *= scale
            setattr(out, name, upsample(decoded, spec.upsample, w, h))
        t3 = time.perf_counter()
        out.timings_ms = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3,
                          "decode": (t3 - t2) * 1e3}
        return out


def upsample(decoded: np.ndarray, how: str, width: int, height: int) -> np.ndarray:
    """A decoded output at the network resolution brought to (height, width).

    ``how`` is a :attr:`~vision_banana_ros.codecs.tasks.TaskSpec.upsample`: ``linear`` for
    values (non-finite become NaN first), ``nearest`` for ids, ``unit_vectors`` for (h, w, 3)
    normals (interpolated, renormalised, NaN where the interpolation crossed invalid pixels).
    """
    import cv2

    size = (width, height)
    if how == "nearest":
        return cv2.resize(decoded, size, interpolation=cv2.INTER_NEAREST)
    if how == "linear":
        decoded[~np.isfinite(decoded)] = np.nan
        return cv2.resize(decoded, size, interpolation=cv2.INTER_LINEAR)
    if how == "unit_vectors":
        n = cv2.resize(np.nan_to_num(decoded), size, interpolation=cv2.INTER_LINEAR)
        norm = np.sqrt(np.einsum("hwc,hwc->hw", n, n))[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            n /= norm
        n[norm[..., 0] <= 0.5] = np.nan
        return n
    raise VisionBananaError(f"unknown upsampling {how!r}")
