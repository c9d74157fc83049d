"""Aspect-preserving resize to the network input (letterbox), and back.

A 1280x720 camera frame squeezed anisotropically into 256x192 would give the network pixels
that are not square, and the focal length it learned metric depth with would differ between x
and y. Instead the frame is scaled by one factor to fit and centred, the rest padded: colour
with mid grey, depth planes with "no depth", targets with "ignore". Intrinsics follow the same
scale and shift. Outputs are cropped back to the frame's region before they are brought to the
input resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision_banana_ros.geometry import scale_intrinsics

#: Colour of the padding (RGB, 0-255).
PAD_RGB = 128


@dataclass(frozen=True)
class Letterbox:
    """Where a ``src_w`` x ``src_h`` frame lands in the ``dst_w`` x ``dst_h`` network input.

    Attributes:
        scale: the one resize factor (network pixels per input pixel).
        width, height: size of the frame's region in the network input (pixels).
        left, top: offset of that region (pixels).
    """

    src_w: int
    src_h: int
    dst_w: int
    dst_h: int
    scale: float
    width: int
    height: int
    left: int
    top: int

    @property
    def full(self) -> bool:
        """The frame fills the input (same aspect ratio): no padding."""
        return self.width == self.dst_w and self.height == self.dst_h

    def k(self, k: np.ndarray) -> np.ndarray:
        """Intrinsics of the frame's pixels in the network input (scaled, then shifted)."""
        out = scale_intrinsics(k, self.width / self.src_w, self.height / self.src_h)
        out[0, 2] += self.left
        out[1, 2] += self.top
        return out

    def place(self, small: np.ndarray, fill: float | int) -> np.ndarray:
        """A (height, width, ...) array of the frame's region inside a (dst_h, dst_w, ...)
        array filled with ``fill``."""
        if self.full:
            return small
        out = np.full((self.dst_h, self.dst_w, *small.shape[2:]), fill, dtype=small.dtype)
        out[self.top:self.top + self.height, self.left:self.left + self.width] = small
        return out

    def crop(self, full: np.ndarray) -> np.ndarray:
        """The frame's region of a (dst_h, dst_w, ...) network-resolution array."""
        if self.full:
            return full
        return full[self.top:self.top + self.height, self.left:self.left + self.width]


def letterbox(src_w: int, src_h: int, dst_w: int, dst_h: int) -> Letterbox:
    """The aspect-preserving fit of a ``src_w`` x ``src_h`` frame into ``dst_w`` x ``dst_h``."""
    scale = min(dst_w / src_w, dst_h / src_h)
    width = min(dst_w, max(1, round(src_w * scale)))
    height = min(dst_h, max(1, round(src_h * scale)))
    return Letterbox(src_w, src_h, dst_w, dst_h, scale, width, height,
                     (dst_w - width) // 2, (dst_h - height) // 2)
