"""Shared test fixtures. ROS tests take their domain ids from :func:`ros_domain_id`."""

from __future__ import annotations

import os

# Never talk to other machines, even in tests that forget to set it.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
