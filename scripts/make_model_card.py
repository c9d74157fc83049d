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
    if Path(src).resolve() == (MODELS / "default.pt").resolve():
        return MODELS / "default.pt"  # the shipped model itself: a new card, same file
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
    samples = evaluation_samples(val, cfg.input_width, cfg.input_height, cfg.canonical_focal_px,
                                 limit=80)
    return evaluate(model, samples, cfg.tasks)


#: Real bags of the shared data and what each is scored on.
RGBD_BAGS = ("real_uoc", "real_cleargrasp", "real_sixdof", "real_cleargrasp_rgbd")


def _eval(bag: Path, out: Path, model: Path, **options) -> dict:
    """One ``vision-banana eval`` run in this process: the metrics document."""
    from vision_banana_ros.evaluation.bag_eval import Evaluation
    from vision_banana_ros.evaluation.config import EvalConfig

    return Evaluation(EvalConfig(bag=bag, out=out, model=str(model), backend="onnxruntime",
                                 threads=2, progress=False, write_bag=False, plots=False,
                                 **options)).run()


def real_suite(model_path: Path, folder: Path, out: Path, quick: bool = False) -> dict:
    """The model on every shared real bag: RGB only (``--depth-input off``; the issue on
    real-looking scenes), RGB-D with the camera's depth against ground truth apart from it
    (real_cleargrasp_rgbd), and ``--hide-depth 0.25`` on every RGB-D bag."""
    results: dict = {"rgb": {}, "rgbd": {}, "hide_depth_0.25": {}, "instances_with_depth": {},
                     "rgb_anchored": {}}
    keep = ("delta1", "abs_rel", "median_scaled_delta1", "baseline_constant_delta1",
            "holes_delta1", "holes_abs_rel", "transparent_delta1", "transparent_abs_rel",
            "hidden_delta1", "hidden_abs_rel", "sensor_kept", "f_measure", "precision",
            "recall", "boundary_f_measure", "objects_f75", "baseline_instances_f_measure",
            "baseline_instances_precision", "baseline_instances_recall",
            "baseline_instances_boundary_f_measure", "baseline_instances_objects_f75",
            "raw_delta1", "depth_scale", "anchor_refused")

    def summary(doc: dict) -> dict:
        return {"frames": doc["frames"], **{k: doc["summary"].get(k) for k in keep}}

    for bag in sorted(p for p in folder.iterdir() if (p / "metadata.yaml").exists()):
        results["rgb"][bag.name] = summary(_eval(bag, out / "rgb" / bag.name, model_path,
                                                 depth_input="off"))
        if results["rgb"][bag.name].get("delta1") is not None:
            results["rgb_anchored"][bag.name] = summary(_eval(
                bag, out / "anchored" / bag.name, model_path, depth_input="off",
                support_plane_from_gt=True))
        if bag.name == "real_cleargrasp_rgbd":
            results["rgbd"][bag.name] = summary(_eval(bag, out / "rgbd" / bag.name,
                                                      model_path))
        if bag.name in RGBD_BAGS and not quick:
            results["hide_depth_0.25"][bag.name] = summary(_eval(
                bag, out / "hide" / bag.name, model_path, hide_depth=0.25))
        if results["rgb"][bag.name].get("f_measure") is not None:  # labelled instances
            results["instances_with_depth"][bag.name] = summary(_eval(
                bag, out / "instances" / bag.name, model_path, depth_input="on"))
    return results


def latency(model_path: Path) -> dict:
    """p50/p99 of one 640x480 frame, depth + instances, preprocessing and decoding included,
    per backend; for a depth model also with the camera's depth as input (interleaved)."""
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.runtime.select import create_backend
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    torch.set_num_threads(2)
    f = render_spheres_on_plane(640, 480, n_spheres=6, seed=1)
    out = {}
    for name in ("onnxruntime", "torch"):
        b = create_backend(name, str(model_path), threads=2)
        pipe = Pipeline(b, b.config, "depth,instances")
        variants = {name: None}
        if b.config.depth_input:
            variants[f"{name} + camera depth"] = f.depth
        times: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(3):
            for depth in variants.values():
                pipe(f.rgb, f.k, depth)
        for _ in range(20):
            for label, depth in variants.items():
                t = time.perf_counter()
                pipe(f.rgb, f.k, depth)
                times[label].append(time.perf_counter() - t)
        for label, v in times.items():
            out[label] = {"p50_ms": float(np.median(v) * 1e3),
                          "p99_ms": float(np.percentile(v, 99) * 1e3)}
        b.close()
    return out


