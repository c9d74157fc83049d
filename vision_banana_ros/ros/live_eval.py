"""``vision-banana eval --live``: the bag over real ROS 2 topics into a running node.

Starts the node in its own process (unless one is running), publishes the bag's colour images
and camera_info at the given rate with a player in this process, records every output the node
publishes into ``outputs/`` (a bag) and the depth/instance images in memory, and measures what
a robot sees: end-to-end latency (publish to output received, per stamp), output rate, dropped
frames; accuracy where the bag has ground truth.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import numpy as np
import rclpy
from rclpy.serialization import deserialize_message

from vision_banana_ros.evaluation.config import EvalConfig, check_thresholds
from vision_banana_ros.outputs import OUTPUT_TOPICS
from vision_banana_ros.ros.messages import message_class
from vision_banana_ros.ros.replay import Player, load_frames
from vision_banana_ros.ros.tools import (
    NodeProcess,
    node_command,
    wait_until_matched,
    with_frame_transport,
)
from vision_banana_ros.stats import latency_summary
from vision_banana_ros.sync import stamp_ns

_SCORED = ("depth", "instances")


def _ground_truth(cfg: EvalConfig) -> dict[int, dict[str, np.ndarray]]:
    """stamp -> {"depth": metres, "instances": ids} of the bag's ground truth."""
    from vision_banana_ros.bags.reader import detect_topics, iter_raw, open_reader, topic_types
    from vision_banana_ros.imageconv import depth_to_metres, image_array

    reader = open_reader(cfg.bag)
    gt: dict[int, dict[str, np.ndarray]] = {}
    try:
        topics = detect_topics(topic_types(reader),
                               image=cfg.image_topic, depth=cfg.depth_topic,
                               instances=cfg.instances_topic)
        wanted = [t for t in (topics.depth, topics.instances) if t]
        for topic, _, raw, mtype in iter_raw(reader, wanted):
            m = reader.deserialize(raw, mtype)
            key = "depth" if topic == topics.depth else "instances"
            gt.setdefault(stamp_ns(m.header), {})[key] = (
                depth_to_metres(m) if key == "depth" else image_array(m).astype(np.int64))
    finally:
        reader.close()
    return gt


class _OutputRecorder:
    """Subscribes (raw) to every output of the node on ``player``; writes them into a bag and
    keeps arrival times per stamp and the depth and instance images."""

    def __init__(self, player: Any, node_name: str, writer: Any) -> None:
        from vision_banana_ros.bags import typestore

        self.node_name, self.writer, self.ts = node_name, writer, typestore()
        self.received: dict[str, dict[int, float]] = {t.name: {} for t in OUTPUT_TOPICS}
        self.arrays: dict[int, dict[str, np.ndarray]] = {}
        self.conns: dict[str, Any] = {}
        for t in OUTPUT_TOPICS:
            player.create_subscription(
                message_class(t.msgtype), f"{node_name}/{t.name}",
                lambda raw, t=t: self.on_output(t, raw), 10, raw=True)

    def on_output(self, topic: Any, raw: bytes) -> None:
        from vision_banana_ros.imageconv import image_array

        now = time.monotonic()
        msg = deserialize_message(raw, message_class(topic.msgtype))
        markers = getattr(msg, "markers", None)
        header = markers[0].header if markers else getattr(msg, "header", None)
        if header is None:
            return
        stamp = stamp_ns(header)
        self.received[topic.name].setdefault(stamp, now)
        name = f"{self.node_name}/{topic.name}"
        if name not in self.conns:
            self.conns[name] = self.writer.add_connection(name, topic.msgtype,
                                                          typestore=self.ts)
        self.writer.write(self.conns[name], stamp, raw)
        if topic.key in _SCORED:
            arr = image_array(msg)
            self.arrays.setdefault(stamp, {})[topic.key] = (
                arr.astype(np.float32) if topic.key == "depth" else arr.astype(np.int64))


