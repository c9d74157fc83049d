"""Training batches streamed from synthetic shards, with targets in the canonical camera."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vision_banana_ros.geometry import scale_intrinsics
from vision_banana_ros.synthetic.shards import ShardFrame, iter_frames, load_scene, read_index

Batch = dict[str, np.ndarray]


def frame_sample(frame: ShardFrame, width: int, height: int, canonical_focal_px: float,
                 flip: bool = False) -> dict[str, np.ndarray]:
    """One training sample at the network input size.

    Returns arrays: ``image`` (3, h, w) float32 [0, 1]; ``depth`` (h, w) float32 metres (NaN
    invalid); ``depth_canonical`` = depth * canonical_focal_px / fx; ``instances`` (h, w)
    int64; ``semantic`` (h, w) int64; ``normals`` (3, h, w) float32 (NaN invalid); ``fx``.
    """
    import cv2

    from vision_banana_ros.pipeline import resize_rgb

    h0, w0 = frame.rgb.shape[:2]
    rgb = resize_rgb(frame.rgb, width, height)
    near = {"interpolation": cv2.INTER_NEAREST}
    depth = frame.depth.astype(np.float32)
    depth[~np.isfinite(depth)] = np.nan
    if (w0, h0) != (width, height):
        depth = cv2.resize(depth, (width, height), **near)
        inst = cv2.resize(frame.instances, (width, height), **near)
        sem = cv2.resize(frame.semantic, (width, height), **near)
        normals = cv2.resize(frame.normals.astype(np.float32), (width, height), **near)
    else:
        inst, sem, normals = frame.instances, frame.semantic, frame.normals.astype(np.float32)
    k = scale_intrinsics(frame.k, width / w0, height / h0)
    if flip:
        rgb, depth, inst, sem = rgb[:, ::-1], depth[:, ::-1], inst[:, ::-1], sem[:, ::-1]
        normals = normals[:, ::-1] * np.array([-1.0, 1.0, 1.0], np.float32)
    fx = float(k[0, 0])
    return {
        "image": np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0,
        "depth": np.ascontiguousarray(depth),
        "depth_canonical": np.ascontiguousarray(depth * np.float32(canonical_focal_px / fx)),
        "instances": np.ascontiguousarray(inst, dtype=np.int64),
        "semantic": np.ascontiguousarray(sem, dtype=np.int64),
        "normals": np.ascontiguousarray(normals.transpose(2, 0, 1)),
        "fx": np.float32(fx),
    }


def collate(samples: list[dict[str, np.ndarray]]) -> Batch:
    """Stack samples along a new batch axis."""
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


def training_batches(folder: Path, batch_size: int, width: int, height: int,
                     canonical_focal_px: float, seed: int,
                     shuffle_buffer: int = 256) -> Iterator[Batch]:
    """Endless shuffled batches: scenes in a new random order each epoch, frames mixed in a
    buffer, random horizontal flips. One scene file at a time is read from disk."""
    rng = np.random.default_rng(seed)
    entries = read_index(folder)["shards"]
    buffer: list[dict[str, np.ndarray]] = []
    while True:
        for idx in rng.permutation(len(entries)):
            arrays = load_scene(Path(folder) / entries[idx]["file"])
            for v in range(arrays["rgb"].shape[0]):
                frame = ShardFrame(scene=entries[idx]["scene"], view=v,
                                   **{k: arrays[k][v] for k in ShardFrame.__dataclass_fields__
                                      if k not in ("scene", "view")})
                buffer.append(frame_sample(frame, width, height, canonical_focal_px,
                                           flip=bool(rng.random() < 0.5)))
            while len(buffer) >= min(shuffle_buffer, batch_size * 4):
                picks = sorted(rng.choice(len(buffer), batch_size, replace=False), reverse=True)
                yield collate([buffer.pop(i) for i in picks])


def evaluation_samples(folder: Path, width: int, height: int, canonical_focal_px: float,
                       limit: int | None = None) -> list[tuple[ShardFrame, dict]]:
    """The first ``limit`` frames of a held-out folder, with their samples (no flips)."""
    out = []
    for frame in iter_frames(folder):
        out.append((frame, frame_sample(frame, width, height, canonical_focal_px)))
        if limit is not None and len(out) >= limit:
            break
    return out
