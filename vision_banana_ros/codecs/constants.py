"""Constants of the RGB task encodings: the one place they are defined.

The depth walk follows Vision Banana (Gabeur et al., 2026): a power transform of metric depth,
then a piecewise-linear walk along the edges of the RGB cube (the first iteration of a 3D Hilbert
curve). Changing anything here changes the meaning of every trained model's paintings; models
record these values in their checkpoints and are checked against them at load time.
"""

from __future__ import annotations

import numpy as np

#: Power transform exponent parameter lambda of the paper.
DEPTH_LAMBDA: float = -3.0
#: Power transform scale parameter c of the paper.
DEPTH_C: float = 10.0 / 3.0
#: Derived: f(d) = 1 - (1 + d / DEPTH_SCALE_M) ** DEPTH_EXPONENT, DEPTH_SCALE_M = -lambda * c.
DEPTH_SCALE_M: float = -DEPTH_LAMBDA * DEPTH_C  # 10 m
#: Derived exponent lambda + 1 = -2.
DEPTH_EXPONENT: float = DEPTH_LAMBDA + 1.0

#: Vertices of the walk, in order: black, red, yellow, green, cyan, blue, magenta, white.
#: Consecutive vertices differ in exactly one channel, so each edge varies one channel.
DEPTH_WALK_VERTICES: np.ndarray = np.array(
    [
        [0, 0, 0],  # black   f = 0   (d = 0)
        [1, 0, 0],  # red
        [1, 1, 0],  # yellow
        [0, 1, 0],  # green
        [0, 1, 1],  # cyan
        [0, 0, 1],  # blue
        [1, 0, 1],  # magenta
        [1, 1, 1],  # white   f -> 1 (d -> inf)
    ],
    dtype=np.float32,
)
DEPTH_WALK_VERTICES.setflags(write=False)
#: Number of equal segments of the walk (7).
DEPTH_SEGMENTS: int = DEPTH_WALK_VERTICES.shape[0] - 1


def _edge_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per edge: varying channel, its direction (+1/-1), and the two fixed channels' values."""
    varying = np.zeros(DEPTH_SEGMENTS, dtype=np.int64)
    direction = np.zeros(DEPTH_SEGMENTS, dtype=np.float32)
    fixed_channels = np.zeros((DEPTH_SEGMENTS, 2), dtype=np.int64)
    fixed_values = np.zeros((DEPTH_SEGMENTS, 2), dtype=np.float32)
    for k in range(DEPTH_SEGMENTS):
        step = DEPTH_WALK_VERTICES[k + 1] - DEPTH_WALK_VERTICES[k]
        (changed,) = np.nonzero(step)
        if changed.size != 1:  # pragma: no cover - guards the constant table above
            raise RuntimeError(f"depth walk edge {k} changes {changed.size} channels, not 1")
        varying[k] = changed[0]
        direction[k] = step[changed[0]]
        others = [c for c in range(3) if c != changed[0]]
        fixed_channels[k] = others
        fixed_values[k] = DEPTH_WALK_VERTICES[k, others]
    for table in (varying, direction, fixed_channels, fixed_values):
        table.setflags(write=False)
    return varying, direction, fixed_channels, fixed_values


#: Edge k varies channel DEPTH_EDGE_VARYING[k] in direction DEPTH_EDGE_DIRECTION[k] (+1 or -1);
#: its other two channels DEPTH_EDGE_FIXED_CHANNELS[k] stay at DEPTH_EDGE_FIXED_VALUES[k].
(
    DEPTH_EDGE_VARYING,
    DEPTH_EDGE_DIRECTION,
    DEPTH_EDGE_FIXED_CHANNELS,
    DEPTH_EDGE_FIXED_VALUES,
) = _edge_tables()

#: Semantic id written where no prompt colour is close enough ("none").
SEMANTIC_NONE: int = 255
#: Default largest RGB distance (in [0, 1] units) for a pixel to take a prompt colour.
SEMANTIC_DEFAULT_THRESHOLD: float = 0.5

#: Instance id of "no object".
INSTANCE_BACKGROUND: int = 0
#: Colour of "no object" in an instance painting.
INSTANCE_BACKGROUND_RGB: tuple[float, float, float] = (0.0, 0.0, 0.0)

#: Instance decoding defaults (RGB distances with channels in [0, 1]).
#: Pixels closer than this to black are background.
INSTANCE_BACKGROUND_THRESHOLD: float = 0.25
#: Colours closer than this are one instance.
INSTANCE_MERGE_THRESHOLD: float = 0.15
#: A pixel is "interior" (used to find instance colours) when no neighbour differs by more.
INSTANCE_INTERIOR_GRADIENT: float = 0.08
#: Clusters smaller than this many pixels are dropped (their pixels become background).
INSTANCE_MIN_AREA: int = 16
