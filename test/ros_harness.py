"""Helpers for tests with real rclpy across processes, each test on its own ROS domain."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "config" / "vision_banana.yaml"
#: Lock files of the ROS domains this process holds (kept open until it exits).
_held: dict[int, int] = {}
_next = [1 + (os.getpid() % 100)]


def ros_env(domain: int, fastdds_profile: bool = True) -> dict[str, str]:
    """This process's environment on ``domain``, local only; without the Fast DDS profile
    that conftest sets when ``fastdds_profile`` is False (Fast DDS's defaults)."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if not fastdds_profile:
        env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    return env


def new_domain() -> int:
    """A ROS domain (1-100) no other process on this machine holds: each is claimed with an
    exclusive lock on a file in the temp folder, held until this process ends, so test runs
    side by side (two `make test` at once) never share a domain. Domains already held by
    this process are reused round-robin once all 100 are taken."""
    for _ in range(100):
        domain = _next[0]
        _next[0] = domain % 100 + 1
        if domain in _held:
            continue
        fd = os.open(Path(tempfile.gettempdir()) / f"vision_banana_ros_domain_{domain}.lock",
                     os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _held[domain] = fd
        return domain
    if not _held:
        raise RuntimeError("every ROS domain 1-100 is held by other processes")
    return sorted(_held)[_next[0] % len(_held)]


class Proc:
    """A child process with its output in a log file; stopped with SIGINT, then killed."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._f = log.open("w")
        self.p = subprocess.Popen(args, env=env, stdout=self._f, stderr=subprocess.STDOUT,
                                  cwd=ROOT)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str, timeout: float = 60.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.text():
                return True
            if self.p.poll() is not None:
                return needle in self.text()
            time.sleep(0.1)
        return False

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._f.close()
        return self.p.returncode


def start_node(tmp: Path, domain: int, params: dict[str, Any] | None = None,
               name: str = "node", fastdds_profile: bool = True) -> Proc:
    args = [sys.executable, "-m", "vision_banana_ros.ros.node", "--ros-args",
            "--params-file", str(PARAMS), "-r", "image:=/camera/color/image_raw",
            "-r", "image/compressed:=/camera/color/image_raw/compressed",
            "-r", "camera_info:=/camera/color/camera_info",
            "-r", "depth/image:=/camera/aligned_depth_to_color/image_raw"]
    for k, v in (params or {}).items():
        value = ("true" if v else "false") if isinstance(v, bool) else v
        args += ["-p", f"{k}:={value}"]
    return Proc(args, ros_env(domain, fastdds_profile), tmp / f"{name}.log")


def replay(tmp: Path, domain: int, *args: str, name: str = "replay",
           fastdds_profile: bool = True) -> Proc:
    return Proc([sys.executable, "-m", "vision_banana_ros.ros.replay", *args],
                ros_env(domain, fastdds_profile), tmp / f"{name}.log")


class RosClient:
    """An rclpy node in the test process on its own domain (own context)."""

    def __init__(self, domain: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.rclpy = rclpy
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=domain)
        self.node = rclpy.create_node("test_client", context=self.ctx)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)

    def spin_until(self, done: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if done():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return bool(done())

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 30.0) -> Any:
        client = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} not available")
        future = client.call_async(request)
        self.spin_until(future.done, timeout)
        self.node.destroy_client(client)
        if not future.done():
            raise TimeoutError(f"service {name} did not answer")
        return future.result()

    def close(self) -> None:
        self.node.destroy_node()
        self.ctx.try_shutdown()


def image_msg(array: Any, enc: str, stamp_sec: int, **overrides: Any) -> Any:
    """A sensor_msgs/Image (rclpy) of ``array`` in ``enc``, stamped ``stamp_sec``, frame ``cam``;
    ``overrides`` replace fields (to make bad messages)."""
    from sensor_msgs.msg import Image

    from vision_banana_ros.imageconv import array_to_image_fields

    msg = Image(**array_to_image_fields(array, enc))
    msg.header.stamp.sec, msg.header.frame_id = stamp_sec, "cam"
    for name, value in overrides.items():
        setattr(msg, name, value)
    return msg


def info_msg(w: int, h: int, stamp_sec: int, fx: float = 200.0) -> Any:
    """A sensor_msgs/CameraInfo (rclpy) for a w x h image with focal length ``fx``."""
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=w, height=h)
    info.k = [fx, 0.0, w / 2, 0.0, fx, h / 2, 0.0, 0.0, 1.0]
    info.header.stamp.sec, info.header.frame_id = stamp_sec, "cam"
    return info


def status_values(array: Any) -> dict[str, str]:
    """key -> value of the first status of a DiagnosticArray, with ``level`` and ``message``."""
    s = array.status[0]
    level = int.from_bytes(s.level, "little") if isinstance(s.level, bytes) else int(s.level)
    return {"level": str(level), "message": s.message, **{kv.key: kv.value for kv in s.values}}


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
