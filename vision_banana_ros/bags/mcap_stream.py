"""A rosbag2 MCAP writer that streams large messages to the file without copying them.

rosbags' MCAP storage builds every message record in a ``BytesIO``, copies it into the
pending chunk, copies the chunk again to compress (even when not compressing) and once more
into the chunk record: four copies of each byte before the file write. The evaluator's output
bag carries about 10 MB of images and clouds per 640x480 frame, so those copies cost about as
much CPU as the evaluation's metrics.

:class:`StreamingMcapStorage` keeps rosbags' file layout (same schema, channel, metadata and
summary records, so rosbags, ``ros2 bag`` and Foxglove read it the same way) and changes one
thing: a message of at least :data:`DIRECT_BYTES` closes the pending chunk *with that message
as its last record*, writing the chunk header, the small records already pending and then the
message's own buffer straight to the file. Small messages (camera_info, markers) still collect
in the pending chunk as before. Chunks are uncompressed; with compression requested the
storage behaves exactly like rosbags'.

Use :func:`open_writer` rather than rosbags' ``Writer`` for bags this package writes.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import (
    McapWriter,
    PendingChunk,
    write_string,
    write_uint16,
    write_uint32,
    write_uint64,
)

#: Messages at least this large (bytes of CDR) go to the file without being copied.
DIRECT_BYTES = 64 * 1024

_OP_MESSAGE, _OP_CHUNK, _OP_MESSAGE_INDEX = 0x05, 0x06, 0x07
# Message record: opcode, record length, channel id, sequence, log time, publish time.
_MESSAGE_HEAD = struct.Struct("<BQHIQQ")
# Chunk record up to its records: opcode, record length, start, end, uncompressed size, crc,
# compression string length (0: uncompressed), records length.
_CHUNK_HEAD = struct.Struct("<BQQQQIIQ")


class StreamingMcapStorage(McapWriter):
    """rosbags' MCAP storage plugin, with large messages written without copies."""

    def write(self, connection: Any, timestamp: int, data: bytes | memoryview) -> None:
        """Write one serialized message (``data``: CDR bytes; ``timestamp``: ns)."""
        if len(data) < DIRECT_BYTES or self.compression:
            super().write(connection, timestamp, data)
            return
        self.message_start_time = min(timestamp, self.message_start_time)
        self.message_end_time = max(timestamp, self.message_end_time)
        self.channel_stats[connection.id] += 1
        chunk = self.chunk
        chunk.message_start_time = min(timestamp, chunk.message_start_time)
        chunk.message_end_time = max(timestamp, chunk.message_end_time)
        pending = chunk.bio.getbuffer()
        chunk.msgs[connection.id].append((timestamp, len(pending)))
        message_head = _MESSAGE_HEAD.pack(_OP_MESSAGE, 2 + 4 + 8 + 8 + len(data),
                                          connection.id, 0, timestamp, timestamp)
        size = len(pending) + len(message_head) + len(data)
        chunk_start = self.bio.tell()
        self.bio.write(_CHUNK_HEAD.pack(_OP_CHUNK, 8 + 8 + 8 + 4 + 4 + 8 + size,
                                        chunk.message_start_time, chunk.message_end_time,
                                        size, 0, 0, size))
        self.bio.write(pending)
        self.bio.write(message_head)
        self.bio.write(data)
        del pending  # release the export so the BytesIO can be dropped
        self._index_chunk(chunk_start, self.bio.tell(), size)

    def _index_chunk(self, chunk_start: int, chunk_end: int, size: int) -> None:
        """Write the message indexes of the chunk just written and keep its chunk index for
        the summary (the records rosbags' ``close_chunk`` writes after a chunk)."""
        offsets: list[tuple[int, int]] = []
        for cid, msgs in self.chunk.msgs.items():
            offsets.append((cid, self.bio.tell()))
            entries = b"".join(struct.pack("<QQ", ts, off) for ts, off in msgs)
            self.bio.write(struct.pack("<BQHI", _OP_MESSAGE_INDEX, 2 + 4 + len(entries),
                                       cid, len(entries)))
            self.bio.write(entries)
        rec = BytesIO()
        write_uint64(rec, self.chunk.message_start_time)
        write_uint64(rec, self.chunk.message_end_time)
        write_uint64(rec, chunk_start)
        write_uint64(rec, chunk_end - chunk_start)
        write_uint32(rec, len(offsets) * 10)
        for cid, offset in offsets:
            write_uint16(rec, cid)
            write_uint64(rec, offset)
        write_uint64(rec, self.bio.tell() - chunk_end)
        write_string(rec, "")
        write_uint64(rec, size)
        write_uint64(rec, size)
        self.chunks.append(rec)
        self.chunk = PendingChunk(2**63 - 1, 0, BytesIO(), defaultdict(list))


class _Writer(Writer):
    STORAGE_PLUGINS: ClassVar = {**Writer.STORAGE_PLUGINS,
                                 StoragePlugin.MCAP: StreamingMcapStorage}


def open_writer(path: Path, storage: str = "mcap") -> Writer:
    """A rosbags ``Writer`` (rosbag2 version 9, not yet opened) for a new bag folder ``path``;
    MCAP bags use :class:`StreamingMcapStorage`. ``storage``: ``"mcap"`` or ``"sqlite3"``."""
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    return _Writer(Path(path), version=9, storage_plugin=plugin)
