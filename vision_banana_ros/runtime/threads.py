"""Thread pools of the numerical libraries the pipeline uses between network calls.

numpy's OpenBLAS (and the copy bundled with OpenCV) start one worker per core and let the
workers busy-wait after every call. The pipeline's matrix products are tiny (N x 3 points by
3 x 3 rotations, 3 x 3 covariances), so the workers never speed anything up, but their waiting
takes a whole core from ONNX Runtime, the decoders and, in the evaluator, the scoring thread:
on 2 cores the node's whole frame took 1.3x longer with them (docs/benchmarks.md,
2026-11-29 third session).
"""

from __future__ import annotations


def limit_blas_threads(threads: int = 1) -> bool:
    """Cap every loaded BLAS library's thread pool at ``threads`` for the whole process.

    Uses ``threadpoolctl`` (numpy's and OpenCV's OpenBLAS; PyTorch's own intra-op threads are
    not BLAS pools and keep ``torch.set_num_threads``). Returns False, changing nothing, when
    ``threadpoolctl`` is not installed.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    import cv2  # noqa: F401  (load OpenCV's OpenBLAS first, so that its pool is capped too)
    import numpy  # noqa: F401

    threadpool_limits(limits=threads, user_api="blas")
    return True
