"""ONNX Runtime backend: CPU execution provider, CUDA provider where installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.model.config import ModelConfig
from vision_banana_ros.model.onnx_meta import META_CONFIG, META_GRAPH
from vision_banana_ros.runtime.base import (
    BackendError,
    TensorSpec,
    check_inputs,
    depth_planes_for,
)


class OnnxRuntimeBackend:
    """Runs a plain exported graph (``image``, ``task_ids`` -> ``paintings``).

    Args:
        onnx_path: file written by :func:`~vision_banana_ros.model.export.export_onnx`.
        device: ``cpu`` or ``cuda`` (needs onnxruntime-gpu's CUDA provider).
        threads: intra-op threads (keep at or below the core count).
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: Path, *, device: str = "cpu", precision: str = "fp32",
                 threads: int | None = None, spin: bool = False) -> None:
        """``spin`` lets idle intra-op threads busy-wait for the next call (onnxruntime's
        default). Off here: on a 2-core machine the spinning threads took the cores from the
        decoding, point clouds and object boxes after each call, and the node's whole frame
        took 83 ms instead of 53 ms (measured 2026-11-29, 640x480, shipped model)."""
        import onnxruntime as ort

        path = Path(onnx_path)
        if precision != "fp32":
            raise BackendError(f"onnxruntime backend runs fp32 only, got {precision}")
        if not path.is_file():
            raise BackendError(f"ONNX file {path} does not exist")
        providers: list = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError("device cuda requested but this onnxruntime has no CUDA "
                                   "execution provider (pip install onnxruntime-gpu)")
            index = device.partition(":")[2] or "0"
            if not index.isdigit():
                raise BackendError(f"device {device!r}: expected cuda or cuda:N")
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types
            raise BackendError(f"ONNX file {path} cannot be loaded: "
                               f"{str(err).splitlines()[0]}") from err
        if device.startswith("cuda") and \
                "CUDAExecutionProvider" not in self.session.get_providers():
            # onnxruntime falls back to the CPU, with a warning only, when the CUDA provider
            # cannot load (CUDA or cuDNN libraries missing): say so instead of reporting cuda.
            raise BackendError(f"device {device} requested but onnxruntime's CUDA execution "
                               "provider did not load (are the CUDA and cuDNN libraries of "
                               "this onnxruntime-gpu installed?); it would run on the CPU")
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_CONFIG not in meta:
            raise BackendError(f"ONNX file {path} has no {META_CONFIG} metadata: export it with "
                               "vision-banana export")
        if meta.get(META_GRAPH) != "plain":
            raise BackendError(f"ONNX file {path} is a {meta.get(META_GRAPH)!r} graph; the "
                               "onnxruntime backend needs the plain graph (export without "
                               "--decode-in-graph)")
        try:
            self.config = ModelConfig.from_dict(json.loads(meta[META_CONFIG]))
        except (VisionBananaError, ValueError) as err:
            raise BackendError(f"ONNX file {path}: bad model config metadata: {err}") from err
        names = {i.name: i for i in self.session.get_inputs()}
        image, ids, depth = names.get("image"), names.get("task_ids"), names.get("depth")
        h, w = self.config.input_height, self.config.input_width
        want_depth = self.config.depth_input
        if (image is None or ids is None or len(names) != 2 + want_depth
                or image.type != "tensor(float)" or list(image.shape[1:]) != [3, h, w]
                or ids.type != "tensor(int64)" or (want_depth and (
                    depth is None or list(depth.shape[1:]) != [2, h, w]))):
            raise BackendError(
                f"ONNX file {path} has inputs "
                f"{[(i.name, i.type, i.shape) for i in names.values()]}; expected image "
                f"float (N, 3, {h}, {w}) and task_ids int64 (T,)"
                + (f" and depth float (N, 2, {h}, {w})" if want_depth else ""))
        self.path = path
        self.device = device if device.startswith("cuda") else "cpu"
        self.precision = "fp32"

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        def spec(t):
            return TensorSpec(t.name, tuple(d if isinstance(d, int) else None for d in t.shape),
                              t.type)
        return ([spec(i) for i in self.session.get_inputs()],
                [spec(o) for o in self.session.get_outputs()])

    def run(self, images: np.ndarray, task_ids: np.ndarray,
            depth: np.ndarray | None = None) -> np.ndarray:
        check_inputs(images, task_ids, self.config.input_height, self.config.input_width,
                     len(self.config.tasks))
        feed = {"image": images, "task_ids": task_ids.astype(np.int64)}
        planes = depth_planes_for(self.config, images, depth)
        if planes is not None:
            feed["depth"] = planes
        return self.session.run(["paintings"], feed)[0]

    def close(self) -> None:
        self.session = None
