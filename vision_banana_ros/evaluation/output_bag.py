"""The evaluator's output bag: input topics copied raw, plus every node output built by the
same code as the live node's messages (:func:`vision_banana_ros.outputs.output_messages`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vision_banana_ros.outputs import NODE_NAMESPACE, output_messages


class OutputBag:
    """An MCAP bag with the input topics of ``reader`` named in ``inputs`` and the outputs."""

    def __init__(self, path: Path, reader: Any, inputs: list[str]) -> None:
        from vision_banana_ros.bags import typestore
        from vision_banana_ros.bags.mcap_stream import open_writer

        self.ts = typestore()
        self.writer = open_writer(path)
        self.writer.open()
        self.conns: dict[str, Any] = {}
        for c in reader.connections:
            if c.topic in inputs and c.topic not in self.conns:
                self.conns[c.topic] = self.writer.add_connection(c.topic, c.msgtype,
                                                                 typestore=self.ts)

    def raw(self, topic: str, t: int, data: bytes) -> None:
        """An input message as it was in the bag."""
        if topic in self.conns:
            self.writer.write(self.conns[topic], t, data)

    def msg(self, topic: str, msgtype: str, t: int, msg: Any) -> None:
        if topic not in self.conns:
            self.conns[topic] = self.writer.add_connection(topic, msgtype, typestore=self.ts)
        self.writer.write(self.conns[topic], t, self.ts.serialize_cdr(msg, msgtype))

    def outputs(self, result: Any, header: Any, info: Any, t: int, points_stride: int,
                checkpoint: Any) -> None:
        """Every node output of one frame (the cloud organised, every ``points_stride``-th
        pixel), under the node's default namespace; ``checkpoint`` runs before each."""
        from vision_banana_ros.bags.build import build
        from vision_banana_ros.geometry.pointcloud import build_cloud

        o = result.outputs
        cloud = None
        if o.depth is not None and result.k is not None:
            cloud = build_cloud(o.depth, result.k, None, o.instances, organized=True,
                                stride=points_stride)
        for topic, fields in output_messages(result, header, info, cloud=cloud):
            checkpoint()
            self.msg(f"{NODE_NAMESPACE}/{topic.name}", topic.msgtype, t,
                     build(topic.msgtype, fields))

    def close(self) -> None:
        self.writer.close()
