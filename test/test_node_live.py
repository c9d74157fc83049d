"""The node on a live camera (issue: the node on a live camera): every frame accounted for,
none with another frame's intrinsics, no silent RGB-only frames from an RGB-D camera, the first
frame processed (warm before active). Real rclpy and DDS, the node in its own process."""

from __future__ import annotations

import numpy as np
import pytest
from ros_harness import image_msg, info_msg, new_domain, start_node
from test_node_hardening import _Camera, _frame

pytestmark = pytest.mark.ros


def _accounted(values: dict[str, str]) -> bool:
    """received = published + dropped + skipped (nothing in progress once the camera stops)."""
    return int(values["frames_received"]) == (int(values["frames_published"])
                                              + int(values["frames_dropped"])
                                              + int(values["frames_skipped"]))


def _settled(cam: _Camera, timeout: float = 30.0) -> dict[str, str]:
    """The first /diagnostics where every received frame is accounted for."""
    values: dict[str, str] = {}

    def done() -> bool:
        nonlocal values
        values = cam.fresh_status(5.0)
        return bool(values) and _accounted(values)

    cam.client.spin_until(done, timeout)
    return values


class _DepthCamera(_Camera):
    """A camera with an aligned depth stream (32FC1 metres), as RealSense's."""

    def __init__(self, domain: int) -> None:
        super().__init__(domain)
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        node = self.client.node
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.depth_pub = node.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw",
                                               qos)
        self.sources: list = []
        node.create_subscription(Image, "/vision_banana/depth/source", self.sources.append, qos)

    def send_depth(self, stamp: int, h: int = 120, w: int = 160) -> None:
        self.depth_pub.publish(image_msg(np.full((h, w), 0.8, np.float32), "32FC1", stamp))


def test_invalid_same_stamp_camera_info_is_skipped_never_borrowed(tiny_model, tmp_path):
    """18 frames whose own camera_info (same stamp, sent just before) is invalid: none is
    published (before: one was, with another frame's intrinsics) and all 18 are counted."""
    domain = new_domain()
    node = start_node(tmp_path, domain, {"model_path": tiny_model, "threads": 1,
                                         "diagnostics_period_s": 0.2})
    cam = _Camera(domain)
    try:
        assert node.wait_for("active: processing frames", 120), node.text()
        assert cam.ready(), cam.status()
        rgb = _frame(120, 160)
        assert cam.send_until_output(1, rgb)
        before = _settled(cam)
        for stamp in range(2, 20):
            bad = info_msg(160, 120, stamp, fx=500.0)
            bad.k[0] = float("nan")  # fx
            cam.info.publish(bad)
            cam.img.publish(image_msg(rgb, "rgb8", stamp))
            cam.spin(0.05)
        cam.spin(2.0)
        after = _settled(cam)
        assert _accounted(after), after
        assert not any(m.header.stamp.sec >= 2 for m in cam.depth), "a bad frame was published"
        new = {k: int(after.get(k, 0)) - int(before.get(k, 0))
               for k in ("frames_received", "frames_published", "frames_dropped",
                         "frames_skipped")}
        assert new["frames_received"] == 18 and new["frames_published"] == 0, new
        assert new["frames_skipped"] + new["frames_dropped"] == 18, new
        assert int(after.get("frames_skipped_bad_camera_info", 0)) > 0, after
    finally:
        cam.client.close()
        node.stop()


