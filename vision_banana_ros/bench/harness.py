"""Benchmark harness: results, timing, comparison and the group registry.

Every benchmark times a candidate against a named baseline in the same run and reports the
ratio (baseline time / candidate time): these machines are shared and noisy, so absolute times
alone mean little. Results are printed as a table and written as JSON.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BENCHMARKS", "BenchResult", "compare", "register", "time_call"]


@dataclass
class BenchResult:
    """One candidate-versus-baseline measurement.

    Times are seconds per call; ``ratio`` is baseline p50 / candidate p50 (> 1: candidate
    faster). ``target`` states the bar the issue sets, ``met`` whether it was met in this run.
    """

    name: str
    candidate: str
    baseline: str
    candidate_p50_s: float
    candidate_p99_s: float
    baseline_p50_s: float
    baseline_p99_s: float
    ratio: float
    target: str = ""
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def compare(name: str, candidate: tuple[str, Callable[[], Any]],
            baseline: tuple[str, Callable[[], Any]], repeats: int, *, target: str = "",
            bar_s: float | None = None, details: dict[str, Any] | None = None) -> BenchResult:
    """Time candidate and baseline in interleaved blocks, so both see the same machine load.

    Blocks of consecutive calls measure the steady state a node sees (strict alternation would
    charge each side for the other's cache and page-fault footprint).

    Args:
        bar_s: when given, ``met`` says whether the candidate's p50 is at most this many seconds.
    """
    cand_times: list[float] = []
    base_times: list[float] = []
    for fn in (candidate[1], baseline[1]):
        fn()  # warm-up, caches, lazy imports
    rounds = max(1, min(5, repeats // 4))
    block = max(1, repeats // rounds)
    for _ in range(rounds):
        cand_times += time_call(candidate[1], block, warmup=1)
        base_times += time_call(baseline[1], block, warmup=1)
    c50, b50 = statistics.median(cand_times), statistics.median(base_times)
    return BenchResult(
        name=name, candidate=candidate[0], baseline=baseline[0],
        candidate_p50_s=c50, candidate_p99_s=_p(cand_times, 0.99),
        baseline_p50_s=b50, baseline_p99_s=_p(base_times, 0.99),
        ratio=b50 / c50 if c50 > 0 else float("inf"),
        target=target, met=None if bar_s is None else c50 <= bar_s, details=details or {})


#: name -> function(quick) returning results; filled by :func:`register`.
BENCHMARKS: dict[str, Callable[[bool], list[BenchResult]]] = {}


def register(name: str) -> Callable[[Callable[[bool], list[BenchResult]]],
                                    Callable[[bool], list[BenchResult]]]:
    """Decorator adding a benchmark group to :data:`BENCHMARKS`."""
    def wrap(fn: Callable[[bool], list[BenchResult]]) -> Callable[[bool], list[BenchResult]]:
        BENCHMARKS[name] = fn
        return fn
    return wrap
