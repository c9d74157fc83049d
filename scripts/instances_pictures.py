#!/usr/bin/env python3
"""docs/instances_real.png: per real bag, the input | the node's instances (shipped defaults,
the camera's depth fed) | the plane+cluster baseline's | the ground truth where there is one.

    .venv/bin/python scripts/instances_pictures.py ../shared/data/real/real_ycbv \
        ../shared/data/real/real_uoc ../shared/data/real/real_cleargrasp_rgbd

The first frame of each bag is drawn (``--frame`` picks another); the overlap F of the node
and of the baseline is written in the panel titles where the bag has labels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision_banana_ros import node_config  # noqa: E402
from vision_banana_ros.bags.reader import (  # noqa: E402
    detect_topics,
    iter_stamped,
    open_reader,
    topic_types,
)
from vision_banana_ros.evaluation.metrics import instance_metrics  # noqa: E402
from vision_banana_ros.geometry.baseline import plane_cluster_instances  # noqa: E402
from vision_banana_ros.imageconv import image_array  # noqa: E402
from vision_banana_ros.intake import colour_image, intrinsics, sensor_depth  # noqa: E402
from vision_banana_ros.processing import make_processor  # noqa: E402
from vision_banana_ros.runtime.select import create_backend  # noqa: E402
from vision_banana_ros.visualize import instance_colours, mosaic  # noqa: E402


def bag_frame(bag: Path, index: int) -> dict[str, np.ndarray]:
    """Colour (H, W, 3) uint8, K, the camera's depth (metres) and ground-truth instances (if
    any) of the ``index``-th stamp of an RGB-D bag."""
    reader = open_reader(bag)
    try:
        t = detect_topics(topic_types(reader))
        roles = {t.image: "rgb", t.camera_info: "info", t.sensor_depth or t.depth: "depth",
                 t.instances: "gt"}
        roles.pop(None, None)
        frames = dict(iter_stamped(reader, roles))
    finally:
        reader.close()
    msgs = frames[sorted(frames)[index]]
    rgb = colour_image(msgs["rgb"], 1 << 40)
    h, w = rgb.shape[:2]
    out = {"rgb": rgb, "k": intrinsics(msgs["info"], w, h),
           "depth": sensor_depth(msgs["depth"], w, h)}
    if "gt" in msgs:
        out["gt"] = np.asarray(image_array(msgs["gt"]), np.int64)
    return out


def row(bag: Path, index: int, processor) -> np.ndarray:
    f = bag_frame(bag, index)
    ids = processor(f["rgb"], f["k"], f["depth"]).outputs.instances.astype(np.int64)
    base = plane_cluster_instances(f["depth"], f["k"]).astype(np.int64)

    def title(name: str, pred: np.ndarray) -> str:
        if "gt" not in f:
            return name
        return f"{name}: F {instance_metrics(pred, f['gt']).f_measure:.2f}"

    panels = [(f"{bag.name} (camera depth fed)", f["rgb"]),
              (title("node instances", ids), instance_colours(ids)),
              (title("plane+cluster baseline", base), instance_colours(base))]
    if "gt" in f:
        panels.append(("ground truth (3 objects labelled)", instance_colours(f["gt"])))
    return mosaic(panels, height=240)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bags", nargs="+", type=Path)
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "instances_real.png")
    args = parser.parse_args()
    import cv2

    backend = create_backend("onnxruntime", None, threads=2)
    processor = make_processor(backend, node_config.validate({"publish_points": False,
                                                              "publish_objects": False}))
    rows = [row(bag, args.frame, processor) for bag in args.bags]
    width = max(r.shape[1] for r in rows)
    rows = [np.hstack([r, np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)])
            for r in rows]
    cv2.imwrite(str(args.out), np.vstack(rows)[..., ::-1])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
