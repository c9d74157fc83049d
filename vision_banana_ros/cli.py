"""``vision-banana``: the command-line tool.

Each subcommand lives in its own module and registers ``add_parser(subparsers)``; bad input
(:class:`~vision_banana_ros.errors.VisionBananaError` and ``OSError``) prints one line and exits
with status 2, an interrupt exits with 130, anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
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
