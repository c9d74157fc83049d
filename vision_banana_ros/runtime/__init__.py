"""Inference backends: TensorRT, ONNX Runtime and PyTorch behind one protocol."""

from vision_banana_ros.runtime.base import Backend, BackendError, TensorSpec

__all__ = ["Backend", "BackendError", "TensorSpec"]
