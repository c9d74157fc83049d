"""INT8 calibration data: what the network gets of real and synthetic camera frames.

Each frame is preprocessed exactly as the node does it (:func:`~vision_banana_ros.pipeline.
network_input`: letterboxed, and, for a model with depth input, the camera's depth as the two
depth planes): calibrating on stretched frames or on "no depth" alone would give the engine
activation ranges of inputs it never sees (the RGB-D model's depth branch saturated on real
camera depth). Like training (``depth_dropout``), a share of the frames runs without depth.

Sources: synthetic shard folders (their simulated sensor depth, seeded per frame) and bags
(colour, camera_info and the camera's depth topic, paired by stamp). Pure numpy (testable
without TensorRT): the TensorRT calibrator copies these batches to the GPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError

#: One camera frame: (H, W, 3) uint8 RGB, (3, 3) K or None, (H, W) float32 metres of the
#: camera's depth (NaN invalid) or None.
CameraFrame = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


@dataclass
class CalibrationSet:
    """Network inputs for INT8 calibration.

    ``images``: (N, 3, h, w) float32 in [0, 1]; ``depth``: (N, 2, h, w) float32 depth planes
    (zeros: that frame runs without depth), or None for a model without depth input.
    """

    images: np.ndarray
    depth: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def with_depth(self) -> int:
        """Frames whose depth planes hold the camera's depth."""
        if self.depth is None:
            return 0
        return int(np.count_nonzero(self.depth.reshape(len(self.depth), -1).any(axis=1)))

    def batches(self, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Full batches of (images, depth planes or None) (see :func:`batches`)."""
        depth = batches(self.depth, batch) if self.depth is not None else None
        for images in batches(self.images, batch):
            yield images, None if depth is None else next(depth)

    def digest(self) -> str:
        """sha256 of the set (part of the engine cache key)."""
        h = hashlib.sha256(self.images.tobytes())
        if self.depth is not None:
            h.update(self.depth.tobytes())
        return h.hexdigest()


def calibration_set(frames: Iterable[CameraFrame], config: Any, limit: int, *,
                    depth_dropout: float = 0.3, seed: int = 0) -> CalibrationSet:
    """Up to ``limit`` camera frames as the network gets them (``config``: the model's
    :class:`~vision_banana_ros.model.config.ModelConfig`). A ``depth_dropout`` share of the
    frames with depth (seeded) runs without it, as in training.

    Raises:
        VisionBananaError: a frame that is not (H, W, 3) uint8, or no frame at all.
    """
    from vision_banana_ros.pipeline import network_input

    rng = np.random.default_rng(seed)
    images, planes = [], []
    zeros = np.zeros((2, config.input_height, config.input_width), np.float32)
    for rgb, k, depth in frames:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise VisionBananaError(f"calibration frame must be (H, W, 3) uint8, got "
                                    f"{rgb.dtype} {rgb.shape}")
        if depth is not None and rng.random() < depth_dropout:
            depth = None
        x, _, p, _ = network_input(rgb, k, depth, config)
        images.append(x[0])
        planes.append(zeros if p is None else p[0])
        if len(images) >= limit:
            break
    if not images:
        raise VisionBananaError("no calibration frames found")
    return CalibrationSet(np.ascontiguousarray(np.stack(images)),
                          np.ascontiguousarray(np.stack(planes)) if config.depth_input
                          else None)


def shard_frames(folder: Path, seed: int = 0) -> Iterator[CameraFrame]:
    """Frames of a synthetic shard folder with what a depth camera would measure of them
    (:func:`~vision_banana_ros.synthetic.sensor.simulate_sensor_depth`, seeded per frame)."""
    from vision_banana_ros.synthetic.sensor import simulate_sensor_depth
    from vision_banana_ros.synthetic.shards import iter_frames

    for i, frame in enumerate(iter_frames(folder)):
        depth = simulate_sensor_depth(frame.depth, frame.k, np.random.default_rng([seed, i]),
                                      frame.material, frame.depth_through)
        yield frame.rgb, frame.k, depth


def bag_frames(bag: Path) -> Iterator[CameraFrame]:
    """Frames of a recorded bag (raw or compressed colour), each with its camera_info and the
    camera's depth of the same stamp where the bag has them (the sensor topic where the bag
    also holds ground truth)."""
    from vision_banana_ros.bags.reader import (
        BagError,
        detect_topics,
        iter_raw,
        iter_stamped,
        open_reader,
        topic_types,
    )
    from vision_banana_ros.intake import InputProblem, colour_image, intrinsics, sensor_depth
    from vision_banana_ros.sync import stamp_ns

    reader = open_reader(bag)
    try:
        topics = detect_topics(topic_types(reader))
        if topics.image is None:
            raise BagError(f"bag {bag} has no colour image topic for calibration")
        depth_topic = topics.sensor_depth or topics.depth
        infos = {stamp_ns(m.header): m for m in (
            reader.deserialize(raw, mtype)
            for _, _, raw, mtype in iter_raw(reader, [topics.camera_info]))} \
            if topics.camera_info else {}
        roles = {topics.image: "image", **({depth_topic: "depth"} if depth_topic else {})}
        for stamp, msgs in iter_stamped(reader, roles):
            if "image" not in msgs:
                continue
            rgb = colour_image(msgs["image"], 1 << 40)
            h, w = rgb.shape[:2]
            try:
                k = intrinsics(infos[stamp], w, h) if stamp in infos else None
                depth = sensor_depth(msgs["depth"], w, h) if "depth" in msgs else None
            except InputProblem:
                k, depth = None, None
            yield rgb, k, depth
    finally:
        reader.close()


def frame_source(path: Path) -> Iterator[CameraFrame]:
    """Frames of a shard folder (has ``index.json``) or of a bag."""
    path = Path(path)
    return shard_frames(path) if (path / "index.json").is_file() else bag_frames(path)


def interleave(*sources: Iterable[Any]) -> Iterator[Any]:
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
