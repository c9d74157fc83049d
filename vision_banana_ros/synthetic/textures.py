"""Textures for domain randomisation: procedural patterns, and photographs a package ships.

Procedural textures are written as PNG files (pybullet loads textures from files) into a
folder owned by the caller, named by their parameters, so the same seed gives the same files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

#: Photographs and photo-like textures shipped inside pybullet_data (relative paths).
PHOTO_TEXTURES = (
    "table/table.png", "tray/tray.jpg", "domino/domino.jpg", "jenga/jenga.png",
    "laikago/laikago_tex.jpg", "roboschool/models_outdoor/stadium/stadium_grass.jpg",
    "racecar/meshes/wheel.jpg", "checker_grid.jpg", "duckCM.png", "tex256.png",
)
KINDS = ("noise", "stripes", "checkers", "photo")


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


def texture_file(kind: str, rng: np.random.Generator, folder: Path, data_path: str) -> str:
    """Make (or pick) a texture of ``kind`` and return its file path for ``loadTexture``."""
    import cv2

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
