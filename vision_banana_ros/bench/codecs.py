"""Codec benchmarks: decoding 640x480 paintings."""

from __future__ import annotations

import numpy as np

from vision_banana_ros.bench.harness import BenchResult, compare, register
from vision_banana_ros.codecs import (
    decode_depth,
    decode_depth_reference,
    decode_depth_torch,
    encode_depth_uint8,
)


def _depth_painting(height: int = 480, width: int = 640) -> np.ndarray:
    """A 640x480 uint8 painting of depths spanning 0.1 m to 10 m (every walk edge is used)."""
    d = np.geomspace(0.1, 10.0, height * width, dtype=np.float32).reshape(height, width)
    rng = np.random.default_rng(0)
    return encode_depth_uint8(rng.permutation(d.ravel()).reshape(height, width))


@register("codecs")
def bench_codecs(quick: bool) -> list[BenchResult]:
    """Depth decode: closed-form nearest edge vs general per-segment projection, one core."""
    import torch

    torch.set_num_threads(1)
    repeats = 10 if quick else 40
    painting = _depth_painting()
    chw = torch.from_numpy(painting).permute(2, 0, 1).contiguous()
    baseline = ("numpy per-segment projection (decode_depth_reference)",
                lambda: decode_depth_reference(painting))
    return [
        compare("depth decode 640x480 numpy", ("decode_depth (numpy)",
                                               lambda: decode_depth(painting)),
                baseline, repeats, target="p50 < 10 ms on one core", bar_s=0.010),
        compare("depth decode 640x480 torch cpu", ("decode_depth_torch (1 thread)",
                                                   lambda: decode_depth_torch(chw)),
                baseline, repeats),
    ]
