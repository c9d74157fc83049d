"""Depth codec: accuracy, numpy/torch agreement, noise robustness, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vision_banana_ros.codecs import (
    decode_depth,
    decode_depth_reference,
    decode_depth_torch,
    depth_quantisation_step_m,
    encode_depth,
    encode_depth_torch,
    encode_depth_uint8,
)
from vision_banana_ros.codecs.constants import DEPTH_C, DEPTH_LAMBDA, DEPTH_WALK_VERTICES
from vision_banana_ros.codecs.depth import depth_to_walk
from vision_banana_ros.errors import CodecError

DEPTHS = np.geomspace(0.05, 20.0, 200_000, dtype=np.float32).reshape(400, 500)


def test_constants_are_the_papers():
    assert DEPTH_LAMBDA == -3.0
    assert DEPTH_C == pytest.approx(10.0 / 3.0)
    names = ["black", "red", "yellow", "green", "cyan", "blue", "magenta", "white"]
    expected = {"black": (0, 0, 0), "red": (1, 0, 0), "yellow": (1, 1, 0), "green": (0, 1, 0),
                "cyan": (0, 1, 1), "blue": (0, 0, 1), "magenta": (1, 0, 1), "white": (1, 1, 1)}
    assert DEPTH_WALK_VERTICES.tolist() == [list(expected[n]) for n in names]


def test_power_transform_matches_formula_at_vertices():
    # f(d) = 1 - (1 + d/10)^-2; vertex j of the walk is at f = j/7.
    for j in range(8):
        f = j / 7.0
        d = np.inf if j == 7 else 10.0 * ((1.0 - f) ** -0.5 - 1.0)
        painted = encode_depth(np.full((1, 1), d, np.float32))[0, 0]
        np.testing.assert_allclose(painted, DEPTH_WALK_VERTICES[j], atol=1e-5)


def test_zero_and_infinity_are_black_and_white():
    p = encode_depth(np.array([[0.0, np.inf]], np.float32))
    assert p[0, 0].tolist() == [0, 0, 0]
    assert p[0, 1].tolist() == [1, 1, 1]
    d = decode_depth(np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8))
    assert d[0, 0] == 0.0 and np.isposinf(d[0, 1])


def test_8bit_round_trip_within_half_a_step():
    decoded = decode_depth(encode_depth_uint8(DEPTHS))
    err = np.abs(decoded - DEPTHS)
    step = depth_quantisation_step_m(DEPTHS)
    # Half a step in f is half a linearised depth step up to the curvature of the transform
    # within one step (at most 0.2 % of a step over 0.05-20 m); float32 adds 1e-6 relative.
    assert np.all(err <= 0.5 * step * 1.01 + 1e-6 * DEPTHS)
    # The documented magnitudes: about 1.4 mm near the camera, 5 mm at 5 m.
    assert 0.5 * depth_quantisation_step_m(0.0) == pytest.approx(0.0014, abs=1e-4)
    assert 0.5 * depth_quantisation_step_m(5.0) == pytest.approx(0.0047, abs=2e-4)


def test_fast_decoder_matches_general_projection():
    rng = np.random.default_rng(1)
    paintings = rng.integers(0, 256, size=(2, 120, 160, 3), dtype=np.uint8)  # off the walk too
    # rtol 1e-4: off-walk colours decode up to hundreds of metres, where float32 rounding of
    # the walk position is amplified by the steep inverse transform (5e-5 seen at 400 m).
    np.testing.assert_allclose(decode_depth(paintings), decode_depth_reference(paintings),
                               rtol=1e-4, atol=1e-6)


def test_numpy_and_torch_agree():
    painting = encode_depth_uint8(DEPTHS)
    np_depth = decode_depth(painting)
    t_depth = decode_depth_torch(torch.from_numpy(painting).permute(2, 0, 1)).numpy()
    np.testing.assert_allclose(t_depth, np_depth, rtol=1e-5)
    t_paint = encode_depth_torch(torch.from_numpy(DEPTHS)).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(t_paint, encode_depth(DEPTHS), atol=1e-5)


def test_batched_decoding_equals_per_image():
    batch = np.stack([encode_depth_uint8(DEPTHS[:50] * s) for s in (0.5, 1.0, 2.0)])
    out = decode_depth(batch)
    assert out.shape == (3, 50, 500)
    for i in range(3):
        np.testing.assert_array_equal(out[i], decode_depth(batch[i]))
    tb = decode_depth_torch(torch.from_numpy(batch).permute(0, 3, 1, 2))
    assert tuple(tb.shape) == (3, 50, 500)


def test_noise_never_jumps_to_a_far_segment():
    rng = np.random.default_rng(2)
    sigma = 2.0 / 255.0
    painting = encode_depth(DEPTHS)
    noisy = np.clip(painting + rng.normal(0.0, sigma, painting.shape), 0, 1).astype(np.float32)
    decoded = decode_depth(noisy)
    # In walk units (one edge = 1.0), noise moves a pixel along its edge by the noise of one
    # channel, or at a vertex onto the adjacent edge by about the L1 norm of the noise: a local
    # error of a few sigma. A jump to a non-adjacent edge would be >= 1.0.
    walk_error = np.abs(depth_to_walk(decoded) - depth_to_walk(DEPTHS)) * 7.0
    assert walk_error.max() <= 12 * sigma
    assert np.median(walk_error) <= sigma


def test_output_buffer_is_used():
    painting = encode_depth_uint8(DEPTHS[:10])
    out = np.empty(DEPTHS[:10].shape, np.float32)
    assert decode_depth(painting, out=out) is out
    with pytest.raises(CodecError, match="out must be float32"):
        decode_depth(painting, out=np.empty((3, 3), np.float32))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((4, 4), np.uint8), r"shape \(\.\.\., H, W, 3\)"),
        (np.zeros((4, 4, 4), np.uint8), r"shape \(\.\.\., H, W, 3\)"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((4, 4, 3), np.int32), "uint8 or floating point"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_decode_bad_input(bad, message):
    with pytest.raises(CodecError, match=message):
        decode_depth(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([[1.0, np.nan]], np.float32), "NaN"),
        (np.array([[1.0, -0.1]], np.float32), ">= 0"),
        (np.array([[1, 2]], np.int32), "floating point"),
        (np.zeros((0, 3), np.float32), "empty"),
    ],
)
def test_encode_bad_input(bad, message):
    with pytest.raises(CodecError, match=message):
        encode_depth(bad)


def test_nan_maps_only_to_a_named_value():
    d = np.array([[1.0, np.nan]], np.float32)
    p = encode_depth(d, nan_to=np.inf)
    assert p[0, 1].tolist() == [1, 1, 1]
    with pytest.raises(CodecError, match="NaN"):
        encode_depth_torch(torch.from_numpy(d))
