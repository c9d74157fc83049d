"""The codec demo: paint an analytic scene's ground truth for every task and decode it back.

Writes the paintings (8-bit PNG, as a generator would output them) and decoded views, and
returns a short summary of the round-trip errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision_banana_ros.codecs import TASKS, depth_quantisation_step_m
from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.synthetic.analytic import render_spheres_on_plane


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise VisionBananaError(f"could not write {path}")


def run_codec_demo(out: Path) -> str:
    """Round-trip one 320x240 analytic frame through every task codec; return a summary."""
    out.mkdir(parents=True, exist_ok=True)
    frame = render_spheres_on_plane(n_spheres=5, seed=7)
    targets = {"depth": frame.depth, "instances": frame.instances, "semantic": frame.semantic,
               "normals": frame.normals}
    lines = [f"codec demo: 320x240 analytic tabletop, {int(frame.instances.max())} objects, "
             f"output in {out.resolve()}"]
    _write_png(out / "rgb.png", frame.rgb)
    for name, spec in TASKS.items():
        painting = np.rint(spec.encode(targets[name]) * 255).astype(np.uint8)
        _write_png(out / f"painting_{name}.png", painting)
        decoded = spec.decode(painting)
        if name == "depth":
            valid = np.isfinite(frame.depth)
            err = np.abs(decoded[valid] - frame.depth[valid])
            steps = err / depth_quantisation_step_m(frame.depth[valid])
            lines.append(f"  depth:     max error {err.max() * 1e3:.2f} mm "
                         f"({steps.max():.2f} of an 8-bit step)"
                         f"{float(decoded[~valid].min()) if (~valid).any() else 'n/a'}")
        elif name == "instances":
            lines.append(f"  instances: {int(frame.instances.max())} painted, "
                         f"{int(decoded.max())} decoded")
        elif name == "semantic":
            agree = float(np.mean(decoded == frame.semantic))
            lines.append(f"  semantic:  {agree * 100:.2f} % of pixels decode to their class")
        else:
            valid = np.isfinite(frame.normals[..., 0])
            cos = np.clip((decoded[valid] * frame.normals[valid]).sum(-1), -1, 1)
            lines.append(f"  normals:   max angular error "
                         f"{np.degrees(np.arccos(cos)).max():.2f} deg")
    lines.append("  wrote rgb.png and painting_{depth,instances,semantic,normals}.png")
    return "\n".join(lines)
