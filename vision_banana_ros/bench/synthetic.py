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


@register("render_blender")
def bench_render_blender(quick: bool) -> list[BenchResult]:
    """Frames per hour of the photoreal renderer (Blender's Cycles, 16 samples, denoised) at
    256x192 with two workers, against pybullet's renderer on the same scenes in the same run.
    Runs through ``vision-banana render --renderer blender`` (the render environment)."""
    import statistics
    import subprocess
    import sys
    import time

    scenes, views = (4, 2) if quick else (10, 4)
    frames = scenes * views
    tmp = tempfile.TemporaryDirectory(prefix="vb_bench_blender_")

    def run(renderer: str, index: int) -> float:
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "vision_banana_ros.cli", "render", "--out",
                              str(Path(tmp.name) / f"{renderer}{index}"), "--scenes",
                              str(scenes), "--views", str(views), "--size", "256x192",
                              "--workers", "2", "--renderer", renderer, "--quiet"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(res.stderr.strip().splitlines()[-1] if res.stderr else "failed")
        return time.perf_counter() - start

    try:
        blender, pybullet = [], []
        for i in range(1 if quick else 2):  # interleaved: both see the same machine load
            blender.append(run("blender", i))
            pybullet.append(run("pybullet", i))
    except RuntimeError as err:
        return [BenchResult(name="render 256x192 blender", candidate="not run: " + str(err),
                            baseline="pybullet", candidate_p50_s=float("nan"),
                            candidate_p99_s=float("nan"), baseline_p50_s=float("nan"),
                            baseline_p99_s=float("nan"), ratio=float("nan"),
                            target=">= 1500 frames/hour with 2 workers", met=False)]
    finally:
        tmp.cleanup()
    b, p = statistics.median(blender), statistics.median(pybullet)
    per_hour = frames / b * 3600
    return [BenchResult(
        name=f"render 256x192 {frames} frames", candidate="Blender Cycles, 2 workers (whole "
        "command, start-up included)", baseline="pybullet TinyRenderer, 2 workers",
        candidate_p50_s=b, candidate_p99_s=max(blender), baseline_p50_s=p,
        baseline_p99_s=max(pybullet), ratio=p / b, target=">= 1500 frames/hour with 2 workers",
        met=per_hour >= 1500, details={"frames": float(frames), "blender_frames_per_hour":
                                       per_hour, "pybullet_frames_per_hour": frames / p * 3600})]
