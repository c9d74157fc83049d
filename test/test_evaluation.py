"""vision-banana eval on small bags written in the test (exact ground truth)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vision_banana_ros.bags import RgbdBagWriter, image_msg, typestore
from vision_banana_ros.bags.reader import BagError
from vision_banana_ros.evaluation.bag_eval import Evaluation
from vision_banana_ros.evaluation.config import EvalConfig, parse_thresholds
from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

PRED_DEPTH, PRED_INST = "/vision_banana/depth/image", "/vision_banana/segmentation/instances"


def _bag_with_predictions(path: Path, scale: float, frames: int = 3,
                          shuffle_ids: bool = False) -> Path:
    """A RealSense-layout bag with exact ground truth, plus 'recorded predictions' on the
    node's topics: the ground-truth depth (as recorded, mm) times ``scale`` and the
    ground-truth instances, renumbered."""
    scenes = [render_spheres_on_plane(160, 120, n_spheres=3, seed=s) for s in range(frames)]
    with RgbdBagWriter(path) as w:
        for f in scenes:
            stamp = w.write(f.rgb, f.depth, f.k, f.instances)
            gt_mm = np.where(np.isfinite(f.depth), np.rint(f.depth * 1000) / 1000, np.nan)
            ids = np.where(f.instances > 0, 10 - f.instances, 0).astype(np.uint16) \
                if shuffle_ids else f.instances
            for topic, arr, enc in ((PRED_DEPTH, (gt_mm * scale).astype(np.float32), "32FC1"),
                                    (PRED_INST, ids, "16UC1")):
                w.write_message(topic, "sensor_msgs/msg/Image", stamp,
                                image_msg(arr, enc, stamp, "camera_color_optical_frame"))
    return path


def _evaluate(bag: Path, out: Path, **kw) -> dict:
    return Evaluation(EvalConfig(bag=bag, out=out, pred_depth_topic=PRED_DEPTH,
                                 pred_instances_topic=PRED_INST, progress=False, **kw)).run()


@pytest.mark.parametrize("scale", [1.0, 1.1, 1.3])
def test_metrics_of_recorded_predictions_match_independent_values(tmp_path, scale):
    bag = _bag_with_predictions(tmp_path / "bag", scale, shuffle_ids=True)
    doc = _evaluate(bag, tmp_path / "out")
    s = doc["summary"]
    assert doc["frames"] == 3 and doc["frames_with_depth"] == 3
    assert s["abs_rel"] == pytest.approx(abs(scale - 1), abs=1e-5)
    expected_delta1 = 1.0 if max(scale, 1 / scale) < 1.25 else 0.0
    assert s["delta1"] == pytest.approx(expected_delta1)
    assert s["delta2"] == pytest.approx(1.0 if scale < 1.5625 else 0.0)
    assert s["median_scaled_abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert s["f_measure"] == pytest.approx(1.0) and s["matched_iou"] == pytest.approx(1.0)
    # Chamfer distance of perfect clouds is 0; scaled clouds move by (s - 1) * depth at most
    if scale == 1.0:
        assert s["chamfer_m"] == pytest.approx(0.0, abs=1e-6)
    else:
        assert 0.001 < s["chamfer_m"] < (scale - 1) * 1.5
    out = tmp_path / "out"
    for name in ("metrics.json", "report.md", "frames.csv", "error_vs_depth.png",
                 "per_frame.png", "example_0.png"):
        assert (out / name).stat().st_size > 100, name
    assert json.loads((out / "metrics.json").read_text())["schema"] == "vision_banana_ros/eval/1"
    assert "where the time goes" in (out / "report.md").read_text()


def test_fail_under_gates_the_exit_status(tmp_path):
    bag = _bag_with_predictions(tmp_path / "bag", 1.3)
    doc = _evaluate(bag, tmp_path / "o1", fail_under=parse_thresholds(["delta1=0.9"]))
    assert not doc["passed"] and doc["fail_under"]["delta1"]["value"] == 0.0
    doc = _evaluate(bag, tmp_path / "o2",
                    fail_under=parse_thresholds(["delta2=0.9,abs_rel=0.31"]))
    assert doc["passed"]
    with pytest.raises(Exception, match="NAME=VALUE"):
        parse_thresholds(["delta1>0.9"])


def test_model_run_on_a_synthetic_bag_writes_the_output_bag(tmp_path):
    from rosbags.highlevel import AnyReader

    from vision_banana_ros.model import ModelConfig, build_model, save_checkpoint

    save_checkpoint(tmp_path / "tiny.pt", build_model(ModelConfig(
        arch="vb-tiny", input_width=64, input_height=64, pretrained=False)))
    scenes = [render_spheres_on_plane(128, 96, seed=s) for s in range(2)]
    with RgbdBagWriter(tmp_path / "bag") as w:
        for f in scenes:
            w.write(f.rgb, f.depth, f.k, f.instances)
    doc = Evaluation(EvalConfig(bag=tmp_path / "bag", out=tmp_path / "out",
                                model=str(tmp_path / "tiny.pt"), backend="onnxruntime",
                                threads=1, progress=False)).run()
    assert doc["frames"] == 2 and doc["summary"]["delta1"] is not None
    assert set(doc["latency_ms"]) >= {"read", "inference", "decode", "metrics", "write"}
    speed = doc["speed"]
    assert 0 < speed["network_s"] < speed["pipeline_s"] and speed["wall_s"] > 0
    assert "% of the pipeline's speed" in (tmp_path / "out" / "report.md").read_text()
    with AnyReader([tmp_path / "out" / "outputs"], default_typestore=typestore()) as r:
        topics = {c.topic: c.msgtype for c in r.connections}
    assert topics["/vision_banana/depth/image"] == "sensor_msgs/msg/Image"
    assert topics["/vision_banana/points"] == "sensor_msgs/msg/PointCloud2"
    assert topics["/vision_banana/objects"] == "visualization_msgs/msg/MarkerArray"
    assert "/camera/color/image_raw" in topics


def test_ctrl_c_keeps_the_frames_already_through_the_network(tmp_path, monkeypatch):
    """Ctrl-C (KeyboardInterrupt on the main thread) while frame 4 is being read: frames 1-3
    are scored and written by the finisher thread before the results are written."""
    from rosbags.highlevel import AnyReader

    bag = _bag_with_predictions(tmp_path / "bag", 1.1, frames=6)
    original, calls = Evaluation._recorded, []

    def interrupt_at_fourth(self, frame, k):
        calls.append(frame.stamp)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(self, frame, k)

    monkeypatch.setattr(Evaluation, "_recorded", interrupt_at_fourth)
    doc = _evaluate(bag, tmp_path / "out")
    assert doc["interrupted"] and doc["frames"] == 3
    assert doc["summary"]["abs_rel"] == pytest.approx(0.1, abs=1e-5)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["interrupted"] and saved["frames"] == 3
    with AnyReader([tmp_path / "out" / "outputs"], default_typestore=typestore()) as r:
        counts = {c.topic: c.msgcount for c in r.connections}
    assert counts["/camera/color/image_raw"] == 3 and counts["/vision_banana/points"] == 3


def test_an_error_while_scoring_reaches_the_caller(tmp_path, monkeypatch):
    from vision_banana_ros.errors import VisionBananaError

    bag = _bag_with_predictions(tmp_path / "bag", 1.0)

    def broken(self, *args):
        raise VisionBananaError("scoring failed on purpose")

    monkeypatch.setattr(Evaluation, "_metrics", broken)
    with pytest.raises(VisionBananaError, match="on purpose"):
        _evaluate(bag, tmp_path / "out")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vision_banana_ros.cli", "eval", *args,
                           "--quiet"], capture_output=True, text=True, timeout=300)


def test_bad_bags_give_one_clear_line(tmp_path):
    scenes = [render_spheres_on_plane(96, 64, seed=0)]
    with RgbdBagWriter(tmp_path / "good") as w:
        w.write(scenes[0].rgb, scenes[0].depth, scenes[0].k, scenes[0].instances)
    mcap = next((tmp_path / "good").glob("*.mcap"))
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "metadata.yaml").write_text((tmp_path / "good" / "metadata.yaml").read_text())
    (truncated / mcap.name).write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    junk = tmp_path / "junk.bag"
    junk.write_bytes(b"not a bag at all")
    cases = [
        ([str(truncated)], "cannot be read"),
        ([str(junk)], "cannot be read"),
        ([str(tmp_path / "missing")], "does not exist"),
        ([str(tmp_path / "good"), "--image-topic", "/nope"], "/camera/color/image_raw"),
    ]
    for args, message in cases:
        res = _cli(*args, "--out", str(tmp_path / "o"))
        assert res.returncode == 2, (args, res.stderr)
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("vision-banana")]
        assert len(lines) == 1 and message in lines[0], (args, res.stderr)
        assert "Traceback" not in res.stderr


def test_mismatched_depth_resolution_and_missing_camera_info_are_reported(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    ts = typestore()
    f = render_spheres_on_plane(96, 64, seed=1)
    writer = Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    ci = writer.add_connection("/camera/color/image_raw", "sensor_msgs/msg/Image", typestore=ts)
    cd = writer.add_connection("/camera/aligned_depth_to_color/image_raw",
                               "sensor_msgs/msg/Image", typestore=ts)
    cp = writer.add_connection(PRED_DEPTH, "sensor_msgs/msg/Image", typestore=ts)
    for i in range(2):
        stamp = 10**18 + i
        writer.write(ci, stamp, ts.serialize_cdr(image_msg(f.rgb, "rgb8", stamp, "c"),
                                                 "sensor_msgs/msg/Image"))
        depth = np.zeros((32, 48), np.uint16) + 800  # half resolution: mismatched
        writer.write(cd, stamp, ts.serialize_cdr(image_msg(depth, "16UC1", stamp, "c"),
                                                 "sensor_msgs/msg/Image"))
        writer.write(cp, stamp, ts.serialize_cdr(image_msg(f.depth, "32FC1", stamp, "c"),
                                                 "sensor_msgs/msg/Image"))
    writer.close()
    doc = Evaluation(EvalConfig(bag=tmp_path / "bag", out=tmp_path / "out",
                                pred_depth_topic=PRED_DEPTH, progress=False)).run()
    assert doc["frames"] == 2 and doc["errors"]["resolution_mismatch"] == 2
    assert any("no camera_info" in n for n in doc["notes"])
    assert doc["summary"]["delta1"] is None
    with pytest.raises(BagError, match="prediction topic /x is not in the bag"):
        Evaluation(EvalConfig(bag=tmp_path / "bag", out=tmp_path / "o2", pred_depth_topic="/x",
                              progress=False)).run()


def test_scoring_thread_waits_while_the_network_runs():
    import threading
    import time

    from vision_banana_ros.evaluation.finisher import Finisher

    finisher, done = Finisher(), threading.Event()

    def job():
        finisher.checkpoint()
        done.set()

    with finisher.network():
        finisher.submit(job)
        time.sleep(0.2)
        assert not done.is_set()  # held at its checkpoint while the network runs
    assert done.wait(5.0)
    finisher.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        finisher.close()


def test_ground_truth_at_half_the_colour_rate_finishes_and_scores_the_paired_frames(tmp_path):
    """Depth ground truth on every second frame, camera_info once: the run ends (before: the
    pending list grew forever past 32 frames) and depth is scored on the paired frames only."""
    from vision_banana_ros.bags import REALSENSE_TOPICS, camera_info_msg

    f = render_spheres_on_plane(64, 48, n_spheres=2, seed=4)
    frames = 80
    with RgbdBagWriter(tmp_path / "bag") as w:
        for i in range(frames):
            stamp = 1_700_000_000_000_000_000 + i * 100_000_000
            if i == 0:
                w.write_message(REALSENSE_TOPICS["camera_info"], "sensor_msgs/msg/CameraInfo",
                                stamp, camera_info_msg(f.k, 64, 48, stamp, "cam"))
            w.write_message(REALSENSE_TOPICS["image"], "sensor_msgs/msg/Image", stamp,
                            image_msg(f.rgb, "rgb8", stamp, "cam"))
            w.write_message(PRED_DEPTH, "sensor_msgs/msg/Image", stamp,
                            image_msg((f.depth * 1.1).astype(np.float32), "32FC1", stamp,
                                      "cam"))
            if i % 2 == 0:
                mm = np.rint(np.where(np.isfinite(f.depth), f.depth, 0) * 1000)
                w.write_message(REALSENSE_TOPICS["depth"], "sensor_msgs/msg/Image", stamp,
                                image_msg(mm.astype(np.uint16), "16UC1", stamp, "cam"))
    doc = Evaluation(EvalConfig(bag=tmp_path / "bag", out=tmp_path / "out",
                                pred_depth_topic=PRED_DEPTH, progress=False,
                                write_bag=False, plots=False)).run()
    assert doc["frames"] == frames
    assert doc["frames_with_depth"] == frames // 2
    assert doc["summary"]["abs_rel"] == pytest.approx(0.1, abs=2e-3)
    # camera_info paired as the node pairs it: the one message serves later frames as the
    # latest, and every such frame is counted.
    assert doc["errors"]["camera_info_latest"] == frames - 1


def test_what_limits_an_evaluation():
    from vision_banana_ros.evaluation.report import throughput

    def latency(**totals):
        return {stage: {"total_s": v} for stage, v in totals.items()}

    pipeline_bound = throughput(latency(preprocess=1, inference=4, decode=2, postprocess=3,
                                        read=1, convert=1, metrics=3, write=2), 100, 10.5)
    assert pipeline_bound["limited_by"] == "the node's pipeline"
    assert pipeline_bound["speed_vs_pipeline"] == pytest.approx(10 / 10.5)
    # Scoring and writing share one thread: together they outweigh the pipeline.
    scoring_bound = throughput(latency(preprocess=1, inference=2, decode=1, postprocess=1,
                                       read=1, convert=1, metrics=4, write=3), 100, 8.0)
    assert scoring_bound["limited_by"] == "metrics"
    reading_bound = throughput(latency(inference=1, read=9, metrics=1), 10, 11.0)
    assert reading_bound["limited_by"] == "read"
