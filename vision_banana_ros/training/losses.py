"""Training losses: painting space (the paper's) plus decoded-space terms.

One function per task, named in the task table (:attr:`~vision_banana_ros.codecs.tasks.
TaskSpec.loss`): each takes channels-first paintings (B, 3, H, W) in [0, 1], the task's target
and optional (B, H, W) pixel weights, and returns named scalar terms that the config's
``loss_weights`` weigh.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vision_banana_ros.codecs import (
    DEFAULT_SEMANTIC_PALETTE,
    decode_depth_torch,
    encode_depth_torch,
    encode_normals_torch,
)

#: Discriminative instance loss margins (RGB distance, channels in [0, 1]): pixels within
#: PULL of their instance's mean colour, means at least 2 * PUSH apart and BLACK from black.
#: The codec merges colours closer than 0.15 and calls pixels within 0.25 of black background.
PULL, PUSH, BLACK = 0.05, 0.15, 0.45


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def _weighted(mask: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return mask if weight is None else mask * weight


def depth_losses(pred: torch.Tensor, depth: torch.Tensor,
                 weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Painting L1 against the encoded target, and |log d - log g| of the decoded depth.

    Args:
        pred: (B, 3, H, W) predicted paintings.
        depth: (B, H, W) target metres (canonical camera); NaN, inf or <= 0 are ignored.
        weight: (B, H, W) pixel weights (the trainer weighs the camera's depth holes up).
    """
    valid = torch.isfinite(depth) & (depth > 0)
    safe = torch.where(valid, depth, torch.ones_like(depth))
    target = encode_depth_torch(safe)
    mask = _weighted(valid.float(), weight)
    paint = _masked_mean((pred - target).abs().sum(1), mask)
    decoded = decode_depth_torch(pred).clamp(1e-3, 1e3)
    log_err = (torch.log(decoded) - torch.log(safe)).abs()
    return {"depth_paint": paint, "depth_decoded": _masked_mean(log_err, mask)}


def semantic_losses(pred: torch.Tensor, classes: torch.Tensor,
                    weight: torch.Tensor | None = None,
                    temperature: float = 0.1) -> dict[str, torch.Tensor]:
    """Squared distance to the class colour, and cross-entropy over -distance^2 / T."""
    colours = torch.as_tensor(DEFAULT_SEMANTIC_PALETTE.array, device=pred.device)
    valid = classes < len(colours)
    cls = torch.where(valid, classes, torch.zeros_like(classes))
    target = colours[cls].permute(0, 3, 1, 2)
    mask = _weighted(valid.float(), weight)
    paint = _masked_mean(((pred - target) ** 2).sum(1), mask)
    dist2 = ((pred.unsqueeze(1) - colours.view(1, -1, 3, 1, 1)) ** 2).sum(2)  # (B, K, H, W)
    ce = torch.nn.functional.cross_entropy(-dist2 / temperature, cls, reduction="none")
    return {"semantic_paint": paint, "semantic_decoded": _masked_mean(ce, mask)}


def normals_losses(pred: torch.Tensor, normals: torch.Tensor,
                   weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Painting L1 to the encoded normals, and 1 - cos of the decoded normals (valid only)."""
    valid = torch.isfinite(normals).all(1)
    safe = torch.nan_to_num(normals, nan=0.0)
    target = encode_normals_torch(safe)
    mask = _weighted(valid.float(), weight)
    paint = _masked_mean((pred - target).abs().sum(1), mask)
    n = pred * 2.0 - 1.0
    n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-6)
    cos = (n * safe).sum(1)
    return {"normals_paint": paint, "normals_decoded": _masked_mean(1.0 - cos, mask)}


def instance_losses(pred: torch.Tensor, ids: torch.Tensor,
                    weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The discriminative instance loss as the named term ``instances`` (per-instance terms:
    pixel weights do not apply)."""
    return {"instances": instance_loss(pred, ids)}


def task_loss(name: str) -> Callable[..., dict[str, torch.Tensor]]:
    """The loss function of a task, as the task table names it."""
    from vision_banana_ros.codecs import TASKS

    return globals()[TASKS[name].loss]


def instance_loss(pred: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Discriminative loss (De Brabandere et al., 2017) on the painted colours.

    Pull each object pixel to its object's mean colour, push object means apart and away from
    black, pull background pixels to black. Colour, not a regression target, identifies the
    instance, so no arbitrary target colour is averaged into grey.
    """
    total = pred.new_zeros(())
    for b in range(pred.shape[0]):
        e = pred[b].reshape(3, -1).t()  # (N, 3)
        label = ids[b].reshape(-1)
        uniq, inv = torch.unique(label, return_inverse=True)
        k = len(uniq)
        counts = torch.bincount(inv, minlength=k).float()
        means = torch.zeros(k, 3, device=pred.device).index_add_(0, inv, e) / counts[:, None]
        is_obj = uniq > 0
        dist = (e - means[inv]).norm(dim=1)
        pull_px = torch.relu(dist - PULL) ** 2
        per_cluster = torch.zeros(k, device=pred.device).index_add_(0, inv, pull_px) / counts
        loss = per_cluster[is_obj].mean() if is_obj.any() else pred.new_zeros(())
        background = label == 0
        if background.any():
            loss = loss + (torch.relu(e[background].norm(dim=1) - PULL) ** 2).mean()
        obj_means = means[is_obj]
        if len(obj_means) > 0:
            loss = loss + (torch.relu(BLACK - obj_means.norm(dim=1)) ** 2).mean()
        if len(obj_means) > 1:
            d = torch.cdist(obj_means, obj_means)
            iu = torch.triu_indices(len(obj_means), len(obj_means), 1, device=pred.device)
            loss = loss + (torch.relu(2 * PUSH - d[iu[0], iu[1]]) ** 2).mean()
        total = total + loss
    return total / pred.shape[0]
