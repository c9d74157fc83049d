"""Complete checkpoints: one dict with everything to rebuild, decode and reproduce a model.

Loaded with ``torch.load(..., weights_only=True)``: only tensors and plain containers, no pickle
code runs. Keys::

    format        "vision_banana_ros/checkpoint/1"
    model_config  ModelConfig.to_dict()
    state_dict    network weights
    codec         codec constants the paintings were trained with (checked at load time)
    prompts       task name -> prompt text
    train         training config, command, data, steps, time, device
    metrics       held-out metrics at save time
    optimizer     optimiser state (only in resumable training checkpoints)
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from vision_banana_ros.codecs import DEFAULT_SEMANTIC_PALETTE, TASKS
from vision_banana_ros.codecs.constants import DEPTH_C, DEPTH_LAMBDA, DEPTH_WALK_VERTICES
from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.model.config import ModelConfig
from vision_banana_ros.model.network import VisionBananaNet
from vision_banana_ros.model.registry import build_model

FORMAT = "vision_banana_ros/checkpoint/1"


class CheckpointError(VisionBananaError):
    """A checkpoint file is missing, corrupt, or does not fit this package or architecture."""


def codec_constants() -> dict[str, Any]:
    """The codec constants of this package, as recorded in checkpoints."""
    return {
        "depth_lambda": DEPTH_LAMBDA,
        "depth_c": DEPTH_C,
        "depth_walk_vertices": DEPTH_WALK_VERTICES.tolist(),
        "semantic_classes": list(DEFAULT_SEMANTIC_PALETTE.names),
        "semantic_colours": [list(c) for c in DEFAULT_SEMANTIC_PALETTE.colours],
    }


def save_checkpoint(path: Path, model: VisionBananaNet, *, train: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None,
                    optimizer: dict[str, Any] | None = None, half: bool = False) -> None:
    """Write a checkpoint atomically (temporary file, then rename).

    Args:
        half: store floating weights as float16 (halves the file; loading restores float32).
    """
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu()
             for k, v in model.state_dict().items()}
    doc: dict[str, Any] = {
        "format": FORMAT,
        "model_config": model.config.to_dict(),
        "state_dict": state,
        "codec": codec_constants(),
        "prompts": {name: TASKS[name].prompt for name in model.config.tasks},
        "train": train or {},
        "metrics": metrics or {},
    }
    if optimizer is not None:
        doc["optimizer"] = optimizer
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(doc, tmp)
    tmp.replace(path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load and check a checkpoint dict (no model built)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"model file {path} is corrupt or truncated: "
                              f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                              ) from err
    except Exception as err:  # the unpickler fails on random bytes in many ways
        text = str(err)
        if type(err).__name__ == "UnpicklingError" and "safe_globals" in text:
            raise CheckpointError(f"model file {path} holds objects other than tensors and "
                                  f"plain data (refused: weights_only)") from err
        detail = next((line.strip() for line in text.splitlines()
                       if line.strip().startswith("Unsupported")), text.splitlines()[0]
                      if text else type(err).__name__)
        raise CheckpointError(f"model file {path} is not a readable checkpoint (random or "
                              f"damaged bytes: {detail})") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise CheckpointError(f"model file {path} is not a vision_banana_ros checkpoint "
                              f"(format {fmt!r}, expected {FORMAT!r})")
    ours = codec_constants()
    theirs = doc.get("codec", {})
    for key, value in ours.items():
        if theirs.get(key) != value:
            raise CheckpointError(f"model file {path} was trained with codec constant {key}="
                                  f"{theirs.get(key)!r}, this package uses {value!r}")
    return doc


def load_model(path: Path, *, device: str = "cpu") -> tuple[VisionBananaNet, dict[str, Any]]:
    """Rebuild the network of a checkpoint and load its weights; returns (model, document).

    Raises:
        CheckpointError: missing, corrupt or truncated file, foreign format or codec, or
            weights that do not fit the recorded architecture.
    """
    doc = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict({**doc["model_config"], "pretrained": False})
    except (VisionBananaError, TypeError, KeyError) as err:
        raise CheckpointError(f"model file {path}: bad model_config: {err}") from err
    model = build_model(config)
    own = model.state_dict()
    state = doc.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"model file {path} has no state_dict of weights")
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"model file {path} does not fit architecture {config.arch!r}: "
            f"{len(missing)} missing weights (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(f"model file {path}: weight {key} has shape "
                                  f"{tuple(value.shape)}, architecture {config.arch!r} needs "
                                  f"{tuple(own[key].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    model.config = ModelConfig.from_dict(doc["model_config"])
    return model.to(device).eval(), doc
