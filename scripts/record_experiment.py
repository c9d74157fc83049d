#!/usr/bin/env python3
"""Record a controlled training experiment (several runs differing in one setting) for the card.

    .venv/bin/python scripts/record_experiment.py loss_ablation \
        --question "Which loss won: painting space, decoded space, or both?" \
        runs/ablation/painting_only runs/ablation/decoded_only runs/ablation/both

Reads each run's config (``train`` of its model.pt) and its last held-out evaluation
(``metrics.jsonl``), and stores them under the experiment's name in
vision_banana_ros/models/experiments.json; scripts/make_model_card.py renders every recorded
experiment as a table in MODEL_CARD.md (``--card-only`` re-renders without re-evaluating).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "vision_banana_ros" / "models" / "experiments.json"
METRICS = ("depth_delta1", "depth_abs_rel", "instances_f", "semantic_miou", "normals_mean_deg")


def read_run(folder: Path) -> dict:
    """The last held-out evaluation and the config of one run folder."""
    import torch

    lines = (folder / "metrics.jsonl").read_text().splitlines()
    if not lines:
        raise SystemExit(f"{folder}/metrics.jsonl is empty: the run has not evaluated yet")
    last = json.loads(lines[-1])
    doc = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    cfg = doc.get("train", {}).get("config", {})
    return {"run": folder.name, "step": last.get("step"), "frames": last.get("frames"),
            "metrics": {k: last.get(k) for k in METRICS},
            "loss_weights": cfg.get("loss_weights"), "model": cfg.get("model"),
            "steps": cfg.get("steps"), "batch_size": cfg.get("batch_size"),
            "elapsed_s": doc.get("train", {}).get("elapsed_s")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--question", required=True)
    ap.add_argument("--answer", default="", help="the conclusion, in words")
    args = ap.parse_args()
    data = json.loads(EXPERIMENTS.read_text()) if EXPERIMENTS.exists() else {}
    data[args.name] = {"question": args.question, "answer": args.answer,
                       "date": time.strftime("%Y-%m-%d"),
                       "runs": [read_run(r) for r in args.runs]}
    EXPERIMENTS.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(data[args.name], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
