"""Aggregation and output files of a bag evaluation (metrics.json, report.md, CSV, plots)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.evaluation.config import DEPTH_RANGES, check_thresholds
from vision_banana_ros.evaluation.result import EvalRun

SCHEMA = "vision_banana_ros/eval/1"
AGGREGATES = {
    "delta1": "depth_delta1", "delta2": "depth_delta2", "delta3": "depth_delta3",
    "abs_rel": "depth_abs_rel", "rmse": "depth_rmse",
    "median_scaled_abs_rel": "depth_ms_abs_rel", "median_scaled_delta1": "depth_ms_delta1",
    "f_measure": "instances_f_measure", "precision": "instances_precision",
    "recall": "instances_recall", "matched_iou": "instances_matched_iou",
    "objects_f75": "instances_objects_f75",
    "boundary_precision": "instances_boundary_precision",
    "boundary_recall": "instances_boundary_recall",
    "boundary_f_measure": "instances_boundary_f_measure",
    "semantic_miou": "semantic_miou", "chamfer_m": "chamfer_m",
    # RGB-D input: completion where the camera had no depth, on transparent objects, on the
    # hidden blobs (--hide-depth), and the fraction of valid camera depth published as is.
    "holes_delta1": "holes_delta1", "holes_abs_rel": "holes_abs_rel",
    "transparent_delta1": "transparent_delta1", "transparent_abs_rel": "transparent_abs_rel",
    "hidden_delta1": "hidden_delta1", "hidden_abs_rel": "hidden_abs_rel",
    "sensor_kept": "sensor_kept",
    # The support-plane scale anchor (--support-plane-from-gt): the depth before it, its scale
    # and how often it refused; with the camera's depth, its scale over the camera's.
    "raw_delta1": "raw_delta1", "raw_abs_rel": "raw_abs_rel", "depth_scale": "depth_scale",
    "anchor_refused": "anchor_refused", "anchor_check": "anchor_check",
    # Baselines scored on the same frames: a constant at each frame's true median depth, the
    # camera's depth interpolated into its holes, and the non-learned plane + cluster
    # instances.
    "baseline_constant_delta1": "baseline_constant_delta1",
    "baseline_constant_abs_rel": "baseline_constant_abs_rel",
    "baseline_interp_holes_delta1": "baseline_interp_holes_delta1",
    "baseline_interp_transparent_delta1": "baseline_interp_transparent_delta1",
    "baseline_interp_hidden_delta1": "baseline_interp_hidden_delta1",
    "baseline_interp_hidden_abs_rel": "baseline_interp_hidden_abs_rel",
    "baseline_instances_f_measure": "baseline_instances_f_measure",
    "baseline_instances_precision": "baseline_instances_precision",
    "baseline_instances_recall": "baseline_instances_recall",
    "baseline_instances_objects_f75": "baseline_instances_objects_f75",
    "baseline_instances_boundary_f_measure": "baseline_instances_boundary_f_measure",
}


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r and r[key] is not None
              and not (isinstance(r[key], float) and math.isnan(r[key]))]
    return float(np.mean(values)) if values else None


#: Stages of the node's own work on a frame (what the live node would spend), and the
#: evaluator's extra stages: reading and converting on the main thread, metrics and bag writing
#: on the finisher thread.
PIPELINE_STAGES = ("preprocess", "inference", "decode", "postprocess")
EXTRA_STAGES = ("read", "convert", "metrics", "write")


def throughput(latency: dict[str, dict[str, float]], frames: int,
               wall_s: float) -> dict[str, Any]:
    """Frames per second overall and of the node's pipeline alone, and what limits the run.

    ``latency`` is :meth:`~.result.StageTimer.summary` (``total_s`` per stage). The
    evaluation is limited by the pipeline when no extra stage (and neither thread's extra
    work) takes longer.
    """
    total = {stage: v["total_s"] for stage, v in latency.items()}
    pipeline_s = sum(total.get(st, 0.0) for st in PIPELINE_STAGES)
    busy = sum(total.values())
    wall = wall_s if wall_s > 0 else busy
    extra = {st: total.get(st, 0.0) for st in EXTRA_STAGES}
    slowest = max(extra, key=extra.get)
    limited = ("the node's pipeline" if pipeline_s >= max(extra.values())
               and pipeline_s >= extra["metrics"] + extra["write"] else slowest)
    return {
        "throughput_fps": frames / wall if wall > 0 and frames else None,
        "wall_s": wall,
        "pipeline_s": pipeline_s,
        "pipeline_fps": frames / pipeline_s if pipeline_s > 0 and frames else None,
        "network_s": total.get("inference", 0.0),
        "speed_vs_pipeline": (pipeline_s / wall) if wall > 0 and pipeline_s > 0 else None,
        "limited_by": limited,
    }


def aggregate(run: EvalRun) -> dict[str, Any]:
    """The metrics document (schema in the README)."""
    cfg, rows = run.cfg, run.rows
    summary = {name: _mean(rows, key) for name, key in AGGREGATES.items()}
    by_range = []
    for lo, hi in DEPTH_RANGES:
        d1 = _mean(rows, f"depth_delta1_{lo:g}_{hi:g}")
        if d1 is not None:
            by_range.append({"min_m": lo, "max_m": None if math.isinf(hi) else hi,
                             "delta1": d1,
                             "abs_rel": _mean(rows, f"depth_abs_rel_{lo:g}_{hi:g}")})
    latency = run.timer.summary()
    speed = throughput(latency, len(rows), run.wall_s)
    checks, unknown, passed = check_thresholds(summary, cfg.fail_under)
    return {
        "schema": SCHEMA,
        "bag": str(cfg.bag),
        "topics": dict(run.topics),
        "model": ("recorded predictions" if cfg.pred_depth_topic or cfg.pred_instances_topic
                  else str(cfg.model or "default")),
        "backend": run.backend,
        "frames": len(rows),
        "frames_with_depth": sum("depth_delta1" in r for r in rows),
        "frames_with_instances": sum("instances_f_measure" in r for r in rows),
        "summary": summary,
        "depth_by_range": by_range,
        "latency_ms": latency,
        "throughput_fps": speed.pop("throughput_fps"),
        "speed": speed,
        "errors": run.errors,
        "error_examples": run.error_examples,
        "notes": run.notes + ([f"unknown --fail-under metrics: {', '.join(unknown)}; known: "
                               f"{', '.join(AGGREGATES)}"] if unknown else []),
        "interrupted": run.interrupted,
        "fail_under": checks,
        "passed": passed,
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_report(doc: dict[str, Any], path: Path) -> None:
    s = doc["summary"]
    lines = [f"# Evaluation of `{doc['bag']}`", "",
             f"Model `{doc['model']}`, backend {_fmt((doc['backend'] or {}).get('name'))} "
             f"({_fmt((doc['backend'] or {}).get('device'))}), {doc['frames']} frames "
             f"({doc['frames_with_depth']} with ground-truth depth, "
             f"{doc['frames_with_instances']} with ground-truth instances).", ""]
    for note in doc["notes"]:
        lines.append(f"> {note}")
    lines += ["", "## Accuracy", "", "| metric | value |", "|---|---|"]
    for name, value in s.items():
        lines.append(f"| {name} | {_fmt(value)} |")
    if s.get("f_measure") is not None:
        lines += ["", "### Instances beside the plane+cluster baseline (same frames)", "",
                  "| figure | node | baseline |", "|---|---|---|"]
        for label, key in (("overlap precision", "precision"), ("overlap recall", "recall"),
                           ("overlap F", "f_measure"), ("boundary F", "boundary_f_measure"),
                           ("objects with F >= 0.75", "objects_f75")):
            lines.append(f"| {label} | {_fmt(s.get(key))} | "
                         f"{_fmt(s.get('baseline_instances_' + key))} |")
    if doc["depth_by_range"]:
        lines += ["", "### Depth by ground-truth range", "", "| range (m) | delta1 | AbsRel |",
                  "|---|---|---|"]
        for r in doc["depth_by_range"]:
            hi = "inf" if r["max_m"] is None else f"{r['max_m']:g}"
            lines.append(f"| {r['min_m']:g}-{hi} | {_fmt(r['delta1'])} | "
                         f"{_fmt(r['abs_rel'])} |")
    lines += ["", "## Speed: where the time goes", "",
              "| stage | p50 ms | p90 ms | p99 ms | share of time |", "|---|---|---|---|---|"]
    for stage, v in doc["latency_ms"].items():
        lines.append(f"| {stage} | {v['p50']:.2f} | {v['p90']:.2f} | {v['p99']:.2f} | "
                     f"{v['share'] * 100:.1f} % |")
    sp = doc["speed"]
    lines.append(f"\nThroughput: {_fmt(doc['throughput_fps'])} frames/s ({doc['frames']} "
                 f"frames in {sp['wall_s']:.1f} s of wall time).")
    if doc["model"] == "recorded predictions":
        lines.append("No model ran (predictions recorded in the bag): the time is reading, "
                     f"metrics and writing, limited by {sp['limited_by']}.")
    else:
        lines.append(
            f"The node's pipeline alone (preprocess, inference, decode, postprocess) took "
            f"{sp['pipeline_s']:.1f} s ({_fmt(sp['pipeline_fps'])} frames/s): the evaluation "
            f"ran at {_fmt(100 * (sp['speed_vs_pipeline'] or 0))} % of the pipeline's speed, "
            f"limited by {sp['limited_by']}. Metrics and bag writing run on a second thread, "
            "overlapped with the next frame's network; shares are of the summed stage times.")
    if doc["errors"]:
        lines += ["", "## Input problems", "", "| kind | count | example |", "|---|---|---|"]
        for kind, n in doc["errors"].items():
            lines.append(f"| {kind} | {n} | {doc['error_examples'].get(kind, '')} |")
    if doc["fail_under"]:
        lines += ["", "## Gates", "", "| metric | threshold | value | passed |",
                  "|---|---|---|---|"]
        for name, c in doc["fail_under"].items():
            lines.append(f"| {name} | {c['threshold']:g} | {_fmt(c['value'])} | "
                         f"{'yes' if c['passed'] else 'NO'} |")
    path.write_text("\n".join(lines) + "\n")


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def write_plots(ev: EvalRun, out: Path) -> list[str]:
    """error_vs_depth.png, per_frame.png (matplotlib) and example_N.png mosaics."""
    import cv2
    import matplotlib

    from vision_banana_ros.visualize import (
        depth_colormap,
        error_colormap,
        instance_colours,
        mosaic,
    )

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    counts = ev.depth_bins[1]
    if counts.sum() > 0:
        centres = (np.arange(40) + 0.5) * 0.25
        used = counts > 0
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(centres[used], ev.depth_bins[0][used] / counts[used], "o-")
        ax.set_xlabel("ground-truth depth (m)")
        ax.set_ylabel("mean AbsRel")
        ax.set_title("Depth error vs depth")
        ax.grid(alpha=0.3)
        fig.subplots_adjust(left=0.13, right=0.97, bottom=0.15, top=0.9)  # tight_layout: 0.1 s
        fig.savefig(out / "error_vs_depth.png", dpi=100)
        plt.close(fig)
        written.append("error_vs_depth.png")
    series = [k for k in ("depth_delta1", "depth_abs_rel", "instances_f_measure", "total_ms")
              if any(k in r for r in ev.rows)]
    if series and ev.rows:
        fig, axes = plt.subplots(len(series), 1, figsize=(6, 1.8 * len(series)), sharex=True)
        axes = np.atleast_1d(axes)
        for ax, key in zip(axes, series, strict=True):
            ax.plot([r["frame"] for r in ev.rows], [r.get(key, np.nan) for r in ev.rows], ".-")
            ax.set_ylabel(key, fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("frame")
        fig.subplots_adjust(left=0.15, right=0.97, bottom=0.5 / (1.8 * len(series)), top=0.97,
                            hspace=0.15)
        fig.savefig(out / "per_frame.png", dpi=100)
        plt.close(fig)
        written.append("per_frame.png")
    for i, ex in enumerate(ev.examples):  # image mosaics without axes: cv2, not matplotlib
        gt, pred = ex["gt"], ex["pred"]
        valid = np.isfinite(gt) & (gt > 0)
        vmax = float(np.nanpercentile(gt[valid], 98)) if valid.any() else 3.0
        err = np.where(valid, np.abs(pred - gt) / np.where(valid, gt, 1), np.nan)
        panels = [("colour", ex["rgb"]), ("ground-truth depth", depth_colormap(gt, vmax)),
                  ("predicted depth", depth_colormap(pred, vmax)),
                  ("AbsRel error (0-0.5)", error_colormap(err))]
        if ex["ids"] is not None:
            panels.append(("predicted instances", instance_colours(ex["ids"])))
        if ex["gt_ids"] is not None:
            panels.append(("ground-truth instances", instance_colours(ex["gt_ids"])))
        name = f"example_{i}.png"
        cv2.imwrite(str(out / name), mosaic(panels)[..., ::-1])
        written.append(name)
    return written


def write_all(run: EvalRun, doc: dict[str, Any]) -> None:
    """metrics.json, report.md, frames.csv and the plots into the run's output folder."""
    out = run.cfg.out
    if run.cfg.plots:
        doc["plots"] = write_plots(run, out)
    write_csv(run.rows, out / "frames.csv")
    write_report(doc, out / "report.md")
    (out / "metrics.json").write_text(json.dumps(doc, indent=1) + "\n")
