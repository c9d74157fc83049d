"""The ``vision_banana`` lifecycle node: camera topics in; depth, segmentation, normals, point
clouds and object boxes out (topics in the README and DESIGN.md's contract).

Lifecycle: configure validates parameters, loads the model and creates publishers and
subscriptions; activate starts the worker (and reloads the backend after a deactivate);
deactivate stops processing and frees the backend (GPU memory); cleanup and shutdown release
everything. ``autostart`` walks the node to active right after start-up. The ``~/enable``
service (std_srvs/SetBool) pauses and resumes processing without a transition.

Callbacks only store the newest frame; one worker thread processes it (see
:mod:`vision_banana_ros.worker`). Bad input is logged (throttled), counted in /diagnostics and
skipped; the node keeps running.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from vision_banana_ros import node_config
from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.imageconv import ImageConversionError, compressed_to_rgb, image_to_rgb
from vision_banana_ros.memory import trim_heap
from vision_banana_ros.processing import FrameProcessor, FrameResult
from vision_banana_ros.ros import messages
from vision_banana_ros.ros_free_helpers import k_of
from vision_banana_ros.stats import ErrorCounter, Percentiles, RateMeter
from vision_banana_ros.sync import CameraInfoMatcher
from vision_banana_ros.worker import LatestFrameWorker


def _stamp_ns(header: Header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _descriptor(p: node_config.Param) -> ParameterDescriptor:
    desc = p.description
    if p.choices:
        desc += f" (one of: {', '.join(p.choices)})"
    if not p.live:
        desc += " [applies at configure]"
    d = ParameterDescriptor(description=desc)
    if isinstance(p.default, float) and p.low is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(p.low),
                                                     to_value=float(p.high), step=0.0)]
    elif isinstance(p.default, int) and not isinstance(p.default, bool) and p.low is not None:
        d.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=1)]
    return d


class VisionBananaNode(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("vision_banana", **kwargs)
        for p in node_config.PARAMS:
            self.declare_parameter(p.name, p.default, _descriptor(p))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.errors = ErrorCounter()
        self.in_rate, self.out_rate = RateMeter(), RateMeter()
        self.latency_ms, self.processing_ms = Percentiles(), Percentiles()
        self.state_label = "unconfigured"
        self.config: dict[str, Any] = {}
        self.backend = None
        self.processor: FrameProcessor | None = None
        self.worker: LatestFrameWorker | None = None
        self.matcher = CameraInfoMatcher()
        self._pubs: dict[str, Any] = {}
        self._subs: list[Any] = []
        self._backend_reason = ""
        self._info_seen = False
        self._frames_done = 0
        self._enable_srv = self.create_service(SetBool, "~/enable", self._on_enable)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        period = float(self.get_parameter("diagnostics_period_s").value)
        self._diag_timer = self.create_timer(period, self._publish_diagnostics)
        if self.get_parameter("autostart").value:
            self._autostart_timer = self.create_timer(0.01, self._autostart)

    # -- lifecycle ----------------------------------------------------------------------------

    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _params(self) -> dict[str, Any]:
        return {p.name: self.get_parameter(p.name).value for p in node_config.PARAMS}

    def _create_backend(self) -> None:
        from vision_banana_ros.pipeline import Pipeline
        from vision_banana_ros.runtime.select import create_backend

        c = self.config
        reasons: list[str] = []
        self.backend = create_backend(c["backend"], c["model_path"] or None, device=c["device"],
                                      precision=c["precision"], threads=c["threads"],
                                      log=reasons.append)
        self._backend_reason = "; ".join(reasons)
        for line in reasons:
            self.get_logger().info(line)
        pipeline = Pipeline(self.backend, self.backend.config, c["tasks"])
        self.processor = FrameProcessor(pipeline, c)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.config = node_config.validate(self._params())
            self._create_backend()
        except (VisionBananaError, OSError) as err:
            self.get_logger().error(f"configure failed: {err}")
            self.errors.add("configure", str(err))
            self.backend = self.processor = None
            return TransitionCallbackReturn.FAILURE
        c = self.config
        tasks = set(self.processor.pipeline.tasks)
        out_qos = QoSProfile(depth=c["qos_output_depth"], history=HistoryPolicy.KEEP_LAST,
                             reliability=_reliability(c["qos_output_reliability"]))
        topics = {}
        if "depth" in tasks:
            topics.update({"depth": ("~/depth/image", Image),
                           "depth_info": ("~/depth/camera_info", CameraInfo),
                           "points": ("~/points", PointCloud2)})
        if "instances" in tasks:
            topics["instances"] = ("~/segmentation/instances", Image)
            if "depth" in tasks:
                topics["objects"] = ("~/objects", MarkerArray)
        if "semantic" in tasks:
            topics["semantic"] = ("~/segmentation/semantic", Image)
        if tasks & {"instances", "semantic"}:
            topics["overlay"] = ("~/segmentation/overlay", Image)
        if "normals" in tasks:
            topics["normals"] = ("~/normals/image", Image)
        for t in sorted(tasks):
            topics[f"task_{t}"] = (f"~/task_images/{t}", Image)
        self._pubs = {key: self.create_lifecycle_publisher(msg, topic, out_qos)
                      for key, (topic, msg) in topics.items()}
        self._create_subscriptions()
        self.matcher = CameraInfoMatcher(int(c["camera_info_tolerance_ms"] * 1e6),
                                         c["camera_info_fallback_latest"])
        self.worker = LatestFrameWorker(self._process, max_rate_hz=c["max_rate_hz"],
                                        on_error=self._on_worker_error)
        self.state_label = "inactive"
        self.get_logger().info(
            f"configured: backend {self.backend.name} ({self.backend.device}, "
            f"{self.backend.precision}), tasks {','.join(self.processor.pipeline.tasks)}, "
            f"input {c['input_transport']}, outputs {', '.join(sorted(topics))}")
        return TransitionCallbackReturn.SUCCESS

    def _create_subscriptions(self) -> None:
        c = self.config
        in_qos = QoSProfile(depth=c["qos_input_depth"], history=HistoryPolicy.KEEP_LAST,
                            reliability=_reliability(c["qos_input_reliability"]))
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        if c["input_transport"] == "compressed":
            self._subs.append(self.create_subscription(
                CompressedImage, "image/compressed", self._on_image, in_qos,
                event_callbacks=events))
        else:
            self._subs.append(self.create_subscription(Image, "image", self._on_image, in_qos,
                                                       event_callbacks=events))
        self._subs.append(self.create_subscription(CameraInfo, "camera_info", self._on_info,
                                                   in_qos, event_callbacks=events))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.backend is None:
            try:
                self._create_backend()
            except (VisionBananaError, OSError) as err:
                self.get_logger().error(f"activate failed: {err}")
                self.errors.add("activate", str(err))
                return TransitionCallbackReturn.FAILURE
        self.worker.start()
        self.state_label = "active"
        self.get_logger().info("active: processing frames")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self.state_label = "inactive"
        return super().on_deactivate(state)

    def _stop_processing(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.backend is not None:
            self.backend.close()  # frees GPU memory; activate recreates it
        self.backend = self.processor = None

    def _release(self) -> None:
        self._stop_processing()
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._subs, self._pubs, self.worker = [], {}, None
        self.matcher.clear()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.state_label = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    # -- callbacks ----------------------------------------------------------------------------

    def _warn(self, kind: str, message: str) -> None:
        self.errors.add(kind, message)
        self.get_logger().warning(f"{kind}: {message}", throttle_duration_sec=float(
            self.config.get("log_throttle_s", 5.0)) or None)

    def _on_incompatible_qos(self, event: Any) -> None:
        self._warn("incompatible_qos",
                   f"a publisher on an input topic offers a QoS incompatible with ours "
                   f"(policy id {event.last_policy_kind}, {event.total_count} so far); "
                   f"our input reliability is {self.config.get('qos_input_reliability')}: "
                   "set qos_input_reliability or fix the publisher")

    def _on_info(self, msg: CameraInfo) -> None:
        if not self._info_seen:
            self._info_seen = True
            self.get_logger().info(f"first camera_info: {msg.width}x{msg.height}, frame "
                                   f"{msg.header.frame_id!r}")
        self.matcher.add(_stamp_ns(msg.header), msg)

    def _on_image(self, msg: Any) -> None:
        self.in_rate.tick()
        if self.worker is not None:
            self.worker.submit((msg, time.monotonic()))

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> Any:
        if self.worker is None:
            response.success, response.message = False, f"node is {self.state_label}"
            return response
        self.worker.pause(not request.data)
        response.success = True
        response.message = "processing enabled" if request.data else "processing paused"
        self.get_logger().info(response.message)
        return response

    def _on_worker_error(self, err: BaseException) -> None:
        self._warn("processing_error", f"{type(err).__name__}: {err}")

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        try:
            for p in params:
                value = node_config.check_value(p.name, p.value)
                if p.name in ("depth_min_m", "depth_max_m"):
                    lo = value if p.name == "depth_min_m" else self.config.get("depth_min_m", 0)
                    hi = value if p.name == "depth_max_m" else self.config.get("depth_max_m", 1e9)
                    if lo >= hi:
                        raise VisionBananaError(f"depth_min_m ({lo}) must be below depth_max_m "
                                                f"({hi})")
        except VisionBananaError as err:
            return SetParametersResult(successful=False, reason=str(err))
        for p in params:
            row = node_config.BY_NAME[p.name]
            if not self.config:
                continue
            if row.live:
                self.config[p.name] = node_config.check_value(p.name, p.value)
                if self.processor is not None:
                    self.processor.options[p.name] = self.config[p.name]
                if p.name == "max_rate_hz" and self.worker is not None:
                    self.worker.max_rate_hz = self.config[p.name]
                if p.name.startswith("camera_info_"):
                    self.matcher.tolerance_ns = int(self.config["camera_info_tolerance_ms"] * 1e6)
                    self.matcher.fallback_latest = self.config["camera_info_fallback_latest"]
            else:
                self.get_logger().info(f"parameter {p.name} applies at the next configure")
        return SetParametersResult(successful=True)

    # -- processing (worker thread) -----------------------------------------------------------

    def _process(self, item: tuple[Any, float]) -> None:
        msg, received = item
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) \
                else image_to_rgb(msg)
        except ImageConversionError as err:
            self._warn("bad_image", str(err))
            return
        h, w = rgb.shape[:2]
        info, how = self.matcher.wait_match(_stamp_ns(msg.header))
        k = None
        if info is not None:
            k = k_of(info)
            if info.width != w or info.height != h:
                self._warn("camera_info_mismatch", f"camera_info is {info.width}x{info.height} "
                           f"but the image is {w}x{h}; skipping the frame")
                return
            if k[0, 0] <= 0 or k[1, 1] <= 0 or not np.isfinite(k).all():
                self._warn("bad_camera_info", f"camera_info has invalid focal lengths fx="
                           f"{k[0, 0]}, fy={k[1, 1]}; skipping the frame")
                return
        elif self.config["require_camera_info"]:
            self._warn("no_camera_info", f"{how} for the image; skipping the frame "
                       "(set require_camera_info false to run without intrinsics)")
            return
        processor = self.processor
        if processor is None:
            return
        start = time.monotonic()
        result = processor(np.ascontiguousarray(rgb), k)
        self._publish(result, rgb, msg.header, info)
        done = time.monotonic()
        self.processing_ms.add((done - start) * 1e3)
        self._frames_done += 1
        if self._frames_done % 50 == 0:
            trim_heap()  # keeps resident memory flat (see vision_banana_ros.memory)
        self.latency_ms.add((done - received) * 1e3)
        self.out_rate.tick()

    def _publish(self, r: FrameResult, rgb: np.ndarray, header: Header,
                 info: CameraInfo | None) -> None:
        pubs, out = self._pubs, r.outputs
        if out.depth is not None:
            pubs["depth"].publish(messages.image(out.depth, "32FC1", header))
            if info is not None:
                pubs["depth_info"].publish(messages.camera_info_for(info, header))
        if r.cloud is not None and "points" in pubs:
            pubs["points"].publish(messages.point_cloud(r.cloud, header))
        if out.instances is not None:
            pubs["instances"].publish(messages.image(out.instances, "16UC1", header))
        if "objects" in pubs and self.config["publish_objects"] and r.k is not None:
            pubs["objects"].publish(messages.object_markers(r.objects, header))
        if out.semantic is not None:
            pubs["semantic"].publish(messages.image(out.semantic, "mono8", header))
        if r.overlay is not None:
            pubs["overlay"].publish(messages.image(r.overlay, "rgb8", header))
        if out.normals is not None:
            pubs["normals"].publish(messages.image(out.normals, "32FC3", header))
        for task, painting in out.paintings.items():
            pubs[f"task_{task}"].publish(messages.image(painting, "rgb8", header))

    # -- diagnostics --------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        counts, last = self.errors.snapshot()
        p50, p90, p99 = self.latency_ms.get(50, 90, 99)
        worker = self.worker
        values = {
            "state": self.state_label,
            "input_rate_hz": f"{self.in_rate.rate():.2f}",
            "output_rate_hz": f"{self.out_rate.rate():.2f}",
            "latency_p50_ms": f"{p50:.1f}", "latency_p90_ms": f"{p90:.1f}",
            "latency_p99_ms": f"{p99:.1f}",
            "processing_p50_ms": f"{self.processing_ms.get(50)[0]:.1f}",
            "frames_received": worker.submitted if worker else 0,
            "frames_processed": worker.processed if worker else 0,
            "frames_dropped": worker.dropped if worker else 0,
            "paused": worker.paused if worker else False,
            "backend": self.backend.name if self.backend else "none",
            "device": self.backend.device if self.backend else "none",
            "precision": self.backend.precision if self.backend else "none",
            "backend_choice": self._backend_reason,
        }
        for kind, n in sorted(counts.items()):
            values[f"errors_{kind}"] = n
            values[f"last_{kind}"] = last[kind]
        recent_errors = bool(counts)
        level = DiagnosticStatus.OK
        message = f"{self.state_label}, {values['output_rate_hz']} Hz out"
        if self.state_label != "active":
            level = DiagnosticStatus.WARN
        elif recent_errors:
            level = DiagnosticStatus.WARN
            message += f", input problems: {', '.join(sorted(counts))}"
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: perception",
                                  message=message, hardware_id=values["backend"],
                                  values=messages.key_values(values))
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)


def _reliability(name: str) -> ReliabilityPolicy:
    return ReliabilityPolicy.BEST_EFFORT if name == "best_effort" else ReliabilityPolicy.RELIABLE


def main(args: list[str] | None = None) -> None:
    """Entry point of ``vision_banana_node``: ``ros2 run vision_banana_ros vision_banana_node``."""
    rclpy.init(args=args)
    node = VisionBananaNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node.state_label in ("active", "inactive"):
            node._release()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
