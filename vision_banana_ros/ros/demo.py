"""``vision-banana demo``: the main job, end to end over real ROS 2 topics.

Renders a few synthetic tabletop frames into a bag (or takes ``--bag``), starts the node in its
own process with the shipped parameters file, replays the bag into it from a player process
(colour, camera_info and the camera's depth: rendered frames carry a simulated depth camera's
measurement, with the exact depth kept as ground truth),
records every output, and writes into the output folder, per frame, one picture with the input
colour image beside each output (and the ground truth where the bag has it) and the point
cloud seen from the camera, and ``summary.md`` with each frame's depth and instance figures
against the ground truth and against a trivial baseline, so what the node does is plain.
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

_KEYS = ("depth", "overlay", "instances", "points", "objects", "depth_source")


_RENDERER_NAMES = {"blender": "Blender Cycles, photoreal", "pybullet": "pybullet TinyRenderer; "
                   "`make render-env` for photoreal Blender renders"}


def _demo_renderer(renderer: str) -> str:
    """``auto`` -> ``blender`` where the render environment exists, else ``pybullet``."""
    from vision_banana_ros.synthetic.blender import blender_available, render_python

    if renderer != "auto":
        return renderer
    return "blender" if blender_available()[0] or render_python() is not None else "pybullet"


def _render_bag(out: Path, frames: int, renderer: str = "auto") -> tuple[Path, str]:
    """Render ``frames`` synthetic 640x480 frames (two views a scene) into ``out/input_bag``;
    returns the bag and the renderer used (Blender's Cycles where ``make render-env`` made its
    environment, else pybullet)."""
    import shutil

    from vision_banana_ros.synthetic.blender import blender_available, run_in_render_env
    from vision_banana_ros.synthetic.render import render_dataset, shards_to_bag
    from vision_banana_ros.synthetic.scene import SceneConfig

    bag, shards = out / "input_bag", out / "input_shards"
    for path in (bag, shards):
        if path.exists():
            shutil.rmtree(path)
    renderer = _demo_renderer(renderer)
    scenes, seed, workers = max(1, (frames + 1) // 2), 11, 2 if renderer == "blender" else 1
    config = SceneConfig(resolutions=((640, 480),), min_objects=3, max_objects=8,
                         sensor_effects=0.3)
    if renderer == "blender" and not blender_available()[0]:
        argv = ["render", "--out", str(shards), "--scenes", str(scenes), "--views", "2",
                "--size", "640x480", "--seed", str(seed), "--workers", str(workers),
                "--min-objects", "3", "--max-objects", "8", "--sensor-effects", "0.3",
                "--renderer", "blender", "--quiet"]
        if run_in_render_env(argv) != 0:
            raise VisionBananaError("rendering the demo frames with Blender failed (above)")
    else:
        render_dataset(shards, scenes=scenes, views=2, seed=seed, workers=workers,
                       progress=False, config=config, renderer=renderer)
    shards_to_bag(shards, bag, sensor_depth=True)
    return bag, renderer


def _inputs(bag: Path) -> dict[int, dict[str, np.ndarray]]:
    """stamp -> colour image and, where the bag has them, ground-truth depth and instances."""
    from vision_banana_ros.bags.reader import (
        detect_topics,
        iter_stamped,
        open_reader,
        topic_types,
    )
    from vision_banana_ros.imageconv import depth_to_metres, image_array
    from vision_banana_ros.intake import colour_image

    def value(role: str, msg: Any) -> np.ndarray:
        return (colour_image(msg, 1 << 40) if role == "rgb" else depth_to_metres(msg)
                if role in ("gt_depth", "camera_depth")
                else np.asarray(msg.k, np.float64).reshape(3, 3) if role == "k"
                else np.asarray(image_array(msg), np.int64))

    reader = open_reader(bag)
    try:
        topics = detect_topics(topic_types(reader))
        roles = {topics.image: "rgb", topics.depth: "gt_depth", topics.instances: "gt_ids",
                 topics.sensor_depth: "camera_depth", topics.camera_info: "k"}
        roles.pop(None, None)
        return {stamp: {role: value(role, msg) for role, msg in msgs.items()}
                for stamp, msgs in iter_stamped(reader, roles)}
    finally:
        reader.close()


def _record(out: Path, bag: Path, rate_hz: float, params: dict[str, Any],
            env: dict[str, str]) -> tuple[dict[str, dict[int, Any]], dict[str, str], int, float]:
    """Start the node, replay ``bag`` into it from a player process and record its outputs;
    returns (received messages by output and stamp, last diagnostics, frames sent, seconds)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from vision_banana_ros.bags.reader import open_reader, topic_types
    from vision_banana_ros.outputs import BY_KEY
    from vision_banana_ros.ros.messages import message_class
    from vision_banana_ros.ros.replay import camera_depth_topic, load_frames
    from vision_banana_ros.ros.tools import (
        NodeProcess,
        node_command,
        shipped_config,
        wait_until_matched,
    )
    from vision_banana_ros.sync import stamp_ns

    reader = open_reader(bag)
    depth_topic = camera_depth_topic(topic_types(reader))
    reader.close()
    msgs, types = load_frames(bag, depth=depth_topic)
    image_topic = next(iter(types))
    info_topic = next((t for t, ty in types.items() if ty.__name__ == "CameraInfo"), None)
    node = NodeProcess(node_command(image_topic, f"sensor_msgs/msg/{types[image_topic].__name__}",
                                    info_topic, params,
                                    params_file=shipped_config("vision_banana.yaml"),
                                    depth_topic=depth_topic),
                       out / "node.log", env)
    received: dict[str, dict[int, Any]] = {k: {} for k in _KEYS}
    diagnostics: dict[str, str] = {}
    sent = sum(1 for m in msgs if m[0] == image_topic)
    rclpy.init()
    recorder = rclpy.create_node("vision_banana_demo_recorder")
    try:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

        def keep(key: str) -> Any:
            def cb(msg: Any) -> None:
                header = msg.markers[0].header if key == "objects" else msg.header
                received[key][stamp_ns(header)] = msg
            return cb

        for key in _KEYS:
            topic = BY_KEY[key]
            recorder.create_subscription(message_class(topic.msgtype),
                                         f"/vision_banana/{topic.name}", keep(key), qos)
        recorder.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.update(
            {kv.key: kv.value for kv in m.status[0].values}), 10)
        node.wait_active(recorder)
        wait_until_matched(recorder, settle=3.0)
        start = time.monotonic()
        player = subprocess.Popen(
            [sys.executable, "-m", "vision_banana_ros.ros.replay", "play", str(bag),
             "--rate", str(rate_hz), *(["--depth"] if depth_topic else [])], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait_for_outputs(recorder, received, player, sent, rate_hz)
        play_s = time.monotonic() - start
        player_out = player.communicate(timeout=30)[0]
        if player.returncode != 0:
            raise VisionBananaError(f"the player failed: {player_out.strip()}")
    finally:
        recorder.destroy_node()
        rclpy.try_shutdown()
        node.stop()
    return received, diagnostics, sent, play_s


def _wait_for_outputs(recorder: Any, received: dict[str, dict[int, Any]], player: Any,
                      sent: int, rate_hz: float) -> None:
    """Spin until every recorded output has ``sent`` messages, or the player is done and
    nothing new came for 10 s."""
    import rclpy

    hard_end = time.monotonic() + sent / max(rate_hz, 0.1) + 90
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < hard_end:
        rclpy.spin_once(recorder, timeout_sec=0.1)
        count = sum(len(v) for v in received.values())
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        if min(len(v) for k, v in received.items() if k != "depth_source") >= sent:
            break
        if player.poll() is not None and time.monotonic() - last_change > 10:
            break
    for _ in range(10):
        rclpy.spin_once(recorder, timeout_sec=0.1)


def _cloud_picture(points_msg: Any) -> tuple[np.ndarray, int]:
    from vision_banana_ros.geometry.pointcloud import POINT_DTYPE
    from vision_banana_ros.visualize import render_points

    pts = np.frombuffer(points_msg.data, POINT_DTYPE)
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], -1)
    bits = pts["rgb"].view(np.uint32)
    colours = np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], -1).astype(np.uint8)
    return render_points(xyz, colours), int(np.isfinite(xyz).all(1).sum())


