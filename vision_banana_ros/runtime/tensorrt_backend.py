"""TensorRT 10 backend: engine build from ONNX, cached engines, inference on torch CUDA buffers.

``import tensorrt`` happens only in this module. Build: explicit-batch network parsed from the
plain ONNX graph, FP16 or INT8 (entropy calibrator fed with synthetic and real frames, with a
calibration cache), one optimisation profile over the batch sizes and task counts used, a
timing cache, a workspace limit and an optional DLA core (Jetson). Engines are cached under a
key of everything they depend on (:mod:`.engine_cache`); a mismatched or corrupt engine is
rebuilt with a log line saying why, never loaded. Inference uses torch tensors as device
buffers (no pycuda), ``set_tensor_address`` and ``execute_async_v3`` on a torch CUDA stream,
with buffers allocated once per input shape.

This file is written against the documented TensorRT 10 Python API; it is not executed on the
development machine or in CI (no GPU, no TensorRT there): see the README, "What runs where".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.model.config import ModelConfig
from vision_banana_ros.model.onnx_meta import (
    META_CONFIG,
    META_GRAPH,
    file_sha256,
    onnx_metadata,
)
from vision_banana_ros.runtime.base import (
    BackendError,
    TensorSpec,
    check_inputs,
    depth_planes_for,
)
from vision_banana_ros.runtime.calibration import CalibrationSet
from vision_banana_ros.runtime.engine_cache import (
    EngineCache,
    EngineKey,
    cache_dir,
    write_atomically,
)


def cuda_device(torch: Any, device: str) -> Any:
    """The torch CUDA device of ``auto``/``cuda`` (the current one) or ``cuda:N``.

    Raises:
        BackendError: not a CUDA device, or an index this machine does not have.
    """
    if device in ("auto", "cuda"):
        return torch.device("cuda", torch.cuda.current_device())
    if not device.startswith("cuda:") or not device[5:].isdigit():
        raise BackendError(f"the tensorrt backend runs on cuda or cuda:N, not {device!r}")
    index = int(device[5:])
    if index >= torch.cuda.device_count():
        raise BackendError(f"device {device} does not exist: {torch.cuda.device_count()} "
                           "CUDA device(s) visible")
    return torch.device("cuda", index)


def _make_calibrator(trt: Any, data: CalibrationSet, batch: int, tasks: int,
                     cache_file: Path, device: Any) -> Any:
    """An IInt8EntropyCalibrator2 over a :class:`~.calibration.CalibrationSet`, all tasks at
    once: colour and, for a model with depth input, the frames' depth planes (zeros for the
    frames that run without depth, as in training)."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = data.batches(batch)
            h, w = data.images.shape[2:]
            self.device_input = torch.empty((batch, 3, h, w), dtype=torch.float32,
                                            device=device)
            self.task_ids = torch.arange(tasks, dtype=torch.int64, device=device)
            self.depth = torch.zeros((batch, 2, h, w), dtype=torch.float32, device=device)

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            try:
                images, depth = next(self.batches)
            except StopIteration:
                return None
            self.device_input.copy_(torch.from_numpy(images))
            if depth is None:
                self.depth.zero_()
            else:
                self.depth.copy_(torch.from_numpy(depth))
            torch.cuda.synchronize(device)  # TensorRT reads these on its own stream
            ptrs = {"image": self.device_input.data_ptr(), "task_ids": self.task_ids.data_ptr(),
                    "depth": self.depth.data_ptr()}
            return [ptrs[n] for n in names]

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.exists() else None

        def write_calibration_cache(self, cache: bytes) -> None:
            write_atomically(cache_file, bytes(cache))

    return EntropyCalibrator()


def check_tensorrt_version(version: str, precision: str) -> None:
    """TensorRT 10.x builds every precision here. 11 builds strongly typed networks only (its
    ``BuilderFlag.FP16``/``INT8``, ``int8_calibrator`` and ``set_calibration_profile`` are
    gone): fp32 works, fp16 and int8 need 10.x; before 10 the API differs.

    Raises:
        BackendError: naming the installed version and what to install.
    """
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise BackendError(f"cannot read the TensorRT version {version!r}") from None
    if major < 10:
        raise BackendError(f"TensorRT {version} is installed; this package needs TensorRT "
                           "10.x (JetPack 6, or pip install 'tensorrt>=10,<11')")
    if major > 10 and precision in ("fp16", "int8"):
        raise BackendError(f"TensorRT {version} builds strongly typed networks only (no fp16 "
                           f"or int8 builder flags): for precision {precision} install "
                           "TensorRT 10.x (pip install 'tensorrt>=10,<11'), or use fp32")


