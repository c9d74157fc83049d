#!/usr/bin/env python3
"""Choose a run's checkpoint by the shared real bags, not by synthetic figures.

    .venv/bin/python scripts/choose_checkpoint.py runs/rgbd [--real-data DIR]

Scores every ``step_N.pt`` (and ``model.pt``) of the run on the real bags (RGB only on each,
RGB-D on real_cleargrasp_rgbd; make_model_card.real_suite without --hide-depth, for speed) and
prints a table and the choice: the highest mean of RGB-only delta1 over the bags with depth,
RGB-D transparent delta1 and RGB-D holes delta1. Writes OUT/choice.json.
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--real-data", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    args = ap.parse_args()
    candidates = sorted(args.run.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    if (args.run / "model.pt").exists():
        candidates.append(args.run / "model.pt")
    table = {}
    for path in candidates:
        res = real_suite(path, args.real_data, args.run / "choice" / path.stem, quick=True)
        table[path.name] = {"score": score(res), **res}
        rgb = {k: round(v["delta1"], 3) for k, v in res["rgb"].items() if v.get("delta1")}
        rgbd = {k: (round(v.get("transparent_delta1") or 0, 3),
                    round(v.get("holes_delta1") or 0, 3)) for k, v in res["rgbd"].items()}
        print(f"{path.name}: score {table[path.name]['score']:.3f}  rgb {rgb}  rgbd "
              f"(transparent, holes) {rgbd}", flush=True)
    best = max(table, key=lambda k: table[k]["score"])
    (args.run / "choice.json").write_text(json.dumps({"chosen": best, "table": table},
                                                     indent=1) + "\n")
    print(f"chosen: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
