"""The ``vision_banana`` lifecycle node: camera topics in; depth, segmentation, normals, point
clouds and object boxes out (topics in the README and :mod:`vision_banana_ros.outputs`).

Lifecycle: configure validates parameters, loads the model and creates publishers and
subscriptions; activate starts the worker (and reloads the backend after a deactivate);
deactivate stops processing and frees the backend (GPU memory); cleanup and shutdown release
everything. ``autostart`` walks the node to active right after start-up. The ``~/enable``
service (std_srvs/SetBool) pauses and resumes processing without a transition. A transition
that is not available from the current state (as lifecycle managers send them) is refused with
a log line, never raised into the executor.

Callbacks only store the newest frame; one worker thread processes it (see
:mod:`vision_banana_ros.worker`). Bad input is logged (throttled per kind of problem), counted
in /diagnostics and skipped; no exception from a callback ends the node.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import SetBool

from vision_banana_ros import node_config, outputs
from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.fusion import SOURCE_MODEL
from vision_banana_ros.intake import (
    InputProblem,
    colour_image,
    declared_size,
    intrinsics,
    sensor_depth,
)
from vision_banana_ros.memory import trim_heap
from vision_banana_ros.processing import FrameProcessor, FrameResult, make_processor, warm_up
from vision_banana_ros.ros import messages
from vision_banana_ros.ros.inputs import InputSubscription
from vision_banana_ros.ros.support_plane import SupportPlaneSource
from vision_banana_ros.stats import Percentiles, ProblemCounter, RateMeter, Throttle
from vision_banana_ros.sync import StampMatcher, stamp_ns
from vision_banana_ros.worker import LatestFrameWorker

#: Frames above this many pixels give their memory back to the system once processed.
_TRIM_ABOVE_PIXELS = 2_000_000
#: Frames looked back on for a slow pairing, and the median wait that is one (ms): a camera's
#: camera_info and depth, published with its image, arrive within a few milliseconds of it
#: when its frames travel whole (Fast DDS's shared memory), 60-100 ms later on 640x480
#: RGB-D at 30 Hz when they travel as fragments (measured 2026-12-06).
_PAIRING_WINDOW, _PAIRING_SLOW_MS = 30, 20.0
#: Problems counted but not shown as a warning status (normal pairing of some drivers).
_INFORMATIONAL = frozenset({"camera_info_nearest"})


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
        self.problems = ProblemCounter(float(self.get_parameter("diagnostics_window_s").value))
        self.pairing: Counter[str] = Counter()
        self._throttle = Throttle(lambda line: self.get_logger().warning(line),
                                  float(self.get_parameter("log_throttle_s").value))
        self.in_rate, self.out_rate = RateMeter(), RateMeter()
        self.latency_ms, self.processing_ms = Percentiles(), Percentiles()
        self.age_ms = Percentiles()  # header stamp to publish, on the node's clock
        #: Where the latency goes: receive to the worker taking the frame, then the wait
        #: for its camera_info and depth (processing_ms is the rest).
        self.queue_ms, self.pairing_wait_ms = Percentiles(), Percentiles()
        #: Frames taken by the worker and not published, by reason (every frame is counted:
        #: received = published + dropped + skipped + the one in progress).
        self.skipped: Counter[str] = Counter()
        self.published = 0
        self.state_label = "unconfigured"
        self.config: dict[str, Any] = {}
        self.backend = None
        self.processor: FrameProcessor | None = None
        self.worker: LatestFrameWorker | None = None
        self.infos = StampMatcher("camera_info")
        self.depths = StampMatcher("depth image", fallback_latest=False, wait_for_first=False)
        self.depth_rate = RateMeter()
        self.completed: deque[float] = deque(maxlen=30)  # fraction completed, recent frames
        self._pubs: dict[str, Any] = {}
        self._inputs: list[InputSubscription] = []
        self._depth_input: InputSubscription | None = None
        self.support: SupportPlaneSource | None = None
        self._anchor_values: dict[str, str] = {}
        self._backend_reason = ""
        self._info_seen = False
        self._frames_done = 0
        # Refuse unavailable transitions instead of raising inside the executor (rclpy 7.1).
        self._change_state = self._service_change_state.callback
        self._service_change_state.callback = self._on_change_state_checked
        self._enable_srv = self.create_service(SetBool, "~/enable", self._on_enable)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        period = float(self.get_parameter("diagnostics_period_s").value)
        self._diag_timer = self.create_timer(period, self._on_timer)
        if self.get_parameter("autostart").value:
            self._autostart_timer = self.create_timer(0.01, self._autostart)

    # -- lifecycle ----------------------------------------------------------------------------

    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _on_change_state_checked(self, request: Any, response: Any) -> Any:
        """The change_state service, refusing transitions the current state does not offer."""
        wanted = request.transition.label or request.transition.id
        available = {t[1 if request.transition.label else 0]: t[1]
                     for t in self._state_machine.available_transitions}
        if wanted not in available:
            state = self._state_machine.current_state[1]
            self.problems.add("refused_transition", f"{wanted} from {state}")
            self.get_logger().warning(
                f"refused lifecycle transition {wanted!r}: not available from state "
                f"{state!r} (available: {', '.join(sorted(set(available.values())))})")
            response.success = False
            return response
        try:
            return self._change_state(request, response)
        except Exception as err:  # never into the executor
            self._callback_error("change_state", err)
            response.success = False
            return response

    def _params(self) -> dict[str, Any]:
        return {p.name: self.get_parameter(p.name).value for p in node_config.PARAMS}

    def _create_backend(self) -> None:
        from vision_banana_ros.runtime.select import create_backend

        c = self.config
        reasons: list[str] = []
        self.backend = create_backend(c["backend"], c["model_path"] or None, device=c["device"],
                                      precision=c["precision"], threads=c["threads"],
                                      log=reasons.append)
        self._backend_reason = "; ".join(reasons)
        for line in reasons:
            self.get_logger().info(line)
        self.processor = make_processor(self.backend, c)
        self.get_logger().info(f"warmed up: one frame in {warm_up(self.processor):.0f} ms")

    def _load(self, step: str) -> bool:
        """Create the backend; a failure is logged with the model file and counted."""
        try:
            self._create_backend()
            return True
        except Exception as err:  # every failure names the file and the problem
            model = self.config.get("model_path") or "the shipped model"
            text = str(err) if isinstance(err, (VisionBananaError, OSError)) else (
                f"{type(err).__name__}: {err}")
            if isinstance(err, VisionBananaError) and "model file" in text:
                message = f"{step} failed: {text}"
            else:
                message = f"{step} failed ({model}): {text}"
            self.get_logger().error(message)
            self.problems.add(f"{step}_failed", message)
            self.backend = self.processor = None
            return False

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.config = node_config.validate(self._params())
        except VisionBananaError as err:
            self.get_logger().error(f"configure failed: {err}")
            self.problems.add("configure_failed", str(err))
            return TransitionCallbackReturn.FAILURE
        if not self._load("configure"):
            return TransitionCallbackReturn.FAILURE
        c = self.config
        out_qos = QoSProfile(depth=c["qos_output_depth"], history=HistoryPolicy.KEEP_LAST,
                             reliability=ReliabilityPolicy.BEST_EFFORT
                             if c["qos_output_reliability"] == "best_effort"
                             else ReliabilityPolicy.RELIABLE)
        topics = outputs.topics_for(self.processor.pipeline.tasks,
                                    rgbd=c["depth_input"] != "off")
        self._pubs = {t.key: self.create_lifecycle_publisher(
            messages.message_class(t.msgtype), f"~/{t.name}", out_qos) for t in topics}
        self._create_subscriptions()
        self.infos = StampMatcher("camera_info", int(c["camera_info_tolerance_ms"] * 1e6),
                                  c["camera_info_fallback_latest"],
                                  c["pairing_wait_ms"] / 1e3)
        self.depths = StampMatcher("depth image", int(c["depth_tolerance_ms"] * 1e6),
                                   fallback_latest=False, wait_s=c["pairing_wait_ms"] / 1e3,
                                   wait_for_first=False)
        self.worker = LatestFrameWorker(self._process, max_rate_hz=c["max_rate_hz"],
                                        on_error=self._on_worker_error)
        self.state_label = "inactive"
        self.get_logger().info(
            f"configured: backend {self.backend.name} ({self.backend.device}, "
            f"{self.backend.precision}), tasks {','.join(self.processor.pipeline.tasks)}, "
            f"input {c['input_transport']}, outputs {', '.join(t.name for t in topics)}")
        return TransitionCallbackReturn.SUCCESS

    def _create_subscriptions(self) -> None:
        c = self.config

        def sub(msg_type: type, topic: str, callback: Any) -> InputSubscription:
            return InputSubscription(self, msg_type, topic, callback,
                                     c["qos_input_reliability"], c["qos_input_depth"],
                                     self._on_incompatible_qos, self.get_logger().info)

        if c["input_transport"] == "compressed":
            self._inputs.append(sub(CompressedImage, "image/compressed", self._on_image))
        else:
            self._inputs.append(sub(Image, "image", self._on_image))
        self._inputs.append(sub(CameraInfo, "camera_info", self._on_info))
        self._depth_input = None
        if c["depth_input"] != "off":
            self._depth_input = sub(Image, "depth/image", self._on_depth)
            self._inputs.append(self._depth_input)
        self.support = SupportPlaneSource(self, c["support_frame"], self.get_logger().warning)
        self._inputs.append(sub(PoseStamped, "support_plane", self.support.on_pose))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.backend is None and not self._load("activate"):
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

    def release(self) -> None:
        """Stop processing and destroy publishers and subscriptions (cleanup, shutdown)."""
        self._stop_processing()
        for sub in self._inputs:
            sub.destroy()
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        if self.support is not None:
            self.support.close()
        self._inputs, self._pubs, self.worker, self._depth_input = [], {}, None, None
        self.support = None
        self.infos.clear()
        self.depths.clear()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self.state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self.state_label = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self.state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    # -- callbacks ----------------------------------------------------------------------------

    def _problem(self, kind: str, message: str) -> None:
        """Count a problem and log it, throttled per kind."""
        self.problems.add(kind, message)
        self._throttle(kind, message)

    def _callback_error(self, where: str, err: BaseException) -> None:
        """An exception that escaped a callback: counted and logged, the node goes on."""
        self._problem("callback_error", f"{where}: {type(err).__name__}: {err}")

    def _on_incompatible_qos(self, event: Any) -> None:
        self._problem("incompatible_qos",
                      f"a publisher on an input topic offers a QoS incompatible with ours "
                      f"(policy id {event.last_policy_kind}, {event.total_count} so far); "
                      f"qos_input_reliability is {self.config.get('qos_input_reliability')}")
        for sub in self._inputs:
            sub.refresh()

    def _on_info(self, msg: CameraInfo) -> None:
        if not self._info_seen:
            self._info_seen = True
            self.get_logger().info(f"first camera_info: {msg.width}x{msg.height}, frame "
                                   f"{msg.header.frame_id!r}")
        self.infos.add(stamp_ns(msg.header), msg)

    def _on_depth(self, msg: Image) -> None:
        self.depth_rate.tick()
        self.depths.add(stamp_ns(msg.header), msg)

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
        self.skipped["processing_error"] += 1
        self._problem("processing_error", f"{type(err).__name__}: {err}")

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        try:
            checked = node_config.apply_change(self._params(), changes)
        except VisionBananaError as err:
            return SetParametersResult(successful=False, reason=str(err))
        if self.config:
            for name in changes:
                if node_config.BY_NAME[name].live:
                    self._apply_live(name, checked[name])
                else:
                    self.get_logger().info(f"parameter {name} applies at the next configure")
        return SetParametersResult(successful=True)

    def _apply_live(self, name: str, value: Any) -> None:
        self.config[name] = value
        if self.processor is not None:
            self.processor.options[name] = value
        if name == "max_rate_hz" and self.worker is not None:
            self.worker.max_rate_hz = value
        elif name == "log_throttle_s":
            self._throttle.period_s = value
        elif name == "diagnostics_window_s":
            self.problems.window_s = value
        elif name == "camera_info_tolerance_ms":
            self.infos.tolerance_ns = int(value * 1e6)
        elif name == "camera_info_fallback_latest":
            self.infos.fallback_latest = value
        elif name == "pairing_wait_ms":
            self.infos.wait_s = self.depths.wait_s = value / 1e3
        elif name == "depth_tolerance_ms":
            self.depths.tolerance_ns = int(value * 1e6)

    # -- processing (worker thread) -----------------------------------------------------------

    def _process(self, item: tuple[Any, float]) -> None:
        msg, received = item
        size = declared_size(msg)
        try:
            self._process_frame(msg, received)
        finally:
            self._frames_done += 1
            if self._frames_done % 50 == 0 or (size is not None and
                                               size[0] * size[1] > _TRIM_ABOVE_PIXELS):
                trim_heap()  # keeps resident memory flat (see vision_banana_ros.memory)

    def _process_frame(self, msg: Any, received: float) -> None:
        c = self.config
        taken = time.monotonic()
        try:
            rgb = colour_image(msg, c["max_input_pixels"])
            h, w = rgb.shape[:2]
            info, how = self.infos.wait_match(stamp_ns(msg.header))
            self.pairing[f"camera_info_{how if info is not None else 'none'}"] += 1
            k = None
            if info is not None:
                if how != "exact":
                    self._problem(f"camera_info_{how}", "no camera_info with the image's "
                                  f"stamp; used the {how} one")
                k = intrinsics(info, w, h)
            elif c["require_camera_info"]:
                raise InputProblem("no_camera_info", f"{how} for the image; skipping the frame "
                                   "(set require_camera_info false to run without intrinsics)")
            depth = self._paired_depth(stamp_ns(msg.header), w, h)
        except InputProblem as problem:
            self.skipped[problem.kind] += 1
            self._problem(problem.kind, str(problem))
            return
        processor = self.processor
        if processor is None:
            self.skipped["not_configured"] += 1
            return
        start = time.monotonic()
        self.queue_ms.add((taken - received) * 1e3)
        self.pairing_wait_ms.add((start - taken) * 1e3)
        support, why = self._support_plane(msg.header)
        result = processor(rgb, k, depth, support)
        if result.depth_source is not None:
            self.completed.append(float(np.mean(result.depth_source == SOURCE_MODEL)))
        self._publish(result, msg.header, info, self._unanchored(result, depth, why))
        done = time.monotonic()
        self.published += 1
        self.processing_ms.add((done - start) * 1e3)
        self.latency_ms.add((done - received) * 1e3)
        self.age_ms.add((self.get_clock().now().nanoseconds - stamp_ns(msg.header)) / 1e6)
        self.out_rate.tick()

    def _paired_depth(self, stamp: int, width: int, height: int) -> np.ndarray | None:
        """The camera's depth of this frame (metres, NaN invalid), or None: the frame runs
        RGB-only (``depth_input`` auto, counted) or is skipped (``required``: raises)."""
        mode = self.config["depth_input"]
        if mode == "off":
            return None
        expected = self.depths.seen or self._depth_publishers() > 0
        msg, how = self.depths.wait_match(stamp, expect=expected)
        self.pairing[f"depth_{how if msg is not None else 'none'}"] += 1
        skip = mode == "required" or (expected and self.config["depth_missing"] == "skip")
        then = "skipping the frame" if skip else "this frame runs RGB-only"
        try:
            if msg is None:
                raise InputProblem("depth_missing", f"{how}; {then}")
            depth = sensor_depth(msg, width, height)
            if not np.isfinite(depth).any():
                raise InputProblem("depth_empty", f"the depth image has no valid pixel; {then}")
        except InputProblem as problem:
            if skip:
                raise
            if expected:  # an RGB camera (no depth stream at all) is not a problem
                self._problem(problem.kind, str(problem))
            return None
        return depth

    def _depth_publishers(self) -> int:
        """Publishers on the depth input's topic (the camera sends depth, or will)."""
        depth = self._depth_input
        if depth is None or depth.sub is None:
            return 0
        return self.count_publishers(depth.sub.topic_name)

    def _support_plane(self, header: Any) -> tuple[Any, str]:
        """(the support plane of this frame in its optical frame or None, why none)."""
        c = self.config
        if c["scale_anchor"] != "support_plane" or self.support is None:
            return None, ""
        return self.support.plane(header, c["support_plane_static"],
                                  c["support_plane_max_age_s"])

    def _unanchored(self, result: FrameResult, depth: Any, why: str) -> bool:
        """Whether this frame's metric outputs are withheld: RGB only, a plane configured, and
        no scale (``scale_unanchored: skip``); counted and logged either way."""
        anchor = result.anchor
        configured = bool(why) or anchor is not None
        self._anchor_values = {
            "depth_anchor": ("camera depth" if depth is not None else
                             anchor.reason if anchor is not None else why or "no plane"),
            "depth_scale": f"{result.depth_scale:.4f}" if result.depth_scale else "none",
            "depth_scale_support_fraction": (f"{anchor.support_fraction:.3f}"
                                             if anchor is not None else "none"),
            "depth_scale_check": (f"{result.anchor_check:.3f}"
                                  if result.anchor_check is not None else "none")}
        if depth is not None or not configured or result.depth_scale is not None:
            return False
        reason = anchor.reason if anchor is not None else why
        skip = self.config["scale_unanchored"] == "skip"
        self._problem("scale_unanchored", f"no metric scale for this frame ({reason}); "
                      + ("its depth, cloud and objects are not published" if skip else
                         "published at the model's own scale (scale_unanchored: publish)"))
        return skip

    def _publish(self, result: FrameResult, header: Any, info: CameraInfo | None,
                 withhold_metric: bool = False) -> None:
        pubs = self._pubs
        keys = set(pubs) - (outputs.METRIC_KEYS if withhold_metric else set())
        for topic, fields in outputs.output_messages(result, header, info, keys):
            pubs[topic.key].publish(messages.build(topic.msgtype, fields))

    # -- diagnostics --------------------------------------------------------------------------

    def _on_timer(self) -> None:
        try:
            for sub in self._inputs:
                sub.refresh()
            self._check_pairing()
            self._publish_diagnostics()
        except Exception as err:  # a timer must not end the node either
            self._callback_error("diagnostics", err)

    def _check_pairing(self) -> None:
        """A problem (``pairing_slow``) while frames wait long for their camera_info and
        depth: the usual cause is large frames sent as fragments, which the shipped Fast DDS
        profile avoids; the wait adds to every frame's latency."""
        recent = self.pairing_wait_ms.recent(_PAIRING_WINDOW)
        if len(recent) < _PAIRING_WINDOW // 2:
            return
        median = float(np.median(recent))
        if median > _PAIRING_SLOW_MS:
            self._problem("pairing_slow", (
                f"frames wait {median:.0f} ms (median of the last {len(recent)}) for their "
                "camera_info and depth; large frames probably travel as fragments: export "
                "config/fastdds_large_frames.xml as FASTRTPS_DEFAULT_PROFILES_FILE for the "
                "camera driver and this node (README, QoS and Fast DDS)"))

    def diagnostic_status(self) -> tuple[int, str, dict[str, Any]]:
        """(level, message, values) of the node's /diagnostics status."""
        totals, last = self.problems.snapshot()
        recent = self.problems.recent()
        latency, processing = self.latency_ms.summary(), self.processing_ms.summary()
        age = self.age_ms.summary()
        worker = self.worker
        alive = worker is not None and worker.alive
        values: dict[str, Any] = {
            "state": self.state_label,
            "worker_alive": alive,
            "input_rate_hz": f"{self.in_rate.rate():.2f}",
            "output_rate_hz": f"{self.out_rate.rate():.2f}",
            **{f"latency_{q}_ms": f"{latency[q]:.1f}" for q in ("p50", "p90", "p99")},
            **{f"processing_{q}_ms": f"{processing[q]:.1f}" for q in ("p50", "p90", "p99")},
            **{f"age_{q}_ms": f"{age[q]:.1f}" for q in ("p50", "p99", "max")},
            **{f"{name}_{q}_ms": f"{summary[q]:.1f}" for name, summary in (
                ("queue", self.queue_ms.summary()),
                ("pairing_wait", self.pairing_wait_ms.summary())) for q in ("p50", "p99")},
            "frames_received": worker.submitted if worker else 0,
            "frames_processed": worker.processed if worker else 0,
            "frames_published": self.published,
            "frames_dropped": worker.dropped if worker else 0,
            "frames_skipped": sum(self.skipped.values()),
            **{f"frames_skipped_{k}": n for k, n in sorted(self.skipped.items())},
            "paused": worker.paused if worker else False,
            "backend": self.backend.name if self.backend else "none",
            "device": self.backend.device if self.backend else "none",
            "precision": self.backend.precision if self.backend else "none",
            "backend_choice": self._backend_reason,
            "input_reliability": ",".join(f"{s.topic}={s.reliability}"
                                          for s in self._inputs) or "none",
            "depth_input": self.config.get("depth_input", "off"),
            "depth_input_rate_hz": f"{self.depth_rate.rate():.2f}",
            "depth_fraction_completed": (f"{np.mean(self.completed):.3f}" if self.completed
                                         else "none"),
            **{f"pairing_{k}": n for k, n in sorted(self.pairing.items())},
            **self._anchor_values,
        }
        for kind in sorted(totals):
            values[f"errors_{kind}"] = totals[kind]
            values[f"recent_{kind}"] = recent.get(kind, 0)
            values[f"last_{kind}"] = last[kind]
        warn = sorted(k for k in recent if k not in _INFORMATIONAL)
        message = f"{self.state_label}, {values['output_rate_hz']} Hz out"
        level = DiagnosticStatus.OK
        if self.state_label == "active" and not alive:
            level = DiagnosticStatus.ERROR
            message += ", processing worker is not running"
        elif self.state_label != "active":
            level = DiagnosticStatus.WARN
            failed = [k for k in warn if k.endswith("_failed")]
            if failed:
                level = DiagnosticStatus.ERROR
                message += f", {last[failed[-1]]}"
        elif warn:
            level = DiagnosticStatus.WARN
            message += f", problems in the last {self.problems.window_s:g} s: {', '.join(warn)}"
        return level, message, values

    def _publish_diagnostics(self) -> None:
        level, message, values = self.diagnostic_status()
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: perception",
                                  message=message, hardware_id=values["backend"],
                                  values=messages.key_values(values))
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)


def spin_safely(node: VisionBananaNode, executor: Any) -> None:
    """Spin until shutdown; an exception escaping a callback is counted and logged, and
    spinning goes on (the executor would otherwise end the process)."""
    while rclpy.ok(context=executor.context):
        try:
            executor.spin_once(timeout_sec=0.5)
        except (KeyboardInterrupt, ExternalShutdownException):
            return
        except Exception as err:
            node._callback_error("executor", err)


def main(args: list[str] | None = None) -> None:
    """Entry point of ``vision_banana_node``: ``ros2 run vision_banana_ros vision_banana_node``."""
    rclpy.init(args=args)
    node = VisionBananaNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        spin_safely(node, executor)
    finally:
        if node.state_label in ("active", "inactive"):
            node.release()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
