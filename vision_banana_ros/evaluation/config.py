"""Options of a bag evaluation, and the fail-under gates shared by ``eval`` and ``eval --live``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vision_banana_ros.errors import VisionBananaError

#: Ground-truth depth ranges (metres) of the per-range figures.
DEPTH_RANGES = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, math.inf))
#: Timed stages of an evaluation, in order.
STAGES = ("read", "convert", "preprocess", "inference", "decode", "postprocess", "metrics",
          "write")
#: Summary metrics where lower is better: ``--fail-under`` checks "at most" for these.
LOWER_IS_BETTER = frozenset({"abs_rel", "rmse", "median_scaled_abs_rel", "chamfer_m",
                             "holes_abs_rel", "transparent_abs_rel", "hidden_abs_rel",
                             "baseline_constant_abs_rel"})


@dataclass
class EvalConfig:
    """Options of an evaluation (the node's model and backend options included)."""

    bag: Path
    out: Path
    image_topic: str | None = None
    info_topic: str | None = None
    depth_topic: str | None = None
    instances_topic: str | None = None
    semantic_topic: str | None = None
    pred_depth_topic: str | None = None
    pred_instances_topic: str | None = None
    #: The camera's own depth when the bag has separate ground truth (detected).
    sensor_depth_topic: str | None = None
    #: mono8 mask of transparent objects (detected).
    transparent_topic: str | None = None
    #: auto: feed the camera's depth to the model when the bag has ground truth apart from it
    #: (or with hide_depth); on: also when the camera's depth is the bag's only depth (its
    #: depth figures then score the input against itself); off: RGB only.
    depth_input: str = "auto"
    #: Hide seeded blobs covering this fraction of the valid camera depth from the input and
    #: score the completion on exactly those pixels (bags whose only depth is the camera's).
    hide_depth: float = 0.0
    hide_seed: int = 0
    #: The node's depth_fill and depth_consistency parameters.
    depth_fill: str = "holes"
    depth_consistency: float = 0.15
    #: Score the non-learned plane + cluster instance baseline where instances are labelled.
    instance_baseline: bool = True
    #: Fit each frame's support plane on the ground-truth depth (as a calibration would give
    #: it) and give it to the node's scale anchor (frames without camera depth).
    support_plane_from_gt: bool = False
    model: str | None = None
    backend: str = "auto"
    device: str = "auto"
    precision: str = "fp32"
    threads: int = 2
    tasks: str = "depth,instances,semantic,normals"
    instances_source: str = "geometry"
    max_frames: int | None = None
    stamp_tolerance_ms: float = 5.0
    #: A frame whose partners have not all come is given up once the bag is this far past it.
    pairing_horizon_ms: float = 500.0
    write_bag: bool = True
    bag_points_stride: int = 2
    plots: bool = True
    fail_under: dict[str, float] = field(default_factory=dict)
    progress: bool = True


def parse_thresholds(items: list[str] | None) -> dict[str, float]:
    """``["delta1=0.9", "f_measure=0.8"]`` -> dict; bad items raise naming them."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            name, sep, value = part.partition("=")
            try:
                if not sep:
                    raise ValueError
                out[name.strip()] = float(value)
            except ValueError:
                raise VisionBananaError(f"--fail-under takes NAME=VALUE (for example "
                                        f"delta1=0.9), got {part!r}") from None
    return out


def check_thresholds(summary: dict[str, Any],
                     thresholds: dict[str, float]) -> tuple[dict[str, Any], list[str], bool]:
    """(checks by metric, unknown metric names, passed) of ``--fail-under`` gates.

    A metric passes when it is at least its threshold, or at most for
    :data:`LOWER_IS_BETTER`; a metric without a value (no ground truth) fails, and so does a
    name the summary does not know.
    """
    checks = {}
    for name, threshold in thresholds.items():
        value = summary.get(name)
        ok = value is not None and (value <= threshold if name in LOWER_IS_BETTER
                                    else value >= threshold)
        checks[name] = {"threshold": threshold, "value": value, "passed": bool(ok)}
    unknown = sorted(set(thresholds) - set(summary))
    return checks, unknown, all(c["passed"] for c in checks.values()) and not unknown
