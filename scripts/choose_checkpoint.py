#!/usr/bin/env python3
"""Choose a run's checkpoint by the shared real bags, not by synthetic figures.

    .venv/bin/python scripts/choose_checkpoint.py runs/rgbd [--real-data DIR] \
        [--also vision_banana_ros/models/default.pt]

Scores every ``step_N.pt`` (and ``model.pt``) of the run on the real bags (RGB only on each,
RGB-D on real_cleargrasp_rgbd; make_model_card.real_suite without --hide-depth, for speed) and
prints a table and the choice: the highest mean of RGB-only delta1 over the bags with depth,
RGB-D transparent delta1 and RGB-D holes delta1. ``--also`` adds other checkpoints (the model
shipped before, say) to the same table and choice. Writes RUN/choice.json, which
make_model_card.py ``--ladder`` puts in the card.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from make_model_card import real_suite  # noqa: E402


def score(res: dict) -> float:
    rgb = [s["delta1"] for s in res["rgb"].values() if s.get("delta1") is not None]
    rgbd = [s.get(k) for s in res["rgbd"].values() for k in ("transparent_delta1",
                                                              "holes_delta1")]
    parts = [sum(rgb) / len(rgb)] if rgb else []
    parts += [v for v in rgbd if v is not None]
    return sum(parts) / len(parts) if parts else float("nan")


def _write(run: Path, table: dict) -> None:
    best = max(table, key=lambda k: table[k]["score"])
    (run / "choice.json").write_text(json.dumps({"chosen": best, "table": table},
                                                indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--real-data", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    ap.add_argument("--also", type=Path, action="append", default=[],
                    help="another checkpoint to score and consider (repeatable)")
    ap.add_argument("--skip", action="append", default=[],
                    help="a checkpoint file name of the run not to score (repeatable)")
    args = ap.parse_args()
    candidates = sorted(args.run.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    if (args.run / "model.pt").exists():
        candidates.append(args.run / "model.pt")
    candidates = [p for p in candidates if p.name not in args.skip] + args.also
    old = json.loads((args.run / "choice.json").read_text())["table"] \
        if (args.run / "choice.json").exists() else {}
    table = {}
    for path in candidates:
        key = path.name if path.parent == args.run else str(path)
        if key in old and path.stat().st_mtime < (args.run / "choice.json").stat().st_mtime:
            table[key] = old[key]  # scored before and not changed since
            print(f"{key}: score {old[key]['score']:.3f} (scored before)", flush=True)
            continue
        res = real_suite(path, args.real_data, args.run / "choice" / path.stem, quick=True)
        table[key] = {"score": score(res), **res}
        rgb = {k: round(v["delta1"], 3) for k, v in res["rgb"].items() if v.get("delta1")}
        rgbd = {k: (round(v.get("transparent_delta1") or 0, 3),
                    round(v.get("holes_delta1") or 0, 3)) for k, v in res["rgbd"].items()}
        print(f"{key}: score {table[key]['score']:.3f}  rgb {rgb}  rgbd "
              f"(transparent, holes) {rgbd}", flush=True)
        _write(args.run, {**old, **table})  # an interrupted choice keeps what it scored
    best = max(table, key=lambda k: table[k]["score"])
    _write(args.run, table)
    print(f"chosen: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