def _frame_report(i: int, stamp: int, received: dict[str, dict[int, Any]],
                  inputs: dict[str, np.ndarray], out: Path) -> dict[str, Any]:
    """Write frame ``i``'s picture; return its figures (a row of summary.md)."""
    import cv2

    from vision_banana_ros.evaluation.metrics import depth_metrics
    from vision_banana_ros.imageconv import image_array
    from vision_banana_ros.visualize import depth_colormap, mosaic

    depth = np.asarray(image_array(received["depth"][stamp]), np.float32)
    gt = inputs.get("gt_depth")
    valid = depth[np.isfinite(depth)]
    vmax = float(np.nanpercentile(gt, 98)) if gt is not None and np.isfinite(gt).any() else None
    row: dict[str, Any] = {"frame": i, "range": f"{valid.min():.2f}-{valid.max():.2f}"
                           if valid.size else "-"}
    panels = [("input colour", inputs["rgb"])] if "rgb" in inputs else []
    if gt is not None:
        panels.append(("ground-truth depth", depth_colormap(gt, vmax)))
        m, const = depth_metrics(depth, gt), depth_metrics(
            np.full_like(gt, np.nanmedian(gt)), gt)
        if m is not None and const is not None:
            row.update(delta1=m.delta1, abs_rel=m.abs_rel, constant_delta1=const.delta1)
    if "camera_depth" in inputs:
        panels.append(("camera depth (input)", depth_colormap(inputs["camera_depth"], vmax)))
    panels.append(("depth (node)", depth_colormap(depth, vmax)))
    if stamp in received["depth_source"]:
        source = np.asarray(image_array(received["depth_source"][stamp]))
        panels.append(("depth source: camera / completed", _source_picture(source)))
        row["completed"] = float(np.mean(source == 2))
    if stamp in received["overlay"]:
        panels.append(("instances (node)", np.asarray(image_array(received["overlay"][stamp]))))
    panels += _instance_panels(inputs, received["instances"].get(stamp), row)
    if stamp in received["points"]:
        cloud, row["points"] = _cloud_picture(received["points"][stamp])
        cv2.imwrite(str(out / f"frame{i}_points.png"), cloud[..., ::-1])
        panels.append(("point cloud (camera view)", cloud))
    row["objects"] = (len(received["objects"][stamp].markers) - 1
                      if stamp in received["objects"] else 0)
    cv2.imwrite(str(out / f"frame{i}.png"), mosaic(panels)[..., ::-1])
    return row


