"""Pure parts of the node: image conversion, worker, camera_info matching, parameters, launch."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import yaml
from waiting import wait_until

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
from vision_banana_ros.sync import StampMatcher
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
        gate.wait(30)
        seen.append(item)

    w = LatestFrameWorker(slow)
    w.start()
    w.submit(0)
    assert wait_until(lambda: w.submitted == 1 and not w._has_item)  # item 0 taken
    for i in range(1, 6):
        w.submit(i)
    gate.set()
    assert wait_until(lambda: w.processed == 2)
    w.stop()
    assert seen == [0, 5]
    assert (w.submitted, w.dropped, w.processed) == (6, 4, 2)


def test_worker_rate_cap_and_pause():
    times = []
    w = LatestFrameWorker(lambda _: times.append(time.monotonic()), max_rate_hz=10)
    w.start()
    while len(times) < 5:  # a steady stream: the cap sets the pace
        w.submit(1)
        time.sleep(0.005)
    w.pause(True)
    n = len(times)
    w.submit(2)
    assert w.dropped >= 1 and not w._has_item  # paused: dropped at once, never processed
    w.stop()
    assert len(times) <= n + 1  # one may have started before the pause
    assert min(np.diff(times)) >= 0.095


def test_worker_survives_errors_also_in_its_error_path(capfd):
    errors = []

    def on_error(err):
        errors.append(err)
        if len(errors) == 1:
            raise ValueError("the error path itself failed (a logger refusing a call)")

    w = LatestFrameWorker(lambda x: 1 / x, on_error=on_error)
    w.start()
    w.submit(0)
    assert wait_until(lambda: w.processed == 1)
    w.submit(0)
    assert wait_until(lambda: w.processed == 2)
    w.submit(1)
    assert wait_until(lambda: w.processed == 3)
    assert w.alive
    w.stop()
    assert len(errors) == 2 and w.failed == 2 and not w.alive
    assert "the error path itself failed" in capfd.readouterr().err


# --- pairing by stamp ----------------------------------------------------------------------

def test_stamp_matching():
    m = StampMatcher(tolerance_ns=5_000_000, fallback_latest=False)
    assert m.match(10)[1] == "no camera_info received"
    m.add(100_000_000, "a")
    m.add(200_000_000, "b")
    assert m.match(200_000_000) == ("b", "exact")
    assert m.match(103_000_000) == ("a", "nearest")
    assert m.match(150_000_000)[0] is None
    m.fallback_latest = True
    assert m.match(150_000_000) == ("b", "latest")


def test_late_partner_is_waited_for_and_the_wait_is_bounded():
    m = StampMatcher(tolerance_ns=0, fallback_latest=True, wait_s=5.0)
    m.add(100, "a")
    # The message of the image's stamp comes 0.2 s late: waited for, not replaced by "a".
    threading.Timer(0.2, lambda: m.add(200, "b")).start()
    assert m.wait_match(200) == ("b", "exact")
    # A newer message means the exact one will not come: the wait ends at once, and a
    # per-frame stream never lends another frame's message.
    m.add(400, "d")
    start = time.monotonic()
    msg, how = m.wait_match(300)
    assert msg is None and "comes with every frame" in how
    assert time.monotonic() - start < 1.0
    # A late message now and then: still per-frame, so the next miss is waited for, bounded.
    start = time.monotonic()
    assert m.wait_match(500, timeout_s=0.3)[0] is None
    assert 0.25 < time.monotonic() - start < 3.0
    # No exact match among the last ten (camera_info once a second): no more waiting, and
    # the latest one serves.
    for stamp in range(1000, 1010):
        m.wait_match(stamp, timeout_s=0.01)
    start = time.monotonic()
    assert m.wait_match(2000, timeout_s=0.5) == ("d", "latest")
    assert time.monotonic() - start < 0.4
    # Until an exact match shows it is per-frame again.
    m.add(2100, "g")
    assert m.wait_match(2100)[1] == "exact"
    start = time.monotonic()
    assert m.wait_match(2200, timeout_s=0.3)[0] is None
    assert 0.25 < time.monotonic() - start < 3.0


# --- input checks --------------------------------------------------------------------------

def test_oversized_images_are_refused_before_decoding():
    from vision_banana_ros.intake import InputProblem, colour_image

    big = _msg(RGB, "rgb8")
    with pytest.raises(InputProblem, match=r"40x30 .1200 pixels., above max_input_pixels 1000"):
        colour_image(big, max_pixels=1000)
    assert colour_image(big, max_pixels=1200).shape == (30, 40, 3)
    # A 12000x12000 PNG of zeros is a small message; its header is read, nothing decoded.
    _, png = cv2.imencode(".png", np.zeros((12000, 12000), np.uint8))
    assert png.nbytes < 1_000_000
    msg = SimpleNamespace(format="png", data=png.tobytes())
    with pytest.raises(InputProblem) as err:
        colour_image(msg, max_pixels=4096 * 2160)
    assert err.value.kind == "too_large" and "12000x12000" in str(err.value)


def test_camera_info_problems_name_the_entry():
    from vision_banana_ros.intake import InputProblem, intrinsics

    info = SimpleNamespace(width=64, height=48, k=[200.0, 0, np.inf, 0, 200.0, 24.0, 0, 0, 1])
    with pytest.raises(InputProblem, match="cx=inf") as err:
        intrinsics(info, 64, 48)
    assert err.value.kind == "bad_camera_info"
    info.k = [0.0, 0, 32.0, 0, 200.0, 24.0, 0, 0, 1]
    with pytest.raises(InputProblem, match=r"non-positive focal lengths fx=0\.0"):
        intrinsics(info, 64, 48)
    with pytest.raises(InputProblem, match=r"camera_info is 64x48 but the image is 32x24") as err:
        intrinsics(info, 32, 24)
    assert err.value.kind == "camera_info_mismatch"


def test_odd_width_yuv422_is_a_bad_image():
    from vision_banana_ros.intake import InputProblem, colour_image

    packed = RNG.integers(16, 235, (30, 41, 2), dtype=np.uint8)
    with pytest.raises(InputProblem, match="even width") as err:
        colour_image(_msg(packed, "yuv422"), max_pixels=1 << 30)
    assert err.value.kind == "bad_image"


# --- diagnostics building blocks -----------------------------------------------------------

def test_problem_counts_have_a_recent_window_and_totals():
    from vision_banana_ros.stats import ProblemCounter

    c = ProblemCounter(window_s=10.0)
    c.add("bad_image", "one", now=100.0)
    c.add("bad_image", "two", now=105.0)
    assert c.recent(now=106.0) == {"bad_image": 2}
    assert c.recent(now=112.0) == {"bad_image": 1}
    assert c.recent(now=120.0) == {}
    assert c.snapshot() == ({"bad_image": 2}, {"bad_image": "two"})


def test_throttle_is_per_kind_and_its_period_can_change():
    from vision_banana_ros.stats import Throttle

    lines = []
    t = Throttle(lines.append, period_s=5.0)
    assert t("bad_image", "a", now=0.0)
    assert not t("bad_image", "b", now=1.0)
    assert t("no_camera_info", "c", now=1.0)  # another kind is not hidden
    t.period_s = 0.5
    assert t("bad_image", "d", now=2.0)
    assert lines == ["bad_image: a", "no_camera_info: c",
                     "bad_image: d (1 more since the last report)"]


# --- parameters, YAML and launch -----------------------------------------------------------

def test_yaml_defaults_equal_the_parameter_table():
    doc = yaml.safe_load((ROOT / "config" / "vision_banana.yaml").read_text())
    params = doc["/**"]["ros__parameters"]
    assert params == node_config.defaults()
    assert node_config.validate(params) == node_config.defaults()


def test_readme_parameter_table_is_the_parameter_table():
    readme = (ROOT / "README.md").read_text()
    assert node_config.markdown_table() in readme, \
        "README's table: python -m vision_banana_ros.node_config --markdown"


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


def test_a_change_of_several_parameters_is_checked_as_a_whole():
    current = node_config.defaults()  # depth 0.05 .. 10 m
    # Each value alone fits the other's old value; together they do not.
    node_config.apply_change(current, {"depth_min_m": 5.0})
    node_config.apply_change(current, {"depth_max_m": 1.0})
    with pytest.raises(VisionBananaError, match=r"depth_min_m \(5.0\) must be below "
                                                r"depth_max_m \(1.0\)"):
        node_config.apply_change(current, {"depth_min_m": 5.0, "depth_max_m": 1.0})
    merged = node_config.apply_change(current, {"depth_min_m": 5.0, "depth_max_m": 9.0})
    assert (merged["depth_min_m"], merged["depth_max_m"]) == (5.0, 9.0)
    assert current["depth_min_m"] == 0.05  # not modified


def test_a_large_frame_gives_its_memory_back(tmp_path):
    """The pipeline at 4K, then heap trimming (what the node does after frames above 2 MP):
    resident memory returns to where it was."""
    from vision_banana_ros.memory import trim_heap
    from vision_banana_ros.model import ModelConfig, build_model, save_checkpoint
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.processing import FrameProcessor
    from vision_banana_ros.runtime.select import create_backend

    def rss_mb() -> float:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines()
                    if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    save_checkpoint(tmp_path / "tiny.pt", build_model(ModelConfig(
        arch="vb-tiny", input_width=128, input_height=96, pretrained=False)))
    backend = create_backend("onnxruntime", tmp_path / "tiny.pt", threads=1)
    options = node_config.validate({})
    processor = FrameProcessor(Pipeline(backend, backend.config, options["tasks"]), options)
    k = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    for _ in range(3):
        processor(np.zeros((480, 640, 3), np.uint8), k)
    trim_heap()
    warm = rss_mb()
    k4 = np.array([[1500.0, 0, 1920], [0, 1500, 1080], [0, 0, 1]])
    result = processor(np.zeros((2160, 3840, 3), np.uint8), k4)
    peak = rss_mb()
    del result
    processor(np.zeros((480, 640, 3), np.uint8), k)
    trim_heap()
    after = rss_mb()
    backend.close()
    assert peak - warm > 200  # the 4K frame did take memory
    assert after - warm < 40, (warm, peak, after)
