"""``vision-banana``: the command-line tool.

Each subcommand lives in its own module and registers ``add_parser(subparsers)``; bad input
(:class:`~vision_banana_ros.errors.VisionBananaError` and ``OSError``) prints one line and exits
with status 2, an interrupt exits with 130, anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vision_banana_ros import __version__
from vision_banana_ros.errors import VisionBananaError


def _cmd_bench(args: argparse.Namespace) -> int:
    from vision_banana_ros.bench import format_table, run_benchmarks

    results = run_benchmarks(args.only or None, quick=args.quick, out=args.out)
    print(format_table(results))
    print(f"\nwrote {args.out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.codecs_only:
        from vision_banana_ros.demo import run_codec_demo

        print(run_codec_demo(args.out))
        return 0
    from vision_banana_ros.ros.demo import run_demo

    print(run_demo(args.out, bag=args.bag, model=args.model, frames=args.frames,
                   rate_hz=args.rate, backend=args.backend, renderer=args.renderer))
    print(f"pictures and summary.md in {args.out.resolve()}")
    return 0


def _render_elsewhere(argv: list[str]) -> int | None:
    """Run this render command in the render environment when Blender is not importable here
    (bpy needs numpy < 2 and lives in a virtual environment of its own); None: render here."""
    from vision_banana_ros.synthetic.blender import blender_available, run_in_render_env

    return None if blender_available()[0] else run_in_render_env(argv)


def _cmd_render(args: argparse.Namespace) -> int:
    if args.renderer == "blender":
        code = _render_elsewhere(sys.argv[1:])
        if code is not None:
            return code
    from vision_banana_ros.synthetic.render import render_dataset, shards_to_bag
    from vision_banana_ros.synthetic.scene import SceneConfig

    sizes = [_size(text) for text in args.size] if args.size else [(args.width, args.height)]
    for w, h in sizes:
        if w < 8 or h < 8:
            raise VisionBananaError(f"image size {w}x{h} is too small")
    config = SceneConfig(resolutions=tuple(sizes),
                         hfov_deg=(args.hfov_min, args.hfov_max),
                         min_objects=args.min_objects, max_objects=args.max_objects,
                         sensor_effects=args.sensor_effects)
    if args.bag is not None and args.bag.exists():
        raise VisionBananaError(f"bag {args.bag} already exists")
    index = render_dataset(args.out, scenes=args.scenes, views=args.views, seed=args.seed,
                           workers=args.workers, config=config, progress=not args.quiet,
                           command="vision-banana " + " ".join(sys.argv[1:]),
                           renderer=args.renderer, samples=args.samples)
    fps = index["frames"] / index["elapsed_s"]
    shown = ", ".join(f"{w}x{h}" for w, h in sizes)
    print(f"rendered {index['frames']} frames ({args.scenes} scenes x {args.views} views, "
          f"{shown}) into {args.out} in {index['elapsed_s']:.1f} s "
          f"({fps:.1f} frames/s, {args.workers} workers)")
    if args.bag is not None:
        n = shards_to_bag(args.out, args.bag, storage=args.storage)
        print(f"wrote {n} frames to bag {args.bag} ({args.storage})")
    return 0


def _size(text: str) -> tuple[int, int]:
    """``"256x192"`` -> (256, 192); anything else raises naming it."""
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise VisionBananaError(f"--size takes WIDTHxHEIGHT (for example 256x192), got {text!r}")
    return int(w), int(h)


def _cmd_train(args: argparse.Namespace) -> int:
    from vision_banana_ros.training.train import TrainConfig, train

    overrides = {"data": args.data, "val_data": args.val_data, "out": args.out,
                 "steps": args.steps, "batch_size": args.batch_size, "device": args.device,
                 "teacher": args.teacher, "time_limit_s": args.time_limit}
    if args.config is not None:
        cfg = TrainConfig.from_yaml(args.config, **overrides)
    else:
        cfg = TrainConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    if args.arch is not None:
        cfg.model = {**cfg.model, "arch": args.arch}
    metrics = train(cfg, resume=args.resume, command="vision-banana " + " ".join(sys.argv[1:]),
                    progress=not args.quiet)
    print(f"trained to {cfg.out}/model.pt; held-out: " + ", ".join(
        f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from vision_banana_ros.model import load_model
    from vision_banana_ros.model.export import export_onnx, parity
    from vision_banana_ros.runtime.select import resolve_model

    model_path = resolve_model(args.model)
    model, _ = load_model(model_path)
    tasks = tuple(t.strip() for t in args.tasks.split(",")) if args.tasks else None
    out = export_onnx(model, args.out, decode_in_graph=args.decode_in_graph, tasks=tasks,
                      opset=args.opset)
    print(f"exported {model_path} to {out} (opset {args.opset}, "
          f"{'decoders in the graph' if args.decode_in_graph else 'paintings'})")
    if not args.decode_in_graph:
        rng = np.random.default_rng(0)
        cfg = model.config
        images = rng.random((2, 3, cfg.input_height, cfg.input_width), dtype=np.float32)
        diff = parity(model, out, images, np.arange(len(cfg.tasks)))
        print(f"parity ONNX Runtime vs PyTorch: max abs difference {diff:.2e} on paintings "
              f"({'ok' if diff <= 1e-4 else 'ABOVE 1e-4'})")
        if diff > 1e-4:
            return 1
    return 0


def _cmd_build_engine(args: argparse.Namespace) -> int:
    from vision_banana_ros.runtime.select import (
        TENSORRT_HINT,
        onnx_for,
        resolve_model,
        tensorrt_available,
    )

    ok, why = tensorrt_available()
    if not ok:
        raise VisionBananaError(TENSORRT_HINT if "not installed" in why else why)
    from vision_banana_ros.runtime.tensorrt_backend import TensorRTBackend

    calibration = None
    if args.precision == "int8":
        from vision_banana_ros.model.onnx_meta import onnx_metadata
        from vision_banana_ros.runtime.calibration import (
            calibration_set,
            frame_source,
            interleave,
        )

        if not args.calibration_data:
            raise VisionBananaError("int8 needs --calibration-data (shard folders or bags)")
        import json

        from vision_banana_ros.model.config import ModelConfig

        onnx = onnx_for(resolve_model(args.model))
        cfg = ModelConfig.from_dict(json.loads(onnx_metadata(onnx)[
            "vision_banana_ros.model_config"]))
        sources = [frame_source(path) for path in args.calibration_data]
        calibration = calibration_set(interleave(*sources), cfg, args.calibration_frames)
        print(f"int8 calibration: {len(calibration)} frames, {calibration.with_depth} with "
              "the camera's depth")
    backend = TensorRTBackend(onnx_for(resolve_model(args.model)), precision=args.precision,
                              max_batch=args.max_batch, max_tasks=args.max_tasks,
                              workspace_mb=args.workspace_mb, dla_core=args.dla_core,
                              calibration=calibration)
    print(f"engine: {backend.engine_path}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    if not 0.0 <= args.hide_depth < 1.0:
        raise VisionBananaError(f"--hide-depth takes a fraction in [0, 1), got {args.hide_depth}")
    from vision_banana_ros.evaluation.bag_eval import Evaluation
    from vision_banana_ros.evaluation.config import EvalConfig, parse_thresholds

    cfg = EvalConfig(bag=args.bag, out=args.out, image_topic=args.image_topic,
                     info_topic=args.camera_info_topic, depth_topic=args.depth_topic,
                     instances_topic=args.instances_topic, semantic_topic=args.semantic_topic,
                     pred_depth_topic=args.pred_depth_topic,
                     pred_instances_topic=args.pred_instances_topic,
                     sensor_depth_topic=args.sensor_depth_topic,
                     transparent_topic=args.transparent_topic, depth_input=args.depth_input,
                     hide_depth=args.hide_depth, depth_fill=args.depth_fill,
                     depth_consistency=args.depth_consistency,
                     model=args.model, backend=args.backend, device=args.device,
                     precision=args.precision, threads=args.threads, tasks=args.tasks,
                     instances_source=args.instances_source,
                     support_plane_from_gt=args.support_plane_from_gt,
                     max_frames=args.max_frames, write_bag=not args.no_bag,
                     plots=not args.no_plots, fail_under=parse_thresholds(args.fail_under),
                     progress=not args.quiet)
    if args.live:
        from vision_banana_ros.ros.live_eval import live_eval

        doc = live_eval(cfg, rate_hz=args.rate, start_node=not args.no_start_node,
                        node_name=args.node_name)
    else:
        doc = Evaluation(cfg).run()
    s = doc["summary"]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in s.items() if v is not None) or \
        "no accuracy (the bag has no ground truth)"
    fps = doc.get("throughput_fps")
    print(f"evaluated {doc['frames']} frames of {args.bag}: {shown}; "
          f"{fps:.1f} frames/s" if fps else f"evaluated {doc['frames']} frames: {shown}")
    for note in doc["notes"]:
        print(f"note: {note}")
    print(f"wrote {args.out}/metrics.json, report.md, frames.csv"
          f"{'' if args.no_bag else ', outputs/ (bag)'}")
    if doc["interrupted"]:
        return 130
    if not doc["passed"]:
        failed = [f"{k} {c['value']} (needs {c['threshold']})"
                  for k, c in doc["fail_under"].items() if not c["passed"]]
        print(f"vision-banana eval: FAILED thresholds: {', '.join(failed) or 'unknown metric'}",
              file=sys.stderr)
        return 1
    return 0


def _add_demo(sub: Any) -> None:
    """``vision-banana demo``."""
    demo = sub.add_parser("demo", help="run the main job and write images a person can look at")
    demo.add_argument("--out", type=Path, default=Path("demo_output"),
                      help="output folder (default: %(default)s)")
    demo.add_argument("--bag", type=Path, help="replay this bag instead of rendered frames")
    demo.add_argument("--model", help="checkpoint or ONNX (default: the shipped model)")
    demo.add_argument("--backend", default="auto")
    demo.add_argument("--frames", type=int, default=6, help="frames to render (default: 6)")
    demo.add_argument("--rate", type=float, default=1.0, help="replay rate in Hz (default: 1)")
    demo.add_argument("--renderer", choices=("auto", "blender", "pybullet"), default="auto",
                      help="draws the frames: auto is Blender's Cycles where `make render-env` "
                           "made its environment, else pybullet (default: %(default)s)")
    demo.add_argument("--codecs-only", action="store_true",
                      help="only the codec round trip on an analytic scene (no ROS)")
    demo.set_defaults(func=_cmd_demo)


def _add_render(sub: Any) -> None:
    """``vision-banana render``."""
    render = sub.add_parser("render", help="render synthetic tabletop scenes with exact ground "
                            "truth (shards for training, optionally a bag)")
    render.add_argument("--out", type=Path, required=True, help="shard folder to write")
    render.add_argument("--scenes", type=int, default=10, help="scenes (default: %(default)s)")
    render.add_argument("--views", type=int, default=4,
                        help="camera views per settled scene (default: %(default)s)")
    render.add_argument("--width", type=int, default=320, help="image width (default: 320)")
    render.add_argument("--height", type=int, default=240, help="image height (default: 240)")
    render.add_argument("--size", action="append", metavar="WxH",
                        help="image size, repeatable: each scene takes one of them (for "
                             "example 256x192 and 320x180 for 4:3 and 16:9 cameras); "
                             "overrides --width/--height")
    render.add_argument("--hfov-min", type=float, default=55.0,
                        help="smallest horizontal field of view, degrees (default: 55)")
    render.add_argument("--hfov-max", type=float, default=95.0,
                        help="largest horizontal field of view, degrees (default: 95)")
    render.add_argument("--min-objects", type=int, default=1)
    render.add_argument("--max-objects", type=int, default=14)
    render.add_argument("--sensor-effects", type=float, default=1.0,
                        help="strength of noise/blur/JPEG/colour jitter, 0 = off (default: 1)")
    render.add_argument("--renderer", choices=("pybullet", "blender"), default="pybullet",
                        help="pybullet's TinyRenderer (fast) or Blender's Cycles (photoreal; "
                             "needs the render environment, `make render-env`)")
    render.add_argument("--samples", type=int, default=16,
                        help="Cycles samples per pixel, denoised (default: 16)")
    render.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    render.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                        help="worker processes (default: %(default)s)")
    render.add_argument("--bag", type=Path, help="also write the frames as a ROS 2 bag here")
    render.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap",
                        help="bag storage (default: mcap)")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(func=_cmd_render)


def _add_train(sub: Any) -> None:
    """``vision-banana train``."""
    tr = sub.add_parser("train", help="distil the generator from synthetic shards")
    tr.add_argument("--config", type=Path, help="YAML training config (flags override it)")
    tr.add_argument("--data", help="training shard folder")
    tr.add_argument("--val-data", help="held-out shard folder")
    tr.add_argument("--out", help="run folder (checkpoints, metrics.jsonl)")
    tr.add_argument("--steps", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--device", help="auto, cpu, cuda")
    tr.add_argument("--arch", help="model architecture (vb-lite0, vb-tiny)")
    tr.add_argument("--teacher", help="ground_truth or a path to an ONNX depth model")
    tr.add_argument("--time-limit", type=float, help="stop after this many seconds")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_train)


def _add_export(sub: Any) -> None:
    """``vision-banana export``."""
    ex = sub.add_parser("export", help="export a checkpoint to ONNX and check parity")
    ex.add_argument("--model", help="checkpoint (default: the shipped model)")
    ex.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    ex.add_argument("--decode-in-graph", action="store_true",
                    help="include the depth/semantic/normals decoders (GPU engines)")
    ex.add_argument("--tasks", help="tasks of a decoded graph (default: all)")
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    ex.set_defaults(func=_cmd_export)


def _add_build_engine(sub: Any) -> None:
    """``vision-banana build-engine``."""
    be = sub.add_parser("build-engine", help="build and cache a TensorRT engine ahead of time")
    be.add_argument("--model", help="checkpoint or ONNX (default: the shipped model)")
    be.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    be.add_argument("--max-batch", type=int, default=1)
    be.add_argument("--max-tasks", type=int, default=4)
    be.add_argument("--workspace-mb", type=int, default=2048)
    be.add_argument("--dla-core", type=int, help="DLA core on Jetson")
    be.add_argument("--calibration-data", type=Path, action="append",
                    help="int8: a shard folder (its simulated sensor depth) or a bag of real "
                         "frames (its camera depth) (repeatable; frames mixed evenly, 30 %% "
                         "without depth, as in training)")
    be.add_argument("--calibration-frames", type=int, default=256)
    be.set_defaults(func=_cmd_build_engine)


def _add_eval(sub: Any) -> None:
    """``vision-banana eval``."""
    ev = sub.add_parser("eval", help="accuracy and speed on a recorded bag")
    ev.add_argument("bag", type=Path, help="ROS 2 bag folder (mcap/sqlite3) or ROS 1 .bag")
    ev.add_argument("--out", type=Path, required=True, help="output folder")
    ev.add_argument("--image-topic")
    ev.add_argument("--camera-info-topic")
    ev.add_argument("--depth-topic", help="ground truth depth (16UC1 mm or 32FC1 m)")
    ev.add_argument("--instances-topic", help="ground truth instance ids (16UC1)")
    ev.add_argument("--semantic-topic", help="ground truth class ids (mono8)")
    ev.add_argument("--pred-depth-topic",
                    help="score depth predictions recorded in the bag (no model is run)")
    ev.add_argument("--pred-instances-topic",
                    help="score instance predictions recorded in the bag")
    ev.add_argument("--sensor-depth-topic",
                    help="the camera's own depth when the bag has ground truth apart from it "
                         "(detected: a /ground_truth/... depth topic)")
    ev.add_argument("--transparent-topic", help="mono8 mask of transparent objects")
    ev.add_argument("--depth-input", choices=("auto", "on", "off"), default="auto",
                    help="auto: feed the camera's depth to the model when the bag has ground "
                         "truth apart from it, or with --hide-depth; on: also when it is the "
                         "bag's only depth (instances scored with depth; depth figures then "
                         "not meaningful); off: RGB only")
    ev.add_argument("--support-plane-from-gt", action="store_true",
                    help="fit each frame's support plane on the ground-truth depth (as a "
                         "calibration would give it) and give it to the node's scale anchor: "
                         "frames without the camera's depth are scaled by it (raw_delta1 is "
                         "the depth before)")
    ev.add_argument("--hide-depth", type=float, default=0.0, metavar="FRACTION",
                    help="hide seeded blobs covering FRACTION of the valid camera depth from "
                         "the input and score the completion on exactly those pixels")
    ev.add_argument("--depth-fill", choices=("holes", "all", "none"), default="holes",
                    help="the node's depth_fill with camera depth (default: holes)")
    ev.add_argument("--depth-consistency", type=float, default=0.15,
                    help="the node's depth_consistency (default: 0.15)")
    ev.add_argument("--model", help="checkpoint or ONNX (default: the shipped model)")
    ev.add_argument("--backend", default="auto")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--precision", default="fp32")
    ev.add_argument("--threads", type=int, default=2)
    ev.add_argument("--tasks", default="depth,instances,semantic,normals")
    ev.add_argument("--instances-source", choices=("geometry", "clusters", "painting"),
                    default="geometry",
                    help="the node's instances_source (default: %(default)s)")
    ev.add_argument("--max-frames", type=int)
    ev.add_argument("--fail-under", action="append", metavar="NAME=VALUE",
                    help="exit 1 unless the metric reaches VALUE (at most VALUE for abs_rel, "
                         "rmse, chamfer_m); repeatable")
    ev.add_argument("--no-bag", action="store_true", help="do not write the output bag")
    ev.add_argument("--no-plots", action="store_true")
    ev.add_argument("--live", action="store_true",
                    help="publish the bag over ROS 2 into a running node and record its outputs")
    ev.add_argument("--rate", type=float, default=10.0, help="live: publish rate (0: recorded)")
    ev.add_argument("--node-name", default="/vision_banana", help="live: the node's name")
    ev.add_argument("--no-start-node", action="store_true",
                    help="live: use a node that is already running")
    ev.add_argument("--quiet", action="store_true")
    ev.set_defaults(func=_cmd_eval)


def _add_bench(sub: Any) -> None:
    """``vision-banana bench``."""
    bench = sub.add_parser("bench", help="run benchmarks (ratios against named baselines)")
    bench.add_argument("--only", action="append", metavar="GROUP",
                       help="benchmark group to run (repeatable; default: all)")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--out", type=Path, default=Path("bench_results.json"),
                       help="JSON output file (default: %(default)s)")
    bench.set_defaults(func=_cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="vision-banana",
        description="Vision Banana ROS 2 perception: demo, benchmarks and tools.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_demo, _add_render, _add_train, _add_export, _add_build_engine, _add_eval,
                _add_bench):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vision-banana`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (VisionBananaError, OSError) as err:
        print(f"vision-banana {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vision-banana {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
