"""Semantic, instance and normal codecs, and the task table."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vision_banana_ros.codecs import (
    DEFAULT_SEMANTIC_PALETTE,
    TASKS,
    decode_instances,
    decode_normals,
    decode_normals_torch,
    decode_semantic,
    decode_semantic_torch,
    encode_instances,
    encode_normals,
    encode_semantic,
    instance_palette,
    parse_tasks,
)
from vision_banana_ros.codecs.constants import SEMANTIC_NONE
from vision_banana_ros.errors import CodecError, VisionBananaError
from vision_banana_ros.synthetic.analytic import render_spheres_on_plane


def _boxes(k: int, seed: int, shape=(240, 320)) -> np.ndarray:
    """k non-overlapping rectangles of at least 20x20 pixels, ids 1..k."""
    rng = np.random.default_rng(seed)
    ids = np.zeros(shape, np.uint16)
    cols = int(np.ceil(np.sqrt(k)))
    ch, cw = shape[0] // cols, shape[1] // cols
    for i in range(k):
        r, c = divmod(i, cols)
        h, w = rng.integers(20, ch - 2), rng.integers(20, cw - 2)
        ids[r * ch + 1: r * ch + 1 + h, c * cw + 1: c * cw + 1 + w] = i + 1
    return ids


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ids a and b label the same regions (up to renumbering)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


# --- semantic --------------------------------------------------------------------------------

def test_semantic_round_trip_and_none():
    frame = render_spheres_on_plane(seed=3)
    painting = np.rint(encode_semantic(frame.semantic) * 255).astype(np.uint8)
    np.testing.assert_array_equal(decode_semantic(painting), frame.semantic)
    grey = np.full((2, 2, 3), 0.5, np.float32)  # sqrt(0.75) from every class colour
    assert (decode_semantic(grey) == SEMANTIC_NONE).all()
    assert (decode_semantic(grey, threshold=0.9) != SEMANTIC_NONE).all()


def test_semantic_torch_matches_numpy():
    rng = np.random.default_rng(0)
    p = rng.random((2, 30, 40, 3), dtype=np.float32)
    t = decode_semantic_torch(torch.from_numpy(p).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_array_equal(t, decode_semantic(p))


def test_semantic_palette_and_prompt():
    assert DEFAULT_SEMANTIC_PALETTE.min_separation() == pytest.approx(np.sqrt(2.0))
    assert "support surface cyan" in TASKS["semantic"].prompt
    with pytest.raises(CodecError, match=r"\[0, 3\)"):
        encode_semantic(np.array([[0, 3]], np.uint8))
    with pytest.raises(CodecError, match="threshold"):
        decode_semantic(np.zeros((2, 2, 3), np.uint8), threshold=0)


# --- instances -------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 5, 12, 20])
def test_instances_k_colours_give_k_instances(k):
    ids = _boxes(k, seed=k)
    painting = np.rint(encode_instances(ids) * 255).astype(np.uint8)
    decoded = decode_instances(painting)
    assert int(decoded.max()) == k
    assert _same_partition(decoded, ids)


@pytest.mark.parametrize("k", [3, 8, 16])
def test_instances_survive_noise_blur_and_jpeg(k):
    rng = np.random.default_rng(k)
    ids = _boxes(k, seed=100 + k)
    painting = np.rint(encode_instances(ids) * 255).astype(np.uint8)
    noisy = np.clip(painting + rng.normal(0, 2.0, painting.shape), 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(noisy, (3, 3), 0)
    ok, jpg = cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    degraded = cv2.imdecode(jpg, cv2.IMREAD_COLOR)
    decoded = decode_instances(degraded)
    assert int(decoded.max()) == k
    # Interiors (away from the blurred edges) keep their instance exactly.
    for i in range(1, k + 1):
        interior = cv2.erode((ids == i).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        labels = np.unique(decoded[interior])
        assert len(labels) == 1 and labels[0] != 0


def test_instances_batched_and_background_only():
    ids = np.stack([_boxes(3, 0), np.zeros((240, 320), np.uint16)])
    decoded = decode_instances(encode_instances(ids))
    assert decoded.shape == (2, 240, 320) and decoded.dtype == np.uint16
    assert int(decoded[1].max()) == 0


def test_instance_palette_is_distinct_and_far_from_black():
    pal = instance_palette(20)
    dist = np.linalg.norm(pal[:, None] - pal[None], axis=-1) + np.eye(20) * 9
    assert dist.min() >= 0.4
    assert np.linalg.norm(pal, axis=1).min() >= 0.5  # background threshold is 0.25
    with pytest.raises(CodecError, match="at most"):
        instance_palette(1000)


def test_instances_bad_input():
    with pytest.raises(CodecError, match=">= 0"):
        encode_instances(np.array([[-1, 0]], np.int32))
    with pytest.raises(CodecError, match="integer dtype"):
        encode_instances(np.zeros((2, 2), np.float32))
    with pytest.raises(CodecError, match="min_area"):
        decode_instances(np.zeros((2, 2, 3), np.uint8), min_area=0)


# --- normals ---------------------------------------------------------------------------------

def test_normals_round_trip_and_invalid():
    frame = render_spheres_on_plane(seed=4)
    painting = np.rint(encode_normals(frame.normals) * 255).astype(np.uint8)
    decoded = decode_normals(painting)
    valid = np.isfinite(frame.normals[..., 0])
    cos = np.clip((decoded[valid] * frame.normals[valid]).sum(-1), -1, 1)
    assert np.degrees(np.arccos(cos)).max() < 0.5  # 8 bits per component
    n = np.array([[[np.nan, np.nan, np.nan], [0.0, 0.0, -2.0]]], np.float32)
    p = encode_normals(n)
    np.testing.assert_allclose(p[0, 0], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(p[0, 1], [0.5, 0.5, 0.0])
    out = decode_normals(p)
    assert np.isnan(out[0, 0]).all()
    np.testing.assert_allclose(out[0, 1], [0, 0, -1], atol=1e-6)
    t = decode_normals_torch(torch.from_numpy(p).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(t, out, atol=1e-6)
    with pytest.raises(CodecError, match=r"\(\.\.\., 3\)"):
        encode_normals(np.zeros((4, 4, 2), np.float32))


# --- task table ------------------------------------------------------------------------------

def test_task_table():
    assert [t.index for t in TASKS.values()] == list(range(len(TASKS)))
    assert {t.name: t.ros_encoding for t in TASKS.values()} == {
        "depth": "32FC1", "instances": "16UC1", "semantic": "mono8", "normals": "32FC3"}
    assert [t.name for t in parse_tasks("normals, depth")] == ["depth", "normals"]
    with pytest.raises(VisionBananaError, match="known tasks: depth"):
        parse_tasks("depth,colour")
    with pytest.raises(VisionBananaError, match="no task"):
        parse_tasks(" , ")


def test_every_task_round_trips_through_uint8():
    frame = render_spheres_on_plane(seed=5)
    targets = {"depth": frame.depth, "instances": frame.instances, "semantic": frame.semantic,
               "normals": frame.normals}
    for name, spec in TASKS.items():
        painting = np.rint(spec.encode(targets[name]) * 255).astype(np.uint8)
        decoded = spec.decode(painting)
        assert decoded.dtype == spec.decoded_dtype, name
