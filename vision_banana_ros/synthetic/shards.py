"""Shard storage for synthetic frames: one compressed ``.npz`` per scene plus ``index.json``.

Format ``vision_banana_shards/2`` (a training loader streams it scene by scene; format 1, the
same without ``material`` and ``depth_through``, is still read):

- ``index.json``: ``{"format", "seed", "config", "command", "frames", "shards": [{"file",
  "scene", "views", "width", "height", "objects"}]}``, shards sorted by scene.
- ``scene-NNNNNN.npz`` (zip, deflate) with arrays over views ``V``:
  ``rgb`` (V, H, W, 3) uint8 (after sensor effects), ``depth`` (V, H, W) float32 metres (+inf =
  nothing hit), ``instances`` (V, H, W) uint16, ``semantic`` (V, H, W) uint8, ``normals``
  (V, H, W, 3) float16 unit vectors in the optical frame (NaN invalid), ``k`` (V, 3, 3) float64,
  ``pose`` (V, 4, 4) float64 T_world_optical, ``material`` (V, H, W) uint8 material classes
  (:mod:`.sensor`: opaque, transparent, specular, dark), ``depth_through`` (V, H, W) float32
  depth with transparent objects removed (what a stereo camera can see through glass; equal
  to ``depth`` elsewhere), ``meta`` a JSON string (uint8 bytes).

The camera's simulated depth is not stored: training draws it afresh from these
(:func:`~.sensor.simulate_sensor_depth`), so every epoch sees other holes and noise.

Files are byte-identical for the same seed: zip entries carry a fixed timestamp (``np.savez``
stamps the current time) and scenes are seeded independently of the worker that renders them.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError

FORMAT = "vision_banana_shards/2"
READABLE_FORMATS = ("vision_banana_shards/1", FORMAT)
INDEX = "index.json"
ARRAYS = ("rgb", "depth", "instances", "semantic", "normals", "k", "pose")
#: Arrays of format 2 (absent in format 1: None when read).
OPTIONAL_ARRAYS = ("material", "depth_through")


class ShardError(VisionBananaError):
    """A shard folder or file is missing, corrupt, or of another format."""


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays as a deterministic compressed npz (fixed entry timestamps, given order)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=6)
    tmp.replace(path)


def scene_arrays(frames: list[Any]) -> dict[str, np.ndarray]:
    """Stack the views of one scene (:class:`~.scene.Frame` objects) into shard arrays."""
    meta = json.dumps([f.meta for f in frames], sort_keys=True).encode()
    return {
        "rgb": np.stack([f.rgb for f in frames]),
        "depth": np.stack([f.depth for f in frames]).astype(np.float32),
        "instances": np.stack([f.instances for f in frames]).astype(np.uint16),
        "semantic": np.stack([f.semantic for f in frames]).astype(np.uint8),
        "normals": np.stack([f.normals for f in frames]).astype(np.float16),
        "k": np.stack([f.k for f in frames]).astype(np.float64),
        "pose": np.stack([f.pose for f in frames]).astype(np.float64),
        "material": np.stack([f.material if f.material is not None
                              else np.zeros(f.depth.shape, np.uint8) for f in frames]
                             ).astype(np.uint8),
        "depth_through": np.stack([f.depth_through if f.depth_through is not None
                                   else f.depth for f in frames]).astype(np.float32),
        "meta": np.frombuffer(meta, dtype=np.uint8),
    }


@dataclass(frozen=True)
class ShardFrame:
    """One view read back from a shard (arrays as in the module docstring, no view axis)."""

    scene: int
    view: int
    rgb: np.ndarray
    depth: np.ndarray
    instances: np.ndarray
    semantic: np.ndarray
    normals: np.ndarray
    k: np.ndarray
    pose: np.ndarray
    material: np.ndarray | None = None
    depth_through: np.ndarray | None = None


def read_index(folder: Path) -> dict[str, Any]:
    """Load and check ``index.json`` of a shard folder."""
    path = Path(folder) / INDEX
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise ShardError(f"{path} not found: not a shard folder (vision-banana render "
                         "writes one)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise ShardError(f"{path} is unreadable: {err}") from err
    if index.get("format") not in READABLE_FORMATS:
        raise ShardError(f"{path} has format {index.get('format')!r}, expected one of "
                         f"{', '.join(READABLE_FORMATS)}")
    return index


def load_scene(path: Path) -> dict[str, np.ndarray]:
    """Load one scene's arrays; a corrupt or incomplete file raises :class:`ShardError`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ARRAYS}
            arrays.update({name: data[name] for name in OPTIONAL_ARRAYS
                           if f"{name}.npy" in data.zip.namelist()})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise ShardError(f"shard {path} is corrupt or incomplete: {err}") from err
    return arrays


def iter_frames(folder: Path, *, scenes: range | None = None) -> Iterator[ShardFrame]:
    """Stream the frames of a shard folder in scene, then view order (one scene in memory)."""
    index = read_index(folder)
    for entry in index["shards"]:
        if scenes is not None and entry["scene"] not in scenes:
            continue
        arrays = load_scene(Path(folder) / entry["file"])
        for v in range(arrays["rgb"].shape[0]):
            yield frame_of(arrays, entry["scene"], v)


def frame_of(arrays: dict[str, np.ndarray], scene: int, view: int) -> ShardFrame:
    """View ``view`` of a loaded scene's arrays (:func:`load_scene`)."""
    return ShardFrame(scene=scene, view=view,
                      **{name: arrays[name][view] for name in ARRAYS + OPTIONAL_ARRAYS
                         if name in arrays})
