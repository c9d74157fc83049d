"""The package built in a ROS workspace with colcon, as the README tells a ROS user, and the
node started from ``install/`` (issue: a ROS workspace build in CI)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ros_harness import ROOT, Proc, RosClient, image_msg, info_msg, new_domain, ros_env

pytestmark = pytest.mark.ros

BIN = Path(sys.executable).parent
STANDINS = Path(__file__).resolve().parent / "launch_standins"


def _tracked_files() -> list[str]:
    """The repository's files as a clone has them (git), else every file but build output."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
        return [f for f in out.splitlines() if (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "build", "install", "log", "demo_output"}
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                if p.is_file() and not set(p.relative_to(ROOT).parts) & skip]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """~/ros2_ws/src/vision_banana_ros, then ``colcon build --packages-select``."""
    ws = tmp_path_factory.mktemp("ros2_ws")
    src = ws / "src" / "vision_banana_ros"
    for rel in _tracked_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    res = subprocess.run([str(BIN / "colcon"), "build", "--packages-select",
                          "vision_banana_ros"], cwd=ws, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return ws


def _sourced(ws: Path, command: str, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess:
    """``command`` in bash after ``source install/setup.bash``."""
    return subprocess.run(["bash", "-c", f"source install/setup.bash && {command}"], cwd=ws,
                          env=env or dict(os.environ), capture_output=True, text=True,
                          timeout=300)


def test_colcon_install_holds_the_contract(workspace):
    prefix = workspace / "install" / "vision_banana_ros"
    for rel in ("lib/vision_banana_ros/vision_banana_node", "lib/vision_banana_ros/vision-banana",
                "share/vision_banana_ros/package.xml",
                "share/vision_banana_ros/launch/vision_banana.launch.py",
                "share/vision_banana_ros/config/vision_banana.yaml",
                "share/vision_banana_ros/config/fastdds_large_frames.xml",
                "share/ament_index/resource_index/packages/vision_banana_ros"):
        assert (prefix / rel).is_file(), rel
    # The sourced workspace imports the installed package (not the repository's), with the
    # shipped model inside it.
    res = _sourced(workspace, f"{sys.executable} -c 'import vision_banana_ros.runtime.select "
                   "as s; print(s.DEFAULT_MODEL)'")
    assert res.returncode == 0, res.stderr
    model = Path(res.stdout.strip())
    assert model.is_file() and str(model).startswith(str(prefix)), model
    res = _sourced(workspace, "install/vision_banana_ros/lib/vision_banana_ros/vision-banana "
                   "--version")
    assert res.returncode == 0 and "vision-banana" in res.stdout, res.stderr


def test_launch_file_resolves_to_the_installed_package(workspace):
    """The launch file evaluated with its argument defaults (launch itself is not on PyPI:
    stand-ins evaluate the substitutions, see test/launch_standins/README.md)."""
    from vision_banana_ros import node_config

    script = r"""
import importlib.util, json, sys
from launch import perform
spec = importlib.util.spec_from_file_location("l", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
desc = mod.generate_launch_description()
ctx = {e.name: perform(e.default_value, {}) for e in desc.entities if hasattr(e, "default_value")}
node = next(e for e in desc.entities if hasattr(e, "kwargs")).kwargs
env = {e.name: perform(e.value, ctx) for e in desc.entities if hasattr(e, "condition")
       and e.condition.evaluate(ctx)}
print(json.dumps({"args": sorted(ctx), "node": {k: node[k] for k in ("package", "executable",
      "name")}, "remap": {k: perform(v, ctx) for k, v in node["remappings"]},
      "params_file": perform(node["parameters"][0], ctx),
      "overrides": {k: perform(v, ctx) for k, v in node["parameters"][1].items()}, "env": env}))
"""
    launch_file = (workspace / "install" / "vision_banana_ros" / "share" / "vision_banana_ros"
                   / "launch" / "vision_banana.launch.py")
    res = _sourced(workspace, f"cd /tmp && PYTHONPATH={STANDINS}:$PYTHONPATH "
                   f"{sys.executable} -c '{script}' {launch_file}")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["node"] == {"package": "vision_banana_ros", "executable": "vision_banana_node",
                           "name": "vision_banana"}
    # The node's inputs go to a RealSense driver's topics.
    assert doc["remap"] == {"image": "/camera/color/image_raw",
                            "image/compressed": "/camera/color/image_raw/compressed",
                            "camera_info": "/camera/color/camera_info",
                            "depth/image": "/camera/aligned_depth_to_color/image_raw",
                            "support_plane": "support_plane"}
    # The parameters file is the installed one, and every value in it is valid.
    import yaml

    params = yaml.safe_load(Path(doc["params_file"]).read_text())["/**"]["ros__parameters"]
    assert str(workspace / "install") in doc["params_file"]
    node_config.validate({**params, **{k: v for k, v in doc["overrides"].items()
                                       if k in node_config.BY_NAME}})
    assert doc["overrides"]["use_sim_time"] == "False"
    profile = Path(doc["env"]["FASTRTPS_DEFAULT_PROFILES_FILE"])
    assert profile.is_file() and str(workspace / "install") in str(profile)


def test_installed_node_reaches_active_and_answers_a_frame(workspace, tmp_path):
    import torch
    from sensor_msgs.msg import CameraInfo, Image

    from vision_banana_ros.model import ModelConfig, build_model, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny.pt", build_model(ModelConfig(
        arch="vb-tiny", input_width=64, input_height=64, pretrained=False)))
    domain = new_domain()
    share = workspace / "install" / "vision_banana_ros" / "share" / "vision_banana_ros"
    command = (f"cd {workspace} && source install/setup.bash && exec "
               f"install/vision_banana_ros/lib/vision_banana_ros/vision_banana_node --ros-args "
               f"--params-file {share / 'config' / 'vision_banana.yaml'} "
               f"-p model_path:={tmp_path / 'tiny.pt'} -p threads:=1 "
               f"-r image:=/cam/image -r camera_info:=/cam/info")
    node = Proc(["bash", "-c", command], ros_env(domain), tmp_path / "node.log")
    client = RosClient(domain)
    try:
        assert node.wait_for("active: processing frames", 120), node.text()
        img_pub = client.node.create_publisher(Image, "/cam/image", 10)
        info_pub = client.node.create_publisher(CameraInfo, "/cam/info", 10)
        out: list = []
        client.node.create_subscription(Image, "/vision_banana/depth/image", out.append, 10)
        assert client.spin_until(lambda: img_pub.get_subscription_count() > 0, 60)
        rgb = np.full((48, 64, 3), 100, np.uint8)
        for stamp in range(1, 40):  # until discovery has settled and an output comes
            info_pub.publish(info_msg(64, 48, stamp))
            img_pub.publish(image_msg(rgb, "rgb8", stamp))
            if client.spin_until(lambda: bool(out), 2.0):
                break
        assert out, node.text()
        assert (out[0].width, out[0].height, out[0].encoding) == (64, 48, "32FC1")
    finally:
        client.close()
        node.stop()
