"""What an evaluation run produced, as one typed value the report is written from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vision_banana_ros.evaluation.config import STAGES, EvalConfig
from vision_banana_ros.stats import latency_summary


class StageTimer:
    """Milliseconds per stage (:data:`~.config.STAGES`) of every frame."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {s: [] for s in STAGES}

    def add(self, stage: str, seconds: float) -> None:
        self.samples[stage].append(seconds * 1e3)

    def summary(self) -> dict[str, dict[str, float]]:
        """stage -> :func:`~vision_banana_ros.stats.latency_summary` plus ``share`` of the
        summed stage time."""
        total = sum(sum(v) for v in self.samples.values()) or 1.0
        return {stage: {**latency_summary(v), "share": float(sum(v) / total)}
                for stage, v in self.samples.items() if v}


@dataclass
class EvalRun:
    """Everything :mod:`~vision_banana_ros.evaluation.report` needs.

    Attributes:
        rows: one dict of figures per scored frame (``frames.csv``).
        topics: role -> topic name used (None where absent).
        backend: name, device and precision of the backend (None: recorded predictions).
        depth_bins: (2, 40) sum of AbsRel and pixel count per 0.25 m ground-truth depth bin.
        examples: up to three frames' arrays for the example pictures.
    """

    cfg: EvalConfig
    topics: dict[str, str | None] = field(default_factory=dict)
    backend: dict[str, str] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    timer: StageTimer = field(default_factory=StageTimer)
    errors: dict[str, int] = field(default_factory=dict)
    error_examples: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    examples: list[dict[str, np.ndarray]] = field(default_factory=list)
    depth_bins: np.ndarray = field(default_factory=lambda: np.zeros((2, 40)))
    interrupted: bool = False
    wall_s: float = 0.0

    def error(self, kind: str, message: str) -> None:
        """Count a problem of ``kind``, keeping its first message as the example."""
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.error_examples.setdefault(kind, message)
