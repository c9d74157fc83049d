"""Evaluation metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.evaluation.metrics import (
    constant_baseline,
    depth_metrics,
    depth_report,
    instance_metrics,
    median_scale,
    normal_angles_deg,
    semantic_miou,
)

GT = np.linspace(0.4, 3.0, 1200, dtype=np.float32).reshape(30, 40)


def test_perfect_depth():
    m = depth_metrics(GT.copy(), GT)
    assert m.abs_rel == 0 and m.rmse == 0 and m.delta1 == 1 and m.valid_pixels == 1200


@pytest.mark.parametrize(("scale", "delta1", "delta2"), [(1.1, 1.0, 1.0), (1.3, 0.0, 1.0),
                                                         (0.7, 0.0, 1.0), (1.6, 0.0, 0.0)])
def test_scaled_depth(scale, delta1, delta2):
    m = depth_metrics(GT * scale, GT)
    assert m.abs_rel == pytest.approx(abs(scale - 1), rel=1e-5)
    assert m.rmse == pytest.approx(abs(scale - 1) * np.sqrt(np.mean(GT.astype(float) ** 2)),
                                   rel=1e-5)
    assert m.delta1 == delta1 and m.delta2 == delta2
    assert median_scale(GT * scale, GT) == pytest.approx(1 / scale, rel=1e-5)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 1000, 1001])
def test_median_scale_uses_the_exact_median(n):
    rng = np.random.default_rng(n)
    gt = rng.uniform(0.3, 4.0, n).astype(np.float32)
    pred = rng.uniform(0.3, 4.0, n).astype(np.float32)
    pred[0] = gt[-1] = 2.0  # ties
    expected = np.median(gt.astype(np.float64)) / np.median(pred.astype(np.float64))
    assert median_scale(pred, gt) == pytest.approx(expected, rel=1e-7)


def test_invalid_ground_truth_is_ignored_and_missing_predictions_count():
    gt = GT.copy()
    gt[:10] = 0.0          # sensor holes
    gt[10:12] = np.nan
    pred = GT.copy()
    pred[20:] = np.nan     # 400 valid pixels without a prediction
    m = depth_metrics(pred, gt)
    assert m.valid_pixels == 1200 - 480
    assert m.delta1 == pytest.approx((720 - 400) / 720)
    assert m.abs_rel == pytest.approx(400 / 720)
    assert depth_metrics(GT, np.zeros_like(GT)) is None


def test_depth_report_equals_separate_passes():
    rng = np.random.default_rng(3)
    gt = rng.uniform(0.2, 6.0, (48, 64)).astype(np.float32)
    gt[:4] = 0.0
    gt[4:6] = np.inf
    pred = (gt * rng.uniform(0.7, 1.4, gt.shape)).astype(np.float32)
    pred[10:12] = np.nan
    ranges = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, np.inf))
    rep = depth_report(pred, gt, ranges)
    assert rep.metrics == depth_metrics(pred, gt)
    scale = median_scale(pred, gt)
    assert rep.median_scale == pytest.approx(scale, rel=1e-12)
    ms = depth_metrics(pred * scale, gt)
    assert rep.median_scaled.abs_rel == pytest.approx(ms.abs_rel, rel=1e-6)
    assert rep.median_scaled.delta1 == pytest.approx(ms.delta1, rel=1e-6)
    assert set(rep.by_range) == set(ranges)
    for (lo, hi), (d1, rel) in rep.by_range.items():
        m = depth_metrics(pred, gt, (gt >= lo) & (gt < hi))
        assert (d1, rel) == pytest.approx((m.delta1, m.abs_rel), rel=1e-9)
    assert rep.bin_count.sum() == (np.isfinite(gt) & (gt > 0) & np.isfinite(pred)).sum()
    only_far = depth_report(pred, np.where(gt > 4.0, gt, 0.0), ranges)
    assert set(only_far.by_range) == {(4.0, np.inf)}
    assert depth_report(pred, np.zeros_like(gt), ranges) is None
    gaps = depth_report(pred, gt, ((0.0, 1.0), (2.0, 3.0)))
    m = depth_metrics(pred, gt, (gt >= 2.0) & (gt < 3.0))
    assert gaps.by_range[(2.0, 3.0)] == pytest.approx((m.delta1, m.abs_rel), rel=1e-9)
    with pytest.raises(VisionBananaError, match=r"whole 0\.25 m bins"):
        depth_report(pred, gt, ((0.0, 0.3),))
    with pytest.raises(VisionBananaError, match=r"whole 0\.25 m bins"):
        depth_report(pred, gt, ((2.0, 10.0),))


@pytest.mark.parametrize("n", [1200, 1199])
def test_constant_baseline_equals_predicting_the_median_everywhere(n):
    gt = np.linspace(0.4, 3.0, n, dtype=np.float32)
    gt[::7] = np.nan
    gt[::11] = 0.0
    gt = np.random.default_rng(n).permutation(gt)
    want = depth_metrics(np.full_like(gt, np.nanmedian(np.where(gt > 0, gt, np.nan))), gt)
    got = constant_baseline(gt)
    assert got.valid_pixels == want.valid_pixels
    for key in ("abs_rel", "rmse", "delta1", "delta2", "delta3"):
        assert getattr(got, key) == pytest.approx(getattr(want, key), rel=1e-6)
    assert constant_baseline(np.full((4, 4), np.nan, np.float32)) is None


def test_instances_identical_and_renumbered():
    gt = np.zeros((20, 20), np.int64)
    gt[2:8, 2:8] = 1
    gt[10:18, 10:14] = 2
    m = instance_metrics(gt, gt)
    assert (m.precision, m.recall, m.f_measure, m.matched_iou) == (1, 1, 1, 1)
    renum = np.where(gt == 1, 7, np.where(gt == 2, 3, 0))
    assert instance_metrics(renum, gt).f_measure == 1


def test_instances_hand_computed():
    gt = np.zeros((10, 10), np.int64)
    gt[0:4, 0:4] = 1        # 16 px
    gt[5:10, 5:10] = 2      # 25 px
    pred = np.zeros_like(gt)
    pred[0:4, 0:2] = 1      # 8 px inside gt 1
    pred[5:10, 5:10] = 2    # exact gt 2
    pred[0:2, 6:10] = 3     # 8 px false positive
    m = instance_metrics(pred, gt)
    # matched: (1,1) 8 px, (2,2) 25 px; predicted area 41, gt area 41
    assert m.precision == pytest.approx(33 / 41)
    assert m.recall == pytest.approx(33 / 41)
    assert m.matched_iou == pytest.approx((8 / 16 + 1.0) / 2)
    assert (m.predicted, m.ground_truth, m.matched) == (3, 2, 2)


def test_instances_empty_cases():
    z = np.zeros((5, 5), np.int64)
    one = z.copy()
    one[1:3, 1:3] = 1
    assert instance_metrics(z, z).f_measure == 1
    assert instance_metrics(z, one).f_measure == 0 and instance_metrics(z, one).recall == 0
    assert instance_metrics(one, z).precision == 0


def test_semantic_miou_hand_computed():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 1]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 1]], np.uint8)
    miou, per = semantic_miou(pred, gt, 3)
    # class 0: inter 1, union 3; class 1: inter 3, union 4; class 2: inter 1, union 2
    assert per == pytest.approx([1 / 3, 3 / 4, 1 / 2])
    assert miou == pytest.approx(np.mean([1 / 3, 3 / 4, 1 / 2]))


def test_normal_angles():
    a = np.zeros((1, 3, 3), np.float32)
    a[..., 2] = -1
    b = a.copy()
    b[0, 1] = [0, np.sin(np.radians(30)), -np.cos(np.radians(30))]
    b[0, 2] = np.nan
    ang = normal_angles_deg(b, a)
    assert ang.shape == (2,)
    np.testing.assert_allclose(np.sort(ang), [0, 30], atol=1e-4)


def test_backproject_pixels_matches_the_full_image_with_skew():
    from vision_banana_ros.geometry import backproject, backproject_pixels

    rng = np.random.default_rng(5)
    depth = rng.uniform(0.3, 2.0, (24, 32)).astype(np.float32)
    k = np.array([[30.0, 0.7, 15.2], [0.0, 31.0, 11.9], [0.0, 0.0, 1.0]])
    index = rng.choice(depth.size, 50, replace=False)
    full = backproject(depth, k).reshape(-1, 3)[index]
    np.testing.assert_allclose(backproject_pixels(depth, index, k), full, rtol=1e-5, atol=1e-6)


def test_group_by_label_keeps_order_and_handles_no_labels():
    from vision_banana_ros.geometry.objects import group_by_label

    groups = group_by_label(np.array([3, 0, 3, 1, 0, 3]))
    assert {k: v.tolist() for k, v in groups.items()} == {0: [1, 4], 1: [3], 3: [0, 2, 5]}
    assert group_by_label(np.zeros(0, np.int64)) == {}


def test_instance_colours_for_pictures_accept_any_id():
    from vision_banana_ros.visualize import instance_colours

    ids = np.array([[0, 1, 2], [215, 216, 40000]])
    rgb = instance_colours(ids)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == 0).all() and (rgb[0, 1] != rgb[0, 2]).any()
    assert (rgb[1, 1] == rgb[0, 1]).all()  # 216 reuses colour 1
