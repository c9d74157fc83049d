"""The node with real rclpy and DDS in its own process; publisher and recorder processes too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ros_harness import RosClient, new_domain, replay, start_node

from vision_banana_ros.geometry.pointcloud import POINT_DTYPE
from vision_banana_ros.ros.replay import load_record, recorded_outputs

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from vision_banana_ros.model import ModelConfig, build_model, save_checkpoint
    from vision_banana_ros.synthetic.render import render_dataset, shards_to_bag
    from vision_banana_ros.synthetic.scene import SceneConfig

    root = tmp_path_factory.mktemp("node_assets")
    torch.manual_seed(0)  # a random tiny model whose depth lies inside the published range
    model = build_model(ModelConfig(arch="vb-tiny", input_width=128, input_height=96,
                                    pretrained=False))
    save_checkpoint(root / "tiny.pt", model)
    cfg = SceneConfig(resolutions=((320, 240),), min_objects=3, max_objects=6,
                      settle_seconds=0.5)
    render_dataset(root / "shards", scenes=2, views=2, seed=3, workers=1, config=cfg,
                   progress=False)
    shards_to_bag(root / "shards", root / "bag")
    return {"model": str(root / "tiny.pt"), "bag": str(root / "bag")}


def _params(assets, **extra):
    return {"model_path": assets["model"], "backend": "onnxruntime", "threads": 1,
            "objects_min_points": 20, **extra}


def test_every_output_arrives_with_the_input_header(assets, tmp_path):
    domain = new_domain()
    node = start_node(tmp_path, domain, _params(assets))
    try:
        assert node.wait_for("active: processing frames"), node.text()
        rec = replay(tmp_path, domain, "record", "--out", str(tmp_path / "rec.npz"),
                     "--frames", "8", "--timeout", "90", "--linger", "1.5", name="record")
        assert rec.wait_for("recorder ready", 60), rec.text()
        # The bag twice: discovery between processes can still be settling for the first
        # frames on a loaded machine (volatile samples written before a match are lost).
        play = replay(tmp_path, domain, "play", assets["bag"], "--rate", "2", "--loops", "2",
                      name="play")
        assert play.p.wait(60) == 0, play.text()
        assert rec.p.wait(90) == 0, rec.text()
    finally:
        node.stop()
    meta, arrays = load_record(tmp_path / "rec.npz")
    records = meta["records"]
    input_stamps = {1_700_000_000_000_000_000 + i * 100_000_000 for i in range(4)}
    for topic in recorded_outputs():
        assert records[topic], f"no message on ~/{topic}"
        for r in records[topic]:
            assert r["stamp_ns"] in input_stamps, topic
            assert r["frame_id"] == "camera_color_optical_frame", topic
    encodings = {"depth/image": "32FC1", "segmentation/instances": "16UC1",
                 "segmentation/semantic": "mono8", "segmentation/overlay": "rgb8",
                 "normals/image": "32FC3"}
    for topic, enc in encodings.items():
        r = records[topic][0]
        assert (r["encoding"], r["width"], r["height"]) == (enc, 320, 240), topic
    assert records["points"][0]["fields"] == ["x", "y", "z", "rgb", "instance"]
    # The cloud lies at the published depth back-projected with the published camera_info.
    first = {t: records[t][0]["stamp_ns"] for t in ("depth/image", "depth/camera_info",
                                                     "points")}
    assert len(set(first.values())) == 1
    depth = arrays["depth.image.0"].view(np.float32).reshape(240, 320)
    k = arrays["depth.camera_info.0"].reshape(3, 3)
    pts = arrays["points.0"].view(POINT_DTYPE).reshape(240, 320)
    v, u = np.mgrid[0:240, 0:320]
    ok = np.isfinite(depth)
    assert ok.mean() > 0.5
    expected = np.stack([(u - k[0, 2]) / k[0, 0] * depth, (v - k[1, 2]) / k[1, 1] * depth,
                         depth], -1)
    got = np.stack([pts["x"], pts["y"], pts["z"]], -1)
    assert np.abs(got[ok] - expected[ok]).max() < 1e-3
    assert np.isnan(got[~ok]).all()
    diag = [d for d in meta["diagnostics"] if d["name"].startswith("vision_banana")]
    assert diag and diag[-1]["backend"] == "onnxruntime"
    assert int(diag[-1]["frames_processed"]) >= 1


def test_lifecycle_transitions_both_ways(assets, tmp_path):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    domain = new_domain()
    node = start_node(tmp_path, domain, _params(assets, autostart=False))
    client = RosClient(domain)
    try:
        def state() -> str:
            return client.call(GetState, "/vision_banana/get_state",
                               GetState.Request()).current_state.label

        def change(tid: int) -> bool:
            req = ChangeState.Request()
            req.transition.id = tid
            return client.call(ChangeState, "/vision_banana/change_state", req).success

        assert state() == "unconfigured"
        for tid, label in ((Transition.TRANSITION_CONFIGURE, "inactive"),
                           (Transition.TRANSITION_ACTIVATE, "active"),
                           (Transition.TRANSITION_DEACTIVATE, "inactive"),
                           (Transition.TRANSITION_ACTIVATE, "active"),
                           (Transition.TRANSITION_DEACTIVATE, "inactive"),
                           (Transition.TRANSITION_CLEANUP, "unconfigured"),
                           (Transition.TRANSITION_CONFIGURE, "inactive"),
                           (Transition.TRANSITION_INACTIVE_SHUTDOWN, "finalized")):
            assert change(tid), (tid, node.text())
            assert state() == label
        assert node.alive()
    finally:
        client.close()
        node.stop()


def test_missing_model_fails_configure_then_recovers(assets, tmp_path):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    domain = new_domain()
    node = start_node(tmp_path, domain, _params(assets, model_path="/no/such/model.pt"))
    client = RosClient(domain)
    try:
        assert node.wait_for("configure failed"), node.text()
        assert "model file /no/such/model.pt does not exist" in node.text()
        state = client.call(GetState, "/vision_banana/get_state", GetState.Request())
        assert state.current_state.label == "unconfigured"
        req = SetParameters.Request(parameters=[Parameter(
            name="model_path", value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                    string_value=assets["model"]))])
        assert client.call(SetParameters, "/vision_banana/set_parameters",
                           req).results[0].successful
        change = ChangeState.Request()
        change.transition.id = Transition.TRANSITION_CONFIGURE
        assert client.call(ChangeState, "/vision_banana/change_state", change).success
        assert node.alive()
    finally:
        client.close()
        node.stop()


def _image(array, encoding, stamp_sec, width=None, height=None, step=None):
    from sensor_msgs.msg import Image

    from vision_banana_ros.imageconv import array_to_image_fields

    fields = array_to_image_fields(array, encoding)
    msg = Image(**fields)
    msg.header.stamp.sec, msg.header.frame_id = stamp_sec, "cam"
    if width is not None:
        msg.width = width
    if height is not None:
        msg.height = height
    if step is not None:
        msg.step = step
    return msg


def _info(w, h, stamp_sec, fx=200.0):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=w, height=h)
    info.k = [fx, 0.0, w / 2, 0.0, fx, h / 2, 0.0, 0.0, 1.0]
    info.header.stamp.sec, info.header.frame_id = stamp_sec, "cam"
    return info


def test_bad_input_keeps_the_node_alive_and_is_reported(assets, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    domain = new_domain()
    node = start_node(tmp_path, domain, _params(assets, camera_info_fallback_latest=False))
    client = RosClient(domain)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    img_pub = client.node.create_publisher(Image, "/camera/color/image_raw", qos)
    info_pub = client.node.create_publisher(CameraInfo, "/camera/color/camera_info", qos)
    diags: list = []
    depth_out: list = []
    client.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    client.node.create_subscription(Image, "/vision_banana/depth/image", depth_out.append, 10)
    rgb = np.full((48, 64, 3), 120, np.uint8)
    try:
        assert node.wait_for("active: processing frames"), node.text()
        assert client.spin_until(lambda: img_pub.get_subscription_count() > 0, 20)
        cases = [
            ("bad_image", _image(rgb, "rgb8", 1), _info(64, 48, 1)),            # encoding below
            ("bad_image", _image(rgb, "rgb8", 2, step=10), _info(64, 48, 2)),   # step < row
            ("bad_image", _image(rgb[:10], "rgb8", 3, height=48), _info(64, 48, 3)),  # truncated
            ("bad_image", _image(rgb, "rgb8", 4, width=0), _info(64, 48, 4)),   # zero size
            ("bad_camera_info", _image(rgb, "rgb8", 5), _info(64, 48, 5, fx=0.0)),
            ("camera_info_mismatch", _image(rgb, "rgb8", 6), _info(128, 96, 6)),
            ("no_camera_info", _image(rgb, "rgb8", 7), None),
        ]
        cases[0][1].encoding = "bayer_grbg8"
        for _, img, info in cases:
            if info is not None:
                info_pub.publish(info)
            client.spin_until(lambda: False, 0.1)
            img_pub.publish(img)
            client.spin_until(lambda: False, 0.6)  # one at a time: the worker keeps the newest

        def counts():
            if not diags:
                return {}
            values = {kv.key: kv.value for kv in diags[-1].status[0].values}
            return {k[len("errors_"):]: int(v) for k, v in values.items()
                    if k.startswith("errors_")}

        expected = {"bad_image", "bad_camera_info", "camera_info_mismatch", "no_camera_info"}
        assert client.spin_until(lambda: expected <= set(counts()), 15), counts()
        assert counts()["bad_image"] == 4
        assert node.alive()
        info_pub.publish(_info(64, 48, 8))
        client.spin_until(lambda: False, 0.1)
        img_pub.publish(_image(rgb, "rgb8", 8))
        assert client.spin_until(lambda: len(depth_out) > 0, 15), node.text()
        assert depth_out[0].header.stamp.sec == 8
        log = node.text()
        assert "unsupported image encoding 'bayer_grbg8'" in log
    finally:
        client.close()
        node.stop()


def test_enable_service_and_incompatible_qos(assets, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_srvs.srv import SetBool

    domain = new_domain()
    node = start_node(tmp_path, domain, _params(assets, qos_input_reliability="reliable"))
    client = RosClient(domain)
    good = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    img_pub = client.node.create_publisher(Image, "/camera/color/image_raw", good)
    info_pub = client.node.create_publisher(CameraInfo, "/camera/color/camera_info", good)
    out: list = []
    diags: list = []
    client.node.create_subscription(Image, "/vision_banana/depth/image", out.append, 10)
    client.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    rgb = np.full((48, 64, 3), 90, np.uint8)

    def send(sec: int) -> None:
        info_pub.publish(_info(64, 48, sec))
        client.spin_until(lambda: False, 0.05)
        img_pub.publish(_image(rgb, "rgb8", sec))

    try:
        assert node.wait_for("active: processing frames"), node.text()
        assert client.spin_until(lambda: img_pub.get_subscription_count() > 0, 20)
        paused = client.call(SetBool, "/vision_banana/enable", SetBool.Request(data=False))
        assert paused.success and "paused" in paused.message
        send(1)
        client.spin_until(lambda: False, 1.5)
        assert out == []
        assert client.call(SetBool, "/vision_banana/enable", SetBool.Request(data=True)).success
        send(2)
        assert client.spin_until(lambda: len(out) > 0, 15)
        assert out[0].header.stamp.sec == 2
        # A best-effort publisher cannot serve our reliable subscription: reported, not silent.
        client.node.create_publisher(Image, "/camera/color/image_raw",
                                     QoSProfile(depth=1,
                                                reliability=ReliabilityPolicy.BEST_EFFORT))

        def reported() -> bool:
            return any(kv.key == "errors_incompatible_qos" for d in diags[-3:]
                       for kv in d.status[0].values)

        assert client.spin_until(reported, 15)
        assert "incompatible" in node.text()
    finally:
        client.close()
        node.stop()


def test_live_evaluation_through_a_started_node(assets, tmp_path, monkeypatch):
    from vision_banana_ros.evaluation.config import EvalConfig
    from vision_banana_ros.ros.live_eval import live_eval

    monkeypatch.setenv("ROS_DOMAIN_ID", str(new_domain()))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    cfg = EvalConfig(bag=assets["bag"], out=tmp_path / "live", model=assets["model"],
                     backend="onnxruntime", threads=1, progress=False)
    doc = live_eval(cfg, rate_hz=2.0, start_node=True, node_name="/vision_banana")
    assert doc["frames"] == 4
    assert doc["frames_with_output"] + doc["dropped_frames"] == 4
    assert doc["frames_with_output"] >= 1
    assert doc["latency_ms"]["end_to_end"]["p50"] > 0
    assert doc["summary"]["delta1"] is not None  # the bag has ground-truth depth
    assert (tmp_path / "live" / "report.md").exists()
    assert (tmp_path / "live" / "outputs" / "metadata.yaml").exists()
