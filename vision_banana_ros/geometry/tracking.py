"""Instance ids that stay the same across consecutive frames (planners track objects by id).

Each frame's instances are matched one to one with the previous frame's by their overlap in
the image (Hungarian on IoU): a match of at least ``min_iou`` keeps the previous id; new
objects take the smallest ids used by neither frame, so an id that just disappeared is not
given to another object at once.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment  # at import: 0.9 s on a first call

#: Overlaps are counted on every ``_STEP``-th pixel in both directions (enough for objects).
_STEP = 4


class InstanceTracker:
    """Relabels each frame's instance ids to follow the previous frame's.

    Args:
        min_iou: smallest image overlap (intersection over union) that keeps an id.
    """

    def __init__(self, min_iou: float = 0.3) -> None:
        self.min_iou = min_iou
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (the next frame's ids are its own)."""
        self._previous = None

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """(H, W) uint16 ids (0 = no object) -> the same instances with tracked ids."""
        sub = ids[::_STEP, ::_STEP]
        prev = self._previous
        present = np.flatnonzero(np.bincount(ids.ravel()))
        labels = present[present > 0]  # ascending: decreasing size, the input's own order
        if prev is None or prev.shape != sub.shape or not len(labels):
            self._previous = sub.copy()
            return ids
        old = np.unique(prev[prev > 0])
        remap = np.zeros(int(ids.max()) + 1, np.uint16)
        taken = set()
        if len(old):
            iou = _iou(sub, prev, labels, old)
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.min_iou:
                    remap[labels[r]] = old[c]
                    taken.add(int(old[c]))
        used = taken | {int(x) for x in old}
        free = (i for i in range(1, 65536) if i not in used)
        for label in labels:
            if remap[label] == 0:
                remap[label] = next(free)
        out = remap[ids]
        self._previous = out[::_STEP, ::_STEP].copy()
        return out


def _iou(a: np.ndarray, b: np.ndarray, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """(len(la), len(lb)) IoU of the labels ``la`` of image ``a`` and ``lb`` of ``b``."""
    ia = np.searchsorted(la, a.ravel())
    ib = np.searchsorted(lb, b.ravel())
    in_a = (a.ravel() > 0) & (ia < len(la))
    in_b = (b.ravel() > 0) & (ib < len(lb))
    both = in_a & in_b
    inter = np.bincount(ia[both] * len(lb) + ib[both],
                        minlength=len(la) * len(lb)).reshape(len(la), len(lb))
    area_a = np.bincount(ia[in_a], minlength=len(la))
    area_b = np.bincount(ib[in_b], minlength=len(lb))
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1)
