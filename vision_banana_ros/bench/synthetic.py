"""Synthetic engine throughput: two worker processes against one, 320x240, 4 views/scene."""

from __future__ import annotations

import tempfile
from pathlib import Path

from vision_banana_ros.bench.harness import BenchResult, compare, register


@register("synthetic")
def bench_synthetic(quick: bool) -> list[BenchResult]:
    """Frames per second of ``render_dataset`` (spawned workers, shards written)."""
    from vision_banana_ros.synthetic.render import render_dataset
    from vision_banana_ros.synthetic.scene import SceneConfig

    scenes, views = (4, 4) if quick else (10, 4)
    frames = scenes * views
    config = SceneConfig(resolutions=((320, 240),))
    tmp = tempfile.TemporaryDirectory(prefix="vb_bench_render_")
    runs = [0]

    def run(workers: int) -> None:
        runs[0] += 1
        render_dataset(Path(tmp.name) / f"run{runs[0]}", scenes=scenes, views=views, seed=0,
                       workers=workers, config=config, progress=False)

    try:
        result = compare(
            f"render 320x240 {frames} frames", ("2 worker processes", lambda: run(2)),
            ("1 worker process", lambda: run(1)), repeats=1 if quick else 2,
            target=">= 10 frames/s with 2 workers", bar_s=frames / 10.0,
            details={"frames": frames, "scenes": scenes, "views_per_scene": views})
    finally:
        tmp.cleanup()
    result.details["fps_2_workers"] = frames / result.candidate_p50_s
    result.details["fps_1_worker"] = frames / result.baseline_p50_s
    return [result]