def _f(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def _training_lines(m: dict) -> list[str]:
    t = m["train"]
    cfg = t.get("config", {})
    init = t.get("initialised") or {}
    before = (" (the RGB-only model shipped before this one)"
              if str(init.get("source", "")).endswith("models/default.pt") else "")
    return [
        "## Training", "",
        f"- Command: `{t.get('command', '')}`; steps: {t.get('step')}, batch "
        f"{cfg.get('batch_size')}, AdamW lr {cfg.get('lr')} cosine; loss weights "
        f"{cfg.get('loss_weights')}.",
        f"- Started from: {init.get('source', 'random / ImageNet encoder')}{before} "
        f"({init.get('copied', '-')} tensors copied, {init.get('new', '-')} new: the depth "
        "branch, whose projections start at zero).",
        f"- Data: `{t.get('data')}`, {t.get('data_frames')} synthetic frames (the render "
        "commands are in the config's header): real-world scale tabletop scenes with glass, "
        "shiny and dark objects, 4:3 and 16:9 cameras; teacher: the renderer's exact ground "
        f"truth (`{t.get('teacher')}`). Depth input: a simulated camera depth "
        "(`synthetic/sensor.py`) drawn afresh for every sample, dropped for "
        f"{cfg.get('depth_dropout')} of them; holes weighted {cfg.get('depth_hole_weight')}x "
        "more in the depth loss.",
        f"- Compute: {t.get('device')} on the 2-core development machine, "
        f"{t.get('elapsed_s', 0) / 60:.0f} minutes of wall time (shared with other work); "
        f"torch {t.get('torch')}.",
        f"- Size: {m['size_mb']:.1f} MB, {m['parameters_m']:.2f} M parameters, input 256x192 "
        "(frames of other aspect ratios are letterboxed).", ""]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(r) + " |" for r in rows]]


def _versus(value: float | None, constant: float | None) -> str:
    """A delta1 with whether it beats the constant baseline."""
    if value is None or constant is None:
        return _f(value)
    return f"{_f(value)} ({'above' if value > constant else 'BELOW'} the constant)"


def _real_lines(m: dict) -> list[str]:
    real = m["real"]
    rgb, hide = real.get("rgb", {}), real.get("hide_depth_0.25", {})
    anchored = real.get("rgb_anchored", {})
    bags = [b for b, s in rgb.items() if s.get("delta1") is not None]
    rows = []
    for b in bags:
        r, d, a = rgb[b], hide.get(b, {}), anchored.get(b, {})
        const = r.get("baseline_constant_delta1")
        rows.append([b, str(r["frames"]), _f(const), _versus(r.get("delta1"), const),
                     _f(r.get("abs_rel")), _versus(a.get("delta1"), const),
                     _versus(r.get("median_scaled_delta1"), const),
                     _versus(d.get("delta1"), const), _f(d.get("abs_rel")),
                     _f(d.get("hidden_delta1")), _f(d.get("hidden_abs_rel"))])
    lines = ["## Real bags (shared `data/real`)", "",
             "Every shared bag with depth, scored with `vision-banana eval BAG --backend "
             "onnxruntime` and each bag's CameraInfo, only where the ground truth is valid, "
             "beside the constant baseline: a constant at each frame's true median depth (a "
             "model below it is worse than no model). RGB only: `--depth-input off`. With the "
             "camera's depth: `--hide-depth 0.25` (where the bag's only depth is the camera's, "
             "seeded blobs covering a quarter of it are hidden from the input; the whole "
             "published depth and the hidden pixels are scored). Anchored: `--depth-input off "
             "--support-plane-from-gt` (each frame's support plane fitted on the ground "
             "truth, as a calibration gives it, scales the RGB-only depth).", "",
             *_table(["bag", "frames", "constant delta1", "RGB only delta1", "RGB only AbsRel",
                      "RGB only anchored on the support plane delta1",
                      "RGB only median-scaled delta1", "with depth delta1",
                      "with depth AbsRel", "hidden delta1", "hidden AbsRel"], rows),
             "", "Bars: RGB only delta1 >= 0.80 on real_uoc, >= 0.75 on real_cleargrasp and "
             "real_sixdof, median-scaled delta1 above the constant (issue on real-looking "
             "scenes); hidden delta1 >= 0.90 on every RGB-D bag (issue on RGB-D input).", "",
             "### With the camera's depth, against ground truth apart from it", ""]
    rows = [[b, _f(s.get("baseline_constant_delta1")),
             _versus(s.get("delta1"), s.get("baseline_constant_delta1")), _f(s.get("abs_rel")),
             _f(s.get("transparent_delta1")), _f(s.get("transparent_abs_rel")),
             _f(s.get("holes_delta1")), _f(s.get("sensor_kept"))]
            for b, s in real.get("rgbd", {}).items()]
    lines += _table(["bag", "constant delta1", "delta1", "AbsRel", "transparent delta1",
                     "transparent AbsRel", "holes delta1", "camera depth kept"], rows)
    lines += ["", "Bar (issue on RGB-D input): on the transparent objects delta1 >= 0.90 "
              "and AbsRel <= 0.10.", ""]
    return [*lines, *_instance_lines(real)]


