"""A stand-in ``tensorrt`` module: exactly the TensorRT 10 Python surface that
``vision_banana_ros.runtime.tensorrt_backend`` may use, for a contract test.

It checks the API contract, not numerics: names, signatures and the order of calls, as the
TensorRT 10 Python documentation gives them (``Builder``, ``IBuilderConfig``,
``IOptimizationProfile``, ``OnnxParser``, ``Runtime``, ``ICudaEngine``,
``IExecutionContext``, ``IInt8EntropyCalibrator2``). The real library cannot run here (no
NVIDIA GPU, and TensorRT's wheels need CUDA to import), so without this the backend's code
would meet TensorRT for the first time on a user's GPU.

Every object refuses attributes it does not define (``__slots__``): TensorRT 8.x calls removed
in 10 (``build_engine``, ``max_workspace_size``, ``execute_async_v2``, bindings) raise
AttributeError, as they would. ``make_tensorrt("11.0.0")`` drops what TensorRT 11 removed
(``BuilderFlag.FP16``/``INT8``, ``IBuilderConfig.int8_calibrator``,
``set_calibration_profile``, ``IInt8EntropyCalibrator2``). Every call is recorded in
``module.calls`` as (name, args).

A built "engine" is JSON of what the build was given (profile shapes, flags, DLA settings,
I/O tensors with dtypes); deserializing it gives an engine with those tensors.
"""

from __future__ import annotations

import enum
import json
import types
from typing import Any


class _Strict:
    """Objects with a fixed set of attributes (a removed API raises AttributeError)."""

    __slots__ = ("_m",)

    def _call(self, name: str, *args: Any) -> None:
        self._m.calls.append((name, args))


