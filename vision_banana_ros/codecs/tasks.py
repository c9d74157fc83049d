"""The task table: the one place a task (prompt, codec, output, loss, metric) is defined.

Each :class:`TaskSpec` says how a task's target is painted (numpy and torch), how its painting is
decoded and brought back to the input resolution, where the decoded output is published, which
training target and loss it uses, and which ground truth scores it. The pipeline, the node's
topics (:mod:`vision_banana_ros.outputs`), the ONNX export, training and the evaluator all loop
over this table. The model's task embedding is indexed by :attr:`TaskSpec.index`; adding a task
means adding a row here (and its loss, and training the model for it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vision_banana_ros.codecs.depth import (
    decode_depth,
    decode_depth_torch,
    encode_depth,
    encode_depth_torch,
)
from vision_banana_ros.codecs.instances import decode_instances, encode_instances
from vision_banana_ros.codecs.normals import (
    decode_normals,
    decode_normals_torch,
    encode_normals,
    encode_normals_torch,
)
from vision_banana_ros.codecs.semantic import (
    DEFAULT_SEMANTIC_PALETTE,
    decode_semantic,
    decode_semantic_torch,
    encode_semantic,
)
from vision_banana_ros.errors import VisionBananaError

__all__ = ["TASKS", "TaskSpec", "get_task", "parse_tasks"]


@dataclass(frozen=True)
class TaskSpec:
    """One vision task painted as RGB.

    Attributes:
        name: task name used in parameters, topics (``~/task_images/<name>``) and checkpoints.
        index: row of the model's task embedding; fixed once a model is trained.
        prompt: the instruction the generator is conditioned on.
        encode: target -> (..., H, W, 3) float32 painting (numpy, channels last).
        decode: (..., H, W, 3) painting -> decoded output (numpy).
        decode_torch: (..., 3, H, W) painting -> decoded output (torch), or None when decoding
            is not a tensor program (instance clustering).
        encode_torch: torch target encoder (channels first), or None.
        ros_encoding: sensor_msgs/Image encoding of the decoded output.
        decoded_dtype: numpy dtype of the decoded output.
        unit: unit of the decoded values, for documentation.
        topic: output topic of the decoded result, relative to the node's namespace.
        upsample: how the decoded output returns to the input resolution: ``linear`` (values),
            ``nearest`` (ids) or ``unit_vectors`` (linear, then renormalised; NaN where the
            interpolation crossed invalid pixels).
        metric: decoded values are depths in the canonical camera, scaled by
            ``fx / canonical_focal_px`` to metres.
        target: key of the training batch holding this task's target.
        loss: name of the loss function in :mod:`vision_banana_ros.training.losses`; it takes
            (paintings (B, 3, H, W), target) and returns named scalar terms.
        ground_truth: evaluation role of the ground truth that scores it (None: not scored on
            bags).
    """

    name: str
    index: int
    prompt: str
    encode: Callable[..., np.ndarray]
    decode: Callable[..., np.ndarray]
    decode_torch: Callable[..., Any] | None
    encode_torch: Callable[..., Any] | None
    ros_encoding: str
    decoded_dtype: np.dtype
    unit: str
    topic: str
    upsample: str
    target: str
    loss: str
    metric: bool = False
    ground_truth: str | None = None


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="depth",
            index=0,
            prompt=("Paint the metric depth: power transform, then the RGB cube walk black, red, "
                    "yellow, green, cyan, blue, magenta, white."),
            encode=encode_depth,
            decode=decode_depth,
            decode_torch=decode_depth_torch,
            encode_torch=encode_depth_torch,
            ros_encoding="32FC1",
            decoded_dtype=np.dtype(np.float32),
            unit="metres along the optical axis",
            topic="depth/image",
            upsample="linear",
            target="depth_canonical",
            loss="depth_losses",
            metric=True,
            ground_truth="depth",
        ),
        TaskSpec(
            name="instances",
            index=1,
            prompt="Paint every object instance in its own distinct solid colour, the rest black.",
            encode=encode_instances,
            decode=decode_instances,
            decode_torch=None,
            encode_torch=None,
            ros_encoding="16UC1",
            decoded_dtype=np.dtype(np.uint16),
            unit="instance id, 0 = no object",
            topic="segmentation/instances",
            upsample="nearest",
            target="instances",
            loss="instance_losses",
            ground_truth="instances",
        ),
        TaskSpec(
            name="semantic",
            index=2,
            prompt=DEFAULT_SEMANTIC_PALETTE.prompt(),
            encode=encode_semantic,
            decode=decode_semantic,
            decode_torch=decode_semantic_torch,
            encode_torch=None,
            ros_encoding="mono8",
            decoded_dtype=np.dtype(np.uint8),
            unit="class id (README class table), 255 = none",
            topic="segmentation/semantic",
            upsample="nearest",
            target="semantic",
            loss="semantic_losses",
            ground_truth="semantic",
        ),
        TaskSpec(
            name="normals",
            index=3,
            prompt=("Paint the surface normals in the camera frame, x y z from [-1, 1] to "
                    "red green blue."),
            encode=encode_normals,
            decode=decode_normals,
            decode_torch=decode_normals_torch,
            encode_torch=encode_normals_torch,
            ros_encoding="32FC3",
            decoded_dtype=np.dtype(np.float32),
            unit="unit vector, camera optical frame",
            topic="normals/image",
            upsample="unit_vectors",
            target="normals",
            loss="normals_losses",
        ),
    )
}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name; unknown names raise with the list of known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise VisionBananaError(
            f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def parse_tasks(names: str | list[str] | tuple[str, ...]) -> tuple[TaskSpec, ...]:
    """Parse a task list (``"depth,instances"`` or a sequence) into specs, in table order.

    Raises:
        VisionBananaError: empty list or unknown name.
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    wanted = {n.strip() for n in items if n.strip()}
    if not wanted:
        raise VisionBananaError(f"no task given; known tasks: {', '.join(TASKS)}")
    specs = [get_task(n) for n in sorted(wanted)]
    return tuple(sorted(specs, key=lambda s: s.index))
