"""Replay a bag over real ROS 2 topics and record a node's outputs (separate processes).

    python -m vision_banana_ros.ros.replay play BAG [--rate HZ] [--loops N]
    python -m vision_banana_ros.ros.replay record --node /vision_banana --out FILE.npz
        [--frames N] [--timeout S]

``play`` publishes the bag's colour image (raw or compressed) and camera_info on their
recorded topic names, with their recorded headers, at ``--rate`` (0: as recorded).
``record`` subscribes to every output topic of the contract under the node's name and saves,
per topic, the stamps, frame ids, types, encodings and sizes of what arrived (and the arrays of
the first frames), so tests and the demo can check them.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from vision_banana_ros.bags.reader import (
    BagError,
    detect_topics,
    iter_raw,
    open_reader,
    topic_types,
)
from vision_banana_ros.geometry.pointcloud import unpack_xyz
from vision_banana_ros.imageconv import image_array
from vision_banana_ros.outputs import OUTPUT_TOPICS
from vision_banana_ros.ros.messages import message_class
from vision_banana_ros.ros.tools import spin_until, wait_until_matched
from vision_banana_ros.sync import stamp_ns


def recorded_outputs(rgbd: bool = False) -> dict[str, type]:
    """Output topics of the contract (relative to the node's name) with their rclpy types:
    every one a node running all tasks publishes (RGB-D-only ones when ``rgbd``)."""
    return {t.name: message_class(t.msgtype) for t in OUTPUT_TOPICS if rgbd or not t.rgbd}
_TYPES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage,
          "sensor_msgs/msg/CameraInfo": CameraInfo}


def camera_depth_topic(types: dict[str, str]) -> str | None:
    """The bag's camera depth (what a driver publishes aligned to colour): the sensor topic
    when the bag has ground truth apart from it, else its depth topic."""
    topics = detect_topics(types)
    return topics.sensor_depth or topics.depth


def load_frames(bag: Path, image: str | None = None, camera_info: str | None = None,
                depth: str | None = None) -> tuple[list[tuple[str, Any]], dict[str, type]]:
    """(topic, rclpy message) pairs of the bag's colour, camera_info and (when ``depth``
    names it) camera depth topics, in order."""
    reader = open_reader(bag)
    try:
        topics = detect_topics(topic_types(reader), image=image, camera_info=camera_info)
        if topics.image is None:
            raise BagError(f"bag {bag} has no colour image topic")
        wanted = [t for t in (topics.image, topics.camera_info, depth) if t]
        msgs = [(topic, deserialize_message(raw, _TYPES[mtype]))
                for topic, _, raw, mtype in iter_raw(reader, wanted)]
        return msgs, {t: _TYPES[topic_types(reader)[t]] for t in wanted}
    finally:
        reader.close()


class Player(Node):
    """Publishes recorded messages; camera_info and depth first in each frame, so they can be
    matched when the image comes."""

    def __init__(self, msgs: list[tuple[str, Any]], types: dict[str, type], rate_hz: float,
                 loops: int, reliability: str = "reliable") -> None:
        super().__init__("vision_banana_player")
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE
                         if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT)
        self.pubs = {t: self.create_publisher(ty, t, qos) for t, ty in types.items()}
        self.msgs, self.rate_hz, self.loops, self.types = msgs, rate_hz, loops, types
        self.reliable = reliability == "reliable"
        self.sent: list[tuple[int, float]] = []  # (image stamp ns, send time)

    def wait_for_subscribers(self, timeout: float = 20.0, settle: float = 1.0) -> bool:
        """Wait until every topic has a subscriber (publishing reliably: a reliable one, as
        the node's ``qos_input_reliability: auto`` subscribes once it has seen this
        publisher), then ``settle`` seconds more.

        A writer sees a reader before the reader has matched the writer; with volatile
        durability, samples written in between are lost (the first camera_info, typically),
        and discovery takes longer on a loaded machine. A frame sent while the node re-creates
        its subscription as reliable can be lost too (the demo's first frame, counted as
        ``no_camera_info``).
        """
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(p.get_subscription_count() > 0 for p in self.pubs.values()) and (
                    not self.reliable or self._subscribers_reliable()):
                time.sleep(settle)
                return True
            time.sleep(0.05)
        return False

    def _subscribers_reliable(self) -> bool:
        """Every subscription on every topic of ours asks for reliable delivery."""
        for topic in self.pubs:
            infos = self.get_subscriptions_info_by_topic(topic)
            if not infos or any(i.qos_profile.reliability != ReliabilityPolicy.RELIABLE
                                for i in infos):
                return False
        return True

    def play(self, restamp: bool = False) -> int:
        """Publish everything; returns the number of images sent. ``restamp``: each frame's
        image, camera_info and depth carry the time it is sent (a live camera), not the
        recorded stamp."""
        colour = next(iter(self.types))  # load_frames puts the colour topic first
        images = [m for m in self.msgs if m[0] == colour]
        depths = {stamp_ns(m.header): (t, m) for t, m in self.msgs
                  if t != colour and not isinstance(m, CameraInfo)}
        period = 1.0 / self.rate_hz if self.rate_hz > 0 else 0.1
        infos = [m for m in self.msgs if isinstance(m[1], CameraInfo)]
        info_by_stamp = {stamp_ns(m.header): (t, m) for t, m in infos}
        latest_info = infos[0] if infos else None
        frames = [(image, info_by_stamp.get(stamp_ns(image[1].header), latest_info),
                   depths.get(stamp_ns(image[1].header))) for image in images]
        first_info = frames[0][1] if frames else None
        if first_info is not None and self.reliable:
            # The first camera_info must be delivered before any image, or the node skips
            # frames until the next one (readers match late under load).
            self.pubs[first_info[0]].publish(first_info[1])
            self.pubs[first_info[0]].wait_for_all_acked(Duration(seconds=5))
        start = time.monotonic()  # the schedule starts at the first image
        n = 0
        for _ in range(self.loops):
            for (topic, msg), info, depth in frames:
                wait = start + n * period - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if restamp:
                    now = self.get_clock().now().to_msg()
                    for m in (msg, info and info[1], depth and depth[1]):
                        if m is not None:
                            m.header.stamp = now
                if info is not None:
                    self.pubs[info[0]].publish(info[1])
                if depth is not None:
                    self.pubs[depth[0]].publish(depth[1])
                self.pubs[topic].publish(msg)
                self.sent.append((stamp_ns(msg.header), time.monotonic()))
                n += 1
        if self.reliable:
            for pub in self.pubs.values():  # do not exit with samples still in flight
                pub.wait_for_all_acked(Duration(seconds=5))
        return n


class Recorder(Node):
    """Subscribes to the node's outputs and /diagnostics; keeps a compact record."""

    def __init__(self, node_name: str, keep_arrays: int = 2, rgbd: bool = False,
                 decode: bool = False) -> None:
        super().__init__("vision_banana_recorder")
        self.decode = decode
        outputs = recorded_outputs(rgbd)
        self.records: dict[str, list[dict[str, Any]]] = {k: [] for k in outputs}
        self.arrays: dict[str, Any] = {}
        self.diagnostics: list[dict[str, str]] = []
        self.keep_arrays = keep_arrays
        self.lock = threading.Lock()
        for rel, ty in outputs.items():
            self.create_subscription(ty, f"{node_name}/{rel}",
                                     lambda m, rel=rel: self._on(rel, m), 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for s in msg.status:
                self.diagnostics.append({"level": int.from_bytes(s.level, "little")
                                         if isinstance(s.level, bytes) else int(s.level),
                                         "message": s.message, "name": s.name,
                                         **{kv.key: kv.value for kv in s.values}})

    def _on(self, rel: str, msg: Any) -> None:
        now = time.monotonic()
        if isinstance(msg, MarkerArray):
            header = msg.markers[0].header if msg.markers else None
        else:
            header = msg.header
        rec: dict[str, Any] = {"received": now}
        if self.decode:
            decode_output(msg)
        if header is not None:
            rec["stamp_ns"] = stamp_ns(header)
            rec["frame_id"] = header.frame_id
        if isinstance(msg, Image):
            rec.update(encoding=msg.encoding, width=msg.width, height=msg.height,
                       step=msg.step, bytes=len(msg.data))
        elif isinstance(msg, PointCloud2):
            rec.update(width=msg.width, height=msg.height, point_step=msg.point_step,
                       fields=[f.name for f in msg.fields], is_dense=bool(msg.is_dense))
        elif isinstance(msg, CameraInfo):
            rec.update(width=msg.width, height=msg.height, k=list(msg.k))
        elif isinstance(msg, MarkerArray):
            rec.update(markers=len(msg.markers) - 1)
        with self.lock:
            index = len(self.records[rel])
            self.records[rel].append(rec)
            if index < self.keep_arrays:
                key = f"{rel.replace('/', '.')}.{index}"
                if isinstance(msg, (Image, PointCloud2)):
                    self.arrays[key] = np.frombuffer(msg.data, np.uint8).copy()
                elif isinstance(msg, CameraInfo):
                    self.arrays[key] = np.asarray(msg.k, np.float64)

    def wait_until_matched(self, timeout: float = 30.0, settle: float = 2.0) -> bool:
        """Spin until every output subscription sees a publisher, then ``settle`` seconds
        more (a reader not yet matched by the writer loses volatile samples)."""
        return wait_until_matched(self, timeout, settle)

    def count(self, rel: str) -> int:
        with self.lock:
            return len(self.records[rel])

    def save(self, path: Path) -> None:
        with self.lock:
            meta = json.dumps({"records": self.records, "diagnostics": self.diagnostics})
            np.savez(path, meta=np.frombuffer(meta.encode(), np.uint8), **self.arrays)


def decode_output(msg: Any) -> float:
    """What a consumer in Python does with an output: the pixels of an image and the x, y, z
    of every point of a cloud as arrays, reduced to one number (a busy subscriber for the
    load benchmark). Returns the mean of the finite values (0 when there are none)."""
    if isinstance(msg, Image):
        values = image_array(msg).astype(np.float32)
    elif isinstance(msg, PointCloud2):
        values = unpack_xyz(msg.data, msg.width * msg.height)
    else:
        return 0.0
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else 0.0


def load_record(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read what ``record`` saved: (meta dict, arrays)."""
    with np.load(path) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        arrays = {k: data[k] for k in data.files if k != "meta"}
    return meta, arrays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision_banana_ros.ros.replay")
    sub = parser.add_subparsers(dest="cmd", required=True)
    play = sub.add_parser("play")
    play.add_argument("bag", type=Path)
    play.add_argument("--rate", type=float, default=10.0)
    play.add_argument("--loops", type=int, default=1)
    play.add_argument("--image-topic")
    play.add_argument("--info-topic")
    play.add_argument("--depth", action="store_true",
                      help="also publish the bag's camera depth (RGB-D camera)")
    play.add_argument("--reliability", default="reliable")
    play.add_argument("--restamp", action="store_true",
                      help="stamp each frame with the time it is sent (a live camera)")
    rec = sub.add_parser("record")
    rec.add_argument("--node", default="/vision_banana")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--frames", type=int, default=1, help="stop after this many depth images")
    rec.add_argument("--topic", default="depth/image", help="output counted for --frames")
    rec.add_argument("--timeout", type=float, default=60.0)
    rec.add_argument("--linger", type=float, default=1.0, help="seconds to keep recording")
    rec.add_argument("--rgbd", action="store_true", help="also the RGB-D-only outputs")
    rec.add_argument("--decode", action="store_true",
                     help="decode every image and cloud into arrays (a busy consumer)")
    args, ros_args = parser.parse_known_args(argv)
    rclpy.init(args=ros_args)
    try:
        if args.cmd == "play":
            try:
                depth = None
                if args.depth:
                    reader = open_reader(args.bag)
                    depth = camera_depth_topic(topic_types(reader))
                    reader.close()
                msgs, types = load_frames(args.bag, args.image_topic, args.info_topic, depth)
            except BagError as err:
                print(f"replay play: error: {err}", file=sys.stderr)
                return 2
            node = Player(msgs, types, args.rate, args.loops, args.reliability)
            if not node.wait_for_subscribers():
                print("replay play: warning: no subscriber after 20 s", file=sys.stderr)
            n = node.play(args.restamp)
            time.sleep(0.5)
            print(f"published {n} images")
        else:
            node = Recorder(args.node, rgbd=args.rgbd, decode=args.decode)
            matched = node.wait_until_matched()
            print("recorder ready" if matched else "recorder: not every output has a "
                  "publisher yet; recording anyway", flush=True)
            spin_until(node, lambda: node.count(args.topic) >= args.frames, args.timeout)
            spin_until(node, lambda: False, args.linger)
            node.save(args.out)
            print(f"recorded {node.count(args.topic)} {args.topic} messages")
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
