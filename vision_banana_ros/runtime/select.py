"""Choosing and creating backends by name; resolving model files.

Names: ``tensorrt``, ``onnxruntime``, ``torch`` and ``auto`` (TensorRT when it imports and a
CUDA GPU is present, else ONNX Runtime; the choice and its reason are logged).

Model files: a checkpoint (``.pt``) or an exported plain graph (``.onnx``). Backends that need
ONNX export a checkpoint once into a cache keyed by the checkpoint's sha256
(``$VISION_BANANA_CACHE`` or ``~/.cache/vision_banana_ros``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vision_banana_ros.runtime.base import Backend, BackendError
from vision_banana_ros.runtime.engine_cache import cache_dir

LOG = logging.getLogger("vision_banana_ros.runtime")
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default.pt"


def resolve_model(path: str | Path | None) -> Path:
    """The model file to use: ``path``, or the shipped default model when empty."""
    if path in (None, ""):
        if not DEFAULT_MODEL.is_file():
            raise BackendError(f"no model given and the default model {DEFAULT_MODEL} is "
                               "missing from this installation")
        return DEFAULT_MODEL
    p = Path(path).expanduser()
    if not p.is_file():
        raise BackendError(f"model file {p} does not exist")
    if p.suffix not in (".pt", ".onnx"):
        raise BackendError(f"model file {p} must be a checkpoint (.pt) or ONNX (.onnx)")
    return p


def onnx_for(model_path: Path) -> Path:
    """The plain ONNX graph of a model file, exporting a checkpoint into the cache once."""
    if model_path.suffix == ".onnx":
        return model_path
    from vision_banana_ros.model.onnx_meta import file_sha256

    target = cache_dir() / "onnx" / f"{file_sha256(model_path)[:16]}.onnx"
    if not target.is_file():
        from vision_banana_ros.model import load_model
        from vision_banana_ros.model.export import export_onnx

        LOG.info("exporting %s to %s", model_path, target)
        model, _ = load_model(model_path)
        export_onnx(model, target)
    return target


def tensorrt_available() -> tuple[bool, str]:
    """(usable, reason): TensorRT imports and a CUDA GPU is visible."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False, "TensorRT is not installed"
    try:
        import torch
    except ImportError:
        return False, "TensorRT is installed but torch (for CUDA buffers) is not"
    if not torch.cuda.is_available():
        return False, "TensorRT is installed but no CUDA GPU is visible"
    return True, f"TensorRT and GPU {torch.cuda.get_device_name(0)} found"


TENSORRT_HINT = ("TensorRT is not installed. On Jetson it comes with JetPack (apt install "
                 "nvidia-jetpack, python3-libnvinfer); on workstations install NVIDIA's "
                 "TensorRT 10 Python package (pip install 'tensorrt>=10,<11': 11 builds no "
                 "fp16 or int8 engines here) next to a CUDA build of torch. Or use backend "
                 "onnxruntime or torch.")


#: Device files of NVIDIA's driver (desktop GPUs; Jetson's integrated GPU).
_NVIDIA_DEVICES = ("/dev/nvidia0", "/dev/nvhost-ctrl-gpu", "/proc/driver/nvidia/version")


def cuda_gpu() -> str | None:
    """The name of the first visible CUDA GPU (through torch), or None. Without NVIDIA's
    driver files torch is not imported at all (it costs a CPU-only node a second and memory)."""
    if not any(Path(p).exists() for p in _NVIDIA_DEVICES):
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def onnxruntime_has_cuda() -> bool:
    """This onnxruntime build offers the CUDA execution provider (onnxruntime-gpu)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def choose_backend(name: str, device: str = "auto",
                   precision: str = "fp32") -> tuple[str, str]:
    """Resolve ``auto``; returns (backend name, reason). With a GPU and no TensorRT, ``auto``
    runs on the GPU through ONNX Runtime's CUDA provider (fp32) or torch (fp16, or when
    onnxruntime has no CUDA provider) rather than on the CPU."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name, "requested"
    ok, why = tensorrt_available()
    gpu_wanted = device == "auto" or device.startswith("cuda")
    if ok and gpu_wanted:
        return "tensorrt", why
    gpu = cuda_gpu() if gpu_wanted else None
    if gpu is not None and precision == "fp32" and onnxruntime_has_cuda():
        return "onnxruntime", f"{why}; using ONNX Runtime's CUDA provider on {gpu}"
    if gpu is not None and precision != "int8":
        return "torch", f"{why}; using torch on {gpu} ({precision})"
    return "onnxruntime", f"{why}; using ONNX Runtime"


def backend_device(chosen: str, device: str) -> str:
    """The device a non-TensorRT backend runs on: ``auto`` is ``cuda`` where a GPU is visible
    (:func:`choose_backend` chose a GPU backend) and ``cpu`` otherwise."""
    if device != "auto":
        return device
    return "cuda" if cuda_gpu() is not None and (chosen == "torch" or onnxruntime_has_cuda()) \
        else "cpu"


def create_backend(name: str, model: str | Path | None, *, device: str = "auto",
                   precision: str = "fp32", threads: int | None = None,
                   log: Callable[[str], Any] | None = None, **options: Any) -> Backend:
    """Create a backend by name (see the module docstring)."""
    say = log or LOG.info
    spin = options.pop("spin", False)  # onnxruntime only: busy-waiting intra-op threads
    if precision not in PRECISIONS:
        raise BackendError(f"unknown precision {precision!r}; choose one of "
                           f"{', '.join(PRECISIONS)}")
    chosen, why = choose_backend(name, device, precision)
    if name == "auto":
        say(f"backend auto -> {chosen}: {why}")
    model_path = resolve_model(model)
    if chosen == "tensorrt":
        ok, why = tensorrt_available()
        if not ok:
            raise BackendError(TENSORRT_HINT if "not installed" in why else why)
        from vision_banana_ros.runtime.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(onnx_for(model_path), precision=precision, device=device,
                               log=say, **options)
    if precision == "int8":
        raise BackendError("int8 needs the tensorrt backend")
    dev = backend_device(chosen, device)
    if precision == "fp16" and not dev.startswith("cuda"):
        raise BackendError(f"precision fp16 needs a GPU (TensorRT, or torch on CUDA), and "
                           f"backend {chosen} runs on {dev} here: use fp32")
    if chosen == "onnxruntime":
        from vision_banana_ros.runtime.onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(onnx_for(model_path), device=dev, precision=precision,
                                  threads=threads, spin=spin)
    from vision_banana_ros.runtime.torch_backend import TorchBackend

    if model_path.suffix != ".pt":
        raise BackendError(f"the torch backend needs a checkpoint (.pt), got {model_path}")
    return TorchBackend(model_path, device=dev, precision=precision, threads=threads,
                        **options)