def _play(cfg: EvalConfig, rate_hz: float, start_node: bool, node_name: str) -> tuple:
    """Start the node (optionally), play the bag into it and record; returns (frames sent,
    send times by stamp, recorder)."""
    from vision_banana_ros.bags.mcap_stream import open_writer
    from vision_banana_ros.bags.reader import detect_topics, open_reader, topic_types

    # Frames travel whole (the shipped Fast DDS profile, unless one is exported) for the
    # player and recorder in this process and the node it starts, as the launch file does.
    os.environ.update(with_frame_transport(dict(os.environ)))
    reader = open_reader(cfg.bag)
    found = detect_topics(topic_types(reader))
    reader.close()
    # As offline: the camera's depth apart from the ground truth; with --depth-input on, the
    # bag's only depth too.
    depth_topic = (found.sensor_depth or (found.depth if cfg.depth_input == "on" else None)
                   if cfg.depth_input != "off" else None)
    msgs, types = load_frames(cfg.bag, cfg.image_topic, cfg.info_topic, depth_topic)
    image_topic = next(iter(types))
    info_topic = next((t for t, ty in types.items() if ty.__name__ == "CameraInfo"), None)
    node = None
    if start_node:
        args = node_command(image_topic, f"sensor_msgs/msg/{types[image_topic].__name__}",
                            info_topic, {"backend": cfg.backend, "threads": cfg.threads,
                                         "tasks": cfg.tasks, "model_path": cfg.model,
                                         "instances_source": cfg.instances_source},
                            node_name=node_name, depth_topic=depth_topic)
        node = NodeProcess(args, cfg.out / "node.log", dict(os.environ))
    rclpy.init()
    writer = open_writer(cfg.out / "outputs")
    writer.open()
    try:
        player = Player(msgs, types, rate_hz, 1)
        recorder = _OutputRecorder(player, node_name, writer)
        if node is not None:
            node.wait_active(player, node_name)
        wait_until_matched(player)
        player.wait_for_subscribers()
        spin = threading.Thread(target=_spin, args=(player,), daemon=True)
        spin.start()
        sent = player.play()
        end = time.monotonic() + 10
        while time.monotonic() < end and len(recorder.received["depth/image"]) < sent:
            time.sleep(0.1)
        time.sleep(0.5)
        rclpy.try_shutdown()
        spin.join(2)
    finally:
        rclpy.try_shutdown()
        writer.close()
        if node is not None:
            node.stop()
    return sent, dict(player.sent), recorder


def _score(arrays: dict[int, dict[str, np.ndarray]],
           gt: dict[int, dict[str, np.ndarray]]) -> dict[str, float | None]:
    """Per-frame means of delta1, abs_rel, rmse (depth) and f_measure (instances)."""
    from vision_banana_ros.evaluation.metrics import depth_metrics, instance_metrics

    rows: list[dict[str, float]] = []
    for stamp, out in sorted(arrays.items()):
        row: dict[str, float] = {}
        g = gt.get(stamp, {})
        if "depth" in out and "depth" in g and out["depth"].shape == g["depth"].shape:
            m = depth_metrics(out["depth"], g["depth"])
            if m is not None:
                row.update(delta1=m.delta1, abs_rel=m.abs_rel, rmse=m.rmse)
        if "instances" in out and "instances" in g and \
                out["instances"].shape == g["instances"].shape:
            row["f_measure"] = instance_metrics(out["instances"], g["instances"]).f_measure
        rows.append(row)
    return {k: (float(np.mean([r[k] for r in rows if k in r]))
                if any(k in r for r in rows) else None)
            for k in ("delta1", "abs_rel", "rmse", "f_measure")}


def live_eval(cfg: EvalConfig, rate_hz: float, start_node: bool,
              node_name: str) -> dict[str, Any]:
    """Run the live evaluation; writes metrics.json, report.md and outputs/ into ``cfg.out``."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    gt = _ground_truth(cfg)
    sent, send, recorder = _play(cfg, rate_hz, start_node, node_name)
    depth_in = recorder.received["depth/image"]
    latency = latency_summary((depth_in[s] - send[s]) * 1e3 for s in depth_in if s in send)
    summary = _score(recorder.arrays, gt)
    checks, unknown, passed = check_thresholds(summary, cfg.fail_under)
    doc = {
        "schema": "vision_banana_ros/eval-live/1", "bag": str(cfg.bag), "node": node_name,
        "frames": sent, "frames_with_output": len(depth_in),
        "dropped_frames": sent - len(depth_in), "publish_rate_hz": rate_hz,
        "latency_ms": {"end_to_end": {q: latency[q] for q in ("p50", "p90", "p99")}},
        "outputs_received": {rel: len(v) for rel, v in recorder.received.items()},
        "summary": summary,
        "notes": ([] if gt else ["no ground truth: speed only"])
        + ([f"unknown --fail-under metrics: {', '.join(unknown)}"] if unknown else []),
        "interrupted": False, "fail_under": checks, "passed": passed, "throughput_fps": None,
    }
    (cfg.out / "metrics.json").write_text(json.dumps(doc, indent=1) + "\n")
    e2e = doc["latency_ms"]["end_to_end"]
    lines = [f"# Live evaluation of `{cfg.bag}` through {node_name}", "",
             f"{sent} frames published at {rate_hz:g} Hz, {doc['frames_with_output']} depth "
             f"outputs received, {doc['dropped_frames']} dropped.", "",
             "| end-to-end latency | p50 | p90 | p99 |", "|---|---|---|---|",
             "| ms | " + " | ".join(f"{e2e[q]:.1f}" for q in ("p50", "p90", "p99")) + " |", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {'-' if v is None else f'{v:.4g}'} |" for k, v in summary.items()]
    (cfg.out / "report.md").write_text("\n".join(lines) + "\n")
    return doc


def _spin(node: Any) -> None:
    try:
        rclpy.spin(node)
    except Exception:  # the context is shut down under it when playing ends
        return
