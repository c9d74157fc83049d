"""Metric depth <-> RGB painting (Vision Banana's power transform and RGB-cube walk).

Encoding: ``f(d) = 1 - (1 + d / 10) ** -2`` (lambda = -3, c = 10/3) maps depth in metres from
[0, inf) to [0, 1); ``f`` then walks the 7 edges of the RGB cube listed in
:data:`~vision_banana_ros.codecs.constants.DEPTH_WALK_VERTICES`, one seventh of ``f`` per edge.

Decoding projects an RGB value onto the nearest edge. Inside the unit cube an edge's varying
channel never needs clamping, so the squared distance to edge k is the sum of the squared
deviations of its two fixed channels: six squares and seven sums per pixel, no general
point-to-segment projection. :func:`decode_depth_reference` keeps that general projection as the
benchmark baseline and as an independent check in the tests.

Conventions: numpy functions are channels last ``(..., H, W, 3)``; torch functions channels first
``(..., 3, H, W)``, as networks use them. Depth is metres along the optical axis (the z of the
camera optical frame), float32. ``0`` paints black, ``+inf`` paints white; negative depth and NaN
are errors unless a replacement is named with ``nan_to``.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from vision_banana_ros.codecs._validate import (
    check_painting,
    float_array,
    float_painting,
    painting_planes_into,
    torch_painting,
)
from vision_banana_ros.codecs.constants import (
    DEPTH_EDGE_DIRECTION,
    DEPTH_EDGE_FIXED_CHANNELS,
    DEPTH_EDGE_FIXED_VALUES,
    DEPTH_EDGE_VARYING,
    DEPTH_EXPONENT,
    DEPTH_SCALE_M,
    DEPTH_SEGMENTS,
    DEPTH_WALK_VERTICES,
)
from vision_banana_ros.errors import CodecError

__all__ = [
    "decode_depth",
    "decode_depth_reference",
    "decode_depth_torch",
    "depth_quantisation_step_m",
    "depth_to_walk",
    "encode_depth",
    "encode_depth_torch",
    "encode_depth_uint8",
    "walk_to_depth",
]


def depth_to_walk(depth_m: np.ndarray) -> np.ndarray:
    """Power transform: metres in [0, inf] -> walk position f in [0, 1] (float32, same shape)."""
    d = np.asarray(depth_m, dtype=np.float32)
    # 1 - (1 + x) ** e == -expm1(e * log1p(x)), without cancellation near d = 0.
    return -np.expm1(np.float32(DEPTH_EXPONENT) * np.log1p(d / np.float32(DEPTH_SCALE_M)))


def walk_to_depth(f: np.ndarray) -> np.ndarray:
    """Inverse power transform: walk position f in [0, 1] -> metres (f = 1 gives +inf)."""
    f = np.asarray(f, dtype=np.float32)
    # (1 - f) ** (1 / e) - 1 == expm1(log1p(-f) / e), accurate for small f; f = 1 gives inf.
    with np.errstate(divide="ignore", over="ignore"):
        return np.float32(DEPTH_SCALE_M) * np.expm1(np.log1p(-f) / np.float32(DEPTH_EXPONENT))


def depth_quantisation_step_m(depth_m: np.ndarray | float) -> np.ndarray:
    """Depth change in metres of one 8-bit step along the walk at ``depth_m``.

    One step of one channel is ``1 / (7 * 255)`` of f; dividing by ``f'(d)`` gives
    ``0.0028 * (1 + d / 10) ** 3`` m (about 1.4 mm of error at half a step near the camera).
    """
    d = np.asarray(depth_m, dtype=np.float64)
    slope = -DEPTH_EXPONENT / DEPTH_SCALE_M * np.power(1.0 + d / DEPTH_SCALE_M, DEPTH_EXPONENT - 1)
    return 1.0 / (DEPTH_SEGMENTS * 255.0) / slope


def _checked_depth(depth_m: Any, nan_to: float | None) -> np.ndarray:
    d = float_array(depth_m, "depth")
    nan = np.isnan(d)
    if nan.any():
        if nan_to is None:
            raise CodecError(f"depth contains {int(nan.sum())} NaN values; pass nan_to= (for "
                             "example float('inf') to paint them white) to encode them")
        d = np.where(nan, np.float32(nan_to), d)
    if (d < 0).any():
        raise CodecError(f"depth must be >= 0 m, got minimum {float(d.min())}")
    return d


def encode_depth(depth_m: np.ndarray, *, nan_to: float | None = None) -> np.ndarray:
    """Paint metric depth as RGB.

    Args:
        depth_m: (..., H, W) float depth in metres along the optical axis, >= 0, +inf allowed.
        nan_to: depth to paint where ``depth_m`` is NaN; ``None`` makes NaN an error.

    Returns:
        (..., H, W, 3) float32 painting in [0, 1].

    Raises:
        CodecError: wrong type or dtype, empty, negative depth, or NaN without ``nan_to``.
    """
    d = _checked_depth(depth_m, nan_to)
    s = depth_to_walk(d) * np.float32(DEPTH_SEGMENTS)
    k = np.clip(np.floor(s), 0, DEPTH_SEGMENTS - 1).astype(np.int64)
    t = (s - k)[..., None]
    a = DEPTH_WALK_VERTICES[k]
    b = DEPTH_WALK_VERTICES[k + 1]
    return (a + t * (b - a)).astype(np.float32, copy=False)


def encode_depth_uint8(depth_m: np.ndarray, *, nan_to: float | None = None) -> np.ndarray:
    """:func:`encode_depth` rounded to an 8-bit image (..., H, W, 3) uint8."""
    return np.rint(encode_depth(depth_m, nan_to=nan_to) * 255.0).astype(np.uint8)


class _DecodeWorkspace:
    """Scratch buffers of one painting shape, reused across calls of one thread.

    Fresh 1 MB temporaries per call cost thousands of page faults (more than the arithmetic at
    640x480), so the decoder keeps its buffers, as an inference engine keeps its bindings.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self.planes = np.empty((3, *shape), np.float32)   # r, g, b
        self.squares = np.empty((6, *shape), np.float32)  # r^2 g^2 b^2 (1-r)^2 (1-g)^2 (1-b)^2
        self.inverse = np.empty((3, *shape), np.float32)  # 1-r, 1-g, 1-b
        self.best = np.empty(shape, np.float32)
        self.dist = np.empty(shape, np.float32)
        self.step = np.empty(shape, np.float32)
        self.closer = np.empty(shape, bool)


