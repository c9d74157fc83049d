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
    #: Start from these weights (a checkpoint; layers of the same name and shape are copied,
    #: the rest, such as a new depth branch, keep their initialisation).
    init_from: str | None = None
    #: Also keep ``step_N.pt`` every this many steps (0: never), to choose a checkpoint by the
    #: real bags afterwards (scripts/choose_checkpoint.py).
    snapshot_every: int = 0
    #: Depth models: fraction of samples trained without camera depth (RGB-only use).
    depth_dropout: float = 0.3
    #: Depth models: extra loss weight of pixels where the simulated camera has no depth.
    depth_hole_weight: float = 2.0

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


def _node_instances(out: Any, rgb: np.ndarray, k: np.ndarray,
                    sensor: np.ndarray | None) -> dict[str, np.ndarray]:
    """The instances the node publishes by default, by method: ``geometry`` (with the camera's
    depth; :func:`~vision_banana_ros.geometry.instances.segment_instances` on the depth fused
    as ``depth_fill: holes``) and ``clusters`` (the painting's object pixels grouped by depth
    clusters, the default without camera depth); the painting's own without semantics."""
    from vision_banana_ros import node_config
    from vision_banana_ros.fusion import fuse_depth
    from vision_banana_ros.geometry.clusters import object_clusters
    from vision_banana_ros.geometry.instances import segment_instances
    from vision_banana_ros.processing import OBJECT_CLASS

    if out.semantic is None or out.depth is None:
        return {"painting": out.instances}
    d = node_config.defaults()
    objects = out.semantic == OBJECT_CLASS
    if sensor is None:
        return {"clusters": object_clusters(out.depth, k, objects)}
    depth = fuse_depth(out.depth.copy(), sensor, d["depth_fill"], d["depth_consistency"])[0]
    return {"geometry": segment_instances(depth, k, sensor_valid=np.isfinite(sensor), rgb=rgb,
                                          object_vote=objects).ids,
            "clusters": object_clusters(depth, k, objects)}


def evaluate(model: Any, samples: list, tasks: tuple[str, ...]) -> dict[str, float]:
    """Held-out metrics through :class:`~vision_banana_ros.pipeline.Pipeline` (as the node).

    ``samples`` come from :func:`~.data.evaluation_samples`; depth is scored in metres with
    the frame's K, at the frame's own resolution. A depth model gets a simulated camera depth
    (seeded per frame): ``depth_*`` and the other tasks are scored with it, ``depth_holes_*``
    on the pixels where that camera had no depth, and ``rgb_depth_*`` without any depth input.
    ``instances_f`` scores the instances the node publishes by default (geometry first with
    the camera's depth, else the painting's object pixels grouped by depth clusters),
    ``instances_clusters_f`` the clusters with the same depth, ``instances_painting_f`` the
    instance painting's own.
    """
    from vision_banana_ros.evaluation.metrics import (
        depth_metrics,
        instance_metrics,
        normal_angles_deg,
        semantic_miou,
    )
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.runtime.torch_backend import TorchBackend
    from vision_banana_ros.synthetic.sensor import simulate_sensor_depth

    was_training = model.training
    backend = TorchBackend(Path(), device=str(next(model.parameters()).device), model=model)
    pipe = Pipeline(backend, model.config, list(tasks), tune_process=False)
    rgbd = bool(model.config.depth_input)
    acc: dict[str, list[float]] = {}

    def add(key: str, m: Any) -> None:
        if m is not None:
            for name in ("abs_rel", "rmse", "delta1"):
                acc.setdefault(f"{key}_{name}", []).append(getattr(m, name))

    angles = []
    for i, (frame, _) in enumerate(samples):
        sensor = (simulate_sensor_depth(frame.depth, frame.k, np.random.default_rng(i),
                                        frame.material, frame.depth_through) if rgbd else None)
        out = pipe(frame.rgb, frame.k, sensor)
        if out.depth is not None:
            add("depth", depth_metrics(out.depth, frame.depth))
            if rgbd:
                holes = np.where(np.isfinite(sensor), np.nan, frame.depth)
                add("depth_holes", depth_metrics(out.depth, holes))
                add("rgb_depth", depth_metrics(pipe(frame.rgb, frame.k).depth, frame.depth))
        if out.instances is not None:
            gt_ids = frame.instances.astype(np.int64)
            found = _node_instances(out, frame.rgb, frame.k, sensor)
            im = instance_metrics(next(iter(found.values())).astype(np.int64), gt_ids)
            acc.setdefault("instances_f", []).append(im.f_measure)
            acc.setdefault("instances_matched_iou", []).append(im.matched_iou)
            if "clusters" in found:
                acc.setdefault("instances_clusters_f", []).append(
                    instance_metrics(found["clusters"].astype(np.int64), gt_ids).f_measure)
            acc.setdefault("instances_painting_f", []).append(
                instance_metrics(out.instances, gt_ids).f_measure)
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