def _instance_lines(real: dict) -> list[str]:
    """Instances on the labelled real bags, with the camera's depth, beside the baseline."""
    inst = real.get("instances_with_depth", {})
    if not inst:
        return []
    rows = []
    for b, s in inst.items():
        for who, prefix in (("node (shipped defaults)", ""),
                            ("plane+cluster baseline", "baseline_instances_")):
            rows.append([b, who, _f(s.get(prefix + "precision")), _f(s.get(prefix + "recall")),
                         _f(s.get(prefix + "f_measure")),
                         _f(s.get(prefix + "boundary_f_measure")),
                         _f(s.get(prefix + "objects_f75"))])
    return ["### Instances with the camera's depth (`--depth-input on`)", "",
            "Bags with instance labels, the camera's depth fed to the node (its only depth, so "
            "the depth figures of these runs are not meaningful), beside the evaluator's "
            "plane+cluster baseline on the same frames. real_ycbv labels three objects; the "
            "keyboard, papers, mouse and monitor are real objects left unlabelled, so overlap "
            "precision there is a lower bound.", "",
            *_table(["bag", "method", "overlap P", "overlap R", "overlap F", "boundary F",
                     "objects F >= 0.75"], rows), ""]


def ladder(choice: Path) -> dict:
    """The real-bag figures of every checkpoint a choice scored (choose_checkpoint.py)."""
    doc = json.loads(Path(choice).read_text())
    rows = {}
    for name, r in doc["table"].items():
        rgbd = next(iter(r["rgbd"].values()), {})
        rows[name] = {"score": r["score"], "chosen": name == doc["chosen"],
                      "rgb_delta1": {k: v.get("delta1") for k, v in r["rgb"].items()},
                      "rgb_median_scaled_delta1": {k: v.get("median_scaled_delta1")
                                                   for k, v in r["rgb"].items()},
                      "transparent_delta1": rgbd.get("transparent_delta1"),
                      "holes_delta1": rgbd.get("holes_delta1"),
                      "f_measure": {k: v.get("f_measure") for k, v in r["rgb"].items()
                                    if v.get("f_measure") is not None}}
    return rows


def _ladder_lines(m: dict) -> list[str]:
    rows = m.get("ladder") or {}
    if not rows:
        return []
    bags = sorted({b for r in rows.values() for b, v in r["rgb_delta1"].items()
                   if v is not None})
    lines = ["## Checkpoints scored on the real bags (how this one was chosen)", "",
             "`scripts/choose_checkpoint.py RUN --also PREVIOUS.pt`: every snapshot of the "
             "run and the model shipped before, on the shared real bags. Score: mean of the "
             "RGB-only delta1 (mean over bags), the RGB-D transparent delta1 and the RGB-D "
             "holes delta1 (real_cleargrasp_rgbd).", "",
             "| checkpoint | score | " + " | ".join(f"RGB delta1 {b}" for b in bags)
             + " | RGB-D transparent delta1 | RGB-D holes delta1 |",
             "|---|---|" + "---|" * (len(bags) + 2)]
    for name, r in rows.items():
        label = f"**{name}** (shipped)" if r["chosen"] else name
        lines.append(f"| {label} | {_f(r['score'])} | "
                     + " | ".join(_f(r["rgb_delta1"].get(b)) for b in bags)
                     + f" | {_f(r['transparent_delta1'])} | {_f(r['holes_delta1'])} |")
    return [*lines, ""]


