"""The node with the camera's depth (real rclpy and DDS, node in its own process)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ros_harness import RosClient, image_msg, info_msg, new_domain, start_node, status_values

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory):
    from vision_banana_ros.model import ModelConfig, build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rgbd_node") / "rgbd.pt"
    save_checkpoint(path, build_model(ModelConfig(arch="vb-tiny", input_width=64,
                                                  input_height=64, pretrained=False,
                                                  depth_input=True)))
    return str(path)


class _RgbdCamera:
    def __init__(self, domain: int) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        self.client = RosClient(domain)
        n = self.client.node
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.img = n.create_publisher(Image, "/camera/color/image_raw", qos)
        self.info = n.create_publisher(CameraInfo, "/camera/color/camera_info", qos)
        self.depth = n.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", qos)
        self.out: dict[str, list] = {"depth": [], "source": []}
        self.diags: list = []
        n.create_subscription(Image, "/vision_banana/depth/image", self.out["depth"].append,
                              qos)
        n.create_subscription(Image, "/vision_banana/depth/source", self.out["source"].append,
                              qos)
        n.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 10)

    def ready(self) -> bool:
        return self.client.spin_until(
            lambda: self.depth.get_subscription_count() > 0 and self.diags
            and {"image=reliable", "camera_info=reliable", "depth/image=reliable"}
            <= set(status_values(self.diags[-1]).get("input_reliability", "").split(",")),
            60)

    def send(self, stamp: int, depth_msg=None, rgb=None) -> None:
        rgb = rgb if rgb is not None else np.full((48, 64, 3), 120, np.uint8)
        self.info.publish(info_msg(64, 48, stamp))
        if depth_msg is not None:
            self.depth.publish(depth_msg)
        self.img.publish(image_msg(rgb, "rgb8", stamp))

    def output(self, stamp: int, timeout: float = 30.0) -> bool:
        return self.client.spin_until(
            lambda: any(m.header.stamp.sec == stamp for m in self.out["depth"]), timeout)

    def counts(self) -> dict[str, str]:
        n = len(self.diags)
        self.client.spin_until(lambda: len(self.diags) > n, 30)
        return status_values(self.diags[-1])


def _mm(stamp: int, value: int = 800, shape=(48, 64)) -> object:
    return image_msg(np.full(shape, value, np.uint16), "16UC1", stamp)


def _rgbd_node(tmp_path, depth_model, **params):
    domain = new_domain()
    node = start_node(tmp_path, domain, {
        "model_path": depth_model, "threads": 1, "diagnostics_period_s": 0.3,
        "objects_min_points": 5, **params})
    return node, _RgbdCamera(domain)


def test_camera_depth_is_published_with_its_source_and_bad_depth_survived(depth_model,
                                                                        tmp_path):
    from vision_banana_ros.fusion import SOURCE_SENSOR

    # depth_missing rgb_only: frames with bad or missing depth run RGB-only, counted (the
    # default, skip, is in test_node_live).
    node, cam = _rgbd_node(tmp_path, depth_model, depth_missing="rgb_only")
    try:
        assert node.wait_for("active: processing frames", 120), node.text()
        assert cam.ready(), node.text()
        stamp = 1
        while not cam.output(stamp, 2.0):  # discovery may still drop the first frames
            stamp += 1
            assert stamp < 30, node.text()
            cam.send(stamp, _mm(stamp))
        assert cam.client.spin_until(
            lambda: any(m.header.stamp.sec == stamp for m in cam.out["source"]), 30)
        src = [m for m in cam.out["source"] if m.header.stamp.sec == stamp]
        assert src[0].encoding == "mono8"
        source = np.frombuffer(bytes(src[0].data), np.uint8)
        assert source.size == 64 * 48 and (source > 0).all()
        published = next(m for m in cam.out["depth"] if m.header.stamp.sec == stamp)
        depth = np.frombuffer(bytes(published.data), np.float32)
        kept = source == SOURCE_SENSOR
        np.testing.assert_allclose(depth[kept], 0.8, atol=1e-6)  # the camera's, as measured
        bad = {
            "depth_mismatch": _mm(0, shape=(24, 32)),                   # other resolution
            "bad_depth": image_msg(np.full((48, 64), 3, np.uint8), "mono8", 0),  # encoding
            "depth_empty": _mm(0, value=0),                             # all zeros
        }
        for kind, msg in bad.items():
            stamp += 1
            msg.header.stamp.sec = stamp
            cam.send(stamp, msg)
            assert cam.output(stamp), (kind, node.text())  # the frame runs RGB-only
            assert cam.client.spin_until(lambda k=kind: f"errors_{k}" in cam.counts(), 30), kind
        stamp += 1  # NaN and inf in 32FC1 are invalid pixels, not a bad image
        floats = np.full((48, 64), 0.9, np.float32)
        floats[0, :10], floats[1, :10] = np.nan, np.inf
        cam.send(stamp, image_msg(floats, "32FC1", stamp))
        assert cam.output(stamp)
        stamp += 1  # stamps that never pair
        cam.send(stamp, _mm(stamp + 5))
        assert cam.output(stamp)
        for _ in range(3):  # the depth stream stops: frames run RGB-only, counted
            stamp += 1
            cam.send(stamp)
            assert cam.output(stamp)
        values = cam.counts()
        assert int(values["errors_depth_missing"]) >= 3, values
        assert "errors_bad_image" not in values and values["worker_alive"] == "True"
        assert int(values["pairing_depth_exact"]) >= 2 and values["depth_input"] == "auto"
        assert float(values["depth_fraction_completed"]) >= 0
        assert node.alive()
    finally:
        cam.client.close()
        node.stop()


def test_required_depth_skips_frames_without_it(depth_model, tmp_path):
    node, cam = _rgbd_node(tmp_path, depth_model, depth_input="required")
    try:
        assert node.wait_for("active: processing frames", 120), node.text()
        assert cam.ready(), node.text()
        stamp = 1
        while not cam.output(stamp, 2.0):
            stamp += 1
            assert stamp < 30, node.text()
            cam.send(stamp, _mm(stamp))
        stamp += 1
        cam.send(stamp)  # no depth: skipped
        assert cam.client.spin_until(lambda: "errors_depth_missing" in cam.counts(), 30)
        assert not any(m.header.stamp.sec == stamp for m in cam.out["depth"])
        stamp += 1
        cam.send(stamp, _mm(stamp))
        assert cam.output(stamp)
    finally:
        cam.client.close()
        node.stop()