def _check_dla(precision: str, max_batch: int, dla_core: int, cores: int) -> None:
    """What DLA can run, checked before a build that would silently put everything on the
    GPU (DLA runs fp16 and int8 layers of static shapes only).

    Raises:
        BackendError: naming the setting to change.
    """
    if cores == 0:
        raise BackendError(f"dla_core {dla_core} requested but this GPU has no DLA (Jetson "
                           "AGX/NX Orin and Xavier have them)")
    if not 0 <= dla_core < cores:
        raise BackendError(f"dla_core {dla_core} requested but this device has {cores} DLA "
                           f"core(s): 0 to {cores - 1}")
    if precision == "fp32":
        raise BackendError("DLA runs fp16 and int8 layers only (fp32 would run every layer "
                           "on the GPU): use precision fp16 or int8 with dla_core")
    if max_batch != 1:
        raise BackendError(f"DLA runs static shapes only: max_batch must be 1 with dla_core, "
                           f"got {max_batch}")


def timing_cache_path(folder: Path, key: EngineKey) -> Path:
    """The builder's timing cache for the GPU and TensorRT version of ``key``."""
    gpu = "".join(c if c.isalnum() else "_" for c in key.gpu_name)
    return folder / f"timing-{gpu}-{key.compute_capability}-trt{key.tensorrt_version}.cache"


