"""Textures for domain randomisation: procedural patterns, and photographs a package ships.

Procedural textures are written as PNG files (pybullet loads textures from files) into a
folder owned by the caller, named by their parameters, so the same seed gives the same files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

#: Photographs and photo-like textures shipped inside pybullet_data (relative paths).
PHOTO_TEXTURES = (
    "table/table.png", "tray/tray.jpg", "domino/domino.jpg", "jenga/jenga.png",
    "laikago/laikago_tex.jpg", "roboschool/models_outdoor/stadium/stadium_grass.jpg",
    "racecar/meshes/wheel.jpg", "checker_grid.jpg", "duckCM.png", "tex256.png",
)
KINDS = ("noise", "stripes", "checkers", "photo")

#: Photographic textures of robosuite's wheel (MIT licence), by where they go. They are taken
#: from the wheel into a cache folder once (:func:`fetch_photo_textures`); robosuite itself is
#: never imported.
ROBOSUITE = "robosuite==1.5.2"
PHOTO_GROUPS: dict[str, tuple[str, ...]] = {
    "table": ("blue-wood", "dark-wood", "light-wood", "red-wood", "green-wood",
              "gray-woodgrain", "wood-tiles", "wood-varnished-panels", "gray-felt", "ceramic"),
    "wall": ("cream-plaster", "gray-plaster", "light-gray-plaster", "pink-plaster",
             "white-plaster", "yellow-plaster", "white-bricks"),
    "floor": ("light-gray-floor-tile", "wood-tiles", "dark-wood", "gray-felt", "dirt",
              "wood-varnished-panels"),
    "object": ("can", "cereal", "soda", "bread", "lemon", "ceramic", "clay", "metal",
               "steel-brushed", "steel-scratched", "brass-ambra", "blue-wood", "red-wood"),
}


def photo_texture_dir() -> Path:
    """Where the photographic textures are cached (``$VISION_BANANA_CACHE``/textures)."""
    from vision_banana_ros.runtime.engine_cache import cache_dir

    return cache_dir() / "textures" / "robosuite"


def photo_textures(group: str) -> list[str]:
    """Cached photographic texture files of ``group`` (empty when not fetched)."""
    folder = photo_texture_dir()
    return [str(folder / f"{name}.png") for name in PHOTO_GROUPS[group]
            if (folder / f"{name}.png").is_file()]


def fetch_photo_textures(log: Any = print) -> int:
    """Take the photographic textures out of robosuite's wheel (pip download, no install)
    into :func:`photo_texture_dir`; returns how many are there. Needs the package registry
    once; without it, renders fall back to pybullet's photographs and procedural patterns."""
    import subprocess
    import sys
    import tempfile
    import zipfile

    folder = photo_texture_dir()
    wanted = {n for names in PHOTO_GROUPS.values() for n in names}
    if all((folder / f"{n}.png").is_file() for n in wanted):
        return len(wanted)
    with tempfile.TemporaryDirectory() as tmp:
        log(f"fetching photographic textures from {ROBOSUITE} (about 160 MB, once)")
        res = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                              ROBOSUITE, "-d", tmp], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("robosuite-*.whl"))
        if res.returncode != 0 or not wheels:
            log(f"could not download {ROBOSUITE}: {res.stderr.strip()[-300:]}")
            return 0
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in wanted:
                member = f"robosuite/models/assets/textures/{name}.png"
                if member in wheel.namelist():
                    (folder / f"{name}.png").write_bytes(wheel.read(member))
    return sum((folder / f"{n}.png").is_file() for n in wanted)


def _procedural(kind: str, rng: np.random.Generator, size: int = 128) -> np.ndarray:
    import cv2

    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == "noise":
        coarse = rng.random((rng.integers(4, 17),) * 2).astype(np.float32)
        t = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        t = np.clip(t + rng.normal(0, 0.08, t.shape).astype(np.float32), 0, 1)
    elif kind == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6, 40)
        t = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0)
        t = t.astype(np.float32)
    else:  # checkers
        cell = int(rng.integers(4, 33))
        t = (((xx // cell) + (yy // cell)) % 2).astype(np.float32)
    img = a * (1 - t[..., None]) + b * t[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def texture_file(kind: str, rng: np.random.Generator, folder: Path, data_path: str,
                 group: str | None = None) -> str:
    """Make (or pick) a texture of ``kind`` and return its file path for ``loadTexture``;
    ``photo`` prefers the photographic textures of ``group`` when they are cached."""
    import cv2

    if kind == "photo" and group is not None:
        photos = photo_textures(group)
        if photos:
            return photos[int(rng.integers(len(photos)))]
    if kind == "photo":
        rel = PHOTO_TEXTURES[int(rng.integers(len(PHOTO_TEXTURES)))]
        path = Path(data_path) / rel
        if path.exists():
            return str(path)
        kind = "noise"  # a photo missing from this pybullet_data version: use a pattern
    img = _procedural(kind, rng)
    name = f"{kind}_{hashlib.sha1(img.tobytes()).hexdigest()[:12]}.png"
    path = folder / name
    if not path.exists():
        cv2.imwrite(str(path), img[..., ::-1])
    return str(path)


def apply_sensor_effects(rgb: np.ndarray, rng: np.random.Generator,
                         strength: float = 1.0) -> tuple[np.ndarray, dict]:
    """Colour jitter, Gaussian noise, blur and JPEG compression of an (H, W, 3) uint8 image.

    Returns the degraded image and a record of what was applied (stored with the frame).
    ``strength`` 0 disables every effect.
    """
    import cv2

    record: dict = {}
    if strength <= 0:
        return rgb, record
    img = rgb.astype(np.float32)
    gain = rng.uniform(1 - 0.25 * strength, 1 + 0.25 * strength, 3)
    bias = rng.uniform(-15, 15) * strength
    contrast = rng.uniform(1 - 0.2 * strength, 1 + 0.2 * strength)
    mean = img.mean()
    img = (img - mean) * contrast + mean
    img = img * gain + bias
    record.update(gain=gain.round(3).tolist(), bias=round(float(bias), 2),
                  contrast=round(float(contrast), 3))
    sigma = float(rng.uniform(0, 4) * strength)
    img = img + rng.normal(0, sigma, img.shape)
    record["noise_sigma"] = round(sigma, 2)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.3 * strength:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
        record["blur_kernel"] = k
    if rng.random() < 0.4 * strength:
        quality = int(rng.integers(50, 95))
        ok, enc = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1].copy()
            record["jpeg_quality"] = quality
    return out, record
