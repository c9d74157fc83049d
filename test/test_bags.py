"""The streaming MCAP writer: bags read back identically with rosbags and with Foxglove's
reference reader, in time order, with chunk indexes and statistics that agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vision_banana_ros.bags import typestore
from vision_banana_ros.bags.mcap_stream import DIRECT_BYTES, open_writer


def _image(ts, shape: tuple[int, ...], seed: int):
    data = np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)
    t = ts.types
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=seed, nanosec=7), frame_id="cam")
    return t["sensor_msgs/msg/Image"](header=header, height=shape[0], width=shape[1],
                                      encoding="mono8", is_bigendian=0, step=shape[1],
                                      data=data.ravel())


def _write(path: Path, storage: str = "mcap") -> list[tuple[str, int, bytes]]:
    """Small and large messages on three topics, one topic added mid-bag; returns what was
    written as (topic, stamp ns, CDR bytes)."""
    ts = typestore()
    written = []
    writer = open_writer(path, storage)
    writer.open()
    conns = {topic: writer.add_connection(topic, "sensor_msgs/msg/Image", typestore=ts)
             for topic in ("/small", "/large")}
    for i in range(6):
        stamp = 1_000_000_000 + i * 100_000_000
        if i == 3:
            conns["/late"] = writer.add_connection("/late", "sensor_msgs/msg/Image",
                                                   typestore=ts)
        for topic, shape in (("/small", (4, 4)), ("/large", (480, 640)), ("/late", (300, 400))):
            if topic in conns:
                raw = ts.serialize_cdr(_image(ts, shape, i), "sensor_msgs/msg/Image")
                writer.write(conns[topic], stamp, raw)
                written.append((topic, stamp, bytes(raw)))
    writer.close()
    assert any(len(raw) >= DIRECT_BYTES for _, _, raw in written)
    assert any(len(raw) < DIRECT_BYTES for _, _, raw in written)
    return written


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_rosbags_reads_back_every_message(tmp_path: Path, storage: str) -> None:
    from rosbags.rosbag2 import Reader

    written = _write(tmp_path / "bag", storage)
    with Reader(tmp_path / "bag") as reader:
        read = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]
        assert reader.message_count == len(written)
        counts = {c.topic: c.msgcount for c in reader.connections}
        large = [c for c in reader.connections if c.topic == "/large"]
        only_large = [bytes(raw) for _, _, raw in reader.messages(connections=large)]
        window = list(reader.messages(start=1_150_000_000, stop=1_350_000_000))
    assert sorted(read, key=lambda m: (m[1], m[0])) == sorted(written,
                                                               key=lambda m: (m[1], m[0]))
    assert [t for _, t, _ in read] == sorted(t for _, t, _ in read)
    assert counts == {"/small": 6, "/large": 6, "/late": 3}
    assert only_large == [raw for topic, _, raw in written if topic == "/large"]
    assert sorted({t for _, t, _ in window}) == [1_200_000_000, 1_300_000_000]


def test_reference_reader_validates_the_file(tmp_path: Path) -> None:
    from mcap.reader import make_reader
    from mcap.records import Message
    from mcap.stream_reader import StreamReader

    written = _write(tmp_path / "bag")
    (path,) = (tmp_path / "bag").glob("*.mcap")
    with path.open("rb") as f:
        reader = make_reader(f, validate_crcs=True)
        summary = reader.get_summary()
        read = [(channel.topic, message.log_time, bytes(message.data))
                for _, channel, message in reader.iter_messages(log_time_order=True)]
    assert summary is not None and summary.statistics.message_count == len(written)
    assert summary.statistics.chunk_count == len(summary.chunk_indexes) > 1
    assert {s.name for s in summary.schemas.values()} == {"sensor_msgs/msg/Image"}
    assert sorted(read, key=lambda m: (m[1], m[0])) == sorted(written,
                                                               key=lambda m: (m[1], m[0]))
    with path.open("rb") as f:  # and record by record, ignoring the summary
        scanned = [bytes(r.data) for r in StreamReader(f, validate_crcs=True).records
                   if isinstance(r, Message)]
    assert sorted(scanned) == sorted(raw for _, _, raw in written)