def _initialise(model: Any, path: Path) -> dict[str, int]:
    """Copy the weights of a checkpoint whose names and shapes match; returns the counts."""
    from vision_banana_ros.model.checkpoint import read_checkpoint

    state = read_checkpoint(path)["state_dict"]
    own = model.state_dict()
    same = {k: v.to(own[k].dtype) for k, v in state.items()
            if k in own and tuple(v.shape) == tuple(own[k].shape)}
    own.update(same)
    model.load_state_dict(own)
    return {"copied": len(same), "new": len(own) - len(same), "source": str(path)}


def batch_losses(model: Any, batch: dict[str, Any], task_ids: Any,
                 tasks: tuple[str, ...]) -> dict[str, Any]:
    """Named loss terms of one batch of torch tensors: each task's loss (the task table's
    :attr:`~vision_banana_ros.codecs.tasks.TaskSpec.loss`) on its painting and target."""
    from vision_banana_ros.codecs import TASKS
    from vision_banana_ros.training.losses import task_loss

    paint = model(batch["image"], task_ids, batch.get("sensor")).float()  # (B, T, 3, H, W)
    weight = batch.get("weight")
    parts: dict[str, Any] = {}
    for i, name in enumerate(tasks):
        parts.update(task_loss(name)(paint[:, i], batch[TASKS[name].target], weight))
    return parts


