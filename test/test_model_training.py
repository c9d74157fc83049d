"""The generator: training on rendered frames, checkpoints, teachers, instance paintings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vision_banana_ros.codecs import decode_instances
from vision_banana_ros.evaluation.metrics import instance_metrics
from vision_banana_ros.model import (
    CheckpointError,
    ModelConfig,
    build_model,
    load_model,
    save_checkpoint,
)
from vision_banana_ros.synthetic.render import render_dataset
from vision_banana_ros.synthetic.scene import SceneConfig
from vision_banana_ros.training.data import collate, evaluation_samples, training_batches
from vision_banana_ros.training.losses import instance_loss
from vision_banana_ros.training.teacher import OnnxDepthTeacher, TeacherError
from vision_banana_ros.training.train import TrainConfig, batch_losses, train

TINY = ModelConfig(arch="vb-tiny", input_width=64, input_height=64, pretrained=False)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    cfg = SceneConfig(resolutions=((64, 64),), min_objects=2, max_objects=5, settle_seconds=0.5)
    render_dataset(root / "train", scenes=3, views=2, seed=0, workers=1, config=cfg,
                   progress=False)
    render_dataset(root / "val", scenes=1, views=2, seed=1, workers=1, config=cfg,
                   progress=False)
    return root


def _all_losses(model, batch):
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()}
    tasks = model.config.tasks
    return sum(batch_losses(model, t, model.task_ids(tasks), tasks).values())


def test_loss_falls_when_training_a_tiny_model(shards):
    torch.manual_seed(0)
    model = build_model(TINY).train()
    batch = next(training_batches(shards / "train", 4, 64, 64, TINY.canonical_focal_px, seed=0))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = _all_losses(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3])


def test_train_command_checkpoints_round_trip_and_resume(shards, tmp_path):
    cfg = TrainConfig(data=str(shards / "train"), val_data=str(shards / "val"),
                      out=str(tmp_path / "run"), model=TINY.to_dict(), steps=3, batch_size=2,
                      eval_every=2, eval_frames=2, warmup_steps=1)
    metrics = train(cfg, progress=False, command="test")
    assert {"depth_abs_rel", "instances_f", "semantic_miou", "normals_mean_deg"} <= set(metrics)
    model, doc = load_model(tmp_path / "run" / "model.pt")
    assert doc["train"]["step"] == 3 and doc["train"]["command"] == "test"
    assert doc["model_config"]["arch"] == "vb-tiny" and "optimizer" not in doc
    assert doc["prompts"]["semantic"].startswith("Paint the semantic segmentation")
    # the loaded model reproduces the saved one's paintings
    x = torch.rand(1, 3, 64, 64)
    again, _ = load_model(tmp_path / "run" / "model.pt")
    with torch.inference_mode():
        np.testing.assert_array_equal(model(x, torch.arange(4)).numpy(),
                                      again(x, torch.arange(4)).numpy())
    cfg.steps = 5
    train(cfg, resume=True, progress=False)
    _, doc = load_model(tmp_path / "run" / "last.pt")
    assert doc["train"]["step"] == 5 and "optimizer" in doc
    assert len(doc["metrics"]["history"]) == 5


def test_checkpoint_errors_name_the_file_and_the_mismatch(tmp_path):
    model = build_model(TINY)
    good = tmp_path / "good.pt"
    save_checkpoint(good, model)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match=r"truncated\.pt is corrupt or truncated"):
        load_model(truncated)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    doc = torch.load(good, weights_only=True)
    doc["model_config"]["decoder_channels"] = 16
    torch.save(doc, other)
    with pytest.raises(CheckpointError, match=r"other.pt: weight .* has shape"):
        load_model(other)
    doc["model_config"]["arch"] = "vb-lite0"
    torch.save(doc, other)
    with pytest.raises(CheckpointError, match="does not fit architecture 'vb-lite0'"):
        load_model(other)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a vision_banana_ros checkpoint"):
        load_model(foreign)
    codec = tmp_path / "codec.pt"
    doc = torch.load(good, weights_only=True)
    doc["codec"]["depth_lambda"] = -2.0
    torch.save(doc, codec)
    with pytest.raises(CheckpointError, match="codec constant depth_lambda"):
        load_model(codec)


class _Payload:
    """An arbitrary object: pickling it would run code at load without weights_only."""


def test_checkpoints_load_weights_only(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "vision_banana_ros/checkpoint/1", "x": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="refused: weights_only"):
        load_model(evil)


def test_discriminative_loss_makes_decodable_instance_paintings():
    # Free per-pixel colours trained only by the instance loss decode to the exact instances.
    ids = np.zeros((48, 64), np.int64)
    ids[4:20, 4:24], ids[24:44, 8:30], ids[10:40, 36:60] = 1, 2, 3
    ids[30:40, 50:58] = 4
    torch.manual_seed(0)
    logits = torch.zeros(1, 3, 48, 64, requires_grad=True)
    with torch.no_grad():
        logits.normal_(0, 0.1)
    opt = torch.optim.Adam([logits], lr=0.05)
    target = torch.from_numpy(ids)[None]
    for _ in range(300):
        loss = instance_loss(torch.sigmoid(logits), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    painting = torch.sigmoid(logits)[0].permute(1, 2, 0).detach().numpy()
    decoded = decode_instances(painting)
    assert instance_metrics(decoded, ids).f_measure > 0.99
    # while regressing the same pixels toward arbitrary colours of one mean would give grey:
    assert float(loss) < 1e-3


def test_onnx_teacher_replaces_depth(tmp_path, shards):
    class Teacher(torch.nn.Module):
        def forward(self, image):
            return 0.5 + image.mean(1)  # (N, H, W) metres

    path = tmp_path / "teacher.onnx"
    torch.onnx.export(Teacher(), (torch.rand(1, 3, 64, 64),), str(path), input_names=["rgb"],
                      output_names=["depth"], dynamic_axes={"rgb": {0: "n"}, "depth": {0: "n"}},
                      dynamo=False)
    teacher = OnnxDepthTeacher(path, canonical_focal_px=200.0)
    batch = collate([s for _, s in evaluation_samples(shards / "val", 64, 64, 200.0)])
    out = teacher(batch)
    expected = 0.5 + batch["image"].mean(1)
    np.testing.assert_allclose(out["depth"], expected, rtol=1e-5)
    np.testing.assert_allclose(out["depth_canonical"],
                               expected * (200.0 / batch["fx"])[:, None, None], rtol=1e-5)

    class TwoInputs(torch.nn.Module):
        def forward(self, a, b):
            return a.mean(1) + b.mean(1)

    bad = tmp_path / "bad.onnx"
    torch.onnx.export(TwoInputs(), (torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)), str(bad),
                      dynamo=False)
    with pytest.raises(TeacherError, match=r"bad\.onnx must have one input and one output"):
        OnnxDepthTeacher(bad, 200.0)
