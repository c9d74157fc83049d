"""``TensorRTBackend`` against a stand-in of the TensorRT 10 (and 11) Python API.

This checks the API contract, not numerics: which TensorRT calls the backend makes, with what,
in which order, and that it touches nothing TensorRT 10 or 11 removed (the stand-in,
``trt_standin.py``, raises on those). The real library cannot run here: no NVIDIA GPU, and
TensorRT's wheels need CUDA to import; ``scripts/gpu_check.sh`` runs the real one where a GPU
is lent. ``torch.cuda`` is replaced by CPU stand-ins for the same reason (``CpuCuda``).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from trt_standin import CpuCuda, make_tensorrt

from vision_banana_ros.model import ModelConfig, build_model
from vision_banana_ros.model.export import export_onnx
from vision_banana_ros.runtime import tensorrt_backend
from vision_banana_ros.runtime.base import BackendError
from vision_banana_ros.runtime.calibration import CalibrationSet, calibration_set

CFG = ModelConfig(arch="vb-tiny", input_width=96, input_height=64, pretrained=False,
                  depth_input=True)


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    torch.manual_seed(0)
    return export_onnx(build_model(CFG).eval(), tmp_path_factory.mktemp("trt") / "m.onnx")


@pytest.fixture
def trt(monkeypatch, tmp_path):
    """Install a TensorRT 10 stand-in (replace ``sys.modules['tensorrt']`` for another)."""
    module = make_tensorrt("10.3.0", dla_cores=2)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    cuda = CpuCuda()
    cuda.install(monkeypatch, torch)
    monkeypatch.setattr(tensorrt_backend, "cuda_device", lambda t, d: torch.device("cpu"))
    module.cuda = cuda
    return module


def _calls(trt, name):
    return [args for n, args in trt.calls if n == name]


def _backend(onnx_path, tmp_path, **kw):
    return tensorrt_backend.TensorRTBackend(onnx_path, cache=tmp_path / "engines",
                                            log=lambda line: None, **kw)


def test_fp16_build_then_cache_hit_and_run(trt, onnx_path, tmp_path):
    b = _backend(onnx_path, tmp_path, precision="fp16", max_tasks=4)
    desc = trt.built[-1]
    assert "FP16" in desc["flags"] and desc["device"] == "GPU"
    assert desc["profile"]["image"] == [[1, 3, 64, 96], [1, 3, 64, 96], [1, 3, 64, 96]]
    assert desc["profile"]["task_ids"] == [[1], [2], [4]]
    assert desc["profile"]["depth"] == [[1, 2, 64, 96]] * 3
    # the timing cache belongs to this GPU and TensorRT version, and was attached and written
    timing = list(tmp_path.rglob("timing-*.cache"))
    assert [p.name for p in timing] == ["timing-Stand_in_GPU-8.7-trt10.3.0.cache"]
    assert _calls(trt, "IBuilderConfig.set_timing_cache")[0][1] is False
    # run: shapes set within the profile, every tensor bound, the caller's stream waits
    images = np.zeros((1, 3, 64, 96), np.float32)
    out = b.run(images, np.array([0, 2, 3]), np.full((1, 2, 64, 96), 0.5, np.float32))
    assert out.shape == (1, 3, 3, 64, 96)
    assert ("task_ids", (3,)) in _calls(trt, "IExecutionContext.set_input_shape")
    assert {a[0] for a in _calls(trt, "IExecutionContext.set_tensor_address")} == {
        "image", "task_ids", "depth", "paintings"}
    assert _calls(trt, "IExecutionContext.execute_async_v3")
    assert ("current", b.stream.name) in trt.cuda.waits  # output read only after the engine
    # a second backend on the same model and GPU loads the cached engine: no build
    builds = len(_calls(trt, "Builder"))
    _backend(onnx_path, tmp_path, precision="fp16", max_tasks=4)
    assert len(_calls(trt, "Builder")) == builds


def test_fp32_engines_are_fp32(trt, onnx_path, tmp_path):
    _backend(onnx_path, tmp_path, precision="fp32")
    assert "TF32" not in trt.built[-1]["flags"] and "FP16" not in trt.built[-1]["flags"]


def test_int8_calibrates_with_camera_depth_then_loads_from_cache(trt, onnx_path, tmp_path):
    rng = np.random.default_rng(0)
    k = np.array([[60.0, 0, 48], [0, 60, 32], [0, 0, 1]])
    frames = [(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), k,
               np.full((64, 96), 0.5 + 0.1 * i, np.float32)) for i in range(6)]
    calib = calibration_set(frames, CFG, 6, depth_dropout=0.3, seed=1)
    assert calib.depth is not None and 0 < calib.with_depth < len(calib)
    _backend(onnx_path, tmp_path, precision="int8", calibration=calib)
    desc = trt.built[-1]
    assert {"INT8", "FP16"} <= set(desc["flags"]) and desc["calibration_batches"] == 6
    assert len(_calls(trt, "IBuilderConfig.set_calibration_profile")) == 1
    # The node and eval ask for int8 without frames: the calibrated engine comes from the cache
    builds = len(_calls(trt, "Builder"))
    b = _backend(onnx_path, tmp_path, precision="int8")
    assert len(_calls(trt, "Builder")) == builds and b.precision == "int8"


def test_int8_without_frames_or_cached_engine_says_what_to_run(trt, onnx_path, tmp_path):
    with pytest.raises(BackendError, match="vision-banana build-engine --precision int8"):
        _backend(onnx_path, tmp_path, precision="int8")


def test_tensorrt_11_builds_fp32_and_names_itself_for_fp16_and_int8(trt, onnx_path, tmp_path,
                                                                   monkeypatch):
    eleven = make_tensorrt("11.0.0")
    monkeypatch.setitem(sys.modules, "tensorrt", eleven)
    for precision in ("fp16", "int8"):
        with pytest.raises(BackendError, match=r"TensorRT 11\.0\.0 builds strongly typed"):
            _backend(onnx_path, tmp_path, precision=precision)
    _backend(onnx_path, tmp_path, precision="fp32")  # touches nothing 11 removed
    assert eleven.built and "FP16" not in eleven.built[-1]["flags"]


def test_dla_static_shapes_core_and_checks(trt, onnx_path, tmp_path):
    b = _backend(onnx_path, tmp_path, precision="fp16", dla_core=1, max_tasks=4)
    desc = trt.built[-1]
    assert desc["device"] == "DLA" and desc["dla_core"] == 1 and "GPU_FALLBACK" in desc["flags"]
    assert desc["profile"]["task_ids"] == [[4], [4], [4]]  # static: DLA runs no dynamic shapes
    assert desc["profile"]["image"][0] == desc["profile"]["image"][2]
    assert _calls(trt, "Runtime.deserialize_cuda_engine")[-1] == (1,)  # runtime.DLA_core set
    out = b.run(np.zeros((1, 3, 64, 96), np.float32), np.array([0, 1, 2]))  # padded to 4
    assert out.shape == (1, 3, 3, 64, 96)
    for kw, message in (({"dla_core": 2, "precision": "fp16"}, "has 2 DLA core"),
                        ({"dla_core": 0, "precision": "fp32"}, "fp16 and int8 layers only"),
                        ({"dla_core": 0, "precision": "fp16", "max_batch": 2},
                         "static shapes only")):
        with pytest.raises(BackendError, match=message):
            _backend(onnx_path, tmp_path / str(len(message)), **kw)


def test_a_foreign_engine_is_refused_by_its_tensors(trt, onnx_path, tmp_path, monkeypatch):
    wrong = make_tensorrt("10.3.0", tensors={"image": ("INPUT", "HALF"),
                                             "task_ids": ("INPUT", "INT64"),
                                             "depth": ("INPUT", "FLOAT"),
                                             "paintings": ("OUTPUT", "FLOAT")})
    monkeypatch.setitem(sys.modules, "tensorrt", wrong)
    with pytest.raises(BackendError, match="engine tensor image is"):
        _backend(onnx_path, tmp_path, precision="fp16")


def test_calibration_set_batches_images_with_their_depth():
    images = np.zeros((5, 3, 4, 4), np.float32)
    depth = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 2, 4, 4))
    got = list(CalibrationSet(images, depth).batches(2))
    assert len(got) == 2 and got[1][1][0, 0, 0, 0] == 2.0
    assert CalibrationSet(images, depth).digest() != CalibrationSet(images, depth * 0).digest()