def test_rgbd_frames_wait_for_their_depth_and_missing_depth_is_not_silent(tiny_model,
                                                                         tmp_path):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    domain = new_domain()
    node = start_node(tmp_path, domain, {"model_path": tiny_model, "threads": 1,
                                         "diagnostics_period_s": 0.2, "pairing_wait_ms": 1500.0})
    cam = _DepthCamera(domain)
    rgb = _frame(120, 160)
    try:
        assert node.wait_for("active: processing frames", 120), node.text()
        assert "warmed up: one frame in" in node.text()
        assert cam.client.spin_until(lambda: cam.depth_pub.get_subscription_count() > 0, 60)
        assert cam.ready(), cam.status()
        # The first frame's depth comes 0.4 s after its image: waited for, used.
        stamp = 1
        cam.send(stamp, rgb)
        cam.spin(0.4)
        cam.send_depth(stamp)
        assert cam.output_for(stamp, 30)
        first = _settled(cam)
        assert first.get("pairing_depth_exact") == "1", first
        # A frame whose depth never comes: skipped (depth_missing: skip), counted.
        cam.send(2, rgb)
        cam.spin(2.5)
        values = _settled(cam)
        assert not any(m.header.stamp.sec == 2 for m in cam.depth)
        assert int(values.get("frames_skipped_depth_missing", 0)) == 1, values
        # depth_missing rgb_only: published, counted, and ~/depth/source says so.
        request = SetParameters.Request(parameters=[Parameter(
            name="depth_missing", value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                       string_value="rgb_only"))])
        assert cam.client.call(SetParameters, "/vision_banana/set_parameters",
                               request).results[0].successful
        cam.send(3, rgb)
        assert cam.output_for(3, 30)
        assert cam.client.spin_until(lambda: any(m.header.stamp.sec == 3 for m in cam.sources),
                                     10)  # ~/depth/source says where its depth came from
        values = _settled(cam)
        assert int(values.get("errors_depth_missing", 0)) >= 2 and _accounted(values)
        assert float(values["age_max_ms"]) > 0
    finally:
        cam.client.close()
        node.stop()


def test_rgb_only_frames_without_a_usable_support_plane_withhold_their_metric_outputs(
        tiny_model, tmp_path):
    """scale_anchor support_plane with a support_plane pose that is stale: the frame's depth,
    cloud and objects are not published (scale_unanchored: skip), its segmentation is, and
    /diagnostics says why; with scale_unanchored publish the depth comes, counted."""
    from geometry_msgs.msg import PoseStamped
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    domain = new_domain()
    node = start_node(tmp_path, domain, {"model_path": tiny_model, "threads": 1,
                                         "depth_input": "'off'",  # YAML: off is a bool
                                         "diagnostics_period_s": 0.2})
    cam = _Camera(domain)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    overlays: list = []
    cam.client.node.create_subscription(Image, "/vision_banana/segmentation/overlay",
                                        overlays.append, qos)
    pose_pub = cam.client.node.create_publisher(PoseStamped, "/support_plane", qos)
    rgb = _frame(120, 160)
    try:
        assert node.wait_for("active: processing frames", 120), node.text()
        assert cam.ready(), cam.status()
        assert cam.send_until_output(1, rgb)  # no plane configured: unanchored, published
        assert _settled(cam)["depth_anchor"] == "no plane"
        assert cam.client.spin_until(lambda: pose_pub.get_subscription_count() > 0, 30)
        pose = PoseStamped()
        pose.header.stamp.sec, pose.header.frame_id = 100, "cam"  # 98 s before the image
        pose.pose.position.z, pose.pose.orientation.x = 0.8, 1.0  # z axis towards the camera
        pose_pub.publish(pose)
        cam.spin(1.0)
        cam.send(2, rgb)
        assert cam.client.spin_until(lambda: any(m.header.stamp.sec == 2 for m in overlays),
                                     30)
        cam.spin(1.0)
        assert not any(m.header.stamp.sec == 2 for m in cam.depth)
        values = _settled(cam)
        assert "stale" in values["depth_anchor"] and _accounted(values), values
        assert int(values["errors_scale_unanchored"]) == 1
        request = SetParameters.Request(parameters=[Parameter(
            name="scale_unanchored", value=ParameterValue(
                type=ParameterType.PARAMETER_STRING, string_value="publish"))])
        assert cam.client.call(SetParameters, "/vision_banana/set_parameters",
                               request).results[0].successful
        cam.send(3, rgb)
        assert cam.output_for(3, 30)
        assert int(_settled(cam)["errors_scale_unanchored"]) == 2
    finally:
        cam.client.close()
        node.stop()


