"""``vision-banana demo``: the main job, end to end over real ROS 2 topics.

Renders a few synthetic tabletop frames into a bag (or takes ``--bag``), starts the node in its
own process with the shipped parameters file, replays the bag into it, records every output,
and writes into the output folder: ``summary.md`` and, per frame, the colour image, a depth
colour map, the segmentation overlay and the point cloud rendered to PNG.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError


def _params_file() -> Path | None:
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory("vision_banana_ros")) / "config" / \
            "vision_banana.yaml"
        if path.exists():
            return path
    except (ImportError, LookupError, OSError):  # no sourced ROS workspace: use the repo copy
        pass
    path = Path(__file__).resolve().parents[2] / "config" / "vision_banana.yaml"
    return path if path.exists() else None


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def run_demo(out: Path, bag: Path | None = None, model: str | None = None,
             frames: int = 6, rate_hz: float = 1.0, backend: str = "auto") -> str:
    """Run the demo; returns the summary text."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.srv import GetState
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, PointCloud2
    from visualization_msgs.msg import MarkerArray

    from vision_banana_ros.geometry.pointcloud import POINT_DTYPE
    from vision_banana_ros.imageconv import image_array
    from vision_banana_ros.ros.replay import load_frames, node_command, wait_until_matched
    from vision_banana_ros.visualize import depth_colormap, render_points

    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if bag is None:
        from vision_banana_ros.synthetic.render import render_dataset, shards_to_bag
        from vision_banana_ros.synthetic.scene import SceneConfig

        bag = out / "input_bag"
        if bag.exists():
            import shutil

            shutil.rmtree(bag)
        shards = out / "input_shards"
        scenes = max(1, (frames + 1) // 2)
        render_dataset(shards, scenes=scenes, views=2, seed=11, workers=1, progress=False,
                       config=SceneConfig(resolutions=((640, 480),), min_objects=3,
                                          max_objects=8, sensor_effects=0.3))
        shards_to_bag(shards, bag)
    msgs, types = load_frames(bag)
    image_topic = next(t for t, ty in types.items() if ty.__name__ != "CameraInfo")
    info_topic = next((t for t, ty in types.items() if ty.__name__ == "CameraInfo"), None)
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    args = node_command(image_topic, types[image_topic], info_topic,
                        {"backend": backend, "model_path": model},
                        params_file=_params_file())
    log = (out / "node.log").open("w")
    node = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    received: dict[str, dict[int, Any]] = {"depth": {}, "overlay": {}, "points": {},
                                           "objects": {}}
    diagnostics: dict[str, str] = {}
    rclpy.init()
    recorder = rclpy.create_node("vision_banana_demo_recorder")
    try:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

        def keep(key: str) -> Any:
            def cb(msg: Any) -> None:
                header = msg.markers[0].header if isinstance(msg, MarkerArray) else msg.header
                received[key][header.stamp.sec * 10**9 + header.stamp.nanosec] = msg
            return cb

        recorder.create_subscription(Image, "/vision_banana/depth/image", keep("depth"), qos)
        recorder.create_subscription(Image, "/vision_banana/segmentation/overlay",
                                     keep("overlay"), qos)
        recorder.create_subscription(PointCloud2, "/vision_banana/points", keep("points"), qos)
        recorder.create_subscription(MarkerArray, "/vision_banana/objects", keep("objects"),
                                     qos)
        recorder.create_subscription(DiagnosticArray, "/diagnostics",
                                     lambda m: diagnostics.update(
                                         {kv.key: kv.value for kv in m.status[0].values}), 10)
        client = recorder.create_client(GetState, "/vision_banana/get_state")
        deadline = time.monotonic() + 120
        active = False
        while time.monotonic() < deadline and not active:
            if node.poll() is not None:
                raise VisionBananaError(f"the node exited; see {out / 'node.log'}")
            if client.wait_for_service(timeout_sec=0.5):
                future = client.call_async(GetState.Request())
                rclpy.spin_until_future_complete(recorder, future, timeout_sec=5)
                active = future.done() and future.result().current_state.label == "active"
        if not active:
            raise VisionBananaError(f"the node did not become active; see {out / 'node.log'}")
        wait_until_matched(recorder, settle=3.0)
        # The player is a process of its own, as a camera driver would be.
        t_play = time.monotonic()
        player = subprocess.Popen(
            [sys.executable, "-m", "vision_banana_ros.ros.replay", "play", str(bag),
             "--rate", str(rate_hz)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        sent = sum(1 for m in msgs if type(m[1]).__name__ != "CameraInfo")
        hard_end = time.monotonic() + sent / max(rate_hz, 0.1) + 90
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < hard_end:
            rclpy.spin_once(recorder, timeout_sec=0.1)
            count = len(received["depth"]) + len(received["points"])
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            if min(len(received[k]) for k in ("depth", "points", "overlay", "objects")) >= sent:
                break
            # After the player is done, give the node 10 s without output before giving up.
            if player.poll() is not None and time.monotonic() - last_change > 10:
                break
        for _ in range(10):
            rclpy.spin_once(recorder, timeout_sec=0.1)
        play_s = time.monotonic() - t_play
        player_out = player.communicate(timeout=30)[0] if player.poll() is None else \
            player.stdout.read()
        if player.returncode not in (0, None):
            raise VisionBananaError(f"the player failed: {player_out.strip()}")
    finally:
        recorder.destroy_node()
        rclpy.try_shutdown()
        node.send_signal(2)
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
        log.close()
    lines = [f"# vision_banana demo ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"Bag `{bag}`: {sent} frames published at {rate_hz:g} Hz on {image_topic} into "
             f"the node (its own process, ROS domain {env['ROS_DOMAIN_ID']}); "
             f"{len(received['depth'])} depth images came back.", "",
             "| frame | depth range (m) | objects | points | files |", "|---|---|---|---|---|"]
    for i, (stamp, dmsg) in enumerate(sorted(received["depth"].items())):
        depth = image_array(dmsg).astype(np.float32)
        files = [f"frame{i}_depth.png"]
        _write_png(out / files[0], depth_colormap(depth))
        if stamp in received["overlay"]:
            files.append(f"frame{i}_overlay.png")
            _write_png(out / files[-1], np.asarray(image_array(received["overlay"][stamp])))
        n_points = 0
        if stamp in received["points"]:
            pc = received["points"][stamp]
            pts = np.frombuffer(pc.data, POINT_DTYPE)
            xyz = np.stack([pts["x"], pts["y"], pts["z"]], -1)
            rgb_bits = pts["rgb"].view(np.uint32)
            colours = np.stack([(rgb_bits >> 16) & 255, (rgb_bits >> 8) & 255, rgb_bits & 255],
                               -1).astype(np.uint8)
            n_points = int(np.isfinite(xyz).all(1).sum())
            files.append(f"frame{i}_points.png")
            _write_png(out / files[-1], render_points(xyz, colours))
        n_obj = len(received["objects"][stamp].markers) - 1 if stamp in received["objects"] \
            else 0
        valid = depth[np.isfinite(depth)]
        rng = f"{valid.min():.2f}-{valid.max():.2f}" if valid.size else "-"
        lines.append(f"| {i} | {rng} | {n_obj} | {n_points} | {', '.join(files)} |")
    total = time.monotonic() - started
    if diagnostics:
        lines += ["", f"The node (/diagnostics): {diagnostics.get('frames_received')} frames "
                  f"received, {diagnostics.get('frames_processed')} processed, "
                  f"{diagnostics.get('frames_dropped')} dropped (it keeps only the newest), "
                  f"processing p50 {diagnostics.get('processing_p50_ms')} ms, backend "
                  f"{diagnostics.get('backend')} ({diagnostics.get('device')})."]
    lines += ["", f"Replay took {play_s:.1f} s; the whole demo {total:.1f} s. "
              f"Node log: {out / 'node.log'}."]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text

