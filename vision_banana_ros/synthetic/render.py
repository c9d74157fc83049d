"""Render a synthetic dataset: scenes in worker processes, shards on disk, optional bag.

Two renderers draw the same settled pybullet scenes: ``pybullet`` (TinyRenderer, fast, for
tests and quick data) and ``blender`` (Cycles, photoreal: :mod:`.blender`).

Scene ``i`` of seed ``s`` is built from ``SeedSequence([s, i])`` in a fresh world, so its
content does not depend on which worker renders it or in which order: the same seed gives
byte-identical shards with any number of workers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.synthetic.scene import Frame, SceneBuilder, SceneConfig
from vision_banana_ros.synthetic.shards import FORMAT, INDEX, iter_frames, scene_arrays, write_npz

_builder: SceneBuilder | None = None
_blender: Any = None
RENDERERS = ("pybullet", "blender")


def scene_rng(seed: int, scene: int) -> np.random.Generator:
    """The generator of scene ``scene`` of dataset seed ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, scene]))


def render_scene(builder: SceneBuilder, seed: int, scene: int, views: int,
                 blender: Any = None) -> list[Frame]:
    """Build scene ``scene`` and render ``views`` views of it (with Blender when given)."""
    rng = scene_rng(seed, scene)
    built = builder.build(rng)
    if blender is not None:
        from vision_banana_ros.synthetic.blender import describe

        centre = np.array([*built.object_centre, built.support_height_m])
        blender.build(describe(builder, built), rng, centre)
    sizes = builder.config.resolutions
    size = sizes[int(rng.integers(len(sizes)))]  # one per scene: its views share a shard
    frames = []
    for _ in range(views):
        camera = builder.sample_camera(built, rng, size)
        if blender is not None:
            frame = blender.render(built, camera, rng, builder.config.sensor_effects)
        else:
            frame, _ = builder.render(built, camera, rng)
        frame.meta.update(built.meta)
        frames.append(frame)
    return frames


def _init_worker(config: SceneConfig, renderer: str = "pybullet", samples: int = 16) -> None:
    global _builder, _blender
    # Quiet pybullet's banner and keep each worker on one thread.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _builder = SceneBuilder(config)
    if renderer == "blender":
        from vision_banana_ros.synthetic.blender import BlenderRenderer

        _blender = BlenderRenderer(samples=samples, threads=1)


def _work(job: tuple[Path, int, int, int]) -> dict[str, Any]:
    out, seed, scene, views = job
    assert _builder is not None  # set by _init_worker
    frames = render_scene(_builder, seed, scene, views, _blender)
    name = f"scene-{scene:06d}.npz"
    write_npz(out / name, scene_arrays(frames))
    h, w = frames[0].rgb.shape[:2]
    return {"file": name, "scene": scene, "views": views, "width": w, "height": h,
            "objects": int(frames[0].meta.get("objects", 0))}


def check_output_folder(out: Path) -> None:
    """Create ``out`` or fail with one clear line when it cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise VisionBananaError(f"output folder {out} is not writable: "
                                f"{err.strerror or err}") from err


def render_dataset(out: Path, *, scenes: int, views: int, seed: int, workers: int,
                   config: SceneConfig | None = None, progress: bool = True,
                   command: str = "",
                   on_scene: Callable[[dict[str, Any]], None] | None = None,
                   renderer: str = "pybullet", samples: int = 16) -> dict[str, Any]:
    """Render ``scenes`` scenes of ``views`` views into ``out``; return the index.

    Raises:
        VisionBananaError: bad counts, bad config, or an unwritable folder.
    """
    if scenes < 1:
        raise VisionBananaError(f"number of scenes must be at least 1, got {scenes}")
    if views < 1:
        raise VisionBananaError(f"views per scene must be at least 1, got {views}")
    if workers < 1:
        raise VisionBananaError(f"workers must be at least 1, got {workers}")
    if renderer not in RENDERERS:
        raise VisionBananaError(f"renderer must be one of {', '.join(RENDERERS)}, got "
                                f"{renderer!r}")
    if renderer == "blender":
        from vision_banana_ros.synthetic.blender import blender_available

        ok, why = blender_available()
        if not ok:
            raise VisionBananaError(why)
    config = config or SceneConfig()
    config.validate()
    check_output_folder(out)
    jobs = [(out, seed, i, views) for i in range(scenes)]
    entries: list[dict[str, Any]] = []
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=scenes * views, unit="frame", desc="render", file=sys.stderr)
    if workers == 1:
        _init_worker(config, renderer, samples)
        results = map(_work, jobs)
    else:
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker,
                                            initargs=(config, renderer, samples))
        results = pool.imap_unordered(_work, jobs)
    try:
        for entry in results:
            entries.append(entry)
            if bar is not None:
                bar.update(entry["views"])
            if on_scene is not None:
                on_scene(entry)
    finally:
        if workers > 1:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - start
    entries.sort(key=lambda e: e["scene"])
    index = {"format": FORMAT, "seed": seed, "views_per_scene": views,
             "frames": scenes * views, "config": asdict(config), "command": command,
             "renderer": renderer, "samples": samples if renderer == "blender" else None,
             "shards": entries}
    (out / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    index["elapsed_s"] = elapsed
    return index


#: Ground-truth topics of RGB-D bags whose camera depth is a simulated sensor's, as in the
#: shared real_cleargrasp_rgbd bag.
TRUTH_DEPTH, TRUTH_TRANSPARENT = "/ground_truth/depth/image_raw", "/ground_truth/transparent_mask"


def shards_to_bag(folder: Path, bag: Path, *, storage: str = "mcap",
                  sensor_depth: bool = False, seed: int = 0) -> int:
    """Write every frame of a shard folder into a RealSense-layout bag; returns frames.

    ``sensor_depth``: the camera depth topic carries what a depth camera would measure
    (:func:`~.sensor.simulate_sensor_depth`, seeded per frame), and the exact depth and the
    transparent-object mask go to ``/ground_truth/...`` topics, as in real_cleargrasp_rgbd.
    """
    from vision_banana_ros.bags import RgbdBagWriter, image_msg
    from vision_banana_ros.bags.messages import depth_mm_from_metres
    from vision_banana_ros.synthetic.sensor import TRANSPARENT, simulate_sensor_depth

    with RgbdBagWriter(bag, storage=storage) as writer:
        for i, frame in enumerate(iter_frames(folder)):
            if not sensor_depth:
                writer.write(frame.rgb, frame.depth, frame.k, frame.instances)
                continue
            camera = simulate_sensor_depth(frame.depth, frame.k,
                                           np.random.default_rng([seed, i]), frame.material,
                                           frame.depth_through)
            stamp = writer.write(frame.rgb, camera, frame.k, frame.instances)
            glass = (frame.material == TRANSPARENT if frame.material is not None
                     else np.zeros(frame.depth.shape, bool))
            writer.write_message(TRUTH_DEPTH, "sensor_msgs/msg/Image", stamp, image_msg(
                depth_mm_from_metres(frame.depth), "16UC1", stamp, writer.frame_id))
            writer.write_message(TRUTH_TRANSPARENT, "sensor_msgs/msg/Image", stamp, image_msg(
                (glass * 255).astype(np.uint8), "mono8", stamp, writer.frame_id))
        return writer.count