def test_the_shipped_model_anchored_on_a_support_plane_topic_over_dds(tmp_path):
    """RGB only, the shipped model, the table given on the support_plane topic with the
    frame's stamp: the published depth is anchored (its scale on /diagnostics) and lies on
    the metric table."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    f = render_spheres_on_plane(320, 240, n_spheres=3, seed=5)
    domain = new_domain()
    node = start_node(tmp_path, domain, {"backend": "onnxruntime", "threads": 2,
                                         "depth_input": "'off'", "diagnostics_period_s": 0.2})
    cam = _Camera(domain)
    pose_pub = cam.client.node.create_publisher(
        PoseStamped, "/support_plane", QoSProfile(depth=10,
                                                  reliability=ReliabilityPolicy.RELIABLE))
    try:
        assert node.wait_for("active: processing frames", 300), node.text()
        assert cam.ready(), cam.status()
        assert cam.client.spin_until(lambda: pose_pub.get_subscription_count() > 0, 30)
        tilt = np.radians(40.0)  # the table of render_spheres_on_plane: z axis its normal
        pose = PoseStamped()
        pose.header.frame_id = "cam"
        pose.pose.position.z = 0.9
        half = (np.pi / 2 + tilt) / 2  # about x: z (0, 0, 1) onto (0, -cos t, -sin t)
        pose.pose.orientation.x, pose.pose.orientation.w = float(np.sin(half)), float(
            np.cos(half))
        stamp = 0
        while not any(m.header.stamp.sec == stamp for m in cam.depth):
            stamp += 1
            assert stamp < 10, node.text()
            pose.header.stamp.sec = stamp
            pose_pub.publish(pose)
            cam.spin(0.2)
            cam.info.publish(info_msg(320, 240, stamp, fx=float(f.k[0, 0])))
            cam.img.publish(image_msg(f.rgb, "rgb8", stamp))
            cam.output_for(stamp, 10)
        values = _settled(cam)
        assert values["depth_anchor"] == "anchored", values["depth_anchor"]
        assert float(values["depth_scale"]) > 0
        msg = next(m for m in cam.depth if m.header.stamp.sec == stamp)
        depth = np.frombuffer(bytes(msg.data), np.float32).reshape(240, 320)
        table = (f.semantic == 1) & np.isfinite(depth)
        ratio = np.median(depth[table] / f.depth[table])
        assert 0.85 < ratio < 1.15, ratio  # metric: on the table the robot gave
    finally:
        cam.client.close()
        node.stop()


@pytest.mark.parametrize("size,rate", [((1280, 720), "1"), ((1920, 1080), "0.5")],
                         ids=["1280x720", "1920x1080"])
def test_large_rgbd_frames_are_counted_back(tiny_model, tmp_path, size, rate):
    """Large RGB-D frames (colour, camera_info and 16UC1 depth with one stamp) through the
    node, every process on the shipped Fast DDS profile (as the launch file sets it): each
    frame sent comes back as depth, depth source and cloud, made with the camera's depth,
    and the node accounts for every frame it received."""
    from ros_harness import replay, start_node

    from vision_banana_ros.bags import RgbdBagWriter
    from vision_banana_ros.ros.replay import load_record
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    w, h = size
    frames = 4
    with RgbdBagWriter(tmp_path / "bag") as writer:
        for i in range(frames):
            f = render_spheres_on_plane(w, h, n_spheres=3, seed=i)
            writer.write(f.rgb, np.where(np.isfinite(f.depth), f.depth, 0.0), f.k)
            if i == 0:
                measured = float(np.isfinite(f.depth).mean())  # the sky has no depth
    domain = new_domain()
    node = start_node(tmp_path, domain, {"model_path": tiny_model, "threads": 2,
                                         "diagnostics_period_s": 0.5})
    rec = replay(tmp_path, domain, "record", "--out", str(tmp_path / "rec.npz"), "--rgbd",
                 "--frames", str(frames), "--timeout", "150", "--linger", "2", name="record")
    try:
        assert node.wait_for("active: processing frames", 120), node.text()
        assert rec.wait_for("recorder ready", 120), rec.text()
        play = replay(tmp_path, domain, "play", str(tmp_path / "bag"), "--depth", "--rate",
                      rate, name="play")
        assert play.p.wait(120) == 0, play.text()
        assert rec.p.wait(180) == 0, rec.text()
    finally:
        log = node.text()
        node.stop()
        rec.stop()
    meta, arrays = load_record(tmp_path / "rec.npz")
    records = meta["records"]
    for topic in ("depth/image", "depth/source", "points"):
        assert len(records[topic]) == frames, (topic, len(records[topic]), log[-3000:])
    assert all(r["width"] == w and r["height"] == h for r in records["depth/image"])
    source = arrays["depth.source.0"].reshape(h, w)
    assert (source == 1).mean() > 0.9 * measured, "the camera's depth was not used"
    last = [d for d in meta["diagnostics"] if d["name"].startswith("vision_banana")][-1]
    assert _accounted(last), last
    assert int(last["frames_published"]) == frames, last
