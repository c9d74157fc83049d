"""Benchmarks behind ``vision-banana bench``.

Every benchmark times a candidate against a named baseline in the same run and reports the
ratio (baseline time / candidate time): these machines are shared and noisy, so absolute times
alone mean little. Results are printed as a table and written as JSON. The harness is in
:mod:`.harness`, the groups in their own modules, running them in :mod:`.runner`.
"""

from vision_banana_ros.bench.harness import BENCHMARKS, BenchResult, compare, register, time_call
from vision_banana_ros.bench.runner import format_table, run_benchmarks

__all__ = ["BENCHMARKS", "BenchResult", "compare", "format_table", "register", "run_benchmarks",
           "time_call"]
