"""Running benchmark groups and printing their results (``vision-banana bench``)."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

from vision_banana_ros.bench.harness import BENCHMARKS, BenchResult
from vision_banana_ros.errors import VisionBananaError


def _load_groups() -> None:
    """Import the group modules: each registers its groups on import."""
    import vision_banana_ros.bench.codecs
    import vision_banana_ros.bench.eval_speed
    import vision_banana_ros.bench.node_load
    import vision_banana_ros.bench.pipeline
    import vision_banana_ros.bench.synthetic  # noqa: F401


def run_benchmarks(names: list[str] | None = None, *, quick: bool = False,
                   out: Path | None = None) -> list[BenchResult]:
    """Run the named groups (all when ``None``); write JSON to ``out`` when given."""
    _load_groups()
    chosen = list(BENCHMARKS) if not names else names
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        raise VisionBananaError(f"unknown benchmark {', '.join(unknown)}; "
                                f"known: {', '.join(BENCHMARKS)}")
    results: list[BenchResult] = []
    for name in chosen:
        results += BENCHMARKS[name](quick)
    if out is not None:
        doc = {
            "created_unix": time.time(),
            "machine": {"platform": platform.platform(), "python": platform.python_version(),
                        "cpu_count": os.cpu_count(), "processor": platform.processor()},
            "quick": quick,
            "results": [asdict(r) for r in results],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
    return results


def format_table(results: list[BenchResult]) -> str:
    """A fixed-width table: candidate and baseline p50/p99 in ms, ratio, target."""
    head = (f"{'benchmark':34} {'candidate p50/p99 ms':>21} {'baseline p50/p99 ms':>20} "
            f"{'ratio':>7}  target")
    rows = [head, "-" * len(head)]
    for r in results:
        met = "" if r.met is None else (" [met]" if r.met else " [NOT met]")
        rows.append(
            f"{r.name:34} {r.candidate_p50_s * 1e3:10.2f}/{r.candidate_p99_s * 1e3:<10.2f}"
            f"{r.baseline_p50_s * 1e3:10.2f}/{r.baseline_p99_s * 1e3:<10.2f}"
            f"{r.ratio:7.1f}x  {r.target}{met}")
        rows.append(f"{'':34} candidate: {r.candidate}; baseline: {r.baseline}")
        extra = {k: v for k, v in r.details.items() if isinstance(v, float)}
        if extra:
            rows.append(f"{'':34} " + ", ".join(f"{k} {v:.1f}" for k, v in extra.items()))
    return "\n".join(rows)
