"""The command-line tool and the package metadata (what colcon and `ros2 run` rely on)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vision_banana_ros.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_package_xml_is_format3_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "vision_banana_ros"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "geometry_msgs", "visualization_msgs",
            "diagnostic_msgs", "lifecycle_msgs", "python3-numpy", "python3-opencv"} <= deps


def test_codec_demo_prints_what_it_did(tmp_path):
    res = _cli("demo", "--codecs-only", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "instances: 5 painted, 5 decoded" in res.stdout
    for name in ("rgb", "painting_depth", "painting_instances", "painting_semantic",
                 "painting_normals"):
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 1000


def test_bench_writes_json_with_ratios(tmp_path):
    out = tmp_path / "bench.json"
    res = _cli("bench", "--only", "codecs", "--quick", "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    names = [r["name"] for r in doc["results"]]
    assert "depth decode 640x480 numpy" in names
    for r in doc["results"]:
        assert r["baseline"] and r["ratio"] > 0
        assert r["ratio"] == r["baseline_p50_s"] / r["candidate_p50_s"]
    assert "ratio" in res.stdout


def test_bad_arguments_give_one_line_and_nonzero_exit(tmp_path):
    res = _cli("bench", "--only", "nonsense", "--out", str(tmp_path / "b.json"), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "unknown benchmark nonsense" in res.stderr and "Traceback" not in res.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = _cli("demo", "--out", str(blocker / "sub"), cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("vision-banana demo: error:")


def test_demo_runs_the_node_end_to_end(tmp_path):
    """The main job: rendered frames -> bag -> node process -> outputs -> pictures."""
    import os

    from ros_harness import new_domain

    env = dict(os.environ, ROS_DOMAIN_ID=str(new_domain()),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    res = subprocess.run([sys.executable, "-m", "vision_banana_ros.cli", "demo", "--out",
                          str(tmp_path / "demo"), "--frames", "2", "--rate", "4",
                          "--renderer", "pybullet"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 frames published" in res.stdout
    # The node keeps only the newest frame: a first frame delayed by discovery and arriving
    # with the second is dropped (and counted), so at least one frame comes back.
    assert re.search(r"[12] depth images came back", res.stdout), res.stdout
    summary = (tmp_path / "demo" / "summary.md").read_text()
    assert "| 0 |" in summary and "frames received" in summary
    # Rendered frames have ground truth: the figures and the trivial baseline are reported.
    assert "constant at each frame's true median depth scores delta1" in summary
    import cv2
    import numpy as np

    picture = cv2.imread(str(tmp_path / "demo" / "frame0.png"))
    # Colour, ground-truth depth, node depth, ... side by side (panels 320 wide at 240 rows).
    assert picture.shape[0] == 262 and picture.shape[1] >= 4 * 320
    cloud = cv2.imread(str(tmp_path / "demo" / "frame0_points.png"))
    # Seen from the camera, the cloud fills the picture (before: a sliver in a dark square).
    assert (np.abs(cloud.astype(int) - 30).sum(2) > 0).mean() > 0.5


def test_a_gpu_check_section_that_raises_keeps_the_others_figures(tmp_path, monkeypatch):
    from vision_banana_ros.bench import gpu_check

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA provider exploded")

    monkeypatch.setattr(gpu_check, "_onnxruntime", broken)
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--out", str(out), "--cpu-dry-run", "--repeats", "2"]) == 0
    doc = json.loads(out.read_text())
    assert doc["errors"] == {"onnxruntime": "RuntimeError: CUDA provider exploded"}
    assert "torch fp32" in doc["results"]  # the section before it kept its figures


def test_gpu_check_script_runs_its_cpu_dry_run(tmp_path):
    import os

    env = dict(os.environ, TRAIN_SECONDS="60", GPU_CHECK_ARGS="--cpu-dry-run --repeats 2")
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    assert doc["dry_run"] is True and doc["errors"] == {}
    assert doc["parity"]["torch fp32"]["depth_max_rel_diff"] == 0.0
    assert "TensorRT" in doc["tensorrt"]
    assert "gpu_check: using" in res.stdout
    # The budgeted training run rendered its data, trained and wrote what the card needs.
    run = json.loads((tmp_path / "train" / "gpu_run.json").read_text())
    assert run["device"] == "cpu" and run["steps"] == 3 and run["data"]["rendered"]
    assert run["total_s"] < 60 + 30
    assert (tmp_path / "train" / "run" / "model.pt").stat().st_size > 1000
