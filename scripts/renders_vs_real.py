#!/usr/bin/env python3
"""docs/renders_vs_real.png: the same synthetic scenes drawn by pybullet and by Blender's Cycles,
above the first frames of real camera bags.

    .venv/bin/python scripts/renders_vs_real.py ../shared/data/real/real_uoc \
        ../shared/data/real/real_cleargrasp ../shared/data/real/real_sixdof \
        ../shared/data/real/real_cleargrasp_rgbd

The Blender row needs the render environment (``make render-env``); without it the picture
has the pybullet and real rows only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision_banana_ros.runtime.calibration import bag_rgb  # noqa: E402
from vision_banana_ros.synthetic.blender import render_python, run_in_render_env  # noqa: E402
from vision_banana_ros.synthetic.render import render_dataset  # noqa: E402
from vision_banana_ros.synthetic.scene import SceneConfig  # noqa: E402
from vision_banana_ros.synthetic.shards import iter_frames  # noqa: E402
from vision_banana_ros.visualize import mosaic  # noqa: E402

SIZE = (320, 240)


def _renders(folder: Path, renderer: str, scenes: int, seed: int) -> list[np.ndarray]:
    """The first view of ``scenes`` scenes rendered by ``renderer``: (240, 320, 3) uint8."""
    if renderer == "blender":
        code = run_in_render_env(["render", "--out", str(folder), "--scenes", str(scenes),
                                  "--views", "1", "--size", f"{SIZE[0]}x{SIZE[1]}", "--seed",
                                  str(seed), "--workers", "2", "--renderer", "blender",
                                  "--quiet"])
        if code != 0:
            raise SystemExit("renders_vs_real: the Blender render failed (above)")
    else:
        render_dataset(folder, scenes=scenes, views=1, seed=seed, workers=2, progress=False,
                       config=SceneConfig(resolutions=(SIZE,)))
    return [f.rgb for f in iter_frames(folder)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bags", nargs="+", type=Path, help="real bags (first frame of each)")
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "renders_vs_real.png")
    args = parser.parse_args()
    import cv2

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        renderers = ["pybullet"] + (["blender"] if render_python() is not None else [])
        for renderer in renderers:
            frames = _renders(Path(tmp) / renderer, renderer, args.scenes, args.seed)
            rows.append(mosaic([(f"{renderer} scene {i}", f) for i, f in enumerate(frames)]))
    real = [(f"real: {bag.name}", next(iter(bag_rgb(bag)))) for bag in args.bags]
    rows.append(mosaic(real))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({', '.join(renderers)} renders, {len(real)} real frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