class _Run:
    """One training run: model, optimiser, data and bookkeeping (set up, stepped, saved)."""

    def __init__(self, cfg: TrainConfig, resume: bool, command: str) -> None:
        import torch

        from vision_banana_ros.model import ModelConfig, build_model, load_model
        from vision_banana_ros.model.checkpoint import read_checkpoint
        from vision_banana_ros.runtime.threads import limit_blas_threads
        from vision_banana_ros.synthetic.shards import read_index
        from vision_banana_ros.training.data import evaluation_samples, training_batches
        from vision_banana_ros.training.teacher import make_teacher

        self.cfg, self.command, self.torch = cfg, command, torch
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.data_frames = read_index(Path(cfg.data))["frames"]  # fails early on bad data
        torch.manual_seed(cfg.seed)
        torch.set_num_threads(cfg.threads)
        limit_blas_threads(1)  # numpy's OpenBLAS workers spin between the data steps
        self.device = _device(cfg.device)
        self.use_amp = cfg.amp and self.device.startswith("cuda")
        self.step, self.elapsed_before, self.history = 0, 0.0, []
        self.initialised: dict[str, Any] = {}
        last = self.out / "last.pt"
        doc = None
        if resume and last.exists():
            self.model, doc = load_model(last, device=self.device)
            self.step = int(doc["train"]["step"])
            self.elapsed_before = float(doc["train"].get("elapsed_s", 0.0))
            self.history = list(doc["metrics"].get("history", []))
        else:
            model_cfg = ModelConfig.from_dict(cfg.model) if cfg.model else ModelConfig()
            self.model = build_model(model_cfg)
            if cfg.init_from:
                self.initialised = _initialise(self.model, Path(cfg.init_from))
            self.model = self.model.to(self.device)
        self.model.train()
        self.tasks = self.model.config.tasks
        self.task_ids = self.model.task_ids(self.tasks).to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr,
                                           weight_decay=cfg.weight_decay)
        if doc is not None:
            saved = read_checkpoint(last).get("optimizer")
            if saved is not None:
                self.optimizer.load_state_dict(saved)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        mc = self.model.config
        self.batches = training_batches(Path(cfg.data), cfg.batch_size, mc.input_width,
                                        mc.input_height, mc.canonical_focal_px,
                                        seed=cfg.seed + self.step, depth_input=mc.depth_input,
                                        depth_dropout=cfg.depth_dropout,
                                        hole_weight=cfg.depth_hole_weight)
        self.val = (evaluation_samples(Path(cfg.val_data), mc.input_width, mc.input_height,
                                       mc.canonical_focal_px, cfg.eval_frames)
                    if cfg.val_data else [])
        self.teacher = make_teacher(cfg.teacher, mc.canonical_focal_px)
        self.start = time.perf_counter()

    def lr_at(self, s: int) -> float:
        """Linear warm-up, then cosine decay to 5 % of the peak."""
        cfg = self.cfg
        if s < cfg.warmup_steps:
            return cfg.lr * (s + 1) / cfg.warmup_steps
        frac = (s - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    def train_step(self) -> dict[str, float]:
        """One optimiser step; returns the loss terms and the total."""
        torch, cfg = self.torch, self.cfg
        batch = self.teacher(next(self.batches))
        t = {k: torch.from_numpy(np.asarray(v)).to(self.device) for k, v in batch.items()}
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        with torch.autocast("cuda", enabled=self.use_amp):
            parts = batch_losses(self.model, t, self.task_ids, self.tasks)
        loss = sum(cfg.loss_weights.get(k, 0.0) * v for k, v in parts.items())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        terms = {"loss": float(loss.item()), **{k: float(v.item()) for k, v in parts.items()}}
        self.history.append({"step": self.step, **terms})
        return terms

    def evaluate(self) -> dict[str, Any]:
        """Held-out metrics now (appended to ``metrics.jsonl``)."""
        self.model.eval()
        metrics = evaluate(self.model, self.val, self.tasks) if self.val else {}
        self.model.train()
        metrics["step"] = self.step
        with (self.out / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(metrics) + "\n")
        return metrics

    def save(self, path: Path, metrics: dict[str, Any], with_optimizer: bool) -> None:
        """A complete checkpoint (config, command, data, compute, metrics, history)."""
        from vision_banana_ros.model import save_checkpoint

        cfg = self.cfg
        info = {"config": asdict(cfg), "command": self.command, "step": self.step,
                "elapsed_s": self.elapsed_before + time.perf_counter() - self.start,
                "device": self.device, "torch": str(self.torch.__version__),
                "teacher": self.teacher.name, "data": str(cfg.data),
                "data_frames": self.data_frames, "initialised": self.initialised}
        save_checkpoint(path, self.model, train=info,
                        metrics={**metrics, "history": self.history},
                        optimizer=self.optimizer.state_dict() if with_optimizer else None)


def train(cfg: TrainConfig, *, resume: bool = False, command: str = "",
          progress: bool = True) -> dict[str, Any]:
    """Run training (``--resume`` continues ``OUT/last.pt``); returns the final metrics."""
    run = _Run(cfg, resume, command)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=run.step, desc="train", file=sys.stderr)
    metrics: dict[str, Any] = {}
    while run.step < cfg.steps:
        if cfg.time_limit_s and time.perf_counter() - run.start > cfg.time_limit_s:
            break
        terms = run.train_step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items()})
        if run.step % cfg.eval_every == 0 or run.step == cfg.steps:
            metrics = run.evaluate()
            if bar is not None:
                bar.write(f"step {run.step}: " + ", ".join(
                    f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
            run.save(run.out / "last.pt", metrics, with_optimizer=True)
        if cfg.snapshot_every and run.step % cfg.snapshot_every == 0:
            run.save(run.out / f"step_{run.step}.pt", metrics, with_optimizer=False)
    if bar is not None:
        bar.close()
    run.model.eval()
    if run.val and metrics.get("step") != run.step:
        metrics = run.evaluate()
    run.save(run.out / "last.pt", metrics, with_optimizer=True)
    run.save(run.out / "model.pt", metrics, with_optimizer=False)
    return metrics