def make_tensorrt(version: str = "10.3.0", dla_cores: int = 0,
                  tensors: dict[str, tuple[str, str]] | None = None) -> types.ModuleType:
    """A fresh stand-in module. ``dla_cores``: what ``Builder.num_DLA_cores`` reports.
    ``tensors``: the engine's I/O {name: (mode, dtype name)} (default: what the ONNX graph
    of a depth-input model has)."""
    major = int(version.split(".")[0])
    m = types.ModuleType("tensorrt")
    m.__version__ = version
    m.calls = []
    m.built = []  # the build descriptions, in order
    io = tensors or {"image": ("INPUT", "FLOAT"), "task_ids": ("INPUT", "INT64"),
                     "depth": ("INPUT", "FLOAT"), "paintings": ("OUTPUT", "FLOAT")}

    flags = ["TF32", "GPU_FALLBACK", "REFIT", "STRICT_NANS"]
    if major < 11:
        flags += ["FP16", "INT8"]
    m.BuilderFlag = enum.Enum("BuilderFlag", flags)
    m.DeviceType = enum.Enum("DeviceType", ["GPU", "DLA"])
    m.MemoryPoolType = enum.Enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])
    m.TensorIOMode = enum.Enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    m.DataType = enum.Enum("DataType", ["FLOAT", "HALF", "INT8", "INT32", "INT64", "BOOL"])

    class Logger(_Strict):
        __slots__ = ("severity",)
        WARNING, INFO, ERROR = 2, 3, 1

        def __init__(self, severity: int = 2) -> None:
            self._m, self.severity = m, severity

    class IOptimizationProfile(_Strict):
        __slots__ = ("shapes",)

        def __init__(self) -> None:
            self._m, self.shapes = m, {}

        def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
            self._call("IOptimizationProfile.set_shape", input, min, opt, max)
            dims = [tuple(int(d) for d in s) for s in (min, opt, max)]
            if any(len(d) != len(dims[0]) for d in dims) or any(
                    not a <= b <= c for a, b, c in zip(*dims, strict=True)):
                raise ValueError(f"profile shapes of {input} not min <= opt <= max: {dims}")
            self.shapes[input] = dims

    class ITimingCache(_Strict):
        __slots__ = ("data",)

        def __init__(self, data: bytes) -> None:
            self._m, self.data = m, data

        def serialize(self) -> bytes:
            return self.data or f"timings of {version}".encode()

    config_slots = ["pool_limits", "profiles", "flags", "timing_cache", "default_device_type",
                    "DLA_core"]
    if major < 11:
        config_slots += ["int8_calibrator", "calibration_profile"]

    class IBuilderConfig(_Strict):
        __slots__ = tuple(config_slots)

        def __init__(self) -> None:
            self._m, self.pool_limits, self.profiles = m, {}, []
            self.flags = {m.BuilderFlag.TF32}  # TensorRT's default
            self.timing_cache = None
            self.default_device_type = m.DeviceType.GPU
            self.DLA_core = -1
            if major < 11:
                self.int8_calibrator = None
                self.calibration_profile = None

        def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
            self._call("IBuilderConfig.set_memory_pool_limit", pool, pool_size)
            self.pool_limits[pool] = pool_size

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            self._call("IBuilderConfig.add_optimization_profile", profile)
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
            self._call("IBuilderConfig.create_timing_cache", serialized_timing_cache)
            return ITimingCache(bytes(serialized_timing_cache))

        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            self._call("IBuilderConfig.set_timing_cache", cache, ignore_mismatch)
            if cache.data and cache.data != f"timings of {version}".encode():
                return False  # another version's cache
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> ITimingCache:
            return self.timing_cache or ITimingCache(b"")

        def set_flag(self, flag: Any) -> None:
            self._call("IBuilderConfig.set_flag", flag)
            self.flags.add(flag)

        def clear_flag(self, flag: Any) -> None:
            self._call("IBuilderConfig.clear_flag", flag)
            self.flags.discard(flag)

        if major < 11:
            def set_calibration_profile(self, profile: IOptimizationProfile) -> bool:
                self._call("IBuilderConfig.set_calibration_profile", profile)
                self.calibration_profile = profile
                return True

    class INetworkDefinition(_Strict):
        __slots__ = ("flags",)

        def __init__(self, flags: int) -> None:
            self._m, self.flags = m, flags

    class OnnxParser(_Strict):
        __slots__ = ("network", "num_errors")

        def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
            self._m, self.network, self.num_errors = m, network, 0

        def parse_from_file(self, model: str) -> bool:
            self._call("OnnxParser.parse_from_file", model)
            with open(model, "rb") as f:
                return f.read(4) != b""

        def get_error(self, index: int) -> str:
            return f"error {index}"

    class Builder(_Strict):
        __slots__ = ("num_DLA_cores",)

        def __init__(self, logger: Logger) -> None:
            self._m, self.num_DLA_cores = m, dla_cores
            self._call("Builder", logger)

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            self._call("Builder.create_network", flags)
            return INetworkDefinition(flags)

        def create_builder_config(self) -> IBuilderConfig:
            return IBuilderConfig()

        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        def build_serialized_network(self, network: INetworkDefinition,
                                     config: IBuilderConfig) -> bytes | None:
            self._call("Builder.build_serialized_network", network, config)
            if not config.profiles:
                raise ValueError("a dynamic network needs an optimisation profile")
            calibrator = getattr(config, "int8_calibrator", None)
            batches = 0
            if calibrator is not None:  # INT8: TensorRT drives the calibrator
                cache = calibrator.read_calibration_cache()
                if cache is None:
                    names = list(config.calibration_profile.shapes)
                    size = calibrator.get_batch_size()
                    while calibrator.get_batch(names) is not None:
                        batches += 1
                    calibrator.write_calibration_cache(f"{size}x{batches}".encode())
            desc = {"profile": {k: v for k, v in config.profiles[0].shapes.items()},
                    "flags": sorted(f.name for f in config.flags),
                    "device": config.default_device_type.name, "dla_core": config.DLA_core,
                    "calibration_batches": batches,
                    "io": {n: list(md) for n, md in io.items()}}
            data = json.dumps(desc)
            m.built.append(json.loads(data))
            return data.encode()

    class IExecutionContext(_Strict):
        __slots__ = ("addresses", "engine", "shapes")

        def __init__(self, engine: ICudaEngine) -> None:
            self._m, self.engine, self.shapes, self.addresses = m, engine, {}, {}

        def set_input_shape(self, name: str, shape: Any) -> bool:
            self._call("IExecutionContext.set_input_shape", name, tuple(shape))
            lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
            ok = len(shape) == len(lo) and all(a <= s <= b for a, s, b in
                                               zip(lo, shape, hi, strict=True))
            if ok:
                self.shapes[name] = tuple(shape)
            return ok

        def set_tensor_address(self, name: str, memory: int) -> bool:
            self._call("IExecutionContext.set_tensor_address", name, memory)
            if name not in io or not isinstance(memory, int):
                return False
            self.addresses[name] = memory
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            self._call("IExecutionContext.execute_async_v3", stream_handle)
            inputs = [n for n, (mode, _) in io.items() if mode == "INPUT"]
            return all(n in self.shapes for n in inputs) and set(self.addresses) == set(io)

    class ICudaEngine(_Strict):
        __slots__ = ("desc", "num_io_tensors")

        def __init__(self, desc: dict) -> None:
            self._m, self.desc, self.num_io_tensors = m, desc, len(desc["io"])

        def get_tensor_name(self, index: int) -> str:
            return list(self.desc["io"])[index]

        def get_tensor_mode(self, name: str) -> Any:
            return m.TensorIOMode[self.desc["io"][name][0]]

        def get_tensor_dtype(self, name: str) -> Any:
            return m.DataType[self.desc["io"][name][1]]

        def get_tensor_shape(self, name: str) -> tuple:
            if name in self.desc["profile"]:
                lo, _, hi = self.desc["profile"][name]
                return tuple(a if a == b else -1 for a, b in zip(lo, hi, strict=True))
            return (-1, -1, 3, -1, -1)

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list:
            if profile_index != 0 or name not in self.desc["profile"]:
                raise ValueError(f"no profile shape of {name} in profile {profile_index}")
            return [tuple(d) for d in self.desc["profile"][name]]

        def create_execution_context(self) -> IExecutionContext:
            return IExecutionContext(self)

    class Runtime(_Strict):
        __slots__ = ("DLA_core",)

        def __init__(self, logger: Logger) -> None:
            self._m, self.DLA_core = m, -1

        def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
            self._call("Runtime.deserialize_cuda_engine", self.DLA_core)
            try:
                return ICudaEngine(json.loads(bytes(serialized_engine)))
            except ValueError:
                return None

    m.Logger, m.Builder, m.OnnxParser, m.Runtime = Logger, Builder, OnnxParser, Runtime
    m.IOptimizationProfile, m.IBuilderConfig = IOptimizationProfile, IBuilderConfig
    m.ICudaEngine, m.IExecutionContext = ICudaEngine, IExecutionContext
    if major < 11:
        class IInt8EntropyCalibrator2:
            def __init__(self) -> None:
                m.calls.append(("IInt8EntropyCalibrator2.__init__", ()))

        m.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    return m


class CpuCuda:
    """What the backend asks of ``torch.cuda``, on the CPU: a "GPU" whose tensors are CPU
    tensors and whose streams are recorded, for the same contract test (torch's real CUDA
    calls need a GPU). Install with :meth:`install` (pytest's monkeypatch)."""

    def __init__(self) -> None:
        self.waits: list[tuple[str, str]] = []  # (waiting stream, stream waited for)

    def install(self, monkeypatch: Any, torch: Any) -> None:
        import contextlib

        outer = self

        class Stream:
            count = 0

            def __init__(self, device: Any = None) -> None:
                Stream.count += 1
                self.name = f"stream{Stream.count}"
                self.cuda_stream = 1000 + Stream.count

            def wait_stream(self, other: Any) -> None:
                outer.waits.append((self.name, other.name))

        current = Stream()
        current.name = "current"
        props = types.SimpleNamespace(name="Stand-in GPU", major=8, minor=7)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
        monkeypatch.setattr(torch.cuda, "Stream", Stream)
        monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current)
        monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
        monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
        monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
        monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
        monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self)