def card(m: dict) -> str:
    h = m["heldout_synthetic"]
    lines = [
        "# Model card: vision_banana_ros default model (`default.pt`)", "",
        "A small task-conditioned image-to-image generator (EfficientNet-Lite0 encoder, "
        "FiLM-conditioned FPN decoder) that paints depth, instances, semantics and normals as "
        "RGB images in the Vision Banana encodings (README, codecs)"
        + (", and takes the camera's depth as a second, optional input (two planes through "
           "an encoder of their own)." if m.get("depth_input") else "."), "",
        *_training_lines(m),
        "## Held-out synthetic split", "",
        f"`{m.get('val', 'data/val')}`: scenes rendered with another seed (never seen in "
        "training), scored at the frames' resolution with their K through the node's "
        "pipeline. With depth input, a simulated camera depth (seeded) goes in; `holes` are "
        "the pixels where it had none; `RGB only` runs the same model without it.", "",
        "| metric | value | bar (issue) |", "|---|---|---|",
        f"| depth delta1 | {_f(h.get('depth_delta1'))} | >= 0.90 |",
        f"| depth AbsRel | {_f(h.get('depth_abs_rel'))} | - |",
        f"| depth delta1 on the camera's holes | {_f(h.get('depth_holes_delta1'))} | - |",
        f"| depth delta1, RGB only | {_f(h.get('rgb_depth_delta1'))} | >= 0.90 |",
        f"| instance overlap F-measure (as published: geometry first with the camera's depth) "
        f"| {_f(h.get('instances_f'))} | >= 0.85 (with depth) |",
        f"| instance overlap F-measure, the painting's object pixels grouped by depth "
        f"clusters (same depth) | {_f(h.get('instances_clusters_f'))} | - |",
        f"| instance overlap F-measure of the instance painting | "
        f"{_f(h.get('instances_painting_f'))} | - |",
        f"| semantic mIoU | {_f(h.get('semantic_miou'))} | >= 0.85 |",
        f"| normals mean / median error (deg) | {_f(h.get('normals_mean_deg'), 1)} / "
        f"{_f(h.get('normals_median_deg'), 1)} | - |", "",
        *_real_lines(m), *_ladder_lines(m), "## Latency", "",
        "One 640x480 frame, depth + instances, preprocessing and decoding included, 2 threads "
        "on the development machine, variants interleaved:", "",
        "| backend | p50 ms | p99 ms |", "|---|---|---|"]
    for name, v in m["latency_640x480_depth_instances"].items():
        lines.append(f"| {name} | {v['p50_ms']:.1f} | {v['p99_ms']:.1f} |")
    lines += ["", "## Limits", "", *[f"- {x}" for x in m.get("limits", [])],
              "- Reproduce this card: `.venv/bin/python scripts/make_model_card.py "
              "CHECKPOINT --val VAL_SHARDS`.", ""]
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
    ap.add_argument("--val", type=Path, default=ROOT / "data" / "v2_val")
    ap.add_argument("--real-data", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "card")
    ap.add_argument("--limit", action="append", default=[],
                    help="a limit of the model, for the card (repeatable)")
    ap.add_argument("--ladder", type=Path,
                    help="a run's choice.json (scripts/choose_checkpoint.py): every scored "
                         "checkpoint's real-bag figures go into the card")
    ap.add_argument("--card-only", action="store_true",
                    help="re-render MODEL_CARD.md from model_metrics.json (no evaluation)")
    ap.add_argument("--latency-only", action="store_true",
                    help="measure the shipped model's latency again (an idle machine) into "
                         "model_metrics.json and re-render the card")
    args = ap.parse_args()
    if args.checkpoint is None and not (args.card_only or args.latency_only):
        ap.error("give a checkpoint, or --card-only, or --latency-only")
    if args.latency_only:
        metrics = json.loads((MODELS / "model_metrics.json").read_text())
        metrics["latency_640x480_depth_instances"] = latency(MODELS / "default.pt")
        (MODELS / "model_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        (MODELS / "MODEL_CARD.md").write_text(card(metrics))
        return 0
    if args.card_only:
        metrics = json.loads((MODELS / "model_metrics.json").read_text())
        if args.ladder:
            metrics["ladder"] = ladder(args.ladder)
        if args.limit:
            metrics["limits"] = args.limit
            (MODELS / "model_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        (MODELS / "MODEL_CARD.md").write_text(card(metrics))
        return 0
    target = ship(args.checkpoint)
    doc = torch.load(target, weights_only=True)
    before = (json.loads((MODELS / "model_metrics.json").read_text())
              if (MODELS / "model_metrics.json").exists() else {})
    metrics = {"heldout_synthetic": heldout(target, args.val), "val": str(args.val),
               "real": (real_suite(target, args.real_data, args.out)
                        if args.real_data.exists() else {}),
               "latency_640x480_depth_instances": latency(target),
               "size_mb": target.stat().st_size / 2**20,
               "parameters_m": sum(v.numel() for v in doc["state_dict"].values()) / 1e6,
               "depth_input": bool(doc["model_config"].get("depth_input")),
               "limits": args.limit or before.get("limits", []), "train": doc["train"],
               # The same model card again (no new --ladder): keep the earlier ladder.
               "ladder": (ladder(args.ladder) if args.ladder
                          else before.get("ladder", {}) if before.get("train") == doc["train"]
                          else {})}
    (MODELS / "model_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (MODELS / "MODEL_CARD.md").write_text(card(metrics))
    print(json.dumps({k: v for k, v in metrics.items() if k != "train"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
