#!/usr/bin/env python3
"""Ship a trained checkpoint as the default model and write its card.

    .venv/bin/python scripts/make_model_card.py runs/default/model.pt [--real-data DIR]
    .venv/bin/python scripts/make_model_card.py --card-only   # re-render the card only

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


def _f(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def card(m: dict) -> str:
    t, h = m["train"], m["heldout_synthetic"]
    cfg = t.get("config", {})
    lines = [
        "# Model card: vision_banana_ros default model (`default.pt`)", "",
        "A small task-conditioned image-to-image generator (EfficientNet-Lite0 encoder, "
        "FiLM-conditioned FPN decoder) that paints depth, instances, semantics and normals as "
        "RGB images in the Vision Banana encodings (README, codecs).", "",
        "## Training", "",
        f"- Command: `{t.get('command', '')}` (config `config/train_default.yaml`); steps: "
        f"{t.get('step')}, batch {cfg.get('batch_size')}, AdamW lr {cfg.get('lr')} cosine.",
        f"- Data: `{t.get('data')}`, {t.get('data_frames')} synthetic frames (800 pybullet "
        "scenes x 4 views, 256x192, seed 0: see the config's header for the render "
        "commands); teacher: the renderer's exact ground truth "
        f"(`{t.get('teacher')}`).",
        f"- Compute: {t.get('device')} on the 2-core development machine, "
        f"{t.get('elapsed_s', 0) / 60:.0f} minutes of wall time (shared with other work); "
        f"torch {t.get('torch')}.",
        f"- Size: {m['size_mb']:.1f} MB, {m['parameters_m']:.2f} M parameters, input 256x192.",
        "", "## Held-out synthetic split", "",
        "`data/val`: 40 scenes x 4 views rendered with seed 1 (never seen in training), "
        "scored at the frames' resolution with their K through the node's pipeline.", "",
        "| metric | value | bar (issue) |", "|---|---|---|",
        f"| depth delta1 | {_f(h.get('depth_delta1'))} | >= 0.95 |",
        f"| depth AbsRel | {_f(h.get('depth_abs_rel'))} | <= 0.06 |",
        f"| depth RMSE (m) | {_f(h.get('depth_rmse'))} | - |",
        f"| instance overlap F-measure | {_f(h.get('instances_f'))} | >= 0.80 |",
        f"| instance matched IoU | {_f(h.get('instances_matched_iou'))} | - |",
        f"| semantic mIoU | {_f(h.get('semantic_miou'))} | >= 0.85 |",
        f"| normals mean / median error (deg) | {_f(h.get('normals_mean_deg'), 1)} / "
        f"{_f(h.get('normals_median_deg'), 1)} | - |", "",
        "## Real RGB-D bags (shared `data/real`, sensor depth as ground truth)", "",
        "`vision-banana eval BAG --backend onnxruntime` with each bag's CameraInfo; only pixels "
        "with valid sensor depth count. None of these bags has instance or semantic ground "
        "truth, so only depth is scored.", "",
        "| bag | frames | delta1 | AbsRel | median-scaled delta1 | median-scaled AbsRel |",
        "|---|---|---|---|---|---|"]
    for name, r in m["real"].items():
        s = r.get("summary", {})
        if "error" in r:
            lines.append(f"| {name} | - | error: {r['error']} | | | |")
            continue
        lines.append(f"| {name} | {r['frames']} | {_f(s.get('delta1'))} | "
                     f"{_f(s.get('abs_rel'))} | {_f(s.get('median_scaled_delta1'))} | "
                     f"{_f(s.get('median_scaled_abs_rel'))} |")
    lat = m["latency_640x480_depth_instances"]
    lines += [
        "", "real_aruco_compressed has no depth: speed and outputs only. The bar for real data "
        "is delta1 >= 0.80 on real_uoc.", "",
        "## Latency", "",
        "One 640x480 frame, depth + instances, preprocessing and decoding included, 2 threads "
        "on the development machine:", "",
        "| backend | p50 ms | p99 ms |", "|---|---|---|",
        f"| ONNX Runtime (CPU) | {lat['onnxruntime']['p50_ms']:.1f} | "
        f"{lat['onnxruntime']['p99_ms']:.1f} |",
        f"| PyTorch eager (CPU) | {lat['torch']['p50_ms']:.1f} | {lat['torch']['p99_ms']:.1f} |",
        "", "## Limits", "",
        "- Trained on synthetic pybullet tabletops only, for about an hour of a 2-core CPU: it "
        "does not reach the issue's bars (above), and the gap to real images is large. More "
        "compute improves it (`vision-banana train --resume` with more steps, or "
        "`--device cuda`; `scripts/gpu_check.sh` includes a GPU training run).",
        "- Continuing this run to 2,700 steps (`--resume --steps 2700`, 23 more minutes) "
        "improved the held-out synthetic split on every metric (depth delta1 0.553, AbsRel "
        "0.306, instance F 0.411, semantic mIoU 0.636) but made real depth worse (real_uoc "
        "delta1 0.568, real_sixdof 0.378, real_cleargrasp 0.585): more synthetic-only "
        "training already trades real accuracy for synthetic accuracy, so the 2,000-step "
        "model is the one shipped. Closing the gap needs more realistic renders (textures, "
        "lighting, sensor noise of real depth cameras) or real teachers (the ONNX teacher "
        "interface), not only more steps.",
        "- Inputs of another aspect ratio than 4:3 are resized anisotropically; depth scale "
        "uses fx only.",
        "- Reproduce this card: `.venv/bin/python scripts/make_model_card.py "
        "runs/default/model.pt`.", ""]
    return "\n".join(lines + experiments_section())


def experiments_section() -> list[str]:
    """Tables of the controlled experiments in experiments.json (scripts/record_experiment.py)."""
    path = MODELS / "experiments.json"
    if not path.exists():
        return []
    lines = ["## Experiments", ""]
    for name, e in json.loads(path.read_text()).items():
        lines += [f"### {e['question']} (`{name}`, {e['date']})", "",
                  "| run | steps | loss weights | decoder ch. | depth delta1 | AbsRel | "
                  "instance F | semantic mIoU | normals deg |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in e["runs"]:
            m, w = r["metrics"], r.get("loss_weights") or {}
            weights = ", ".join(f"{k} {v:g}" for k, v in w.items() if v)
            lines.append(
                f"| {r['run']} | {r['step']} | {weights} | "
                f"{(r.get('model') or {}).get('decoder_channels', '-')} | "
                f"{_f(m.get('depth_delta1'))} | {_f(m.get('depth_abs_rel'))} | "
                f"{_f(m.get('instances_f'))} | {_f(m.get('semantic_miou'))} | "
                f"{_f(m.get('normals_mean_deg'), 1)} |")
        setup = e.get("setup") or (f"Held-out synthetic split ({e['runs'][0].get('frames')} "
                                   "frames), same data, seed and schedule in every run.")
        lines += ["", setup + " " + e.get("answer", ""), ""]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", type=Path, nargs="?")
    ap.add_argument("--val", type=Path, default=ROOT / "data" / "val")
    ap.add_argument("--real-data", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "card")
    ap.add_argument("--card-only", action="store_true",
                    help="re-render MODEL_CARD.md from model_metrics.json (no evaluation)")
    args = ap.parse_args()
    if args.checkpoint is None and not args.card_only:
        ap.error("give a checkpoint, or --card-only")
    if args.card_only:
        metrics = json.loads((MODELS / "model_metrics.json").read_text())
        (MODELS / "MODEL_CARD.md").write_text(card(metrics))
        return 0
    target = ship(args.checkpoint)
    doc = torch.load(target, weights_only=True)
    metrics = {"heldout_synthetic": heldout(target, args.val),
               "real": real_bags(args.real_data, args.out) if args.real_data.exists() else {},
               "latency_640x480_depth_instances": latency(target),
               "size_mb": target.stat().st_size / 2**20,
               "parameters_m": sum(v.numel() for v in doc["state_dict"].values()) / 1e6,
               "train": doc["train"]}
    (MODELS / "model_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (MODELS / "MODEL_CARD.md").write_text(card(metrics))
    print(json.dumps({k: v for k, v in metrics.items() if k != "train"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
