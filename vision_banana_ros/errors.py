"""Errors shared across the package.

Every error raised on bad input derives from :class:`VisionBananaError` (itself a
``ValueError``), so command-line entry points can print one line and exit non-zero while other
exceptions stay real bugs with a traceback.
"""

from __future__ import annotations


class VisionBananaError(ValueError):
    """Base class of the package's input and configuration errors."""


class CodecError(VisionBananaError):
    """An array handed to a task codec has the wrong type, shape, range or contents."""
