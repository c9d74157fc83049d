"""Running the node as a process and waiting on the ROS graph: one implementation for the
demo, the live evaluation, the load benchmark and the tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node

from vision_banana_ros.errors import VisionBananaError


def shipped_config(name: str) -> Path | None:
    """A file of the package's ``config/`` folder: the installed share directory's when a
    ROS workspace is sourced, else the source tree's; None when neither has it."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory("vision_banana_ros")) / "config" / name
        if path.exists():
            return path
    except (ImportError, LookupError, OSError):  # no sourced ROS workspace: the repo's copy
        pass
    path = Path(__file__).resolve().parents[2] / "config" / name
    return path if path.exists() else None


#: Environment variables that name a Fast DDS profile file (Fast DDS 2 and 3 spellings).
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")


def with_frame_transport(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the shipped Fast DDS profile (``config/fastdds_large_frames.xml``: frames
    travel whole through shared memory) exported, as the launch file does, unless it already
    names a profile. For the processes the demo, live evaluation and benchmarks start: on Fast
    DDS's defaults a 1280x720 RGB-D frame travels as fragments, its partners come late and
    frames are lost (README, QoS and Fast DDS)."""
    env = dict(env)
    profile = shipped_config("fastdds_large_frames.xml")
    if profile is not None and not any(env.get(v) for v in PROFILE_VARIABLES):
        env[PROFILE_VARIABLES[0]] = str(profile)
    return env


def node_command(image_topic: str, image_type: str, info_topic: str | None,
                 params: dict[str, Any], *, params_file: Path | None = None,
                 node_name: str | None = None, depth_topic: str | None = None) -> list[str]:
    """Command line starting the node on a bag's topics.

    ``image_type`` is the message type name (``sensor_msgs/msg/Image`` or ``.../
    CompressedImage``). Empty parameter values are left out (an empty ``-p name:=`` does not
    parse; the node's defaults apply); without camera_info the node runs without intrinsics.
    """
    compressed = image_type.endswith("CompressedImage")
    args = [sys.executable, "-m", "vision_banana_ros.ros.node", "--ros-args"]
    if params_file is not None:
        args += ["--params-file", str(params_file)]
    if node_name:
        args += ["-r", f"__node:={node_name.strip('/')}"]
    args += ["-r", f"{'image/compressed' if compressed else 'image'}:={image_topic}"]
    values = {"input_transport": "compressed" if compressed else "raw", **params}
    if info_topic:
        args += ["-r", f"camera_info:={info_topic}"]
    else:
        values["require_camera_info"] = "false"
    if depth_topic:
        args += ["-r", f"depth/image:={depth_topic}"]
    for name, value in values.items():
        if value not in (None, ""):
            args += ["-p", f"{name}:={value}"]
    return args


class NodeProcess:
    """The node in a process of its own, its output in ``log``; stopped with SIGINT."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_log(self, needle: str, timeout: float = 120.0) -> None:
        """Wait until the node's log holds ``needle`` (no ROS client needed).

        Raises:
            VisionBananaError: the process exited, or the text did not come in time.
        """
        end = time.monotonic() + timeout
        while needle not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise VisionBananaError(f"the node did not log {needle!r}: "
                                        f"{self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)

    def wait_active(self, client: Node, node_name: str = "/vision_banana",
                    timeout: float = 120.0) -> None:
        """Ask ``node_name``/get_state through ``client`` until it answers ``active``.

        Raises:
            VisionBananaError: the process exited, or the node was not active in time.
        """
        from lifecycle_msgs.srv import GetState

        service = client.create_client(GetState, f"{node_name}/get_state")
        try:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    raise VisionBananaError(f"the node exited; see {self.log_path}")
                if service.wait_for_service(timeout_sec=0.5):
                    future = service.call_async(GetState.Request())
                    rclpy.spin_until_future_complete(client, future, timeout_sec=5)
                    if future.done() and future.result().current_state.label == "active":
                        return
                time.sleep(0.2)
            raise VisionBananaError(f"node {node_name} did not become active in {timeout:g} s; "
                                    f"see {self.log_path}")
        finally:
            client.destroy_client(service)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then SIGKILL after ``timeout`` seconds; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def spin_until(node: Node, done: Callable[[], object], timeout: float) -> bool:
    """Spin ``node`` until ``done()`` or ``timeout`` seconds; returns ``done()``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and not done():
        rclpy.spin_once(node, timeout_sec=0.1)
    return bool(done())


def wait_until_matched(node: Node, timeout: float = 30.0, settle: float = 2.0) -> bool:
    """Spin ``node`` until each of its subscriptions has a publisher, then ``settle`` s more.

    The readers see the writers before every writer has matched its reader (discovery is
    asymmetric and slow on a loaded machine); volatile samples written in between are lost.
    """
    if not spin_until(node, lambda: all(s.get_publisher_count() > 0
                                        for s in node.subscriptions), timeout):
        return False
    spin_until(node, lambda: False, settle)
    return True
