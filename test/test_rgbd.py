"""RGB-D input without ROS: depth planes, fusion, letterbox, the sensor model, the depth model
through every CPU backend, and the evaluator's completion figures (issue: RGB-D input)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vision_banana_ros.depth_input import PLANES, no_depth, sensor_planes
from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.fusion import (
    SOURCE_MODEL,
    SOURCE_NONE,
    SOURCE_SENSOR,
    align_scale,
    fuse_depth,
)
from vision_banana_ros.letterbox import letterbox
from vision_banana_ros.model import ModelConfig, build_model, load_model, save_checkpoint
from vision_banana_ros.synthetic.sensor import (
    TRANSPARENT,
    SensorModel,
    simulate_sensor_depth,
    stereo_shadow,
)

K = np.array([[200.0, 0, 64], [0, 200.0, 48], [0, 0, 1]])


def test_depth_planes_average_valid_pixels_only_and_mark_holes():
    depth = np.full((96, 128), 1.0, np.float32)
    depth[:, :64] = np.nan  # left half without depth
    depth[:, 64:66] = 0.0   # 16UC1 zeros are invalid too
    planes = sensor_planes(depth, 64, 48, fx_small=100.0, canonical_focal_px=200.0)
    assert planes.shape == (PLANES, 48, 64) and planes.dtype == np.float32
    assert (planes[1, :, :32] == 0).all() and (planes[0, :, :32] == 0).all()
    right = planes[:, :, 34:]
    assert (right[1] == 1).all()
    # 1 m at fx 100 in a 200 px canonical camera is 2 m canonical: f(2) = 1 - 1.2^-2.
    np.testing.assert_allclose(right[0], 1 - 1.2 ** -2, rtol=1e-5)
    assert (no_depth(48, 64) == 0).all()


def test_fusion_keeps_consistent_camera_depth_and_completes_the_rest():
    model = np.full((8, 8), 2.0, np.float32)
    sensor = np.full((8, 8), 1.0, np.float32)  # the model's scale is off by 2
    sensor[0, 0] = np.nan                       # a hole
    sensor[1, 1] = 3.0                          # inconsistent (seen through glass)
    depth, source = fuse_depth(model, sensor, "holes", 0.15)
    assert align_scale(model, sensor) == pytest.approx(0.5)
    assert depth[0, 0] == pytest.approx(1.0, abs=1e-4) and source[0, 0] == SOURCE_MODEL
    assert depth[1, 1] == pytest.approx(1.0, abs=1e-4) and source[1, 1] == SOURCE_MODEL
    keep = np.isfinite(sensor) & (sensor == 1.0)
    assert (depth[keep] == sensor[keep]).all() and (source[keep] == SOURCE_SENSOR).all()
    only_sensor, src = fuse_depth(model, sensor, "none", 0.15)
    assert np.isnan(only_sensor[0, 0]) and src[0, 0] == SOURCE_NONE
    assert (src[np.isfinite(sensor)] == SOURCE_SENSOR).all()
    only_model, src = fuse_depth(model, sensor, "all", 0.15)
    assert (src == SOURCE_MODEL).all() and only_model[1, 1] == pytest.approx(1.0, abs=1e-4)
    rgb_only, src = fuse_depth(model, None, "holes", 0.15)
    assert (rgb_only == 2.0).all() and (src == SOURCE_MODEL).all()
    with pytest.raises(VisionBananaError, match="depth fill must be one of"):
        fuse_depth(model, sensor, "some", 0.1)


def test_letterbox_keeps_the_aspect_and_moves_k():
    box = letterbox(1280, 720, 256, 192)
    assert (box.width, box.height, box.left, box.top) == (256, 144, 0, 24)
    k = np.array([[921.0, 0, 642.0], [0, 921.0, 360.0], [0, 0, 1]])
    ks = box.k(k)
    assert ks[0, 0] == pytest.approx(ks[1, 1]) == pytest.approx(921 * 0.2)
    # A pixel's ray is the same before and after: u' = (u + 0.5) * s - 0.5 + left.
    u, v = 1000.0, 100.0
    up, vp = (u + 0.5) * 0.2 - 0.5, (v + 0.5) * 0.2 - 0.5 + 24
    np.testing.assert_allclose([(up - ks[0, 2]) / ks[0, 0], (vp - ks[1, 2]) / ks[1, 1]],
                               [(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1]], atol=1e-9)
    full = box.place(np.ones((144, 256), np.float32), 0.0)
    assert full.shape == (192, 256) and full[:24].sum() == 0 and box.crop(full).all()
    assert letterbox(640, 480, 256, 192).full


def test_sensor_model_shadows_transparency_noise_and_determinism():
    depth = np.full((96, 128), 1.5, np.float32)
    depth[30:60, 60:90] = 0.6                          # a box in front of a wall
    through = depth.copy()
    through[30:60, 60:90] = 1.5
    material = np.zeros(depth.shape, np.uint8)
    material[30:60, 60:90] = TRANSPARENT
    # The second imager, to the right, cannot see the wall just left of the box.
    shadow = stereo_shadow(depth, 200.0, 0.05)
    # Disparity step 200 * 0.05 * (1/0.6 - 1/1.5) = 10 px: the 9 pixels before it.
    assert shadow[40, 51:60].all() and not shadow[40, :50].any() and not shadow[40, 60:].any()
    model = SensorModel(speckle_fraction=(0, 0), edge_hole_px=(0, 0))
    a = simulate_sensor_depth(depth, K, np.random.default_rng(3), material, through, model)
    b = simulate_sensor_depth(depth, K, np.random.default_rng(3), material, through, model)
    np.testing.assert_array_equal(a, b)
    glass = a[32:58, 62:88]
    assert 0.1 < np.isnan(glass).mean() < 0.9          # holes on glass
    wall = a[5:25, 5:40]
    assert np.isfinite(wall).all()
    assert 0.0005 < np.std(wall - 1.5) < 0.02           # noise at 1.5 m: millimetres
    np.testing.assert_allclose(wall * 1000, np.round(wall * 1000), atol=1e-3)  # 1 mm steps
    far = simulate_sensor_depth(np.full((8, 8), 20.0, np.float32), K,
                                np.random.default_rng(0))
    assert np.isnan(far).all()                          # beyond the range


def _depth_model(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="vb-tiny", input_width=64, input_height=64, pretrained=False,
                      depth_input=True)
    model = build_model(cfg).eval()
    with torch.no_grad():  # give the depth branch weight, so the depth input matters
        for p in model.depth_encoder.proj:
            p.weight.normal_(0, 0.5)
    save_checkpoint(tmp_path / "rgbd.pt", model)
    return model, tmp_path / "rgbd.pt"


def test_depth_model_runs_alike_through_torch_and_onnxruntime(tmp_path):
    from vision_banana_ros.runtime.select import create_backend

    _, path = _depth_model(tmp_path)
    images = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    planes = np.random.default_rng(1).random((1, 2, 64, 64), dtype=np.float32)
    outs = {}
    for name in ("torch", "onnxruntime"):
        backend = create_backend(name, path, threads=1)
        outs[name] = backend.run(images, np.arange(4), planes)
        without = backend.run(images, np.arange(4))
        np.testing.assert_array_equal(without, backend.run(images, np.arange(4),
                                                           np.zeros_like(planes)))
        assert np.abs(outs[name] - without).max() > 1e-3  # the depth input is used
        backend.close()
    np.testing.assert_allclose(outs["torch"], outs["onnxruntime"], atol=1e-4)


def test_rgb_checkpoints_still_load_and_a_depth_model_starts_as_its_rgb_model(tmp_path):
    from vision_banana_ros.training.train import _initialise

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "rgb.pt", build_model(ModelConfig(
        arch="vb-tiny", input_width=64, input_height=64, pretrained=False)))
    rgb, _ = load_model(tmp_path / "rgb.pt")
    assert rgb.config.depth_input is False
    depth_model = build_model(ModelConfig(**{**rgb.config.to_dict(), "pretrained": False,
                                             "depth_input": True})).eval()
    counts = _initialise(depth_model, tmp_path / "rgb.pt")
    assert counts["copied"] == len(rgb.state_dict()) and counts["new"] > 0
    x = torch.rand(1, 3, rgb.config.input_height, rgb.config.input_width)
    ids = torch.arange(len(rgb.config.tasks))
    with torch.no_grad():
        np.testing.assert_allclose(depth_model(x, ids, torch.rand(1, 2, *x.shape[2:])).numpy(),
                                   rgb.eval()(x, ids).numpy(), atol=1e-5)


def _rgbd_bag(path, frames=3, hide_truth=False):
    """A bag like real_cleargrasp_rgbd: colour, camera_info, the camera's depth (holes on the
    'transparent' sphere), ground truth on /ground_truth/..., and the transparent mask."""
    from vision_banana_ros.bags import RgbdBagWriter, image_msg
    from vision_banana_ros.bags.messages import depth_mm_from_metres
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    with RgbdBagWriter(path) as w:
        for i in range(frames):
            f = render_spheres_on_plane(96, 72, n_spheres=2, seed=i)
            glass = f.instances == 1
            sensor = np.where(glass, np.nan, f.depth)
            stamp = w.write(f.rgb, sensor, f.k, f.instances)
            if not hide_truth:
                w.write_message("/ground_truth/depth/image_raw", "sensor_msgs/msg/Image", stamp,
                                image_msg(depth_mm_from_metres(f.depth), "16UC1", stamp, "c"))
                w.write_message("/ground_truth/transparent_mask", "sensor_msgs/msg/Image",
                                stamp, image_msg((glass * 255).astype(np.uint8), "mono8",
                                                 stamp, "c"))
    return path


def test_eval_feeds_the_camera_depth_and_scores_the_completion(tmp_path):
    from vision_banana_ros.evaluation.bag_eval import Evaluation
    from vision_banana_ros.evaluation.config import EvalConfig

    _, model = _depth_model(tmp_path)
    bag = _rgbd_bag(tmp_path / "bag")
    common = dict(bag=bag, model=str(model), backend="onnxruntime", threads=1, progress=False,
                  write_bag=False, plots=False)
    doc = Evaluation(EvalConfig(out=tmp_path / "out", **common)).run()
    s = doc["summary"]
    assert doc["topics"]["depth"] == "/ground_truth/depth/image_raw"
    assert doc["topics"]["sensor_depth"] == "/camera/aligned_depth_to_color/image_raw"
    assert any("RGB-D input" in n for n in doc["notes"])
    # The holes (the 'glass' sphere) are completed and scored on their own.
    for key in ("holes_delta1", "transparent_delta1", "baseline_constant_delta1",
                "baseline_instances_f_measure", "sensor_kept"):
        assert s[key] is not None, key
    assert s["transparent_delta1"] == pytest.approx(s["holes_delta1"], abs=0.05)
    assert s["holes_delta1"] > 0
    # depth_fill none publishes the camera's depth only: all of it kept, holes unfilled.
    only = Evaluation(EvalConfig(out=tmp_path / "none", depth_fill="none", **common)).run()
    assert only["summary"]["sensor_kept"] == 1.0 and only["summary"]["holes_delta1"] == 0.0
    # RGB only: the camera depth is not used, no completion figures.
    rgb = Evaluation(EvalConfig(out=tmp_path / "rgb", depth_input="off", **common)).run()
    assert rgb["summary"]["holes_delta1"] is None and rgb["summary"]["sensor_kept"] is None


def test_hide_depth_scores_exactly_the_hidden_blobs(tmp_path):
    from vision_banana_ros.evaluation.bag_eval import Evaluation
    from vision_banana_ros.evaluation.config import EvalConfig

    _, model = _depth_model(tmp_path)
    bag = _rgbd_bag(tmp_path / "bag", hide_truth=True)  # only the camera's depth
    cfg = dict(bag=bag, model=str(model), backend="onnxruntime", threads=1, progress=False,
               write_bag=False, plots=False, hide_depth=0.25)
    a = Evaluation(EvalConfig(out=tmp_path / "a", **cfg)).run()
    b = Evaluation(EvalConfig(out=tmp_path / "b", **cfg)).run()
    assert a["summary"]["hidden_delta1"] is not None
    assert a["summary"]["hidden_delta1"] == b["summary"]["hidden_delta1"]  # seeded blobs
    # The non-learned baseline on the same blobs: the camera's depth interpolated into them
    # (a plane with spheres: most hidden pixels are the plane, so it scores well).
    assert 0.5 < a["summary"]["baseline_interp_hidden_delta1"] <= 1.0
    c = Evaluation(EvalConfig(out=tmp_path / "c", **{**cfg, "hide_seed": 1})).run()
    assert c["summary"]["hidden_delta1"] != a["summary"]["hidden_delta1"]


def test_completion_follows_the_camera_depth_around_a_hole():
    """The model's shape right but its scale off by 20 % on one side of the frame: the hole
    there is filled at the camera's scale around it, not at the frame's median scale; a flat
    model over a tilted surface (no shape to trust) gives way to the camera's depth around."""
    from vision_banana_ros.fusion import align_locally

    h, w = 120, 160
    truth = np.tile(np.linspace(0.5, 1.5, w, dtype=np.float32), (h, 1))
    model = truth.copy()
    model[:, w // 2:] *= 1.2           # wrong scale on the right half
    sensor = truth.copy()
    sensor[50:70, 120:140] = np.nan    # a hole on the right
    aligned = align_locally(model, sensor)
    np.testing.assert_allclose(aligned[:, :70], truth[:, :70], rtol=0.03)
    depth, _ = fuse_depth(model, sensor, "holes", 0.15)
    np.testing.assert_allclose(depth[50:70, 120:140], truth[50:70, 120:140], rtol=0.03)
    flat = np.full_like(truth, float(np.median(truth)))
    depth, _ = fuse_depth(flat, sensor, "holes", 0.15)
    np.testing.assert_allclose(depth[50:70, 120:140], truth[50:70, 120:140], rtol=0.03)


def test_completion_checks_the_models_shape_on_the_cameras_own_pixels():
    """A model whose shape is wrong (ripples a tilted table does not have) fills a hole no
    worse than interpolating the camera's depth around it, since held-out camera pixels show
    the ripples are wrong (before the check: 0.022 against 0.016 relative error); a model
    whose shape is right (the bumps of objects, one hidden by the hole) keeps its shape and
    beats interpolation by far."""
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    table = 0.8 + 0.004 * yy
    hole = (slice(40, 80), slice(60, 100))

    def hole_error(model: np.ndarray, truth: np.ndarray) -> float:
        sensor = truth.copy()
        sensor[hole] = np.nan
        depth, source = fuse_depth(model, sensor, "holes", 0.15)
        assert (source[hole] == 2).all()
        return float(np.abs(depth[hole] / truth[hole] - 1).mean())

    interpolation = hole_error(np.full_like(table, 1.0), table)
    assert hole_error(table * (1 + 0.12 * np.sin(xx / 6.0)), table) < 1.1 * interpolation
    bumps = table.copy()
    for cy in range(20, h, 30):
        for cx in range(20, w, 30):
            r2 = (yy - cy) ** 2 + (xx - cx) ** 2
            bumps -= np.where(r2 < 100, 0.1 * np.sqrt(np.maximum(0, 1 - r2 / 100)), 0)
    assert hole_error(bumps * 1.1, bumps) < 0.6 * hole_error(np.full_like(table, 1.0), bumps)


def test_object_clusters_separate_objects_in_depth_and_match_the_truth():
    from vision_banana_ros.evaluation.metrics import instance_metrics
    from vision_banana_ros.geometry.baseline import plane_cluster_instances
    from vision_banana_ros.geometry.clusters import object_clusters
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    f = render_spheres_on_plane(320, 240, n_spheres=4, seed=4)  # four spheres apart
    gt = f.instances.astype(np.int64)
    # One object mask for all spheres (as the semantic painting gives): depth separates them
    # (spheres that touch in 3D would be one instance: the method's known limit).
    ids = object_clusters(f.depth.astype(np.float32), f.k, gt > 0)
    assert ids.dtype == np.uint16 and ids.max() == gt.max()
    assert instance_metrics(ids.astype(np.int64), gt).f_measure > 0.95
    # The plane+cluster baseline shares the clustering and still finds them from depth alone.
    base = plane_cluster_instances(f.depth.astype(np.float32), f.k)
    assert instance_metrics(base.astype(np.int64), gt).f_measure > 0.8
    # No object pixels, no instances; holes in the depth are never an instance.
    assert object_clusters(f.depth.astype(np.float32), f.k, np.zeros_like(gt, bool)).max() == 0
    holed = np.where(gt == 1, np.nan, f.depth).astype(np.float32)
    assert (object_clusters(holed, f.k, gt > 0)[gt == 1] == 0).all()


def test_processor_makes_instances_by_the_source_asked_and_publishes_only_asked_tasks(
        tmp_path):
    from vision_banana_ros import node_config
    from vision_banana_ros.processing import make_processor, pipeline_tasks
    from vision_banana_ros.runtime.torch_backend import TorchBackend

    _, path = _depth_model(tmp_path)
    asked = node_config.validate({"tasks": "depth,instances", "publish_points": False})
    assert asked["instances_source"] == "geometry"
    assert pipeline_tasks(asked) == ["depth", "instances", "semantic"]
    painting = {**asked, "instances_source": "painting"}
    assert pipeline_tasks(painting) == ["depth", "instances", "semantic"]  # scale anchor
    assert pipeline_tasks({**painting, "scale_anchor": "none"}) == ["depth", "instances"]
    clusters = {**asked, "instances_source": "clusters"}
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    k = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
    camera = np.full((48, 64), 0.8, np.float32)
    backend = TorchBackend(path)
    geometry = make_processor(backend, asked)
    result = geometry(rgb, k, camera)
    assert result.outputs.semantic is None and result.outputs.instances is not None
    assert result.instances_method == "geometry"  # with the camera's depth
    assert "instances_grid" in result.outputs.timings_ms
    assert geometry(rgb, k).instances_method == "clusters"  # RGB only: the painting's objects
    assert make_processor(backend, clusters)(rgb, k, camera).instances_method == "clusters"
    own = make_processor(backend, painting)(rgb, k, camera)
    assert own.outputs.semantic is None and own.instances_method == "painting"
