"""ONNX export parity, backends, backend selection, TensorRT engine cache, calibration data."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vision_banana_ros.codecs import decode_depth_torch
from vision_banana_ros.model import ModelConfig, build_model, save_checkpoint
from vision_banana_ros.model.export import export_onnx, onnx_metadata, parity
from vision_banana_ros.runtime import BackendError
from vision_banana_ros.runtime.calibration import batches, calibration_set, interleave
from vision_banana_ros.runtime.engine_cache import EngineCache, EngineKey
from vision_banana_ros.runtime.onnx_backend import OnnxRuntimeBackend
from vision_banana_ros.runtime.select import choose_backend, create_backend, onnx_for
from vision_banana_ros.runtime.torch_backend import TorchBackend

TINY = ModelConfig(arch="vb-tiny", input_width=64, input_height=64, pretrained=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    ckpt = root / "tiny.pt"
    save_checkpoint(ckpt, model)
    return model, ckpt, export_onnx(model, root / "tiny.onnx")


def test_plain_export_matches_pytorch(tiny):
    model, _, onnx_path = tiny
    meta = onnx_metadata(onnx_path)
    assert meta["vision_banana_ros.graph"] == "plain"
    assert json.loads(meta["vision_banana_ros.model_config"])["arch"] == "vb-tiny"
    rng = np.random.default_rng(0)
    for batch, tasks in ((1, [0]), (3, [0, 1, 2, 3]), (2, [3, 1])):
        images = rng.random((batch, 3, 64, 64), dtype=np.float32)
        assert parity(model, onnx_path, images, np.array(tasks)) <= 1e-4


def test_decoded_graph_returns_metres_and_ids(tiny, tmp_path):
    import onnxruntime as ort

    model, _, _ = tiny
    path = export_onnx(model, tmp_path / "dec.onnx", decode_in_graph=True,
                       tasks=("depth", "semantic"))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["paintings", "depth", "semantic"]
    image = np.random.default_rng(1).random((2, 3, 64, 64), dtype=np.float32)
    fx = np.array([100.0, -1.0], np.float32)  # second frame: no intrinsics
    _, depth, sem = sess.run(None, {"image": image, "fx": fx})
    with torch.inference_mode():
        ref = decode_depth_torch(model(torch.from_numpy(image), torch.tensor([0]))[:, 0])
    np.testing.assert_allclose(depth[0], ref[0].numpy() * 100.0 / 200.0, rtol=1e-4)
    np.testing.assert_allclose(depth[1], ref[1].numpy(), rtol=1e-4)
    assert sem.dtype == np.int64 and sem.shape == (2, 64, 64)


def test_onnxruntime_and_torch_backends_agree(tiny):
    _, ckpt, onnx_path = tiny
    ort_b = OnnxRuntimeBackend(onnx_path, threads=1)
    torch_b = TorchBackend(ckpt, threads=1)
    images = np.random.default_rng(2).random((1, 3, 64, 64), dtype=np.float32)
    ids = np.array([0, 1, 2, 3])
    a, b = ort_b.run(images, ids), torch_b.run(images, ids)
    assert a.shape == (1, 4, 3, 64, 64)
    assert np.abs(a - b).max() <= 1e-4
    with pytest.raises(BackendError, match=r"float32 \(B, 3, 64, 64\)"):
        ort_b.run(images[:, :, :32], ids)
    with pytest.raises(BackendError, match=r"task ids must be"):
        ort_b.run(images, np.array([7]))


def test_onnx_with_unexpected_inputs_is_rejected(tmp_path, tiny):
    class Other(torch.nn.Module):
        def forward(self, x):
            return x * 2

    bad = tmp_path / "other.onnx"
    torch.onnx.export(Other(), (torch.rand(1, 3, 8, 8),), str(bad), dynamo=False)
    with pytest.raises(BackendError, match=r"other\.onnx has no vision_banana_ros\.model_config"):
        OnnxRuntimeBackend(bad)
    _, _, _ = tiny
    dec = export_onnx(tiny[0], tmp_path / "dec.onnx", decode_in_graph=True)
    with pytest.raises(BackendError, match="needs the plain graph"):
        OnnxRuntimeBackend(dec)


def test_auto_chooses_onnxruntime_here_and_says_why(tiny, monkeypatch, tmp_path):
    name, why = choose_backend("auto")
    assert name == "onnxruntime"
    assert "TensorRT is not installed" in why or "no CUDA GPU" in why
    messages = []
    monkeypatch.setenv("VISION_BANANA_CACHE", str(tmp_path))
    backend = create_backend("auto", tiny[1], log=messages.append, threads=1)
    assert backend.name == "onnxruntime"
    assert messages and messages[0].startswith("backend auto -> onnxruntime")
    # the checkpoint was exported once into the cache, keyed by its sha256
    assert onnx_for(tiny[1]).parent == tmp_path / "onnx"


def test_onnxruntime_cuda_never_reports_cuda_while_running_on_the_cpu(tiny, monkeypatch):
    """Without a CUDA provider: a clear error. With one that cannot load (its CUDA libraries
    missing), onnxruntime falls back to the CPU with a warning only: here this onnxruntime
    (CPU build) is told the provider exists, and its real session runs on the CPU, which the
    backend must refuse, never report as cuda."""
    import onnxruntime as ort

    with pytest.raises(BackendError, match="no CUDA execution provider"):
        OnnxRuntimeBackend(tiny[2], device="cuda")
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(BackendError, match="did not load"):
        OnnxRuntimeBackend(tiny[2], device="cuda:1")
    with pytest.raises(BackendError, match="cuda or cuda:N"):
        OnnxRuntimeBackend(tiny[2], device="cuda:x")
    assert OnnxRuntimeBackend(tiny[2]).device == "cpu"


def test_tensorrt_request_gives_one_clear_error(tiny):
    with pytest.raises(BackendError, match=r"TensorRT is not installed\. On Jetson"):
        create_backend("tensorrt", tiny[1])
    with pytest.raises(BackendError, match="unknown backend"):
        create_backend("tensorflow", tiny[1])
    with pytest.raises(BackendError, match="int8 needs the tensorrt backend"):
        create_backend("onnxruntime", tiny[1], precision="int8")


# --- TensorRT engine cache (no TensorRT needed) -------------------------------------------

KEY = EngineKey(onnx_sha256="a" * 64, tensorrt_version="10.3.0", gpu_name="Orin",
                compute_capability="8.7", precision="fp16", min_batch=1, opt_batch=1,
                max_batch=1, max_tasks=4, input_height=192, input_width=256)


def test_engine_cache_hit_and_every_key_part_invalidates(tmp_path):
    cache = EngineCache(tmp_path)
    assert cache.lookup(KEY).engine is None
    cache.store(KEY, b"engine-bytes")
    assert cache.lookup(KEY).engine == b"engine-bytes"
    changes = {"onnx_sha256": "b" * 64, "tensorrt_version": "10.4.0", "gpu_name": "RTX 4090",
               "compute_capability": "8.9", "precision": "int8", "max_batch": 4,
               "max_tasks": 2, "input_height": 240, "input_width": 320, "dla_core": 0,
               "calibration_sha256": "c" * 64, "opt_batch": 2, "min_batch": 2,
               "depth_input": True}
    assert set(changes) == set(asdict(KEY))  # every field is exercised
    for field, value in changes.items():
        other = replace(KEY, **{field: value})
        assert other.digest() != KEY.digest(), field
        assert cache.lookup(other).engine is None, field


def test_engine_cache_detects_corruption_and_foreign_sidecars(tmp_path):
    cache = EngineCache(tmp_path)
    engine_path = cache.store(KEY, b"x" * 1000)
    engine_path.write_bytes(b"x" * 500)  # truncated by a crash or a full disk
    found = cache.lookup(KEY)
    assert found.engine is None and "corrupt" in found.reason
    _, sidecar = cache.paths(KEY)
    cache.store(KEY, b"y" * 10)
    doc = json.loads(sidecar.read_text())
    doc["key"]["tensorrt_version"] = "8.6.1"
    sidecar.write_text(json.dumps(doc))
    found = cache.lookup(KEY)
    assert found.engine is None and "tensorrt_version='8.6.1'" in found.reason
    sidecar.write_text("{not json")
    assert "unreadable" in cache.lookup(KEY).reason


def _writer(args: tuple[str, int]) -> None:
    folder, n = args
    cache = EngineCache(Path(folder))
    for _ in range(20):
        cache.store(KEY, bytes([n]) * 200_000)


def test_concurrent_builders_never_leave_a_torn_engine(tmp_path):
    with mp.get_context("spawn").Pool(4) as pool:
        pool.map(_writer, [(str(tmp_path), n) for n in range(1, 5)])
    found = EngineCache(tmp_path).lookup(KEY)
    assert found.engine is not None and len(set(found.engine)) == 1
    leftovers = [p for p in (tmp_path / "engines").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_calibration_data_mixes_shards_and_bags_in_full_batches(tmp_path):
    from vision_banana_ros.bags import RgbdBagWriter
    from vision_banana_ros.runtime.calibration import frame_source
    from vision_banana_ros.synthetic.scene import Frame
    from vision_banana_ros.synthetic.shards import scene_arrays, write_npz

    # A shard folder of 5 frames of value 10 and a bag of 2 real-sized frames of value 200.
    frames = [Frame(rgb=np.full((48, 64, 3), 10, np.uint8), depth=np.ones((48, 64), np.float32),
                    instances=np.zeros((48, 64), np.uint16),
                    semantic=np.zeros((48, 64), np.uint8),
                    normals=np.zeros((48, 64, 3), np.float32), k=np.eye(3), pose=np.eye(4))
              for _ in range(5)]
    (tmp_path / "shards").mkdir()
    write_npz(tmp_path / "shards" / "scene-000000.npz", scene_arrays(frames))
    (tmp_path / "shards" / "index.json").write_text(json.dumps({
        "format": "vision_banana_shards/1", "shards": [{"file": "scene-000000.npz",
                                                        "scene": 0}]}))
    with RgbdBagWriter(tmp_path / "bag") as w:
        for _ in range(2):
            w.write(np.full((480, 640, 3), 200, np.uint8), np.ones((480, 640)),
                    np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]))
    cfg = ModelConfig(arch="vb-tiny", input_width=32, input_height=32, pretrained=False,
                      depth_input=True)
    data = calibration_set(interleave(frame_source(tmp_path / "shards"),
                                      frame_source(tmp_path / "bag")), cfg, limit=6,
                           depth_dropout=0.0)
    images = data.images
    assert images.shape == (6, 3, 32, 32) and images.dtype == np.float32
    # round robin: synthetic, real, synthetic, real, synthetic, synthetic; letterboxed as the
    # node does it (4:3 into a square: the centre is image, the top rows padding)
    np.testing.assert_allclose(images[:, 0, 16, 16], np.array([10, 200, 10, 200, 10, 10]) / 255)
    assert not np.allclose(images[:, 0, 0, 0], images[:, 0, 16, 16])
    # every frame with its camera's depth (the shards' simulated, the bag's own) as planes
    assert data.depth.shape == (6, 2, 32, 32) and data.with_depth == 6
    assert [b.shape[0] for b in batches(images, 4)] == [4]


def test_shipped_model_same_outputs_through_torch_and_onnxruntime(tmp_path, monkeypatch):
    """Issue bar: decoded depth within 1e-3 relative, every object with IoU >= 0.99."""
    from vision_banana_ros.evaluation.metrics import instance_metrics
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.runtime.select import DEFAULT_MODEL
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    monkeypatch.setenv("VISION_BANANA_CACHE", str(tmp_path))
    frame = render_spheres_on_plane(640, 480, n_spheres=6, seed=4)
    outs = {}
    for name in ("torch", "onnxruntime"):
        backend = create_backend(name, None, threads=2)
        outs[name] = Pipeline(backend, backend.config, "depth,instances")(frame.rgb, frame.k)
    a, b = outs["torch"], outs["onnxruntime"]
    ok = np.isfinite(a.depth) & np.isfinite(b.depth)
    assert ok.mean() > 0.99
    assert np.max(np.abs(a.depth[ok] - b.depth[ok]) / a.depth[ok]) <= 1e-3
    ids_a = a.instances.astype(np.int64)
    ids_b = b.instances.astype(np.int64)
    assert set(np.unique(ids_a)) == set(np.unique(ids_b))
    for i in np.unique(ids_a[ids_a > 0]):
        ma, mb = ids_a == i, ids_b == i
        assert (ma & mb).sum() / (ma | mb).sum() >= 0.99, i
    assert instance_metrics(ids_b, ids_a).f_measure >= 0.99
    from vision_banana_ros.model import load_model

    model, _ = load_model(DEFAULT_MODEL)
    onnx = export_onnx(model, tmp_path / "default.onnx")
    images = np.random.default_rng(5).random((2, 3, model.config.input_height,
                                              model.config.input_width), dtype=np.float32)
    assert parity(model, onnx, images, np.arange(4)) <= 1e-4


def test_pipeline_tunes_its_process():
    """OpenBLAS workers busy-wait between the pipeline's tiny matrix products; the pipeline
    caps every BLAS pool at one thread and has glibc keep freed frame-sized blocks (checked in
    a fresh process: both are process-wide)."""
    code = ("import vision_banana_ros.memory as m\n"
            "from threadpoolctl import threadpool_info\n"
            "from vision_banana_ros.pipeline import Pipeline\n"
            "from vision_banana_ros.runtime.select import create_backend\n"
            "b = create_backend('torch', None, threads=1)\n"
            "m._libc().mallopt = lambda *a: print('mallopt', *a) or 1\n"
            "Pipeline(b, b.config, 'depth')\n"
            "pools = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
            "print(len(pools), max(pools))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    assert out[:2] == [f"mallopt -3 {32 << 20}", f"mallopt -1 {128 << 20}"]
    pools, threads = out[2].split()
    assert int(pools) >= 1 and threads == "1"


def test_int8_without_frames_finds_the_engine_build_engine_calibrated(tmp_path):
    """The node and eval ask for int8 without calibration frames: the engine build-engine
    made with frames is found (before: refused, then keyed by the frames' hash)."""
    from dataclasses import replace

    cache = EngineCache(tmp_path)
    asked = replace(KEY, precision="int8")
    assert cache.calibrated_key(asked) is None
    cache.store(replace(asked, precision="fp16", calibration_sha256="c" * 64), b"fp16")
    cache.store(replace(asked, gpu_name="Thor", calibration_sha256="d" * 64), b"other gpu")
    assert cache.calibrated_key(asked) is None  # another precision or GPU does not serve
    calibrated = replace(asked, calibration_sha256="e" * 64)
    cache.store(calibrated, b"int8 engine")
    assert cache.calibrated_key(asked) == calibrated
    assert cache.lookup(cache.calibrated_key(asked)).engine == b"int8 engine"


@pytest.mark.parametrize("version,precision,ok", [
    ("10.3.0", "fp16", True), ("10.13.2", "int8", True), ("11.0.1", "fp32", True),
    ("11.0.1", "fp16", False), ("11.2.0", "int8", False), ("8.6.1", "fp32", False)])
def test_tensorrt_versions_this_package_builds_with(version, precision, ok):
    from vision_banana_ros.runtime.tensorrt_backend import check_tensorrt_version

    if ok:
        check_tensorrt_version(version, precision)
    else:
        with pytest.raises(BackendError, match=f"TensorRT {version}"):
            check_tensorrt_version(version, precision)
