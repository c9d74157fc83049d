"""INT8 calibration data: preprocessed frames from synthetic shards and real bags.

Pure numpy (testable without TensorRT): the TensorRT calibrator copies these batches to the GPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from vision_banana_ros.errors import VisionBananaError


def calibration_images(sources: Iterable[np.ndarray], width: int, height: int,
                       limit: int) -> np.ndarray:
    """Up to ``limit`` (H, W, 3) uint8 frames -> (N, 3, height, width) float32 in [0, 1]."""
    from vision_banana_ros.pipeline import resize_rgb

    out = []
    for rgb in sources:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise VisionBananaError(f"calibration frame must be (H, W, 3) uint8, got "
                                    f"{rgb.dtype} {rgb.shape}")
        out.append(resize_rgb(rgb, width, height).transpose(2, 0, 1).astype(np.float32) / 255)
        if len(out) >= limit:
            break
    if not out:
        raise VisionBananaError("no calibration frames found")
    return np.ascontiguousarray(np.stack(out))


def shard_rgb(folder: Path) -> Iterator[np.ndarray]:
    """Colour frames of a synthetic shard folder."""
    from vision_banana_ros.synthetic.shards import iter_frames

    for frame in iter_frames(folder):
        yield frame.rgb


def bag_rgb(bag: Path) -> Iterator[np.ndarray]:
    """Colour frames of a recorded bag (raw or compressed; the detected colour topic)."""
    from vision_banana_ros.bags.reader import (
        BagError,
        detect_topics,
        iter_raw,
        open_reader,
        topic_types,
    )
    from vision_banana_ros.intake import colour_image

    reader = open_reader(bag)
    try:
        topics = detect_topics(topic_types(reader))
        if topics.image is None:
            raise BagError(f"bag {bag} has no colour image topic for calibration")
        for _, _, raw, mtype in iter_raw(reader, [topics.image]):
            yield colour_image(reader.deserialize(raw, mtype), 1 << 40)
    finally:
        reader.close()


def frame_source(path: Path) -> Iterator[np.ndarray]:
    """Colour frames of a shard folder (has ``index.json``) or of a bag."""
    path = Path(path)
    return shard_rgb(path) if (path / "index.json").is_file() else bag_rgb(path)


def interleave(*sources: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Round-robin over several frame sources (synthetic and real mixed evenly)."""
    iterators = [iter(s) for s in sources]
    while iterators:
        for it in list(iterators):
            try:
                yield next(it)
            except StopIteration:
                iterators.remove(it)


def batches(images: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    """Full batches of ``batch`` images (a trailing partial batch is dropped, as TensorRT
    calibrators need fixed-size batches)."""
    if batch < 1:
        raise VisionBananaError(f"calibration batch must be >= 1, got {batch}")
    for start in range(0, len(images) - batch + 1, batch):
        yield images[start:start + batch]


def digest(images: np.ndarray) -> str:
    """sha256 of the calibration set (part of the engine cache key)."""
    return hashlib.sha256(images.tobytes()).hexdigest()
