"""Training batches streamed from synthetic shards, with targets in the canonical camera.

Frames are letterboxed into the network input like the node's (:mod:`vision_banana_ros.
letterbox`); for models with depth input, each sample carries a freshly simulated camera depth
(:mod:`vision_banana_ros.synthetic.sensor`) as input planes, dropped entirely for a fraction
of samples so one checkpoint serves RGB-D and RGB-only cameras.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vision_banana_ros.synthetic.shards import (
    ShardFrame,
    frame_of,
    iter_frames,
    load_scene,
    read_index,
)

Batch = dict[str, np.ndarray]
#: Semantic id the losses ignore (padding).
IGNORE_CLASS = 255


def frame_sample(frame: ShardFrame, width: int, height: int, canonical_focal_px: float,
                 flip: bool = False, rng: np.random.Generator | None = None,
                 depth_input: bool = False, depth_dropout: float = 0.0,
                 hole_weight: float = 0.0) -> dict[str, np.ndarray]:
    """One training sample at the network input size.

    Returns arrays: ``image`` (3, h, w) float32 [0, 1]; ``depth`` (h, w) float32 metres (NaN
    invalid or padding); ``depth_canonical`` = depth * canonical_focal_px / fx; ``instances``
    (h, w) int64; ``semantic`` (h, w) int64 (255 in the padding); ``normals`` (3, h, w)
    float32 (NaN invalid); ``fx``; with ``depth_input``, ``sensor`` (2, h, w) float32 depth
    planes of a simulated camera depth (zeros for a ``depth_dropout`` fraction of samples, and
    when ``rng`` is None) and ``weight`` (h, w) float32 pixel weights, 1 + ``hole_weight``
    where the camera had no depth (what the model must complete).
    """
    import cv2

    from vision_banana_ros.depth_input import letterboxed_planes, no_depth
    from vision_banana_ros.letterbox import PAD_RGB, letterbox
    from vision_banana_ros.pipeline import resize_rgb

    h0, w0 = frame.rgb.shape[:2]
    box = letterbox(w0, h0, width, height)
    size = (box.width, box.height)

    def near(a: np.ndarray, fill: float | int) -> np.ndarray:
        small = a if (w0, h0) == size else cv2.resize(a, size, interpolation=cv2.INTER_NEAREST)
        return box.place(small, fill)

    rgb = box.place(resize_rgb(frame.rgb, *size), PAD_RGB)
    depth = frame.depth.astype(np.float32)
    depth[~np.isfinite(depth)] = np.nan
    depth = near(depth, np.nan)
    inst = near(frame.instances, 0)
    sem = near(frame.semantic, IGNORE_CLASS)
    normals = near(frame.normals.astype(np.float32), np.nan)
    k = box.k(frame.k)
    fx = float(k[0, 0])
    sample = {"depth": depth, "instances": inst, "semantic": sem, "normals": normals}
    if depth_input:
        planes = no_depth(height, width)
        if rng is not None and rng.random() >= depth_dropout:
            from vision_banana_ros.synthetic.sensor import simulate_sensor_depth

            sim = simulate_sensor_depth(frame.depth, frame.k, rng, frame.material,
                                        frame.depth_through)
            planes = letterboxed_planes(sim, box, fx, canonical_focal_px)
        sample["sensor"] = planes.transpose(1, 2, 0)  # channels last while flipping
    if flip:
        rgb = rgb[:, ::-1]
        sample = {key: v[:, ::-1] for key, v in sample.items()}
        sample["normals"] = sample["normals"] * np.array([-1.0, 1.0, 1.0], np.float32)
    out = {
        "image": np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0,
        "depth": np.ascontiguousarray(sample["depth"]),
        "depth_canonical": np.ascontiguousarray(sample["depth"]
                                                * np.float32(canonical_focal_px / fx)),
        "instances": np.ascontiguousarray(sample["instances"], dtype=np.int64),
        "semantic": np.ascontiguousarray(sample["semantic"], dtype=np.int64),
        "normals": np.ascontiguousarray(sample["normals"].transpose(2, 0, 1)),
        "fx": np.float32(fx),
    }
    if depth_input:
        planes = np.ascontiguousarray(sample["sensor"].transpose(2, 0, 1), dtype=np.float32)
        out["sensor"] = planes
        holes = (planes[1] < 0.5) & bool(planes[1].any())
        out["weight"] = (1.0 + hole_weight * holes).astype(np.float32)
    return out


def collate(samples: list[dict[str, np.ndarray]]) -> Batch:
    """Stack samples along a new batch axis."""
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


def training_batches(folder: Path, batch_size: int, width: int, height: int,
                     canonical_focal_px: float, seed: int, shuffle_buffer: int = 256,
                     depth_input: bool = False, depth_dropout: float = 0.3,
                     hole_weight: float = 0.0) -> Iterator[Batch]:
    """Endless shuffled batches: scenes in a new random order each epoch, frames mixed in a
    buffer, random horizontal flips, fresh simulated camera depth for depth models. One scene
    file at a time is read from disk."""
    rng = np.random.default_rng(seed)
    entries = read_index(folder)["shards"]
    buffer: list[dict[str, np.ndarray]] = []
    while True:
        for idx in rng.permutation(len(entries)):
            arrays = load_scene(Path(folder) / entries[idx]["file"])
            for v in range(arrays["rgb"].shape[0]):
                frame = frame_of(arrays, entries[idx]["scene"], v)
                buffer.append(frame_sample(frame, width, height, canonical_focal_px,
                                           flip=bool(rng.random() < 0.5), rng=rng,
                                           depth_input=depth_input,
                                           depth_dropout=depth_dropout,
                                           hole_weight=hole_weight))
            while len(buffer) >= min(shuffle_buffer, batch_size * 4):
                picks = sorted(rng.choice(len(buffer), batch_size, replace=False), reverse=True)
                yield collate([buffer.pop(i) for i in picks])


def evaluation_samples(folder: Path, width: int, height: int, canonical_focal_px: float,
                       limit: int | None = None, depth_input: bool = False,
                       seed: int = 1234) -> list[tuple[ShardFrame, dict]]:
    """The first ``limit`` frames of a held-out folder, with their samples (no flips; the
    simulated camera depth of a depth model drawn from a fixed seed, never dropped)."""
    rng = np.random.default_rng(seed)
    out = []
    for frame in iter_frames(folder):
        out.append((frame, frame_sample(frame, width, height, canonical_focal_px, rng=rng,
                                        depth_input=depth_input)))
        if limit is not None and len(out) >= limit:
            break
    return out