_workspaces = threading.local()


def _workspace(shape: tuple[int, ...]) -> _DecodeWorkspace:
    ws = getattr(_workspaces, "depth", None)
    if ws is None or ws.shape != shape:
        ws = _DecodeWorkspace(shape)
        _workspaces.depth = ws
    return ws


def decode_depth(painting: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Decode a depth painting to metres by projection onto the nearest walk edge.

    Args:
        painting: (..., H, W, 3) uint8 or float in [0, 1] (floats outside are clipped).
        out: optional (..., H, W) float32 array to write into.

    Returns:
        (..., H, W) float32 metres; ``+inf`` where the painting is white.

    Raises:
        CodecError: wrong type, dtype, shape, empty, or non-finite values, or a bad ``out``.
    """
    check_painting(painting, "depth painting")
    shape = painting.shape[:-1]
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise CodecError(f"out must be float32 of shape {shape}, got {out.dtype} {out.shape}")
    ws = _workspace(shape)
    painting_planes_into(painting, ws.planes, "depth painting")
    np.subtract(np.float32(1.0), ws.planes, out=ws.inverse)
    np.multiply(ws.planes, ws.planes, out=ws.squares[:3])
    np.multiply(ws.inverse, ws.inverse, out=ws.squares[3:])
    f = out  # the walk position is built in the output buffer, then transformed in place
    for k in range(DEPTH_SEGMENTS):
        (c0, c1), (v0, v1) = DEPTH_EDGE_FIXED_CHANNELS[k], DEPTH_EDGE_FIXED_VALUES[k]
        varying = int(DEPTH_EDGE_VARYING[k])
        along = ws.planes[varying] if DEPTH_EDGE_DIRECTION[k] > 0 else ws.inverse[varying]
        if k == 0:
            np.add(ws.squares[c0 + 3 * int(v0)], ws.squares[c1 + 3 * int(v1)], out=ws.best)
            np.copyto(f, along)
            continue
        np.add(ws.squares[c0 + 3 * int(v0)], ws.squares[c1 + 3 * int(v1)], out=ws.dist)
        np.less(ws.dist, ws.best, out=ws.closer)
        np.minimum(ws.best, ws.dist, out=ws.best)
        # Branch-free select, f = closer ? k + along : f (masked copies stall on noisy input).
        np.add(along, np.float32(k), out=ws.step)
        np.subtract(ws.step, f, out=ws.step)
        np.multiply(ws.step, ws.closer, out=ws.step)
        np.add(f, ws.step, out=f)
    # walk_to_depth in place: d = S * expm1(log1p(-f / 7) / e)
    np.multiply(f, np.float32(-1.0 / DEPTH_SEGMENTS), out=f)
    with np.errstate(divide="ignore", over="ignore"):
        np.log1p(f, out=f)
        np.multiply(f, np.float32(1.0 / DEPTH_EXPONENT), out=f)
        np.expm1(f, out=f)
    np.multiply(f, np.float32(DEPTH_SCALE_M), out=f)
    return out


def decode_depth_reference(painting: np.ndarray) -> np.ndarray:
    """Straightforward decoder: general point-to-segment projection onto each of the 7 edges.

    Same contract as :func:`decode_depth`; slower, kept as the benchmark baseline and as an
    independent implementation for the tests.
    """
    p = float_painting(painting, "depth painting")
    dists, positions = [], []
    for k in range(DEPTH_SEGMENTS):
        a, b = DEPTH_WALK_VERTICES[k], DEPTH_WALK_VERTICES[k + 1]
        ab = b - a
        t = np.clip(((p - a) @ ab) / float(ab @ ab), 0.0, 1.0)
        closest = a + t[..., None] * ab
        dists.append(np.sum((p - closest) ** 2, axis=-1))
        positions.append((k + t) / DEPTH_SEGMENTS)
    nearest = np.argmin(np.stack(dists), axis=0)
    f = np.take_along_axis(np.stack(positions), nearest[None], axis=0)[0]
    return walk_to_depth(f)


# ---------------------------------------------------------------------------------------------
# torch (channels first), for training losses and in-graph decoding
# ---------------------------------------------------------------------------------------------


def encode_depth_torch(depth_m: Any, *, nan_to: float | None = None) -> Any:
    """Paint depth with torch: (..., H, W) metres -> (..., 3, H, W) float in [0, 1].

    Differentiable in the depth except at vertices. NaN raises unless ``nan_to`` is given
    (the check synchronises with the device; targets, not hot inference paths, use this).
    """
    import torch

    if not isinstance(depth_m, torch.Tensor) or not depth_m.is_floating_point():
        raise CodecError("depth must be a floating torch.Tensor")
    if depth_m.numel() == 0 or depth_m.ndim < 2:
        raise CodecError(f"depth must be a non-empty (..., H, W) tensor, got "
                         f"{tuple(depth_m.shape)}")
    d = depth_m
    if torch.isnan(d).any():
        if nan_to is None:
            raise CodecError("depth contains NaN values; pass nan_to= to encode them")
        d = torch.nan_to_num(d, nan=nan_to, posinf=float("inf"))
    if (d < 0).any():
        raise CodecError(f"depth must be >= 0 m, got minimum {float(d.min())}")
    f = -torch.expm1(DEPTH_EXPONENT * torch.log1p(d / DEPTH_SCALE_M))
    s = f * DEPTH_SEGMENTS
    k = torch.clamp(torch.floor(s), 0, DEPTH_SEGMENTS - 1)
    t = (s - k).unsqueeze(-3)
    verts = torch.tensor(DEPTH_WALK_VERTICES.tolist(), dtype=d.dtype, device=d.device)
    idx = k.long()
    a = verts[idx].movedim(-1, -3)
    b = verts[idx + 1].movedim(-1, -3)
    return a + t * (b - a)


def _edge_index_tensors(device: Any) -> tuple[Any, Any, Any]:
    import torch

    # Candidate terms, stacked along the channel axis: [r^2, g^2, b^2, (1-r)^2, (1-g)^2, (1-b)^2]
    first = DEPTH_EDGE_FIXED_CHANNELS[:, 0] + 3 * DEPTH_EDGE_FIXED_VALUES[:, 0].astype(np.int64)
    second = DEPTH_EDGE_FIXED_CHANNELS[:, 1] + 3 * DEPTH_EDGE_FIXED_VALUES[:, 1].astype(np.int64)
    # Position candidates: [r, g, b, 1-r, 1-g, 1-b]
    along = DEPTH_EDGE_VARYING + 3 * (DEPTH_EDGE_DIRECTION < 0).astype(np.int64)
    return (torch.as_tensor(first, device=device), torch.as_tensor(second, device=device),
            torch.as_tensor(along, device=device))


def decode_depth_torch(painting: Any) -> Any:
    """Decode depth paintings with torch: (..., 3, H, W) -> (..., H, W) metres (+inf = white).

    Uses only elementwise ops, ``index_select``, ``argmin`` and ``gather``, so it exports to ONNX
    and runs inside a TensorRT engine.
    """
    import torch

    p = torch_painting(painting, "depth painting")
    first, second, along = _edge_index_tensors(p.device)
    q = 1.0 - p
    terms = torch.cat([p * p, q * q], dim=-3)  # (..., 6, H, W)
    dist = terms.index_select(-3, first) + terms.index_select(-3, second)  # (..., 7, H, W)
    nearest = torch.argmin(dist, dim=-3, keepdim=True)
    t = torch.cat([p, q], dim=-3).index_select(-3, along).gather(-3, nearest)
    f = ((nearest.to(p.dtype) + t) / DEPTH_SEGMENTS).squeeze(-3)
    if torch.onnx.is_in_onnx_export():
        # ONNX has no Expm1: the pow form loses ~1 um absolute near the camera in float32.
        return DEPTH_SCALE_M * (torch.pow(1.0 - f, 1.0 / DEPTH_EXPONENT) - 1.0)
    return DEPTH_SCALE_M * torch.expm1(torch.log1p(-f) / DEPTH_EXPONENT)
