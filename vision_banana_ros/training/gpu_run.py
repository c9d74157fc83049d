"""A training run that fits a fixed budget on one CUDA GPU (15 minutes of an H100/H200 is
worth days of the 2-core development CPU).

    python -m vision_banana_ros.training.gpu_run --out OUT [--budget-s 780] [--shards DIR]
        [--init vision_banana_ros/models/default.pt] [--cpu-dry-run]

Takes carried shards when given (``--shards``, with ``index.json``), else renders real-scale
pybullet scenes on the machine's cores for a share of the budget; trains the RGB-D recipe of
``config/train_rgbd.yaml`` (batch 48, mixed precision) from ``--init`` until the budget is
spent, keeping snapshots; evaluates on a held-out split; and writes into OUT: ``model.pt``,
``step_*.pt`` snapshots, ``metrics.jsonl``, and ``gpu_run.json`` (budget, data, steps, time,
GPU, held-out figures) for the model card. Choose the shipped checkpoint afterwards by the real
bags (``scripts/choose_checkpoint.py OUT``), on any machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _render(folder: Path, scenes: int, seed: int, workers: int) -> None:
    from vision_banana_ros.synthetic.render import render_dataset
    from vision_banana_ros.synthetic.scene import SceneConfig

    render_dataset(folder, scenes=scenes, views=4, seed=seed, workers=workers, progress=False,
                   config=SceneConfig(resolutions=((256, 192), (320, 180))))


def _data(args: argparse.Namespace, budget_s: float) -> tuple[Path, Path, dict[str, Any]]:
    """(train shards, held-out shards, what was done): carried or rendered here."""
    if args.shards is not None:
        val = args.val_shards or args.shards
        return args.shards, val, {"shards": str(args.shards), "rendered": False}
    workers = max(1, min(16, (os.cpu_count() or 2) - 2))
    start = time.perf_counter()
    scenes = 4 if args.cpu_dry_run else max(200, int(budget_s * 0.2 * workers / 0.5 / 4))
    root = args.out / "data"
    _render(root / "val", 2 if args.cpu_dry_run else 30, 101, workers)
    _render(root / "train", scenes, 100, workers)
    return root / "train", root / "val", {"rendered": True, "scenes": scenes, "views": 4,
                                          "render_s": time.perf_counter() - start,
                                          "workers": workers}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from vision_banana_ros.training.train import TrainConfig, train

    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.cpu_dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_run: no CUDA device (use --cpu-dry-run to test the script)")
    train_dir, val_dir, data = _data(args, args.budget_s)
    recipe = yaml.safe_load((ROOT / "config" / "train_rgbd.yaml").read_text())
    recipe.update(data=str(train_dir), val_data=str(val_dir), out=str(args.out / "run"),
                  device=device, init_from=str(args.init) if args.init else None,
                  batch_size=4 if args.cpu_dry_run else 48, threads=2 if args.cpu_dry_run else 8,
                  eval_frames=4 if args.cpu_dry_run else 80)
    if args.cpu_dry_run:
        recipe["model"] = {**recipe["model"], "arch": "vb-tiny", "pretrained": False,
                           "input_width": 64, "input_height": 64}
        recipe["init_from"] = None
    remaining = args.budget_s - (time.perf_counter() - started)
    eval_reserve = 10.0 if args.cpu_dry_run else 60.0
    steps = 3 if args.cpu_dry_run else 100_000
    cfg = TrainConfig.from_dict({**recipe, "steps": steps, "warmup_steps": min(
        recipe.get("warmup_steps", 100), steps), "eval_every": 10**9, "snapshot_every": 0 if
        args.cpu_dry_run else 500, "time_limit_s": max(1.0, remaining - eval_reserve)})
    t0 = time.perf_counter()
    metrics = train(cfg, progress=False, command="python -m vision_banana_ros.training.gpu_run "
                    + " ".join(sys.argv[1:]))
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "device": device,
              "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
              "budget_s": args.budget_s, "train_s": time.perf_counter() - t0,
              "total_s": time.perf_counter() - started, "data": data,
              "steps": metrics.get("step"), "heldout": metrics,
              "checkpoint": str(Path(cfg.out) / "model.pt")}
    (args.out / "gpu_run.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gpu_run")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget-s", type=float, default=780.0,
                    help="seconds for everything (default: 780, inside 15 minutes)")
    ap.add_argument("--shards", type=Path, help="carried training shards (index.json)")
    ap.add_argument("--val-shards", type=Path, help="carried held-out shards")
    ap.add_argument("--init", type=Path, default=ROOT / "vision_banana_ros" / "models" /
                    "default.pt", help="start from these weights")
    ap.add_argument("--cpu-dry-run", action="store_true", help="tiny settings on the CPU")
    args = ap.parse_args(argv)
    report = run(args)
    print(json.dumps({k: report[k] for k in ("device", "steps", "train_s", "total_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
