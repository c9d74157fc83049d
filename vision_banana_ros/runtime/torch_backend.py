"""PyTorch backend: CPU or CUDA, fp32 or fp16 (CUDA), CUDA graphs for static shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.runtime.base import (
    BackendError,
    TensorSpec,
    check_inputs,
    depth_planes_for,
)


class TorchBackend:
    """Runs a checkpoint with PyTorch.

    Args:
        model_path: checkpoint file.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32`` or ``fp16`` (CUDA only).
        threads: CPU threads (``torch.set_num_threads``); keep at or below the core count.
        cuda_graphs: capture one CUDA graph per (batch, tasks) shape and replay it.
    """

    name = "torch"

    def __init__(self, model_path: Path, *, device: str = "cpu", precision: str = "fp32",
                 threads: int | None = None, cuda_graphs: bool = False,
                 model: Any = None) -> None:
        import torch

        from vision_banana_ros.model import load_model

        if precision not in ("fp32", "fp16"):
            raise BackendError(f"torch backend precision must be fp32 or fp16, got {precision}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"device {device} requested but CUDA is not available")
        if precision == "fp16" and not device.startswith("cuda"):
            raise BackendError("fp16 needs a CUDA device with the torch backend")
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        if model is None:
            model, _ = load_model(Path(model_path), device=device)
        self.model = model.to(device).eval()
        if precision == "fp16":
            self.model = self.model.half()
        self.device = device
        self.precision = precision
        self.config = self.model.config
        self.cuda_graphs = cuda_graphs and device.startswith("cuda")
        self._graphs: dict[tuple[int, int], Any] = {}
        self._dtype = torch.float16 if precision == "fp16" else torch.float32

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        h, w = self.config.input_height, self.config.input_width
        inputs = [TensorSpec("image", (None, 3, h, w), "float32"),
                  TensorSpec("task_ids", (None,), "int64")]
        if self.config.depth_input:
            inputs.append(TensorSpec("depth", (None, 2, h, w), "float32"))
        return inputs, [TensorSpec("paintings", (None, None, 3, h, w), "float32")]

    def run_tensor(self, images: Any, task_ids: Any, depth: Any = None) -> Any:
        """Torch tensors in, torch tensor out, on this backend's device (no host copies)."""
        torch = self.torch
        if self.config.depth_input and depth is None:
            depth = images.new_zeros((images.shape[0], 2, *images.shape[2:]))
        with torch.inference_mode():
            if not self.cuda_graphs:
                d = None if depth is None else depth.to(self._dtype)
                return self.model(images.to(self._dtype), task_ids, d).float()
            key = (images.shape[0], task_ids.shape[0])
            if key not in self._graphs:
                self._graphs[key] = self._capture(images, task_ids, depth)
            graph, static_in, static_ids, static_depth, static_out = self._graphs[key]
            static_in.copy_(images)
            static_ids.copy_(task_ids)
            if static_depth is not None:
                static_depth.copy_(depth)
            graph.replay()
            # A copy: the next replay overwrites static_out (.float() of fp32 is no copy).
            return static_out.float() if static_out.dtype != torch.float32 \
                else static_out.clone()

    def _capture(self, images: Any, task_ids: Any, depth: Any) -> tuple:
        """A CUDA graph of the model for these input shapes, with its static tensors."""
        torch = self.torch
        with torch.cuda.device(self.device):  # cuda:N: capture on that device, not the current
            static_in = images.to(self._dtype).clone()
            static_ids = task_ids.clone()
            static_depth = None if depth is None else depth.to(self._dtype).clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self.model(static_in, static_ids, static_depth)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.model(static_in, static_ids, static_depth)
        return graph, static_in, static_ids, static_depth, static_out

    def run(self, images: np.ndarray, task_ids: np.ndarray,
            depth: np.ndarray | None = None) -> np.ndarray:
        check_inputs(images, task_ids, self.config.input_height, self.config.input_width,
                     len(self.config.tasks))
        torch = self.torch
        planes = depth_planes_for(self.config, images, depth)
        out = self.run_tensor(torch.from_numpy(images).to(self.device),
                              torch.from_numpy(task_ids.astype(np.int64)).to(self.device),
                              None if planes is None else torch.from_numpy(planes)
                              .to(self.device))
        return out.cpu().numpy()

    def close(self) -> None:
        self._graphs.clear()
        self.model = None
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()