def _instance_panels(inputs: dict[str, np.ndarray], instances_msg: Any,
                     row: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """The plane+cluster baseline's instances on the camera's depth and the ground truth,
    as panels; their figures (overlap P/R/F, boundary F, objects with F >= 0.75, and the
    baseline's) into ``row``."""
    from vision_banana_ros.evaluation.metrics import boundary_metrics, instance_metrics
    from vision_banana_ros.geometry.baseline import plane_cluster_instances
    from vision_banana_ros.imageconv import image_array
    from vision_banana_ros.visualize import instance_colours

    panels = []
    depth = inputs.get("camera_depth", inputs.get("gt_depth"))
    base = None
    if depth is not None and "k" in inputs:
        base = plane_cluster_instances(depth, inputs["k"]).astype(np.int64)
        panels.append(("instances (plane+cluster baseline)", instance_colours(base)))
    gt = inputs.get("gt_ids")
    if gt is None:
        return panels
    panels.append(("ground-truth instances", instance_colours(gt)))
    if instances_msg is not None:
        pred = np.asarray(image_array(instances_msg), np.int64)
        m = instance_metrics(pred, gt)
        row.update(precision=m.precision, recall=m.recall, f_measure=m.f_measure,
                   objects_f75=m.objects_f75, boundary_f=boundary_metrics(pred, gt)[2])
    if base is not None:
        row["baseline_f"] = instance_metrics(base, gt).f_measure
    return panels


def _source_picture(source: np.ndarray) -> np.ndarray:
    """~/depth/source as colours: none black, camera grey, completed by the model orange."""
    lut = np.array([[0, 0, 0], [110, 110, 110], [255, 140, 0]], np.uint8)
    return lut[np.minimum(source, 2)]


def _summary(rows: list[dict[str, Any]], bag: Path, sent: int, rate_hz: float,
             image_topic_note: str, diagnostics: dict[str, str], play_s: float,
             total_s: float, out: Path, source: str = "") -> str:
    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [f"# vision_banana demo ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"Bag `{bag}`: {sent} frames published at {rate_hz:g} Hz {image_topic_note}; "
             f"{len(rows)} depth images came back.{' Frames: ' + source + '.' if source else ''}",
             "",
             "Each `frameN.png` shows the input colour image beside the node's outputs (and the "
             "ground truth where the bag has it); `frameN_points.png` is the point cloud seen "
             "from near the camera.", "",
             "| frame | depth range (m) | depth delta1 | AbsRel | constant-at-median delta1 | "
             "completed by the model | instances P / R / F | boundary F | objects F>=0.75 | "
             "baseline F | objects | points |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        prf = " / ".join(fmt(r.get(k)) for k in ("precision", "recall", "f_measure"))
        lines.append(f"| {r['frame']} | {r['range']} | {fmt(r.get('delta1'))} | "
                     f"{fmt(r.get('abs_rel'))} | {fmt(r.get('constant_delta1'))} | "
                     f"{fmt(r.get('completed'))} | {prf} | {fmt(r.get('boundary_f'))} | "
                     f"{fmt(r.get('objects_f75'))} | {fmt(r.get('baseline_f'))} | "
                     f"{r['objects']} | {r.get('points', 0)} |")
    scored = [r for r in rows if "delta1" in r]
    if scored:
        mean = {k: float(np.mean([r[k] for r in scored])) for k in
                ("delta1", "abs_rel", "constant_delta1")}
        verdict = ("better than" if mean["delta1"] > mean["constant_delta1"] else
                   "NOT better than")
        lines += ["", f"Depth over {len(scored)} frames with ground truth: delta1 "
                  f"{mean['delta1']:.3f}, AbsRel {mean['abs_rel']:.3f}; a constant at each "
                  f"frame's true median depth scores delta1 {mean['constant_delta1']:.3f}: the "
                  f"model is {verdict} that trivial baseline here."]
    labelled = [r for r in rows if "f_measure" in r]
    if labelled:
        mean = {k: float(np.mean([r.get(k, np.nan) for r in labelled]))
                for k in ("precision", "recall", "f_measure", "boundary_f", "objects_f75",
                          "baseline_f")}
        lines += ["", f"Instances over {len(labelled)} labelled frames: overlap P/R/F "
                  f"{mean['precision']:.3f} / {mean['recall']:.3f} / {mean['f_measure']:.3f}, "
                  f"boundary F {mean['boundary_f']:.3f}, objects with F >= 0.75 "
                  f"{mean['objects_f75']:.3f}; the plane+cluster baseline on the camera's "
                  f"depth scores F {mean['baseline_f']:.3f} on the same frames."]
    if diagnostics:
        skipped = ", ".join(f"{k[len('frames_skipped_'):]} {v}" for k, v in diagnostics.items()
                            if k.startswith("frames_skipped_"))
        lines += ["", f"The node (/diagnostics): {diagnostics.get('frames_received')} frames "
                  f"received, {diagnostics.get('frames_published')} published, "
                  f"{diagnostics.get('frames_skipped')} skipped ({skipped or 'none'}), "
                  f"{diagnostics.get('frames_dropped')} dropped (a newer frame came first), "
                  f"processing p50 {diagnostics.get('processing_p50_ms')} ms, backend "
                  f"{diagnostics.get('backend')} ({diagnostics.get('device')})."]
    lines += ["", f"Replay took {play_s:.1f} s; the whole demo {total_s:.1f} s. "
              f"Node log: {out / 'node.log'}."]
    return "\n".join(lines) + "\n"


def run_demo(out: Path, bag: Path | None = None, model: str | None = None,
             frames: int = 6, rate_hz: float = 1.0, backend: str = "auto",
             renderer: str = "auto") -> str:
    """Run the demo; returns the summary text (also written to ``out/summary.md``).
    ``renderer`` (auto, blender, pybullet) draws the frames when no bag is given."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    source = f"the bag {bag}"
    if bag is None:
        bag, used = _render_bag(out, frames, renderer)
        source = f"{frames} frames rendered with {used} ({_RENDERER_NAMES[used]})"
    from vision_banana_ros.ros.tools import PROFILE_VARIABLES, with_frame_transport

    env = with_frame_transport(dict(os.environ))
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    # This process records: the same domain and transport as the node and the player.
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                           *PROFILE_VARIABLES) if k in env})
    received, diagnostics, sent, play_s = _record(
        out, bag, rate_hz, {"backend": backend, "model_path": model}, env)
    inputs = _inputs(bag)
    rows = [_frame_report(i, stamp, received, inputs.get(stamp, {}), out)
            for i, stamp in enumerate(sorted(received["depth"]))]
    note = (f"into the node (its own process, ROS domain {env['ROS_DOMAIN_ID']})")
    text = _summary(rows, bag, sent, rate_hz, note, diagnostics, play_s,
                    time.monotonic() - started, out, source)
    (out / "summary.md").write_text(text)
    return text
