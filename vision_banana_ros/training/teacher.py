"""Teachers: where the depth targets come from.

``ground_truth`` uses the renderer's exact depth. An ONNX teacher is any model a user owns that
maps RGB to metric depth: one float input (N, 3, H, W) RGB in [0, 1] and one output (N, H, W)
or (N, 1, H, W) in metres; its prediction replaces the depth target (instances, semantics and
normals still come from the renderer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision_banana_ros.errors import VisionBananaError


class TeacherError(VisionBananaError):
    """A teacher model cannot be loaded or does not have the expected inputs/outputs."""


class GroundTruthTeacher:
    """The synthetic renderer's exact labels: batches pass unchanged."""

    name = "ground_truth"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return batch


class OnnxDepthTeacher:
    """Metric depth from an ONNX model (see the module docstring for its contract)."""

    def __init__(self, path: Path, canonical_focal_px: float, threads: int = 2) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise TeacherError(f"teacher model {path} does not exist")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise TeacherError(f"teacher model {path} cannot be loaded: {err}") from err
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise TeacherError(f"teacher model {path} must have one input and one output, has "
                               f"inputs {[i.name for i in inputs]} and outputs "
                               f"{[o.name for o in outputs]}")
        shape = inputs[0].shape
        if inputs[0].type != "tensor(float)" or len(shape) != 4 or shape[1] not in (3, "3"):
            raise TeacherError(f"teacher model {path}: input {inputs[0].name} must be float "
                               f"(N, 3, H, W), is {inputs[0].type} {shape}")
        self.input_name = inputs[0].name
        self.name = f"onnx:{path.name}"
        self.canonical_focal_px = canonical_focal_px

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (depth,) = self.session.run(None, {self.input_name: batch["image"].astype(np.float32)})
        depth = np.asarray(depth, dtype=np.float32)
        if depth.ndim == 4 and depth.shape[1] == 1:
            depth = depth[:, 0]
        if depth.shape != batch["depth"].shape:
            raise TeacherError(f"teacher output shape {depth.shape} differs from the target "
                               f"{batch['depth'].shape}")
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
        out = dict(batch)
        out["depth"] = depth
        out["depth_canonical"] = depth * (self.canonical_focal_px / batch["fx"])[:, None, None]
        return out


def make_teacher(spec: str, canonical_focal_px: float) -> GroundTruthTeacher | OnnxDepthTeacher:
    """``ground_truth`` or a path to an ONNX depth model."""
    if spec == "ground_truth":
        return GroundTruthTeacher()
    return OnnxDepthTeacher(Path(spec), canonical_focal_px)
