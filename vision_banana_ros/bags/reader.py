"""Reading RGB-D bags (ROS 2 mcap/sqlite3, ROS 1) with rosbags, streaming, with topic detection."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vision_banana_ros.bags.messages import typestore
from vision_banana_ros.errors import VisionBananaError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
INFO = "sensor_msgs/msg/CameraInfo"


class BagError(VisionBananaError):
    """A bag cannot be opened or lacks what is asked of it."""


@dataclass
class BagTopics:
    """Topics of an RGB-D bag; None where absent."""

    image: str | None = None
    image_type: str | None = None
    camera_info: str | None = None
    depth: str | None = None
    instances: str | None = None
    semantic: str | None = None
    #: The camera's own depth when the bag has separate ground truth (``/ground_truth/...``).
    sensor_depth: str | None = None
    #: mono8 mask of transparent objects (255), when the bag has one.
    transparent: str | None = None


def open_reader(path: Path) -> Any:
    """An opened rosbags AnyReader; bad paths and corrupt or unknown bags raise BagError."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    try:
        reader = AnyReader([path], default_typestore=typestore())
        reader.open()
    except Exception as err:  # rosbags raises several unrelated types for bad files
        raise BagError(f"bag {path} cannot be read ({type(err).__name__}: "
                       f"{str(err).splitlines()[0] if str(err) else 'no details'}); is it a "
                       "ROS 2 mcap/sqlite3 bag folder or a ROS 1 .bag?") from err
    return reader


def topic_types(reader: Any) -> dict[str, str]:
    return {c.topic: c.msgtype for c in reader.connections}


def detect_topics(types: dict[str, str], **given: str | None) -> BagTopics:
    """Pick topics by type and name; explicitly ``given`` names win (and must exist)."""
    for key, name in given.items():
        if name and name not in types:
            listing = ", ".join(f"{t} ({m})" for t, m in sorted(types.items()))
            raise BagError(f"topic {name} ({key}) is not in the bag; it has: {listing}")
    images = [t for t, m in types.items() if m == IMAGE]
    compressed = [t for t, m in types.items() if m == COMPRESSED]
    infos = [t for t, m in types.items() if m == INFO]

    def pick(cands: list[str], want: tuple[str, ...], avoid: tuple[str, ...] = ()) -> str | None:
        ranked = [c for c in cands if any(w in c for w in want)
                  and not any(a in c for a in avoid)]
        return sorted(ranked)[0] if ranked else None

    out = BagTopics()
    truth = [t for t in images if "ground_truth" in t or "groundtruth" in t]
    out.depth = given.get("depth") or pick(truth, ("depth",)) or pick(images, ("depth",))
    out.sensor_depth = given.get("sensor_depth")
    if out.sensor_depth is None and out.depth in truth:
        out.sensor_depth = pick([t for t in images if t not in truth], ("depth",))
    out.transparent = given.get("transparent") or pick(images, ("transparent",))
    out.instances = given.get("instances") or pick(images, ("instance",))
    out.semantic = given.get("semantic") or pick(images, ("semantic", "label", "class"))
    out.image = given.get("image")
    if out.image is None:
        used = {out.depth, out.instances, out.semantic, out.sensor_depth, out.transparent}
        colour = [c for c in images if c not in used]
        out.image = pick(colour, ("color", "colour", "rgb", "image")) or (
            sorted(colour)[0] if colour else None)
        if out.image is None and compressed:
            out.image = pick(compressed, ("color", "image", "rgb")) or sorted(compressed)[0]
    if out.image is not None:
        out.image_type = types[out.image]
    out.camera_info = given.get("camera_info")
    if out.camera_info is None and infos:
        base = out.image.rsplit("/", 2)[0] if out.image else ""
        same = [i for i in infos if base and i.startswith(base) and "depth" not in i]
        out.camera_info = sorted(same)[0] if same else pick(infos, ("color", "rgb"),
                                                            ("depth",)) or sorted(infos)[0]
    return out


def iter_raw(reader: Any, topics: list[str]) -> Iterator[tuple[str, int, bytes, str]]:
    """(topic, bag time ns, CDR bytes, msgtype) in bag order, streaming."""
    conns = [c for c in reader.connections if c.topic in topics]
    for conn, t, raw in reader.messages(connections=conns):
        yield conn.topic, t, raw, conn.msgtype


def iter_stamped(reader: Any, roles: dict[str, str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Messages of the topics in ``roles`` (topic -> role) grouped by header stamp:
    (stamp ns, {role: deserialized message}), streaming in bag order. A stamp is given as soon
    as every role has its message; the stamps still missing one come at the end, in stamp
    order (a frame without ground truth, a bag cut short)."""
    from vision_banana_ros.sync import stamp_ns

    pending: dict[int, dict[str, Any]] = {}
    for topic, _, raw, mtype in iter_raw(reader, list(roles)):
        msg = reader.deserialize(raw, mtype)
        stamp = stamp_ns(msg.header)
        group = pending.setdefault(stamp, {})
        group[roles[topic]] = msg
        if len(group) == len(roles):
            yield stamp, pending.pop(stamp)
    for stamp in sorted(pending):
        yield stamp, pending[stamp]
