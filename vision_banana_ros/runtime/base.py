"""The backend protocol: one network, loaded once, buffers allocated once.

A backend maps a batch of preprocessed images and task ids (and, for models with
``config.depth_input``, the camera's depth planes) to paintings:

    run(images: (B, 3, h, w) float32 RGB in [0, 1], task_ids: (T,) int64,
        depth: (B, 2, h, w) float32 or None (vision_banana_ros.depth_input; None: no depth))
        -> (B, T, 3, h, w) float32 paintings in [0, 1]

A model without depth input ignores ``depth``; a depth model given None runs RGB-only.

and reports what it is (name, device, precision) and its input/output specs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vision_banana_ros.depth_input import PLANES
from vision_banana_ros.errors import VisionBananaError


class BackendError(VisionBananaError):
    """A backend cannot be created or cannot run (missing package, bad model, bad input)."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (None = dynamic) and dtype of a backend input or output."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


class Backend(Protocol):
    """What the pipeline needs from an inference engine."""

    name: str
    device: str
    precision: str

    def run(self, images: np.ndarray, task_ids: np.ndarray,
            depth: np.ndarray | None = None) -> np.ndarray:
        """(B, 3, h, w) float32, (T,) int64, (B, 2, h, w) float32 or None
        -> (B, T, 3, h, w) float32 paintings."""
        ...

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        """Input and output specs."""
        ...

    def close(self) -> None:
        """Release the engine and its memory."""
        ...


def depth_planes_for(config: object, images: np.ndarray,
                     depth: np.ndarray | None) -> np.ndarray | None:
    """The depth planes to feed: None for a model without depth input, zeros when a depth
    model gets no depth, else ``depth`` checked against the images.

    Raises:
        BackendError: depth planes of the wrong dtype or shape.
    """
    if not getattr(config, "depth_input", False):
        return None
    b, _, h, w = images.shape
    if depth is None:
        return np.zeros((b, PLANES, h, w), np.float32)
    if depth.dtype != np.float32 or depth.shape != (b, PLANES, h, w):
        raise BackendError(f"depth planes must be float32 ({b}, {PLANES}, {h}, {w}), got "
                           f"{depth.dtype} {depth.shape}")
    return np.ascontiguousarray(depth)


def check_inputs(images: np.ndarray, task_ids: np.ndarray, height: int, width: int,
                 num_tasks: int) -> None:
    """Raise :class:`BackendError` naming the first mismatch of a backend's inputs."""
    if images.dtype != np.float32 or images.ndim != 4 or images.shape[1:] != (3, height, width):
        raise BackendError(f"backend input must be float32 (B, 3, {height}, {width}), got "
                           f"{images.dtype} {images.shape}")
    if task_ids.ndim != 1 or task_ids.size == 0 or task_ids.min() < 0 \
            or task_ids.max() >= num_tasks:
        raise BackendError(f"task ids must be a non-empty vector in [0, {num_tasks}), got "
                           f"{task_ids.tolist()}")
