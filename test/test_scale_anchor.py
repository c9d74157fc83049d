"""Metric depth without a depth camera, anchored on the support plane the robot knows
(issue: support-plane scale anchor): the anchor's arithmetic, its refusals, the processor
scaling RGB-only frames (and checking RGB-D ones), and the evaluator's figures."""

from __future__ import annotations

import numpy as np
import pytest

from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.geometry.support import support_plane_of_depth
from vision_banana_ros.scale_anchor import anchor_scale, parse_plane, plane_from_pose
from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

TABLE_TILT = np.radians(40.0)  # render_spheres_on_plane's table
TABLE_NORMAL = np.array([0.0, -np.cos(TABLE_TILT), -np.sin(TABLE_TILT)])
TABLE_OFFSET = float(-TABLE_NORMAL @ np.array([0.0, 0.0, 0.9]))


@pytest.fixture(scope="module")
def frame():
    return render_spheres_on_plane(160, 120, n_spheres=3, seed=1)


def _depth(frame) -> np.ndarray:
    return np.where(np.isfinite(frame.depth), frame.depth, np.nan).astype(np.float32)


def test_parse_plane_and_planes_from_poses():
    p = parse_plane("0 -2 0 1.5")  # normalised, facing the camera
    np.testing.assert_allclose(p.normal, [0, -1, 0])
    assert p.offset == pytest.approx(0.75)
    flipped = parse_plane("0, 1, 0, -0.75")
    np.testing.assert_allclose(flipped.normal, [0, -1, 0])
    assert parse_plane("  ") is None
    for bad in ("1 2 3", "a b c d", "0 0 0 1", "1 nan 0 1"):
        with pytest.raises(VisionBananaError, match="support plane"):
            parse_plane(bad)
    # A frame 0.5 m ahead with its z axis towards the camera: the plane z = 0.5.
    rotation = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])
    plane = plane_from_pose(np.array([0.1, 0.2, 0.5]), rotation)
    np.testing.assert_allclose(plane.normal, [0, 0, -1])
    assert plane.offset == pytest.approx(0.5)


@pytest.mark.parametrize("wrong", [0.5, 2.0, 7.0])
def test_the_anchor_recovers_the_scale_from_the_support_pixels(frame, wrong):
    depth = _depth(frame)
    support = frame.semantic == 1
    plane = parse_plane(" ".join(map(str, [*TABLE_NORMAL, TABLE_OFFSET])))
    a = anchor_scale(depth * np.float32(wrong), frame.k, support, plane)
    assert a.reason == "anchored" and a.scale == pytest.approx(1 / wrong, rel=1e-3)
    assert a.angle_deg < 1.0 and a.support_fraction > 0.3


def test_the_anchor_refuses_rather_than_guesses(frame):
    depth = _depth(frame)
    plane = parse_plane(" ".join(map(str, [*TABLE_NORMAL, TABLE_OFFSET])))
    few = np.zeros_like(frame.semantic, bool)
    few[:3, :3] = True
    assert anchor_scale(depth, frame.k, few, plane).scale is None
    tilted = parse_plane("0 0 -1 0.9")  # a plane facing the camera: not the table
    refused = anchor_scale(depth, frame.k, frame.semantic == 1, tilted)
    assert refused.scale is None and "normals disagree" in refused.reason


def test_the_support_plane_of_a_depth_image_is_the_table(frame):
    plane = support_plane_of_depth(_depth(frame), frame.k)
    assert plane is not None
    assert float(plane.normal @ TABLE_NORMAL) > 0.999
    assert plane.offset == pytest.approx(TABLE_OFFSET, abs=0.005)


def test_the_processor_scales_rgb_only_frames_and_checks_rgbd_ones(tmp_path):
    """Paintings of a known scene at twice its scale (a backend replaying them: the network
    is not what is tested): RGB only, the anchor halves the depth; with the camera's depth
    the published depth is the camera's and the anchor is only a check."""
    import torch

    from vision_banana_ros import node_config
    from vision_banana_ros.bench.pipeline import RecordedPaintings
    from vision_banana_ros.codecs.depth import encode_depth
    from vision_banana_ros.codecs.semantic import DEFAULT_SEMANTIC_PALETTE, encode_semantic
    from vision_banana_ros.model import ModelConfig, build_model
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.processing import FrameProcessor

    torch.manual_seed(0)
    cfg = build_model(ModelConfig(arch="vb-tiny", input_width=160, input_height=128,
                                  pretrained=False)).config
    f = render_spheres_on_plane(160, 128, n_spheres=3, seed=2)
    canonical = np.where(np.isfinite(f.depth), f.depth, 5.0) * cfg.canonical_focal_px \
        / f.k[0, 0]
    paint = {"depth": encode_depth(2.0 * canonical),
             "semantic": encode_semantic(f.semantic, DEFAULT_SEMANTIC_PALETTE)}
    tasks = ["depth", "semantic"]
    painted = np.stack([paint[t].transpose(2, 0, 1) for t in tasks])[None].astype(np.float32)
    options = node_config.validate({"tasks": "depth,semantic", "publish_points": False,
                                    "publish_objects": False})
    processor = FrameProcessor(Pipeline(RecordedPaintings(painted), cfg, tasks), options)
    plane = parse_plane(" ".join(map(str, [*TABLE_NORMAL, TABLE_OFFSET])))
    truth = np.where(np.isfinite(f.depth), f.depth, np.nan)
    unanchored = processor(f.rgb, f.k).outputs.depth
    assert np.nanmedian(unanchored / truth) == pytest.approx(2.0, rel=0.02)
    result = processor(f.rgb, f.k, None, plane)
    assert result.depth_scale == pytest.approx(0.5, rel=0.02)
    assert np.nanmedian(result.outputs.depth / truth) == pytest.approx(1.0, rel=0.02)
    camera = truth.astype(np.float32)
    checked = processor(f.rgb, f.k, camera, plane)
    assert checked.depth_scale is None and checked.anchor_check == pytest.approx(1.0, rel=0.03)
    off = FrameProcessor(processor.pipeline, {**options, "scale_anchor": "none"})
    assert off(f.rgb, f.k, None, plane).anchor is None
