"""The training loop, readable top to bottom (nanoGPT style).

``vision-banana train --config cfg.yaml`` (or flags) streams synthetic shards, asks a teacher
for targets, trains every task at once (one encoder pass, the decoder batched over tasks),
evaluates on a held-out split through the same pipeline as the node, and writes complete
checkpoints (``last.pt`` resumable, ``model.pt`` for deployment).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError


@dataclass
class TrainConfig:
    """Everything a run needs; load from YAML with :meth:`from_yaml`."""

    data: str = "data/train"
    val_data: str | None = "data/val"
    out: str = "runs/default"
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    teacher: str = "ground_truth"
    steps: int = 2000
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    loss_weights: dict[str, float] = field(default_factory=lambda: {
        "depth_paint": 1.0, "depth_decoded": 0.5, "semantic_paint": 1.0,
        "semantic_decoded": 0.2, "normals_paint": 0.5, "normals_decoded": 0.5,
        "instances": 2.0})
    eval_every: int = 250
    eval_frames: int = 64
    seed: int = 0
    device: str = "auto"
    threads: int = 2
    amp: bool = True
    time_limit_s: float | None = None

    @classmethod
    def from_yaml(cls, path: Path, **overrides: Any) -> TrainConfig:
        """Read a YAML file; unknown keys are an error naming them."""
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise VisionBananaError(f"cannot read training config {path}: {err}") from err
        if not isinstance(data, dict):
            raise VisionBananaError(f"training config {path} must be a mapping")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise VisionBananaError(f"unknown training config keys {unknown}; known: "
                                    f"{sorted(known)}")
        cfg = cls(**data)
        if cfg.steps < 1 or cfg.batch_size < 1:
            raise VisionBananaError("steps and batch_size must be at least 1")
        return cfg


def _device(spec: str) -> str:
    import torch

    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return spec


def evaluate(model: Any, samples: list, tasks: tuple[str, ...]) -> dict[str, float]:
    """Held-out metrics through :class:`~vision_banana_ros.pipeline.Pipeline` (as the node).

    ``samples`` come from :func:`~.data.evaluation_samples`; depth is scored in metres with
    the frame's K, at the frame's own resolution.
    """
    from vision_banana_ros.evaluation.metrics import (
        depth_metrics,
        instance_metrics,
        normal_angles_deg,
        semantic_miou,
    )
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.runtime.torch_backend import TorchBackend

    was_training = model.training
    backend = TorchBackend(Path(), device=str(next(model.parameters()).device), model=model)
    pipe = Pipeline(backend, model.config, list(tasks))
    acc: dict[str, list[float]] = {}
    angles = []
    for frame, _ in samples:
        out = pipe(frame.rgb, frame.k)
        if out.depth is not None:
            m = depth_metrics(out.depth, frame.depth)
            if m is not None:
                for key in ("abs_rel", "rmse", "delta1"):
                    acc.setdefault(f"depth_{key}", []).append(getattr(m, key))
        if out.instances is not None:
            im = instance_metrics(out.instances, frame.instances.astype(np.int64))
            acc.setdefault("instances_f", []).append(im.f_measure)
            acc.setdefault("instances_matched_iou", []).append(im.matched_iou)
        if out.semantic is not None:
            acc.setdefault("semantic_miou", []).append(
                semantic_miou(out.semantic, frame.semantic, 3)[0])
        if out.normals is not None:
            angles.append(normal_angles_deg(out.normals, frame.normals.astype(np.float32)))
    model.train(was_training)
    result = {k: float(np.mean(v)) for k, v in acc.items()}
    if angles:
        a = np.concatenate(angles)
        result["normals_mean_deg"] = float(a.mean())
        result["normals_median_deg"] = float(np.median(a))
    result["frames"] = len(samples)
    return result


def train(cfg: TrainConfig, *, resume: bool = False, command: str = "",
          progress: bool = True) -> dict[str, Any]:
    """Run training; returns the final metrics."""
    import torch

    from vision_banana_ros.model import ModelConfig, build_model, load_model, save_checkpoint
    from vision_banana_ros.model.checkpoint import read_checkpoint
    from vision_banana_ros.runtime.threads import limit_blas_threads
    from vision_banana_ros.synthetic.shards import read_index
    from vision_banana_ros.training.data import evaluation_samples, training_batches
    from vision_banana_ros.training.losses import (
        depth_losses,
        instance_loss,
        normals_losses,
        semantic_losses,
    )
    from vision_banana_ros.training.teacher import make_teacher

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    read_index(Path(cfg.data))  # fail early and clearly on a bad data folder
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    limit_blas_threads(1)  # numpy's OpenBLAS workers spin between the data steps (7 % a step)
    device = _device(cfg.device)
    use_amp = cfg.amp and device.startswith("cuda")

    model_cfg = ModelConfig.from_dict(cfg.model) if cfg.model else ModelConfig()
    step, elapsed_before, history = 0, 0.0, []
    last = out / "last.pt"
    if resume and last.exists():
        model, doc = load_model(last, device=device)
        step = int(doc["train"]["step"])
        elapsed_before = float(doc["train"].get("elapsed_s", 0.0))
        history = list(doc["metrics"].get("history", []))
    else:
        model = build_model(model_cfg).to(device)
        doc = None
    model.train()
    tasks = model.config.tasks
    task_ids = model.task_ids(tasks).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if doc is not None and "optimizer" in doc:
        optimizer.load_state_dict(read_checkpoint(last)["optimizer"])
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    def lr_at(s: int) -> float:
        if s < cfg.warmup_steps:
            return cfg.lr * (s + 1) / cfg.warmup_steps
        frac = (s - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    mc = model.config
    batches = training_batches(Path(cfg.data), cfg.batch_size, mc.input_width, mc.input_height,
                               mc.canonical_focal_px, seed=cfg.seed + step)
    val = (evaluation_samples(Path(cfg.val_data), mc.input_width, mc.input_height,
                              mc.canonical_focal_px, cfg.eval_frames)
           if cfg.val_data else [])
    teacher = make_teacher(cfg.teacher, mc.canonical_focal_px)
    weights = cfg.loss_weights

    def checkpoint(path: Path, metrics: dict[str, Any], with_optimizer: bool) -> None:
        train_info = {"config": asdict(cfg), "command": command, "step": step,
                      "elapsed_s": elapsed_before + time.perf_counter() - start,
                      "device": device, "torch": str(torch.__version__), "teacher": teacher.name,
                      "data": str(cfg.data), "data_frames": read_index(Path(cfg.data))["frames"]}
        save_checkpoint(path, model, train=train_info, metrics={**metrics, "history": history},
                        optimizer=optimizer.state_dict() if with_optimizer else None)

    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train", file=sys.stderr)
    metrics: dict[str, Any] = {}
    while step < cfg.steps:
        if cfg.time_limit_s and time.perf_counter() - start > cfg.time_limit_s:
            break
        batch = teacher(next(batches))
        t = {k: torch.from_numpy(np.asarray(v)).to(device) for k, v in batch.items()}
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        with torch.autocast("cuda", enabled=use_amp):
            paint = model(t["image"], task_ids)  # (B, T, 3, H, W)
        paint = paint.float()
        parts: dict[str, torch.Tensor] = {}
        for i, name in enumerate(tasks):
            p = paint[:, i]
            if name == "depth":
                parts.update(depth_losses(p, t["depth_canonical"]))
            elif name == "semantic":
                parts.update(semantic_losses(p, t["semantic"]))
            elif name == "normals":
                parts.update(normals_losses(p, t["normals"]))
            elif name == "instances":
                parts["instances"] = instance_loss(p, t["instances"])
        loss = sum(weights.get(k, 0.0) * v for k, v in parts.items())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        step += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v.item():.3f}" for k, v in parts.items()} | {
                "loss": f"{loss.item():.3f}"})
        history.append({"step": step, "loss": float(loss.item()),
                        **{k: float(v.item()) for k, v in parts.items()}})
        if step % cfg.eval_every == 0 or step == cfg.steps:
            model.eval()
            metrics = evaluate(model, val, tasks) if val else {}
            model.train()
            metrics["step"] = step
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(metrics) + "\n")
            if bar is not None:
                bar.write(f"step {step}: " + ", ".join(
                    f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
            checkpoint(last, metrics, with_optimizer=True)
    if bar is not None:
        bar.close()
    model.eval()
    if val and metrics.get("step") != step:
        metrics = evaluate(model, val, tasks)
        metrics["step"] = step
    checkpoint(last, metrics, with_optimizer=True)
    checkpoint(out / "model.pt", metrics, with_optimizer=False)
    return metrics