class TensorRTBackend:
    """Runs a plain ONNX graph through a (cached) TensorRT engine.

    Args:
        onnx_path: plain graph from ``vision-banana export``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        max_batch: largest frame batch of the optimisation profile (opt = 1).
        max_tasks: largest number of tasks per call.
        workspace_mb: builder workspace limit.
        dla_core: DLA core on Jetson (GPU fallback allowed), None for the GPU.
        calibration: INT8 calibration frames (:class:`~.calibration.CalibrationSet`).
        cache: engine cache folder (default: the runtime cache).
        device: ``auto``, ``cuda`` (the current device) or ``cuda:N``; the engine, its
            buffers and its stream live there.
        log: progress messages (engine builds take minutes on Jetson).
    """

    name = "tensorrt"

    def __init__(self, onnx_path: Path, *, precision: str = "fp16", max_batch: int = 1,
                 max_tasks: int = 4, workspace_mb: int = 2048, dla_core: int | None = None,
                 calibration: CalibrationSet | None = None, cache: Path | None = None,
                 device: str = "auto", log: Callable[[str], Any] = print) -> None:
        import tensorrt as trt
        import torch

        if precision not in ("fp32", "fp16", "int8"):
            raise BackendError(f"tensorrt precision must be fp32, fp16 or int8, got {precision}")
        check_tensorrt_version(trt.__version__, precision)
        meta = onnx_metadata(onnx_path)
        if meta.get(META_GRAPH) != "plain" or META_CONFIG not in meta:
            raise BackendError(f"ONNX file {onnx_path} is not a plain vision_banana_ros graph")
        self.trt, self.torch, self.log = trt, torch, log
        self.config = ModelConfig.from_dict(json.loads(meta[META_CONFIG]))
        self.cuda = cuda_device(torch, device)
        self.device, self.precision = str(self.cuda), precision
        self.logger = trt.Logger(trt.Logger.WARNING)
        props = torch.cuda.get_device_properties(self.cuda)
        self.key = EngineKey(
            onnx_sha256=file_sha256(onnx_path), tensorrt_version=trt.__version__,
            gpu_name=props.name, compute_capability=f"{props.major}.{props.minor}",
            precision=precision, min_batch=1, opt_batch=1, max_batch=max_batch,
            max_tasks=max_tasks, input_height=self.config.input_height,
            input_width=self.config.input_width, dla_core=dla_core,
            calibration_sha256=calibration.digest() if calibration is not None else None,
            depth_input=self.config.depth_input)
        self.cache = EngineCache(cache or cache_dir())
        if precision == "int8" and calibration is None:
            calibrated = self.cache.calibrated_key(self.key)
            if calibrated is None:
                raise BackendError(
                    "int8 needs calibration frames, and no int8 engine of this model for "
                    f"{props.name} and TensorRT {trt.__version__} is cached: build one with "
                    "vision-banana build-engine --precision int8 --calibration-data DIR_OR_BAG")
            self.key = calibrated  # the engine build-engine calibrated
        with torch.cuda.device(self.cuda):  # TensorRT works on the current CUDA device
            self._load(onnx_path, precision, max_batch, max_tasks, workspace_mb, dla_core,
                       calibration, props.name)
        self._buffers: dict[tuple[int, int], dict[str, Any]] = {}
        self.max_batch, self.max_tasks = max_batch, max_tasks

    def _load(self, onnx_path: Path, precision: str, max_batch: int, max_tasks: int,
              workspace_mb: int, dla_core: int | None, calibration: CalibrationSet | None,
              gpu_name: str) -> None:
        """The cached engine for this key, or a new one built and cached; its context and
        stream."""
        trt, torch, log = self.trt, self.torch, self.log
        found = self.cache.lookup(self.key)
        engine = None
        runtime = trt.Runtime(self.logger)
        if dla_core is not None:
            runtime.DLA_core = dla_core  # the engine's DLA layers run on this core
        if found.engine is not None:
            engine = runtime.deserialize_cuda_engine(found.engine)
            if engine is None:
                log(f"cached engine {found.path} failed to deserialize; rebuilding")
        else:
            log(f"TensorRT engine: {found.reason}; building {precision} engine for "
                f"{gpu_name} (this takes minutes on Jetson)")
        if engine is None:
            data = self._build(Path(onnx_path), precision, max_batch, max_tasks, workspace_mb,
                               dla_core, calibration)
            path = self.cache.store(self.key, data, onnx=str(onnx_path))
            log(f"TensorRT engine written to {path}")
            engine = runtime.deserialize_cuda_engine(data)
            if engine is None:
                raise BackendError("TensorRT could not deserialize the engine it just built")
        self.engine_path = found.path
        self.engine = engine
        self._check_io(engine)
        self.context = engine.create_execution_context()
        self.stream = torch.cuda.Stream(device=self.cuda)

    def _build(self, onnx_path: Path, precision: str, max_batch: int, max_tasks: int,
               workspace_mb: int, dla_core: int | None,
               calibration: CalibrationSet | None) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        if dla_core is not None:
            _check_dla(precision, max_batch, dla_core, int(builder.num_DLA_cores))
        network = builder.create_network(0)  # TensorRT 10: networks are always explicit batch
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
        h, w = self.config.input_height, self.config.input_width
        profile = builder.create_optimization_profile()
        if dla_core is None:
            profile.set_shape("image", (1, 3, h, w), (1, 3, h, w), (max_batch, 3, h, w))
            profile.set_shape("task_ids", (1,), (min(2, max_tasks),), (max_tasks,))
        else:  # DLA runs static shapes only: a dynamic profile puts every layer on the GPU
            profile.set_shape("image", (1, 3, h, w), (1, 3, h, w), (1, 3, h, w))
            profile.set_shape("task_ids", (max_tasks,), (max_tasks,), (max_tasks,))
        if self.config.depth_input:
            batch = max_batch if dla_core is None else 1
            profile.set_shape("depth", (1, 2, h, w), (1, 2, h, w), (batch, 2, h, w))
        config.add_optimization_profile(profile)
        # One timing cache per GPU and TensorRT version (another's timings do not apply).
        timing_path = timing_cache_path(self.cache.folder.parent, self.key)
        timing = config.create_timing_cache(timing_path.read_bytes()
                                            if timing_path.exists() else b"")
        if not config.set_timing_cache(timing, ignore_mismatch=False):
            self.log(f"timing cache {timing_path} was not attached (written by another GPU or "
                     "TensorRT?); building without its timings")
        if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32: no 10-bit mantissas
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            calib_profile = builder.create_optimization_profile()
            calib_profile.set_shape("image", (1, 3, h, w), (1, 3, h, w), (1, 3, h, w))
            n_tasks = min(max_tasks, len(self.config.tasks))
            calib_profile.set_shape("task_ids", (n_tasks,), (n_tasks,), (n_tasks,))
            if self.config.depth_input:
                calib_profile.set_shape("depth", (1, 2, h, w), (1, 2, h, w), (1, 2, h, w))
            config.set_calibration_profile(calib_profile)
            config.int8_calibrator = _make_calibrator(
                trt, calibration, 1, n_tasks,
                self.cache.folder.parent / f"{self.key.digest()}.calib", self.cuda)
        if dla_core is not None:
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = dla_core
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendError(f"TensorRT failed to build an engine from {onnx_path}")
        write_atomically(timing_path, bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)

    def _check_io(self, engine: Any) -> None:
        """The engine's inputs and outputs are the graph's, with the dtypes this backend's
        buffers have (a foreign or mis-exported engine would be read as garbage).

        Raises:
            BackendError: naming the tensor and what was expected.
        """
        trt = self.trt
        want = {"image": trt.DataType.FLOAT, "task_ids": trt.DataType.INT64,
                "paintings": trt.DataType.FLOAT}
        if self.config.depth_input:
            want["depth"] = trt.DataType.FLOAT
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        if sorted(names) != sorted(want):
            raise BackendError(f"the engine's tensors are {sorted(names)}, expected "
                               f"{sorted(want)}: rebuild it from this model's ONNX graph")
        for name, dtype in want.items():
            if engine.get_tensor_dtype(name) != dtype:
                raise BackendError(f"engine tensor {name} is {engine.get_tensor_dtype(name)}, "
                                   f"expected {dtype}")
        # The task count of a static (DLA) profile, else None.
        lo, _, hi = engine.get_tensor_profile_shape("task_ids", 0)
        self.static_tasks = int(hi[0]) if tuple(lo) == tuple(hi) else None

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        trt = self.trt
        ins, outs = [], []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            spec = TensorSpec(name, tuple(d if d >= 0 else None
                                          for d in self.engine.get_tensor_shape(name)),
                              str(self.engine.get_tensor_dtype(name)))
            (ins if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
             else outs).append(spec)
        return ins, outs

    def _bind(self, batch: int, tasks: int) -> dict[str, Any]:
        """Device buffers for one (batch, tasks) shape, allocated once and reused."""
        torch = self.torch
        key = (batch, tasks)
        if key not in self._buffers:
            h, w = self.config.input_height, self.config.input_width
            dev = self.cuda
            bufs = {
                "image": torch.empty((batch, 3, h, w), dtype=torch.float32, device=dev),
                "task_ids": torch.empty((tasks,), dtype=torch.int64, device=dev),
                "paintings": torch.empty((batch, tasks, 3, h, w), dtype=torch.float32,
                                         device=dev),
            }
            if self.config.depth_input:
                bufs["depth"] = torch.zeros((batch, 2, h, w), dtype=torch.float32, device=dev)
            self._buffers[key] = bufs
        return self._buffers[key]

    def run_tensor(self, images: Any, task_ids: Any, depth: Any = None) -> Any:
        """CUDA tensors in, CUDA tensor out, asynchronous on this backend's stream.

        The inputs may have been written on another stream (the caller's current one): this
        backend's stream waits for that stream before it copies them, so the engine never reads
        half-copied inputs.
        """
        b, t = int(images.shape[0]), int(task_ids.shape[0])
        if b > self.max_batch or t > self.max_tasks:
            raise BackendError(f"engine profile allows batch <= {self.max_batch} and tasks <= "
                               f"{self.max_tasks}, got {b} and {t}")
        bufs = self._bind(b, t)
        stream = self.stream
        stream.wait_stream(self.torch.cuda.current_stream(self.cuda))
        with self.torch.cuda.stream(stream):
            bufs["image"].copy_(images, non_blocking=True)
            bufs["task_ids"].copy_(task_ids, non_blocking=True)
            if "depth" in bufs:
                if depth is None:
                    bufs["depth"].zero_()
                else:
                    bufs["depth"].copy_(depth, non_blocking=True)
            for name in ("image", "task_ids", "depth"):
                if name in bufs and not self.context.set_input_shape(
                        name, tuple(bufs[name].shape)):
                    raise BackendError(f"TensorRT refused input {name} of shape "
                                       f"{tuple(bufs[name].shape)} (outside the engine's "
                                       "optimisation profile)")
            for name, tensor in bufs.items():
                if not self.context.set_tensor_address(name, tensor.data_ptr()):
                    raise BackendError(f"TensorRT refused the address of tensor {name}")
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise BackendError("TensorRT execution failed")
        # The caller's stream waits for the engine: what it reads next is the finished output.
        self.torch.cuda.current_stream(self.cuda).wait_stream(stream)
        return bufs["paintings"]

    def run(self, images: np.ndarray, task_ids: np.ndarray,
            depth: np.ndarray | None = None) -> np.ndarray:
        check_inputs(images, task_ids, self.config.input_height, self.config.input_width,
                     len(self.config.tasks))
        torch = self.torch
        planes = depth_planes_for(self.config, images, depth)
        wanted = len(task_ids)
        if self.static_tasks is not None and wanted != self.static_tasks:
            if wanted > self.static_tasks:
                raise BackendError(f"this static (DLA) engine runs {self.static_tasks} tasks "
                                   f"per call, not {wanted}")
            # A static engine runs its task count: repeat the last task, drop its outputs.
            task_ids = np.concatenate([task_ids, np.repeat(task_ids[-1:],
                                                           self.static_tasks - wanted)])
        with torch.cuda.stream(self.stream):  # uploads on the engine's stream, in order
            dev_images = torch.from_numpy(images).pin_memory().to(self.cuda, non_blocking=True)
            dev_ids = torch.from_numpy(task_ids.astype(np.int64)).to(self.cuda)
            dev_depth = None if planes is None else torch.from_numpy(planes).pin_memory().to(
                self.cuda, non_blocking=True)
            out = self.run_tensor(dev_images, dev_ids, dev_depth)
            host = out.to("cpu", non_blocking=False)
        return host.numpy()[:, :wanted]

    def close(self) -> None:
        self._buffers.clear()
        self.context = None
        self.engine = None
        self.torch.cuda.empty_cache()
