"""Shared test set-up. ROS tests take their domain ids from ``ros_harness.new_domain``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Never talk to other machines, even in tests that forget to set it.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

# Tests run ROS as a robot should (README, QoS): with the shipped Fast DDS profile, whose
# shared-memory segment carries whole camera frames. It must be in the environment before the
# first participant of this process exists; children inherit it. One test runs without it.
os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(
    Path(__file__).resolve().parents[1] / "config" / "fastdds_large_frames.xml")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained vb-tiny checkpoint (128x96 input) for the node tests: fast to load."""
    from vision_banana_ros.model import ModelConfig, build_model, save_checkpoint

    path = tmp_path_factory.mktemp("tiny_model") / "tiny.pt"
    save_checkpoint(path, build_model(ModelConfig(arch="vb-tiny", input_width=128,
                                                  input_height=96, pretrained=False)))
    return str(path)
