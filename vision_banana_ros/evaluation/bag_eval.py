"""``vision-banana eval``: accuracy and speed of the node's pipeline on a recorded bag.

Streams a ROS 2 (mcap, sqlite3) or ROS 1 bag with rosbags, pairs colour images with ground
truth (depth 16UC1 mm or 32FC1 m, instances, semantics) by header stamp and with camera_info
by the node's own matcher (:class:`~vision_banana_ros.sync.StampMatcher`), runs the same
:class:`~vision_banana_ros.processing.FrameProcessor` as the node, and writes into the output
folder ``metrics.json``, ``report.md``, ``frames.csv``, plots, and ``outputs/``, a bag with the
input topics and every node output (:mod:`.report`, :mod:`.output_bag`).

Frame N's metrics and output-bag writing run on a second thread (:mod:`.finisher`) while frame
N + 1 is in the network. Ctrl-C writes partial results.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vision_banana_ros.bags.reader import BagError, detect_topics, iter_raw, open_reader
from vision_banana_ros.codecs import TASKS
from vision_banana_ros.evaluation.chamfer import no_wait, object_chamfer
from vision_banana_ros.evaluation.config import DEPTH_RANGES, EvalConfig
from vision_banana_ros.evaluation.finisher import Finisher
from vision_banana_ros.evaluation.metrics import (
    boundary_metrics,
    completion_metrics,
    constant_baseline,
    contingency,
    depth_metrics,
    depth_report,
    instance_metrics,
    semantic_miou,
)
from vision_banana_ros.evaluation.output_bag import OutputBag
from vision_banana_ros.evaluation.result import EvalRun
from vision_banana_ros.fusion import fuse_depth
from vision_banana_ros.geometry.baseline import plane_cluster_instances
from vision_banana_ros.geometry.support import support_plane_of_depth
from vision_banana_ros.imageconv import ImageConversionError, depth_to_metres, image_array
from vision_banana_ros.intake import InputProblem, colour_image, intrinsics, sensor_depth
from vision_banana_ros.sync import StampMatcher, stamp_ns

#: No size limit on recorded frames (the node's max_input_pixels guards a live robot).
_ANY_SIZE = 1 << 40
#: Ground-truth roles: those of the task table.
_GT_ROLES = tuple(s.ground_truth for s in TASKS.values() if s.ground_truth)


@dataclass
class _Frame:
    stamp: int
    bag_time: int
    msgs: dict[str, Any] = field(default_factory=dict)
    raws: list[tuple[str, int, bytes]] = field(default_factory=list)


def _interpolation_row(gt: dict[str, np.ndarray], truth: np.ndarray) -> dict[str, Any]:
    """The completion figures of a non-learned baseline on the same masks: the camera's depth
    interpolated into its holes (the node's fusion given a flat model: the local fits'
    slopes fall to zero and each hole takes the camera's depth around it)."""
    sensor = gt.get("sensor_input")
    if sensor is None or not np.isfinite(sensor).any():
        return {}
    flat = np.full_like(sensor, np.float32(np.nanmedian(sensor)))
    filled = fuse_depth(flat, sensor, "holes", np.inf, shape_check=False)[0]
    figures = completion_metrics(filled, truth, gt, None)
    return {f"baseline_interp_{k}": v for k, v in figures.items() if k != "sensor_kept"}


def _anchor_row(result: Any, depth: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
    """The scale anchor's figures of one frame: its scale, the depth before it (raw), or
    that it refused; nothing when no plane was given."""
    anchor = getattr(result, "anchor", None)
    if anchor is None:
        return {}
    if result.depth_scale is None:
        return {"anchor_refused": 1.0 if anchor.scale is None else 0.0,
                "anchor_check": result.anchor_check}
    raw = depth_metrics(depth / np.float32(result.depth_scale), gt)
    return {"anchor_refused": 0.0, "depth_scale": result.depth_scale,
            "anchor_support_fraction": anchor.support_fraction,
            "raw_delta1": None if raw is None else raw.delta1,
            "raw_abs_rel": None if raw is None else raw.abs_rel}


def _instance_row(pred: np.ndarray, gt: np.ndarray, prefix: str,
                  table: tuple | None = None) -> dict[str, Any]:
    """Overlap and boundary instance figures of one frame, keys starting with ``prefix``."""
    im = instance_metrics(pred, gt, table)
    bp, br, bf = boundary_metrics(pred, gt)
    return {**{f"{prefix}{k}": v for k, v in im.as_dict().items()},
            f"{prefix}boundary_precision": bp, f"{prefix}boundary_recall": br,
            f"{prefix}boundary_f_measure": bf}


class Evaluation:
    """One run over a bag; :meth:`run` returns the metrics document."""

    def __init__(self, cfg: EvalConfig) -> None:
        self.cfg = cfg
        self.result = EvalRun(cfg)
        self.submitted = 0  # frames through the pipeline (scored a little later)
        self.out_bag: OutputBag | None = None
        self.finisher: Finisher | None = None
        self.backend: Any = None
        self.infos = StampMatcher("camera_info", int(cfg.stamp_tolerance_ms * 1e6),
                                  fallback_latest=True, history=64)
        self.feed_depth = False

    def make_processor(self) -> Any:
        """The backend (kept for closing) and the node's FrameProcessor with this run's options."""
        from vision_banana_ros import node_config
        from vision_banana_ros.processing import make_processor
        from vision_banana_ros.runtime.select import create_backend

        c = self.cfg
        reasons: list[str] = []
        self.backend = create_backend(c.backend, c.model, device=c.device,
                                      precision=c.precision, threads=c.threads,
                                      log=reasons.append)
        self.result.notes += reasons
        self.result.backend = {"name": self.backend.name, "device": self.backend.device,
                               "precision": self.backend.precision}
        options = node_config.validate({"tasks": c.tasks, "publish_overlay": True,
                                        "publish_objects": True, "points_stride": 1,
                                        "publish_points": False,
                                        "depth_input": "auto" if self.feed_depth else "off",
                                        "depth_fill": c.depth_fill,
                                        "depth_consistency": c.depth_consistency,
                                        "instances_source": c.instances_source})
        return make_processor(self.backend, options)

    def _topics(self, reader: Any) -> tuple[dict[str, str], list[str]]:
        """(topic -> role, topics to read), with notes on what the bag lacks."""
        c, notes = self.cfg, self.result.notes
        types = {conn.topic: conn.msgtype for conn in reader.connections}
        topics = detect_topics(types, image=c.image_topic, camera_info=c.info_topic,
                               depth=c.depth_topic, instances=c.instances_topic,
                               semantic=c.semantic_topic, sensor_depth=c.sensor_depth_topic,
                               transparent=c.transparent_topic)
        if topics.image is None:
            listing = ", ".join(f"{t} ({m})" for t, m in sorted(types.items()))
            raise BagError(f"bag {c.bag} has no colour image topic; it has: {listing}")
        for name in (c.pred_depth_topic, c.pred_instances_topic):
            if name and name not in types:
                raise BagError(f"prediction topic {name} is not in the bag; it has: "
                               f"{', '.join(sorted(types))}")
        self.result.topics = {k: getattr(topics, k) for k in ("image", "camera_info", *_GT_ROLES,
                                                              "sensor_depth", "transparent")}
        self.feed_depth = c.depth_input == "on" or (
            c.depth_input == "auto" and (topics.sensor_depth is not None or c.hide_depth > 0))
        if ((c.hide_depth > 0 or c.depth_input == "on") and topics.sensor_depth is None
                and topics.depth is None):
            raise BagError(f"--hide-depth and --depth-input on need depth in the bag; {c.bag} "
                           "has none")
        #: The camera's depth goes to the model and is also the only ground truth: depth
        #: figures then score the fused depth against its own input.
        self.depth_is_input = self.feed_depth and topics.sensor_depth is None
        if self.feed_depth:
            source = topics.sensor_depth or topics.depth
            notes.append(f"RGB-D input: the camera's depth ({source}) goes to the model"
                         + (f", with seeded blobs covering {c.hide_depth:.0%} of its valid "
                            "pixels hidden and scored" if c.hide_depth > 0 else ""))
            if self.depth_is_input and c.hide_depth == 0:
                notes.append("depth figures are NOT meaningful: the camera's depth is both the "
                             "model's input and the ground truth (--depth-input on); instance "
                             "and speed figures are")
        self.info_topic = topics.camera_info
        if topics.camera_info is None:
            notes.append("no camera_info in the bag: depth uses the canonical camera (scale is "
                         "not metric) and no point clouds are computed")
        if topics.depth is None:
            notes.append("no ground-truth depth in the bag: accuracy needs ground truth; speed "
                         "figures and the output bag are still written")
        if c.pred_depth_topic or c.pred_instances_topic:
            notes.append("scoring predictions recorded in the bag (no model run)")
        roles = {topics.image: "image", topics.depth: "depth", topics.instances: "instances",
                 topics.semantic: "semantic", c.pred_depth_topic: "pred_depth",
                 c.pred_instances_topic: "pred_instances",
                 topics.transparent: "transparent",
                 topics.sensor_depth if self.feed_depth else None: "sensor"}
        roles.pop(None, None)
        return roles, [t for t in (*roles, topics.camera_info) if t]

    def run(self) -> dict[str, Any]:
        c = self.cfg
        c.out.mkdir(parents=True, exist_ok=True)
        reader = open_reader(c.bag)
        try:
            roles, wanted = self._topics(reader)
            self.finisher = Finisher()
            recorded = c.pred_depth_topic or c.pred_instances_topic
            processor = None if recorded else self.make_processor()
            if processor is not None:
                processor.pipeline.network_guard = self.finisher.network
            if c.write_bag:
                target = c.out / "outputs"
                if target.exists():
                    import shutil

                    shutil.rmtree(target)
                self.out_bag = OutputBag(target, reader, wanted)
            t_start = time.perf_counter()
            try:
                try:
                    self._loop(reader, wanted, roles, processor)
                finally:  # frames already through the network are still scored and written
                    self.finisher.close()
            except KeyboardInterrupt:
                self.result.interrupted = True
                self.result.notes.append("interrupted (Ctrl-C): partial results")
            finally:
                self.result.wall_s = time.perf_counter() - t_start
                if self.out_bag is not None:
                    self.out_bag.close()
        finally:
            if self.finisher is not None:  # also when setting up failed before the loop
                self.finisher.stop()
            reader.close()
            if self.backend is not None:
                self.backend.close()
        from vision_banana_ros.evaluation import report

        doc = report.aggregate(self.result)
        report.write_all(self.result, doc)
        return doc

    def _progress(self, reader: Any, image_topic: str) -> Any:
        if not self.cfg.progress:
            return None
        import sys

        from tqdm import tqdm

        total = next((conn.msgcount for conn in reader.connections
                      if conn.topic == image_topic), None)
        if self.cfg.max_frames:
            total = min(total or self.cfg.max_frames, self.cfg.max_frames)
        return tqdm(total=total, unit="frame", desc="eval", file=sys.stderr)

    def _loop(self, reader: Any, wanted: list[str], roles: dict[str, str],
              processor: Any) -> None:
        """Read in bag order; a frame runs once every role has come (and its camera_info can
        no longer come), or once the bag is ``pairing_horizon_ms`` past its stamp."""
        c = self.cfg
        pending: OrderedDict[int, _Frame] = OrderedDict()
        needed = set(roles.values())
        horizon = int(c.pairing_horizon_ms * 1e6)
        newest = -1
        image_topic = next(t for t, r in roles.items() if r == "image")
        bar = self._progress(reader, image_topic)

        def settled(frame: _Frame) -> bool:
            if frame.stamp < newest - horizon:
                return True
            info_done = (self.info_topic is None or self.infos.match(frame.stamp)[1] == "exact"
                         or self._newest_info > frame.stamp)
            return needed <= set(frame.msgs) and info_done

        self._newest_info = -1
        t_read = time.perf_counter()
        try:
            for topic, bag_time, raw, mtype in iter_raw(reader, wanted):
                msg = reader.deserialize(raw, mtype)
                self.result.timer.add("read", time.perf_counter() - t_read)
                stamp = stamp_ns(msg.header)
                newest = max(newest, stamp)
                if topic == self.info_topic:
                    self.infos.add(stamp, msg)
                    self._newest_info = max(self._newest_info, stamp)
                    if self.out_bag is not None:
                        self.finisher.submit(self.out_bag.raw, topic, bag_time, raw)
                else:
                    frame = pending.setdefault(stamp, _Frame(stamp, bag_time))
                    frame.msgs[roles[topic]] = msg
                    frame.raws.append((topic, bag_time, raw))
                for s in [s for s, f in pending.items() if settled(f)]:
                    if self._run_frame(pending.pop(s), processor, bar):
                        return
                t_read = time.perf_counter()
            for s in list(pending):
                if self._run_frame(pending.pop(s), processor, bar):
                    return
        finally:
            if bar is not None:
                bar.close()

    def _run_frame(self, frame: _Frame, processor: Any, bar: Any) -> bool:
        """Process one frame; True when ``max_frames`` is reached."""
        if "image" not in frame.msgs:
            self.result.error("missing_image", f"ground truth at stamp {frame.stamp} has no "
                              "image")
            return False
        self._frame(frame, processor)
        if bar is not None:
            bar.update(1)
        return bool(self.cfg.max_frames and self.submitted >= self.cfg.max_frames)

    def _ground_truth(self, frame: _Frame, h: int, w: int) -> dict[str, np.ndarray]:
        gt: dict[str, np.ndarray] = {}
        for role in _GT_ROLES:
            if role not in frame.msgs:
                continue
            try:
                arr = (depth_to_metres(frame.msgs[role]) if role == "depth"
                       else image_array(frame.msgs[role]))
            except ImageConversionError as err:
                self.result.error(f"bad_{role}", str(err))
                continue
            if arr.shape[:2] != (h, w):
                self.result.error("resolution_mismatch", f"{role} is {arr.shape[1]}x"
                                  f"{arr.shape[0]} but colour is {w}x{h}: no {role} accuracy "
                                  "for such frames")
                continue
            gt[role] = arr
        mask = frame.msgs.get("transparent")
        if mask is not None:
            try:
                arr = image_array(mask)
            except ImageConversionError as err:
                self.result.error("bad_transparent_mask", str(err))
            else:
                if arr.shape[:2] == (h, w):
                    gt["transparent"] = np.asarray(arr) > 0
        return gt

    def _frame(self, frame: _Frame, processor: Any) -> None:
        """Convert, pair and run the pipeline on this thread; score and write on the finisher."""
        t0 = time.perf_counter()
        img = frame.msgs["image"]
        try:
            rgb = colour_image(img, _ANY_SIZE)
        except InputProblem as problem:
            self.result.error(problem.kind, str(problem))
            return
        h, w = rgb.shape[:2]
        info, how = self.infos.match(frame.stamp)
        k = None
        if info is not None:
            if how != "exact":
                self.result.error(f"camera_info_{how}", f"no camera_info at stamp "
                                  f"{frame.stamp}; used the {how} one")
            try:
                k = intrinsics(info, w, h)
            except InputProblem as problem:
                self.result.error(problem.kind, str(problem))
        gt = self._ground_truth(frame, h, w)
        sensor = self._sensor_input(frame, gt, w, h) if self.feed_depth else None
        t1 = time.perf_counter()
        support = None
        if self.cfg.support_plane_from_gt and "depth" in gt and k is not None:
            support = support_plane_of_depth(gt["depth"], k)
        result = (processor(rgb, k, sensor, support) if processor is not None
                  else self._recorded(frame, k))
        if sensor is not None:
            gt["sensor_input"] = sensor
        t2 = time.perf_counter()
        timings, timer = result.timings_ms, self.result.timer
        timer.add("convert", t1 - t0)
        for stage in ("preprocess", "inference", "decode"):
            timer.add(stage, timings[stage] / 1e3)
        post = (t2 - t1) - sum(timings[s] for s in ("preprocess", "inference", "decode")) / 1e3
        timer.add("postprocess", max(post, 0.0))
        self.submitted += 1
        self.finisher.submit(self._score_and_write, frame, img, info, rgb, gt, k, result,
                             t2 - t0)

    def _sensor_input(self, frame: _Frame, gt: dict[str, np.ndarray], w: int,
                      h: int) -> np.ndarray | None:
        """The camera's depth fed to the model: the bag's sensor topic (or, with --hide-depth
        and no separate ground truth, its depth), with seeded blobs hidden (kept in
        ``gt["hidden"]``). None (counted) when the frame has none usable."""
        c = self.cfg
        msg = frame.msgs.get("sensor")
        if msg is None and (c.hide_depth > 0 or self.depth_is_input):
            msg = frame.msgs.get("depth")
        if msg is None:
            self.result.error("no_sensor_depth", f"no camera depth at stamp {frame.stamp}: "
                              "the frame runs RGB-only")
            return None
        try:
            depth = sensor_depth(msg, w, h)
        except InputProblem as problem:
            self.result.error(problem.kind, str(problem))
            return None
        if c.hide_depth > 0:
            from vision_banana_ros.synthetic.sensor import blob_mask

            rng = np.random.default_rng([c.hide_seed, self.submitted])
            hidden = blob_mask(np.isfinite(depth), c.hide_depth, rng, cell_px=max(w, h) / 12)
            gt["hidden"] = hidden
            depth = np.where(hidden, np.float32(np.nan), depth)
        return depth

    def _score_and_write(self, frame: _Frame, img: Any, info: Any, rgb: np.ndarray,
                         gt: dict[str, np.ndarray], k: np.ndarray | None, result: Any,
                         front_s: float) -> None:
        """Metrics and output-bag messages of one frame (on the finisher thread, in order)."""
        t2 = time.perf_counter()
        row = self._metrics(frame, result, gt, k)
        t3 = time.perf_counter()
        if self.out_bag is not None:
            for topic, bag_time, raw in frame.raws:
                self.out_bag.raw(topic, bag_time, raw)
            self.out_bag.outputs(result, img.header, info, frame.bag_time,
                                 self.cfg.bag_points_stride, self.finisher.checkpoint)
        t4 = time.perf_counter()
        run = self.result
        run.timer.add("metrics", t3 - t2)
        run.timer.add("write", t4 - t3)
        timings = result.timings_ms
        row.update({f"{s}_ms": round(timings[s], 2) for s in ("inference", "decode")},
                   total_ms=round((front_s + t4 - t2) * 1e3, 2))
        run.rows.append(row)
        if len(run.examples) < 3 and "depth" in gt and result.outputs.depth is not None:
            run.examples.append({"rgb": rgb, "gt": gt["depth"], "pred": result.outputs.depth,
                                 "ids": result.outputs.instances,
                                 "gt_ids": gt.get("instances")})

    def _recorded(self, frame: _Frame, k: np.ndarray | None) -> Any:
        """Outputs recorded in the bag, in place of running the model."""
        from vision_banana_ros.pipeline import Outputs
        from vision_banana_ros.processing import FrameResult

        out = Outputs(timings_ms={"preprocess": 0.0, "inference": 0.0, "decode": 0.0})
        if "pred_depth" in frame.msgs:
            out.depth = depth_to_metres(frame.msgs["pred_depth"])
        if "pred_instances" in frame.msgs:
            out.instances = np.ascontiguousarray(image_array(frame.msgs["pred_instances"]))
        return FrameResult(outputs=out, k=k, timings_ms=dict(out.timings_ms))

    def _metrics(self, frame: _Frame, result: Any, gt: dict[str, np.ndarray],
                 k: np.ndarray | None) -> dict[str, Any]:
        o = result.outputs
        run = self.result
        row: dict[str, Any] = {"frame": len(run.rows), "stamp_ns": frame.stamp}
        pause = self.finisher.checkpoint if self.finisher is not None else no_wait
        if "depth" in gt and o.depth is not None:
            pause()
            p, g = o.depth, gt["depth"]
            rep = depth_report(p, g, DEPTH_RANGES, bins=run.depth_bins.shape[1])
            if rep is not None:
                row.update({f"depth_{k2}": v for k2, v in rep.metrics.as_dict().items()})
                row.update({"depth_median_scale": rep.median_scale,
                            "depth_ms_abs_rel": rep.median_scaled.abs_rel,
                            "depth_ms_delta1": rep.median_scaled.delta1})
                for (lo, hi), (d1, rel) in rep.by_range.items():
                    row[f"depth_delta1_{lo:g}_{hi:g}"] = d1
                    row[f"depth_abs_rel_{lo:g}_{hi:g}"] = rel
                run.depth_bins[0] += rep.bin_error
                run.depth_bins[1] += rep.bin_count
            row.update(completion_metrics(p, g, gt, result.depth_source))
            row.update(_interpolation_row(gt, g))
            row.update(_anchor_row(result, p, g))
            const = constant_baseline(g)
            if const is not None:
                row.update(baseline_constant_delta1=const.delta1,
                           baseline_constant_abs_rel=const.abs_rel)
        if "instances" in gt and k is not None and self.cfg.instance_baseline:
            points = gt.get("sensor_input", gt.get("depth"))
            if points is not None:
                pause()
                ids = plane_cluster_instances(points, k).astype(np.int64)
                row.update(_instance_row(ids, gt["instances"], "baseline_instances_"))
        if "instances" in gt and o.instances is not None:
            pause()
            table = contingency(o.instances, gt["instances"])  # shared by both
            row.update(_instance_row(o.instances, gt["instances"], "instances_", table))
            if "depth" in gt and o.depth is not None and k is not None:
                ch = object_chamfer(o.depth, o.instances, gt["depth"], gt["instances"], k,
                                    table=table, pause=pause)
                if ch:
                    row["chamfer_m"] = float(np.mean(ch))
                    row["chamfer_objects"] = len(ch)
        if "semantic" in gt and o.semantic is not None:
            row["semantic_miou"] = semantic_miou(o.semantic, gt["semantic"], 3)[0]
        return row
