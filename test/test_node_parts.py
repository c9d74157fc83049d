"""Pure parts of the node: image conversion, worker, camera_info matching, parameters, launch."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import yaml

from vision_banana_ros import node_config
from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.geometry.pointcloud import build_cloud, unpack_xyz
from vision_banana_ros.imageconv import (
    ImageConversionError,
    array_to_image_fields,
    compressed_to_rgb,
    depth_to_metres,
    image_array,
    image_to_rgb,
)
from vision_banana_ros.sync import CameraInfoMatcher
from vision_banana_ros.worker import LatestFrameWorker

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)


def _msg(array: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False):
    """A rosbags sensor_msgs/Image (an independent message implementation)."""
    from vision_banana_ros.bags import typestore

    ts = typestore()
    arr = np.ascontiguousarray(array)
    if bigendian:
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    h, w = arr.shape[:2]
    row = arr[0].nbytes
    rows = arr.reshape(h, -1).view(np.uint8).reshape(h, row)
    data = np.concatenate([rows, np.zeros((h, pad), np.uint8)], 1).ravel()
    header = ts.types["std_msgs/msg/Header"](
        stamp=ts.types["builtin_interfaces/msg/Time"](sec=1, nanosec=2), frame_id="cam")
    return ts.types["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=encoding,
                                             is_bigendian=int(bigendian), step=row + pad,
                                             data=data)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_conversion_matches_rosbags_image(encoding, pad):
    from rosbags.image import message_to_cvimage

    src = {"rgb8": RGB, "bgr8": RGB[..., ::-1], "rgba8": np.dstack([RGB, RGB[..., :1]]),
           "bgra8": np.dstack([RGB[..., ::-1], RGB[..., :1]]), "mono8": RGB[..., 0]}[encoding]
    msg = _msg(src, encoding, pad)
    ours = image_to_rgb(msg)
    expected = np.repeat(RGB[..., :1], 3, 2) if encoding == "mono8" else RGB
    np.testing.assert_array_equal(ours, expected)
    if pad == 0:
        # rosbags-image ignores `step` (padded rows come out shifted), so it is the
        # independent reference for unpadded messages only.
        np.testing.assert_array_equal(ours, message_to_cvimage(msg, "rgb8"))


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
def test_yuv422_conversion_matches_rosbags_image(encoding):
    from rosbags.image import message_to_cvimage

    packed = RNG.integers(16, 235, (30, 40, 2), dtype=np.uint8)
    msg = _msg(packed, encoding)
    np.testing.assert_array_equal(image_to_rgb(msg), message_to_cvimage(msg, "rgb8"))


def test_depth_and_mono16_including_big_endian():
    mm = RNG.integers(0, 5000, (30, 40), dtype=np.uint16)
    mm[0, :5] = 0
    for big in (False, True):
        msg = _msg(mm, "16UC1", pad=4, bigendian=big)
        np.testing.assert_array_equal(image_array(msg), mm)
        d = depth_to_metres(msg)
        assert np.isnan(d[0, :5]).all()
        np.testing.assert_allclose(d[mm > 0], mm[mm > 0] / 1000.0, rtol=1e-6)
    m = np.array([[1.5, np.nan], [-1.0, np.inf]], np.float32)
    out = depth_to_metres(_msg(m, "32FC1"))
    assert out[0, 0] == 1.5 and np.isnan(out[0, 1]) and np.isnan(out[1]).all()


def test_zero_copy_view_for_8bit_images():
    msg = _msg(RGB, "rgb8")
    arr = image_to_rgb(msg)
    assert np.shares_memory(arr, np.frombuffer(msg.data, np.uint8))


def test_compressed_jpeg_and_png():
    smooth = cv2.resize(RGB, (320, 240), interpolation=cv2.INTER_CUBIC)
    for ext in (".png", ".jpg"):
        _, enc = cv2.imencode(ext, smooth[..., ::-1])
        out = compressed_to_rgb(SimpleNamespace(format=ext[1:], data=enc.tobytes()))
        if ext == ".png":
            np.testing.assert_array_equal(out, smooth)
        else:
            assert np.abs(out.astype(int) - smooth).mean() < 3
    with pytest.raises(ImageConversionError, match="cannot be decoded"):
        compressed_to_rgb(SimpleNamespace(format="jpeg", data=b"\xff\xd8garbage"))
    with pytest.raises(ImageConversionError, match="no data"):
        compressed_to_rgb(SimpleNamespace(format="jpeg", data=b""))


@pytest.mark.parametrize(("fields", "message"), [
    ({"encoding": "bayer_rggb8"}, "unsupported image encoding"),
    ({"step": 10}, "smaller than a row"),
    ({"data": np.zeros(100, np.uint8)}, "truncated"),
    ({"height": 0}, "zero size"),
])
def test_bad_images_raise_clear_errors(fields, message):
    msg = _msg(RGB, "rgb8")
    for k, v in fields.items():
        setattr(msg, k, v)
    with pytest.raises(ImageConversionError, match=message):
        image_to_rgb(msg)


def test_image_fields_round_trip():
    fields = array_to_image_fields(RGB, "rgb8")
    assert fields["step"] == 120 and len(fields["data"]) == RGB.nbytes
    msg = SimpleNamespace(**fields)
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


# --- point cloud ---------------------------------------------------------------------------

def test_cloud_points_are_the_back_projected_depth():
    depth = RNG.uniform(0.3, 3.0, (48, 64)).astype(np.float32)
    depth[5, 5] = np.nan
    k = np.array([[50.0, 0, 30.2], [0, 52.0, 25.7], [0, 0, 1]])
    colours = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cloud = build_cloud(depth, k, colours, organized=True)
    xyz = unpack_xyz(cloud.points.tobytes(), cloud.width * cloud.height).reshape(48, 64, 3)
    v, u = np.mgrid[0:48, 0:64]
    expected = np.stack([(u - 30.2) / 50.0 * depth, (v - 25.7) / 52.0 * depth, depth], -1)
    ok = np.isfinite(depth)
    assert np.abs(xyz[ok] - expected[ok]).max() < 1e-6
    assert np.isnan(xyz[5, 5]).all() and not cloud.is_dense
    dense = build_cloud(depth, k, organized=False, stride=2, max_depth=2.0)
    sub = depth[::2, ::2]
    assert dense.width == int((np.isfinite(sub) & (sub <= 2.0)).sum()) and dense.height == 1


# --- worker --------------------------------------------------------------------------------

def test_worker_processes_only_the_newest_and_counts_drops():
    seen, gate = [], threading.Event()

    def slow(item):
        gate.wait(5)
        seen.append(item)

    w = LatestFrameWorker(slow)
    w.start()
    w.submit(0)
    time.sleep(0.1)  # worker now blocked on item 0
    for i in range(1, 6):
        w.submit(i)
    gate.set()
    time.sleep(0.3)
    w.stop()
    assert seen == [0, 5]
    assert (w.submitted, w.dropped, w.processed) == (6, 4, 2)


def test_worker_rate_cap_and_pause():
    times = []
    w = LatestFrameWorker(lambda _: times.append(time.monotonic()), max_rate_hz=10)
    w.start()
    end = time.monotonic() + 0.65
    while time.monotonic() < end:
        w.submit(1)
        time.sleep(0.01)
    w.pause(True)
    n = len(times)
    w.submit(2)
    time.sleep(0.2)
    w.stop()
    assert 5 <= n <= 8 and len(times) <= n + 1  # one may have started before the pause
    assert min(np.diff(times)) >= 0.095


def test_worker_survives_errors():
    errors = []
    w = LatestFrameWorker(lambda x: 1 / x, on_error=errors.append)
    w.start()
    w.submit(0)
    time.sleep(0.1)
    w.submit(1)
    time.sleep(0.1)
    w.stop()
    assert len(errors) == 1 and w.processed == 2


# --- camera_info matching ------------------------------------------------------------------

def test_camera_info_matching():
    m = CameraInfoMatcher(tolerance_ns=5_000_000, fallback_latest=False)
    assert m.match(10)[1] == "no camera_info received"
    m.add(100_000_000, "a")
    m.add(200_000_000, "b")
    assert m.match(200_000_000) == ("b", "exact")
    assert m.match(103_000_000) == ("a", "nearest")
    assert m.match(150_000_000)[0] is None
    m.fallback_latest = True
    assert m.match(150_000_000) == ("b", "latest")
    # An info arriving shortly after its image is waited for.
    threading.Timer(0.03, lambda: m.add(300_000_000, "c")).start()
    assert m.wait_match(300_000_000, timeout_s=1.0) == ("c", "exact")


# --- parameters, YAML and launch -----------------------------------------------------------

def test_yaml_defaults_equal_the_parameter_table():
    doc = yaml.safe_load((ROOT / "config" / "vision_banana.yaml").read_text())
    params = doc["/**"]["ros__parameters"]
    assert params == node_config.defaults()
    assert node_config.validate(params) == node_config.defaults()


@pytest.mark.parametrize(("values", "message"), [
    ({"backend": "tensorflow"}, "backend must be one of"),
    ({"tasks": "depth,colour"}, "unknown task"),
    ({"depth_min_m": 5.0, "depth_max_m": 1.0}, "must be below"),
    ({"points_stride": 0}, r"outside \[1, 64\]"),
    ({"threads": "two"}, "must be int"),
    ({"device": "gpu"}, "device must be"),
])
def test_parameter_validation(values, message):
    with pytest.raises(VisionBananaError, match=message):
        node_config.validate(values)


def test_every_parameter_has_a_description():
    for p in node_config.PARAMS:
        assert len(p.description) > 10, p.name


def test_launch_file_compiles_and_names_what_exists():
    source = (ROOT / "launch" / "vision_banana.launch.py").read_text()
    tree = ast.parse(source)
    compile(tree, "vision_banana.launch.py", "exec")
    names = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
             and isinstance(n.value, str)}
    assert "vision_banana_node" in names and "vision_banana_ros" in names
    setup = (ROOT / "setup.py").read_text()
    assert "vision_banana_node = {PACKAGE}.ros.node:main" in setup
    assert {"image", "camera_info", "image/compressed"} <= names  # the node's input names
    overridden = {"model_path", "backend", "use_sim_time"}
    assert overridden <= names
    assert overridden - {"use_sim_time"} <= set(node_config.BY_NAME)
    assert (ROOT / "config" / "vision_banana.yaml").exists()
    assert "generate_launch_description" in names or any(
        isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
        for n in ast.walk(tree))
