#!/usr/bin/env python3
"""Ship a trained checkpoint as the default model and write its card.

    .venv/bin/python scripts/make_model_card.py runs/default/model.pt [--real-data DIR]

Copies the checkpoint to vision_banana_ros/models/default.pt (plain data only, so it loads with
weights_only=True), evaluates it on the held-out synthetic split it was trained with and on every
bag under --real-data with `vision-banana eval`, measures size and latency, and writes
vision_banana_ros/models/MODEL_CARD.md and model_metrics.json next to it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision_banana_ros.model import load_model, save_checkpoint  # noqa: E402
from vision_banana_ros.model.checkpoint import read_checkpoint  # noqa: E402

MODELS = ROOT / "vision_banana_ros" / "models"


def _plain(value):
    """Containers of plain Python types only (weights_only loading accepts nothing else)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def ship(src: Path) -> Path:
    try:
        doc = read_checkpoint(src)
    except Exception:  # a checkpoint written before TorchVersion was stored as str
        doc = torch.load(src, map_location="cpu", weights_only=False)  # our own trusted file
    model, _ = _load_from_doc(doc)
    target = MODELS / "default.pt"
    save_checkpoint(target, model, train=_plain(doc.get("train", {})),
                    metrics=_plain({k: v for k, v in doc.get("metrics", {}).items()
                                    if k != "history"}))
    torch.load(target, weights_only=True)  # proves it loads without pickle code
    return target


def _load_from_doc(doc):
    from vision_banana_ros.model import ModelConfig, build_model

    cfg = ModelConfig.from_dict({**doc["model_config"], "pretrained": False})
    model = build_model(cfg)
    model.load_state_dict(doc["state_dict"])
    return model.eval(), doc


def heldout(model_path: Path, val: Path) -> dict:
    from vision_banana_ros.training.data import evaluation_samples
    from vision_banana_ros.training.train import evaluate

    model, _ = load_model(model_path)
    cfg = model.config
    samples = evaluation_samples(val, cfg.input_width, cfg.input_height, cfg.canonical_focal_px)
    return evaluate(model, samples, cfg.tasks)


def real_bags(folder: Path, out: Path) -> dict:
    results = {}
    for bag in sorted(p for p in folder.iterdir() if (p / "metadata.yaml").exists()):
        target = out / bag.name
        res = subprocess.run([str(ROOT / ".venv" / "bin" / "vision-banana"), "eval", str(bag),
                              "--out", str(target), "--backend", "onnxruntime", "--quiet",
                              "--no-bag"], capture_output=True, text=True, timeout=900)
        if res.returncode not in (0, 1):
            results[bag.name] = {"error": res.stderr.strip().splitlines()[-1:]}
            continue
        doc = json.loads((target / "metrics.json").read_text())
        results[bag.name] = {"frames": doc["frames"], "summary": doc["summary"],
                             "depth_by_range": doc["depth_by_range"], "notes": doc["notes"],
                             "inference_p50_ms": doc["latency_ms"]["inference"]["p50"]}
    return results


def latency(model_path: Path) -> dict:
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.runtime.select import create_backend
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    torch.set_num_threads(2)
    f = render_spheres_on_plane(640, 480, n_spheres=6, seed=1)
    out = {}
    for name in ("onnxruntime", "torch"):
        b = create_backend(name, str(model_path), threads=2)
        pipe = Pipeline(b, b.config, "depth,instances")
        for _ in range(3):
            pipe(f.rgb, f.k)
        times = []
        for _ in range(20):
            t = time.perf_counter()
            pipe(f.rgb, f.k)
            times.append(time.perf_counter() - t)
        out[name] = {"p50_ms": float(np.median(times) * 1e3),
                     "p99_ms": float(np.percentile(times, 99) * 1e3)}
        b.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--val", type=Path, default=ROOT / "data" / "val")
    ap.add_argument("--real-data", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "card")
    args = ap.parse_args()
    target = ship(args.checkpoint)
    doc = torch.load(target, weights_only=True)
    metrics = {"heldout_synthetic": heldout(target, args.val),
               "real": real_bags(args.real_data, args.out) if args.real_data.exists() else {},
               "latency_640x480_depth_instances": latency(target),
               "size_mb": target.stat().st_size / 2**20,
               "parameters_m": sum(v.numel() for v in doc["state_dict"].values()) / 1e6,
               "train": doc["train"]}
    (MODELS / "model_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if k != "train"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
