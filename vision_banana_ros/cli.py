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

from vision_banana_ros import __version__
from vision_banana_ros.errors import VisionBananaError


def _cmd_bench(args: argparse.Namespace) -> int:
    from vision_banana_ros.bench import format_table, run_benchmarks

    results = run_benchmarks(args.only or None, quick=args.quick, out=args.out)
    print(format_table(results))
    print(f"\nwrote {args.out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from vision_banana_ros.demo import run_codec_demo

    print(run_codec_demo(args.out))
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from vision_banana_ros.synthetic.render import render_dataset, shards_to_bag
    from vision_banana_ros.synthetic.scene import SceneConfig

    if args.width < 8 or args.height < 8:
        raise VisionBananaError(f"image size {args.width}x{args.height} is too small")
    config = SceneConfig(resolutions=((args.width, args.height),),
                         hfov_deg=(args.hfov_min, args.hfov_max),
                         min_objects=args.min_objects, max_objects=args.max_objects,
                         sensor_effects=args.sensor_effects)
    if args.bag is not None and args.bag.exists():
        raise VisionBananaError(f"bag {args.bag} already exists")
    index = render_dataset(args.out, scenes=args.scenes, views=args.views, seed=args.seed,
                           workers=args.workers, config=config, progress=not args.quiet,
                           command="vision-banana " + " ".join(sys.argv[1:]))
    fps = index["frames"] / index["elapsed_s"]
    print(f"rendered {index['frames']} frames ({args.scenes} scenes x {args.views} views, "
          f"{args.width}x{args.height}) into {args.out} in {index['elapsed_s']:.1f} s "
          f"({fps:.1f} frames/s, {args.workers} workers)")
    if args.bag is not None:
        n = shards_to_bag(args.out, args.bag, storage=args.storage)
        print(f"wrote {n} frames to bag {args.bag} ({args.storage})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="vision-banana",
        description="Vision Banana ROS 2 perception: demo, benchmarks and tools.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the main job and write images a person can look at")
    demo.add_argument("--out", type=Path, default=Path("demo_output"),
                      help="output folder (default: %(default)s)")
    demo.set_defaults(func=_cmd_demo)

    render = sub.add_parser("render", help="render synthetic tabletop scenes with exact ground "
                            "truth (shards for training, optionally a bag)")
    render.add_argument("--out", type=Path, required=True, help="shard folder to write")
    render.add_argument("--scenes", type=int, default=10, help="scenes (default: %(default)s)")
    render.add_argument("--views", type=int, default=4,
                        help="camera views per settled scene (default: %(default)s)")
    render.add_argument("--width", type=int, default=320, help="image width (default: 320)")
    render.add_argument("--height", type=int, default=240, help="image height (default: 240)")
    render.add_argument("--hfov-min", type=float, default=45.0,
                        help="smallest horizontal field of view, degrees (default: 45)")
    render.add_argument("--hfov-max", type=float, default=90.0,
                        help="largest horizontal field of view, degrees (default: 90)")
    render.add_argument("--min-objects", type=int, default=0)
    render.add_argument("--max-objects", type=int, default=20)
    render.add_argument("--sensor-effects", type=float, default=1.0,
                        help="strength of noise/blur/JPEG/colour jitter, 0 = off (default: 1)")
    render.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    render.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                        help="worker processes (default: %(default)s)")
    render.add_argument("--bag", type=Path, help="also write the frames as a ROS 2 bag here")
    render.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap",
                        help="bag storage (default: mcap)")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(func=_cmd_render)

    bench = sub.add_parser("bench", help="run benchmarks (ratios against named baselines)")
    bench.add_argument("--only", action="append", metavar="GROUP",
                       help="benchmark group to run (repeatable; default: all)")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--out", type=Path, default=Path("bench_results.json"),
                       help="JSON output file (default: %(default)s)")
    bench.set_defaults(func=_cmd_bench)
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
