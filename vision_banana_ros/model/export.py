"""ONNX export (an export-only wrapper, as segment-anything's utils/onnx.py).

Two graphs:

Models with ``depth_input`` have a third input ``depth`` (N, 2, H, W) float, the camera's depth
planes (:mod:`vision_banana_ros.depth_input`; zeros without a depth image).

- plain: inputs ``image`` (N, 3, H, W) float RGB in [0, 1] and ``task_ids`` (T,) int64; output
  ``paintings`` (N, T, 3, H, W). Normalisation is inside. Used by the onnxruntime backend.
- decoded (``decode_in_graph``): tasks fixed at export; inputs ``image`` and ``fx`` (N,) focal
  length in pixels at the network input (<= 0: the canonical camera); outputs ``paintings`` and
  per task ``depth`` (N, H, W) metres, ``semantic`` (N, H, W) int64 ids, ``normals``
  (N, 3, H, W): a GPU engine returns metres and ids directly (instances still need clustering).

Dynamic batch (and task count in the plain graph). The legacy TorchScript exporter is used: the
torch.export-based one specialises the batch dimension of this model. Model config and task
vocabulary are stored in the ONNX metadata, so an ONNX file is self-describing.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vision_banana_ros.codecs import TASKS
from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.model.network import VisionBananaNet
from vision_banana_ros.model.onnx_meta import (  # noqa: F401  (re-exported)
    META_CONFIG,
    META_GRAPH,
    META_TASKS,
    file_sha256,
    onnx_metadata,
)

DEFAULT_OPSET = 17


class DecodedGraph(nn.Module):
    """Generator plus in-graph decoders for a fixed task list."""

    def __init__(self, model: VisionBananaNet, tasks: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.tasks = tasks
        self.register_buffer("task_ids", model.task_ids(tasks), persistent=False)

    def forward(self, image: torch.Tensor, fx: torch.Tensor,
                depth: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        paint = self.model(image, self.task_ids, depth)
        outs: list[torch.Tensor] = [paint]
        f_c = self.model.config.canonical_focal_px
        scale = torch.where(fx > 0, fx / f_c, torch.ones_like(fx))
        for i, name in enumerate(self.tasks):
            spec = TASKS[name]
            if spec.decode_torch is None:
                continue  # instance clustering is not a tensor program
            decoded = spec.decode_torch(paint[:, i])
            outs.append(decoded * scale[:, None, None] if spec.metric else decoded)
        return tuple(outs)


def decoded_output_names(tasks: tuple[str, ...]) -> list[str]:
    """Output names of a decoded graph for ``tasks`` (instances have no in-graph decoder)."""
    return ["paintings"] + [t for t in tasks if TASKS[t].decode_torch is not None]


def export_onnx(model: VisionBananaNet, path: Path, *, decode_in_graph: bool = False,
                tasks: tuple[str, ...] | None = None, opset: int = DEFAULT_OPSET) -> Path:
    """Export ``model`` to ``path`` (written atomically); returns the path."""
    import onnx

    if opset < 17:
        raise VisionBananaError(f"opset {opset} is too old; use 17 or newer")
    model = model.eval().cpu().float()
    cfg = model.config
    h, w = cfg.input_height, cfg.input_width
    image = torch.rand(2, 3, h, w)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if decode_in_graph:
        tasks = tuple(tasks or cfg.tasks)
        unknown = [t for t in tasks if t not in cfg.tasks]
        if unknown:
            raise VisionBananaError(f"the model has no tasks {unknown}")
        module: nn.Module = DecodedGraph(model, tasks).eval()
        args: tuple[Any, ...] = (image, torch.full((2,), cfg.canonical_focal_px))
        inputs = ["image", "fx"]
        outputs = decoded_output_names(tasks)
        axes = {"image": {0: "batch"}, "fx": {0: "batch"},
                **{o: {0: "batch"} for o in outputs}}
    else:
        module = model
        args = (image, torch.arange(len(cfg.tasks)))
        inputs, outputs = ["image", "task_ids"], ["paintings"]
        axes = {"image": {0: "batch"}, "task_ids": {0: "tasks"},
                "paintings": {0: "batch", 1: "tasks"}}
    if cfg.depth_input:
        args = (*args, torch.rand(2, 2, h, w))
        inputs.append("depth")
        axes["depth"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(module, args, str(tmp), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=opset, dynamo=False,
                          do_constant_folding=True)
    proto = onnx.load(str(tmp))
    meta = {META_CONFIG: json.dumps(cfg.to_dict()),
            META_GRAPH: "decoded" if decode_in_graph else "plain"}
    if decode_in_graph:
        meta[META_TASKS] = ",".join(tasks)
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return path


def parity(model: VisionBananaNet, onnx_path: Path, images: np.ndarray,
           task_ids: np.ndarray, depth: np.ndarray | None = None) -> float:
    """Max |ONNX Runtime - PyTorch| over the paintings of ``images`` (N, 3, H, W) float32
    (with ``depth`` planes (N, 2, H, W) for a depth model; random ones when None)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = {"image": images, "task_ids": task_ids.astype(np.int64)}
    planes = None
    if model.config.depth_input:
        planes = depth if depth is not None else np.random.default_rng(0).random(
            (images.shape[0], 2, *images.shape[2:]), dtype=np.float32)
        feed["depth"] = planes
    got = sess.run(["paintings"], feed)[0]
    with torch.inference_mode():
        want = model.eval()(torch.from_numpy(images), torch.from_numpy(task_ids),
                            None if planes is None else torch.from_numpy(planes)).numpy()
    return float(np.abs(got - want).max())
