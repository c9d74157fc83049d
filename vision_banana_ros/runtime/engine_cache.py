"""TensorRT engine cache: keys, sidecars, validation, atomic writes. No TensorRT import.

An engine is only valid for the exact ONNX file, TensorRT version, GPU model and compute
capability, precision and shape profile it was built with; loading any other one fails with
TensorRT's "Serialization assertion ... version tag does not match" (the most common complaint
against ROS TensorRT nodes). So engines are stored under a key hashed from all of those, next
to a JSON sidecar holding the key's fields and the engine's own sha256:

    <cache>/engines/<key>.engine
    <cache>/engines/<key>.json

A lookup returns the engine bytes only when the sidecar matches the requested key field by
field and the engine file's hash matches the sidecar; otherwise it says why, and the caller
rebuilds. Writers write a unique temporary file and rename it into place (atomic on POSIX), so
concurrent builders never leave a torn file: the last complete one wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


def cache_dir() -> Path:
    """The runtime cache folder: exported ONNX files (``onnx/``) and TensorRT engines
    (``engines/``, timing cache, calibration caches); ``$VISION_BANANA_CACHE`` or
    ``~/.cache/vision_banana_ros``."""
    root = os.environ.get("VISION_BANANA_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "vision_banana_ros"


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    min_batch: int
    opt_batch: int
    max_batch: int
    max_tasks: int
    input_height: int
    input_width: int
    dla_core: int | None = None
    calibration_sha256: str | None = None
    #: The graph takes the camera's depth planes (a third input bound at run time).
    depth_input: bool = False

    def digest(self) -> str:
        """Hex digest naming the cache entry (first 24 hex digits of a sha256)."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:24]


@dataclass(frozen=True)
class Lookup:
    """Result of :meth:`EngineCache.lookup`: engine bytes, or None and the reason."""

    engine: bytes | None
    reason: str
    path: Path


class EngineCache:
    """Engine files with JSON sidecars in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder) / "engines"

    def paths(self, key: EngineKey) -> tuple[Path, Path]:
        """(engine path, sidecar path) of a key."""
        name = key.digest()
        return self.folder / f"{name}.engine", self.folder / f"{name}.json"

    def lookup(self, key: EngineKey) -> Lookup:
        """The cached engine for ``key``, or why there is none usable."""
        engine_path, sidecar_path = self.paths(key)
        if not engine_path.exists():
            return Lookup(None, "no cached engine", engine_path)
        try:
            sidecar = json.loads(sidecar_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            return Lookup(None, f"sidecar {sidecar_path.name} unreadable ({err})", engine_path)
        recorded = sidecar.get("key", {})
        for field, value in asdict(key).items():
            if recorded.get(field) != value:
                return Lookup(None, f"cached engine was built for {field}="
                              f"{recorded.get(field)!r}, need {value!r}", engine_path)
        try:
            data = engine_path.read_bytes()
        except OSError as err:
            return Lookup(None, f"engine unreadable ({err})", engine_path)
        if hashlib.sha256(data).hexdigest() != sidecar.get("engine_sha256"):
            return Lookup(None, "engine file is corrupt (hash differs from its sidecar)",
                          engine_path)
        return Lookup(data, "cache hit", engine_path)

    def calibrated_key(self, key: EngineKey) -> EngineKey | None:
        """The key of a cached INT8 engine equal to ``key`` in everything but its calibration
        data (``key.calibration_sha256`` is None: a node or ``eval`` asking for int8 without
        frames uses the engine ``build-engine`` calibrated), the newest if several; None if
        there is none."""
        wanted = {k: v for k, v in asdict(key).items() if k != "calibration_sha256"}
        best: tuple[float, EngineKey] | None = None
        for sidecar_path in self.folder.glob("*.json"):
            try:
                recorded = json.loads(sidecar_path.read_text()).get("key", {})
            except (OSError, json.JSONDecodeError):
                continue
            if (recorded.get("calibration_sha256") is None
                    or any(recorded.get(k) != v for k, v in wanted.items())):
                continue
            mtime = sidecar_path.stat().st_mtime
            if best is None or mtime > best[0]:
                best = (mtime, EngineKey(**recorded))
        return None if best is None else best[1]

    def store(self, key: EngineKey, engine: bytes, **info: object) -> Path:
        """Write engine and sidecar atomically; returns the engine path."""
        engine_path, sidecar_path = self.paths(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        sidecar = {"key": asdict(key), "engine_sha256": hashlib.sha256(engine).hexdigest(),
                   "engine_bytes": len(engine), **info}
        # Engine first, then its sidecar: a reader seeing a new sidecar finds its engine.
        write_atomically(engine_path, engine)
        write_atomically(sidecar_path, (json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
                      .encode())
        return engine_path


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so
    that a reader (another process building or loading) sees the old file or the new one,
    never half of one; the folder is created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
