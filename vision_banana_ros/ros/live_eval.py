"""``vision-banana eval --live``: the bag over real ROS 2 topics into a running node.

Starts the node in its own process (unless one is running), publishes the bag's colour images
and camera_info at the given rate with a player in this process, records every output the node
publishes into ``outputs/`` (a bag) and the depth/instance images in memory, and measures what
a robot sees: end-to-end latency (publish to output received, per stamp), output rate, dropped
frames; accuracy where the bag has ground truth.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError


def live_eval(cfg: Any, rate_hz: float, start_node: bool, node_name: str) -> dict[str, Any]:
    import rclpy
    from lifecycle_msgs.srv import GetState
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from vision_banana_ros.bags import typestore
    from vision_banana_ros.bags.mcap_stream import open_writer
    from vision_banana_ros.bags.reader import detect_topics, iter_raw, open_reader
    from vision_banana_ros.evaluation.metrics import depth_metrics, instance_metrics
    from vision_banana_ros.imageconv import depth_to_metres, image_array
    from vision_banana_ros.ros.replay import (
        OUTPUTS,
        Player,
        load_frames,
        node_command,
        wait_until_matched,
    )

    cfg.out.mkdir(parents=True, exist_ok=True)
    msgs, types = load_frames(cfg.bag, cfg.image_topic, cfg.info_topic)
    reader = open_reader(cfg.bag)
    gt: dict[int, dict[str, np.ndarray]] = {}
    try:
        topics = detect_topics({c.topic: c.msgtype for c in reader.connections},
                               image=cfg.image_topic, depth=cfg.depth_topic,
                               instances=cfg.instances_topic)
        wanted = [t for t in (topics.depth, topics.instances) if t]
        for topic, _, raw, mtype in iter_raw(reader, wanted):
            m = reader.deserialize(raw, mtype)
            stamp = m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec
            key = "depth" if topic == topics.depth else "instances"
            gt.setdefault(stamp, {})[key] = (depth_to_metres(m) if key == "depth"
                                             else image_array(m).astype(np.int64))
    finally:
        reader.close()
    node = None
    if start_node:
        image_topic = next(t for t, ty in types.items() if ty.__name__ != "CameraInfo")
        info_topic = next((t for t, ty in types.items() if ty.__name__ == "CameraInfo"), None)
        args = node_command(image_topic, types[image_topic], info_topic,
                            {"backend": cfg.backend, "threads": cfg.threads,
                             "tasks": cfg.tasks, "model_path": cfg.model},
                            node_name=node_name)
        node = subprocess.Popen(args, stdout=(cfg.out / "node.log").open("w"),
                                stderr=subprocess.STDOUT)
    rclpy.init()
    try:
        player = Player(msgs, types, rate_hz, 1)
        received: dict[str, dict[int, float]] = {rel: {} for rel in OUTPUTS}
        arrays: dict[int, dict[str, np.ndarray]] = {}
        writer = open_writer(cfg.out / "outputs")
        writer.open()
        conns: dict[str, Any] = {}

        def on_output(rel: str, ty: type, raw: bytes) -> None:
            now = time.monotonic()
            msg = deserialize_message(raw, ty)
            header = msg.markers[0].header if hasattr(msg, "markers") and msg.markers else \
                getattr(msg, "header", None)
            if header is None:
                return
            stamp = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
            received[rel].setdefault(stamp, now)
            topic = f"{node_name}/{rel}"
            if topic not in conns:
                conns[topic] = writer.add_connection(
                    topic, ty.__module__.split(".")[0] + "/msg/" + ty.__name__,
                    typestore=typestore())
            writer.write(conns[topic], stamp, raw)
            if rel in ("depth/image", "segmentation/instances") and isinstance(msg, Image):
                key = "depth" if rel == "depth/image" else "instances"
                arr = image_array(msg)
                arrays.setdefault(stamp, {})[key] = (arr.astype(np.float32) if key == "depth"
                                                     else arr.astype(np.int64))

        for rel, ty in OUTPUTS.items():
            player.create_subscription(ty, f"{node_name}/{rel}",
                                       lambda raw, rel=rel, ty=ty: on_output(rel, ty, raw), 10,
                                       raw=True)
        client = player.create_client(GetState, f"{node_name}/get_state")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if client.wait_for_service(timeout_sec=0.5):
                future = client.call_async(GetState.Request())
                rclpy.spin_until_future_complete(player, future, timeout_sec=5)
                if future.done() and future.result().current_state.label == "active":
                    break
            if node is not None and node.poll() is not None:
                raise VisionBananaError(f"the node exited: see {cfg.out / 'node.log'}")
            time.sleep(0.5)
        else:
            raise VisionBananaError(f"node {node_name} did not become active in 120 s")
        wait_until_matched(player)
        player.wait_for_subscribers()
        import threading

        spin = threading.Thread(target=lambda: _spin(player), daemon=True)
        spin.start()
        sent = player.play()
        end = time.monotonic() + 10
        while time.monotonic() < end and len(received["depth/image"]) < sent:
            time.sleep(0.1)
        time.sleep(0.5)
        rclpy.try_shutdown()
        spin.join(2)
        writer.close()
    finally:
        rclpy.try_shutdown()
        if node is not None:
            node.send_signal(2)
            try:
                node.wait(10)
            except subprocess.TimeoutExpired:
                node.kill()
    send = dict(player.sent)
    latency = [(received["depth/image"][s] - send[s]) * 1e3
               for s in received["depth/image"] if s in send]
    rows: list[dict[str, Any]] = []
    for stamp, out in sorted(arrays.items()):
        row: dict[str, Any] = {"stamp_ns": stamp}
        g = gt.get(stamp, {})
        if "depth" in out and "depth" in g and out["depth"].shape == g["depth"].shape:
            m = depth_metrics(out["depth"], g["depth"])
            if m is not None:
                row.update(delta1=m.delta1, abs_rel=m.abs_rel, rmse=m.rmse)
        if "instances" in out and "instances" in g and \
                out["instances"].shape == g["instances"].shape:
            row["f_measure"] = instance_metrics(out["instances"], g["instances"]).f_measure
        rows.append(row)
    summary = {k: (float(np.mean([r[k] for r in rows if k in r]))
                   if any(k in r for r in rows) else None)
               for k in ("delta1", "abs_rel", "rmse", "f_measure")}
    lat = np.asarray(latency) if latency else np.asarray([np.nan])
    doc = {
        "schema": "vision_banana_ros/eval-live/1", "bag": str(cfg.bag), "node": node_name,
        "frames": sent, "frames_with_output": len(received["depth/image"]),
        "dropped_frames": sent - len(received["depth/image"]),
        "publish_rate_hz": rate_hz,
        "latency_ms": {"end_to_end": {"p50": float(np.nanpercentile(lat, 50)),
                                      "p90": float(np.nanpercentile(lat, 90)),
                                      "p99": float(np.nanpercentile(lat, 99))}},
        "outputs_received": {rel: len(v) for rel, v in received.items()},
        "summary": summary, "notes": [] if gt else ["no ground truth: speed only"],
        "interrupted": False, "fail_under": {}, "passed": True, "throughput_fps": None,
    }
    checks = {}
    for name, threshold in cfg.fail_under.items():
        value = summary.get(name)
        ok = value is not None and (value <= threshold if name in ("abs_rel", "rmse")
                                    else value >= threshold)
        checks[name] = {"threshold": threshold, "value": value, "passed": ok}
    doc["fail_under"], doc["passed"] = checks, all(c["passed"] for c in checks.values())
    (cfg.out / "metrics.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [f"# Live evaluation of `{cfg.bag}` through {node_name}", "",
             f"{sent} frames published at {rate_hz:g} Hz, {doc['frames_with_output']} depth "
             f"outputs received, {doc['dropped_frames']} dropped.", "",
             "| end-to-end latency | p50 | p90 | p99 |", "|---|---|---|---|",
             "| ms | " + " | ".join(f"{doc['latency_ms']['end_to_end'][q]:.1f}"
                                   for q in ("p50", "p90", "p99")) + " |", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {'-' if v is None else f'{v:.4g}'} |" for k, v in summary.items()]
    (cfg.out / "report.md").write_text("\n".join(lines) + "\n")
    return doc


def _spin(node: Any) -> None:
    import rclpy

    try:
        rclpy.spin(node)
    except Exception:
        return


