"""Pictures for people: depth colour maps, point clouds rendered to images (pure numpy/cv2)."""

from __future__ import annotations

import numpy as np


def depth_colormap(depth: np.ndarray, max_m: float | None = None) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 RGB (turbo), black where invalid."""
    import cv2

    valid = np.isfinite(depth) & (depth > 0)
    hi = max_m or (float(np.percentile(depth[valid], 98)) if valid.any() else 1.0)
    scaled = np.clip(np.where(valid, depth, 0.0) / max(hi, 1e-6) * 255, 0, 255
                     ).astype(np.uint8)
    rgb = cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO)[..., ::-1]
    rgb[~valid] = 0
    return np.ascontiguousarray(rgb)


def render_points(xyz: np.ndarray, rgb: np.ndarray, size: tuple[int, int] = (640, 480),
                  tilt_deg: float = 12.0) -> np.ndarray:
    """Render (N, 3) camera-frame points with (N, 3) uint8 colours, seen from near the camera's
    own viewpoint: the optical centre, with the cloud turned ``tilt_deg`` about the horizontal
    axis through its median point (so its relief shows), zoomed so that the central 98 % of the
    points fill the picture. Points are 2x2 pixel splats with a z-buffer (near over far);
    (H, W, 3) uint8 RGB on dark grey."""
    w, h = size
    image = np.full((h, w, 3), 30, np.uint8)
    ok = np.isfinite(xyz).all(1) & (xyz[:, 2] > 0) if len(xyz) else np.zeros(0, bool)
    xyz, rgb = xyz[ok].astype(np.float64), rgb[ok]
    if len(xyz) == 0:
        return image
    centre = np.median(xyz, axis=0)
    a = np.radians(tilt_deg)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    p = (xyz - centre) @ rot.T + centre
    keep = p[:, 2] > 1e-3
    p, rgb = p[keep], rgb[keep]
    if len(p) == 0:
        return image
    x, y = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
    (x0, x1), (y0, y1) = np.percentile(x, (1, 99)), np.percentile(y, (1, 99))
    f = 0.96 * min(w / max(x1 - x0, 1e-6), h / max(y1 - y0, 1e-6))
    u = np.round((x - (x0 + x1) / 2) * f + w / 2).astype(np.int64)
    v = np.round((y - (y0 + y1) / 2) * f + h / 2).astype(np.int64)
    offsets = ((0, 0), (1, 0), (0, 1), (1, 1))
    u = np.concatenate([u + du for du, _ in offsets])
    v = np.concatenate([v + dv for _, dv in offsets])
    z, c = np.tile(p[:, 2], len(offsets)), np.tile(rgb, (len(offsets), 1))
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    u, v, z, c = u[inside], v[inside], z[inside], c[inside]
    order = np.argsort(-z, kind="stable")  # far first, near last: near points overwrite
    image[v[order], u[order]] = c[order]
    return image


def error_colormap(rel_error: np.ndarray, max_error: float = 0.5) -> np.ndarray:
    """(H, W) relative error (0 good) -> (H, W, 3) uint8 RGB (magma), black where non-finite."""
    import cv2

    valid = np.isfinite(rel_error)
    scaled = np.clip(np.nan_to_num(rel_error) / max_error * 255, 0, 255).astype(np.uint8)
    rgb = cv2.applyColorMap(scaled, cv2.COLORMAP_MAGMA)[..., ::-1]
    rgb[~valid] = 0
    return np.ascontiguousarray(rgb)


def instance_colours(ids: np.ndarray) -> np.ndarray:
    """(H, W) instance ids -> (H, W, 3) uint8 RGB, background (0) black, the codec's palette
    (ids beyond its colours reuse them cyclically)."""
    from vision_banana_ros.codecs.instances import INSTANCE_PALETTE_MAX, instance_palette

    ids = np.asarray(ids, dtype=np.int64)
    count = int(np.clip(ids.max(initial=0), 1, INSTANCE_PALETTE_MAX))
    lut = np.vstack([np.zeros((1, 3)), instance_palette(count)])
    index = np.where(ids > 0, (ids - 1) % count + 1, 0)
    return np.rint(lut[index] * 255).astype(np.uint8)


def mosaic(panels: list[tuple[str, np.ndarray]], height: int = 240) -> np.ndarray:
    """Titled (H, W, 3) uint8 RGB panels side by side, each scaled to ``height`` rows."""
    import cv2

    tiles = []
    for title, img in panels:
        w = max(1, round(img.shape[1] * height / img.shape[0]))
        tile = cv2.resize(np.ascontiguousarray(img), (w, height),
                          interpolation=cv2.INTER_AREA)
        bar = np.full((22, w, 3), 255, np.uint8)
        cv2.putText(bar, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        tiles.append(np.vstack([bar, tile]))
    return np.hstack(tiles)
