"""Everything the node does to one frame except ROS: pipeline, depth range, point cloud,
objects, overlay. Pure numpy/open3d, shared with the evaluator."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vision_banana_ros.codecs import DEFAULT_SEMANTIC_PALETTE, instance_palette, parse_tasks
from vision_banana_ros.fusion import SOURCE_NONE, fuse_depth
from vision_banana_ros.geometry.clusters import object_clusters
from vision_banana_ros.geometry.instances import InstanceParams, segment_instances
from vision_banana_ros.geometry.objects import (
    ObjectGeometry,
    Plane,
    fit_support_plane,
    object_geometries,
)
from vision_banana_ros.geometry.pointcloud import CloudBuffer, RayCache, build_cloud
from vision_banana_ros.geometry.tracking import InstanceTracker
from vision_banana_ros.pipeline import Outputs, Pipeline
from vision_banana_ros.scale_anchor import Anchor, anchor_scale

_PALETTE = np.vstack([np.zeros((1, 3)), instance_palette(60)])
_SEMANTIC_TINT = np.array([[0, 0, 0], [0, 160, 255], [255, 200, 0]], np.float32)


@dataclass
class FrameResult:
    """All outputs of one frame (arrays at the input resolution)."""

    outputs: Outputs
    k: np.ndarray | None
    cloud: CloudBuffer | None = None
    objects: list[ObjectGeometry] = field(default_factory=list)
    plane: Plane | None = None
    overlay: np.ndarray | None = None
    #: (H, W) uint8 per pixel: 0 no depth, 1 the sensor's, 2 completed by the model (RGB-D
    #: input only, else None).
    depth_source: np.ndarray | None = None
    #: The object step ran (``objects`` is then the frame's list, maybe empty).
    objects_done: bool = False
    #: How the published instances were made: geometry, clusters, painting (or None).
    instances_method: str | None = None
    #: The support-plane scale anchor of this frame (None: no plane given, or off).
    anchor: Anchor | None = None
    #: With the camera's depth and a plane: the anchor's scale over the camera's (a check).
    anchor_check: float | None = None
    #: The factor the model's depth was multiplied with (RGB only, anchored), else None.
    depth_scale: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


_PALETTE_U8 = np.rint(_PALETTE * 255).astype(np.uint8)
_SEMANTIC_U8 = _SEMANTIC_TINT.astype(np.uint8)


def overlay_image(rgb: np.ndarray, instances: np.ndarray | None,
                  semantic: np.ndarray | None) -> np.ndarray:
    """rgb8 overlay for people: instance colours (or semantic tints) blended over the image.

    (H, W, 3) uint8 in, (H, W, 3) uint8 out; 8-bit blends in OpenCV (no float image).
    """
    import cv2

    if instances is not None:
        colours = _PALETTE_U8[np.minimum(instances, len(_PALETTE_U8) - 1)]
        mask = instances > 0
        weight = 0.55
    elif semantic is not None:
        colours = _SEMANTIC_U8[np.minimum(semantic, 2)]
        mask = (semantic > 0) & (semantic < 3)
        weight = 0.5
    else:
        return rgb.copy()
    blended = cv2.addWeighted(np.ascontiguousarray(rgb), 1.0 - weight, colours, weight, 0.0)
    out = rgb.copy()
    np.copyto(out, blended, where=mask[..., None])
    return out


#: Class ids of objects and support surfaces in the semantic painting (the class table).
OBJECT_CLASS = DEFAULT_SEMANTIC_PALETTE.names.index("object")
SUPPORT_CLASS = DEFAULT_SEMANTIC_PALETTE.names.index("support_surface")


def pipeline_tasks(options: dict[str, Any]) -> list[str]:
    """The tasks the network runs for these options: the published ``tasks``, plus
    ``semantic`` when instances use its object pixels (``instances_source`` geometry, where
    they vote, or clusters) or the depth's scale its support pixels (``scale_anchor``)."""
    tasks = [s.name for s in parse_tasks(options["tasks"])]
    anchored = "depth" in tasks and options.get("scale_anchor", "none") == "support_plane"
    if "semantic" not in tasks and (anchored or (
            "instances" in tasks
            and options.get("instances_source", "painting") in ("geometry", "clusters"))):
        tasks.append("semantic")
    return tasks


def instance_params(options: dict[str, Any]) -> InstanceParams:
    """:class:`~vision_banana_ros.geometry.instances.InstanceParams` from the node's
    ``instances_*`` parameters (defaults for those not given)."""
    d = InstanceParams()
    return InstanceParams(
        max_pixels=int(options.get("instances_grid_pixels", d.max_pixels)),
        min_object_m=float(options.get("instances_min_size_m", d.min_object_m)),
        max_width_m=float(options.get("instances_max_size_m", d.max_width_m)),
        max_height_m=float(options.get("instances_max_height_m", d.max_height_m)))


def warm_up(processor: FrameProcessor) -> float:
    """Run a synthetic 640x480 frame (spheres on a table, with its depth as the camera's)
    twice through every step, so the first camera frames do not pay for first-run
    allocations and first calls (the second frame is the tracker's first matching) and are
    not dropped while they would; the tracker forgets them. Returns milliseconds."""
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    frame = render_spheres_on_plane(640, 480, n_spheres=3, seed=0)
    depth = np.where(np.isfinite(frame.depth), frame.depth, np.nan).astype(np.float32)
    depth[:8] = np.nan  # a camera's holes
    start = time.perf_counter()
    for _ in range(2):
        processor(frame.rgb, frame.k, depth)
    processor.tracker.reset()
    return (time.perf_counter() - start) * 1e3


def make_processor(backend: Any, options: dict[str, Any]) -> FrameProcessor:
    """The node's processor on ``backend`` (a loaded runtime backend) with ``options`` (the
    node's validated parameters)."""
    return FrameProcessor(Pipeline(backend, backend.config, pipeline_tasks(options)), options)


class FrameProcessor:
    """Runs the pipeline and the geometry on frames, with options from the node's parameters."""

    def __init__(self, pipeline: Pipeline, options: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.options = dict(options)
        self.rays = RayCache()
        self.tracker = InstanceTracker()
        self._scale: float | None = None  # the last anchored scale (scale_smoothing)
        #: Semantics are published only when asked for (``tasks`` is not a live parameter).
        self.publish_semantic = "semantic" in {s.name for s in parse_tasks(options["tasks"])}

    def __call__(self, rgb: np.ndarray, k: np.ndarray | None,
                 depth: np.ndarray | None = None, support: Plane | None = None) -> FrameResult:
        """One frame: ``depth`` is the camera's, (H, W) float32 metres aligned to ``rgb``
        (NaN invalid), or None (RGB only). With depth input on (option ``depth_input`` not
        ``off``), the published depth is fused (:func:`~vision_banana_ros.fusion.fuse_depth`)
        and ``depth_source`` says where each pixel came from. ``support`` is the support plane
        the robot knows (camera optical frame): without the camera's depth it sets the
        depth's scale (:mod:`vision_banana_ros.scale_anchor`), with it it is checked."""
        o = self.options
        rgbd = o.get("depth_input", "off") != "off"
        sensor = depth if rgbd else None
        method = self._instance_method(k, sensor)
        skip = () if method in (None, "painting") or o["publish_task_images"] else (
            "instances",)
        out = self.pipeline(rgb, k if o["use_camera_info"] else None, sensor,
                            keep_paintings=o["publish_task_images"], skip=skip)
        t0 = time.perf_counter()
        result = FrameResult(outputs=out, k=k)
        if support is not None and k is not None:
            self._anchor(result, support, sensor)
        if out.depth is not None:
            if rgbd:
                out.depth, result.depth_source = fuse_depth(
                    out.depth, sensor, o["depth_fill"], o["depth_consistency"])
            d = out.depth
            out_of_range = (d < o["depth_min_m"]) | (d > o["depth_max_m"])
            d[out_of_range] = np.nan
            if result.depth_source is not None:
                result.depth_source[out_of_range] = SOURCE_NONE
        self._instances(result, rgb, k, sensor, method)
        if not self.publish_semantic:  # run for the instances or the scale anchor only
            out.semantic = None
        if out.depth is not None and k is not None and o["publish_points"]:
            result.cloud = self._scene_cloud(rgb, out, k)
        t1 = time.perf_counter()
        if (out.depth is not None and out.instances is not None and k is not None
                and o["publish_objects"]):
            self._objects(result)
            result.objects_done = True
        t2 = time.perf_counter()
        if o["publish_overlay"] and (out.instances is not None or out.semantic is not None):
            result.overlay = overlay_image(rgb, out.instances, out.semantic)
        result.timings_ms = {**out.timings_ms, "points": (t1 - t0) * 1e3,
                             "objects": (t2 - t1) * 1e3,
                             "overlay": (time.perf_counter() - t2) * 1e3}
        return result

    def _anchor(self, result: FrameResult, support: Plane, sensor: np.ndarray | None) -> None:
        """Scale the model's depth so its support pixels lie on ``support`` (RGB only), or,
        with the camera's depth, compare the two scales (``anchor_check``)."""
        o, out = self.options, result.outputs
        if (o.get("scale_anchor", "none") != "support_plane" or out.depth is None
                or out.semantic is None):
            return
        t0 = time.perf_counter()
        result.anchor = anchor = anchor_scale(out.depth, result.k, out.semantic == SUPPORT_CLASS,
                                              support)
        if anchor.scale is not None and sensor is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = sensor[::4, ::4] / out.depth[::4, ::4]
            ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
            if ratio.size:
                result.anchor_check = anchor.scale / float(np.median(ratio))
        elif anchor.scale is not None:
            scale, keep = anchor.scale, float(o.get("scale_smoothing", 0.0))
            if keep > 0 and self._scale is not None:
                scale = float(np.exp(keep * np.log(self._scale) + (1 - keep) * np.log(scale)))
            self._scale = result.depth_scale = scale
            out.depth *= np.float32(scale)
        out.timings_ms["anchor"] = (time.perf_counter() - t0) * 1e3

    def _instance_method(self, k: np.ndarray | None, sensor: np.ndarray | None) -> str | None:
        """How this frame's instances are made (``instances_source``): ``geometry`` with the
        camera's depth, ``clusters`` (and geometry without camera depth: the model's own depth
        is too smooth for it, measured F 0.0-0.09 against 0.30-0.51), otherwise ``painting``;
        None when instances are not a task. Decided before inference: only ``painting`` needs
        the instance painting decoded."""
        o, tasks = self.options, self.pipeline.tasks
        if "instances" not in tasks:
            return None
        source = o.get("instances_source", "painting")
        if source == "painting" or "depth" not in tasks or k is None:
            return "painting"
        if source == "geometry" and sensor is not None:
            return "geometry"
        return "clusters" if "semantic" in tasks else "painting"

    def _instances(self, result: FrameResult, rgb: np.ndarray, k: np.ndarray | None,
                   sensor: np.ndarray | None, method: str | None) -> None:
        """The published instances, made by ``method`` (:meth:`_instance_method`):
        ``geometry`` (:func:`~vision_banana_ros.geometry.instances.segment_instances`, the
        painting's object pixels voting), ``clusters`` or the painting's; ids tracked across
        frames (``instances_track``)."""
        o = self.options
        out = result.outputs
        if method is None or (out.depth is None and method != "painting"):
            return
        t0 = time.perf_counter()
        objects = None if out.semantic is None else out.semantic == OBJECT_CLASS
        if method == "geometry":
            found = segment_instances(out.depth, k, sensor_valid=np.isfinite(sensor), rgb=rgb,
                                      object_vote=objects, params=instance_params(o))
            out.instances = found.ids
            result.plane = found.surfaces.primary
            out.timings_ms.update(found.timings_ms)
        elif method == "clusters":
            out.instances = object_clusters(out.depth, k, objects)
        result.instances_method = method
        if o.get("instances_track", True):
            out.instances = self.tracker(out.instances)
        out.timings_ms["instances"] = (time.perf_counter() - t0) * 1e3

    def _scene_cloud(self, rgb: np.ndarray, out: Outputs, k: np.ndarray) -> CloudBuffer:
        o = self.options
        filtered = o["points_voxel_m"] > 0 or o["points_outlier_neighbours"] > 0
        cloud = build_cloud(out.depth, k, rgb, out.instances,
                            organized=o["points_organized"] and not filtered,
                            stride=o["points_stride"], min_depth=o["depth_min_m"],
                            max_depth=o["depth_max_m"], rays=self.rays)
        if filtered and cloud.width > 0:
            cloud = _filter_dense(cloud, o["points_voxel_m"], o["points_outlier_neighbours"])
        return cloud

    def _objects(self, result: FrameResult) -> None:
        """Support plane from a subsample of the background, boxes from the object pixels.

        Only the pixels used are back-projected (with the cached rays): object pixels, and at
        most about ``_PLANE_SAMPLES`` evenly strided background pixels for RANSAC.
        """
        o = self.options
        out = result.outputs
        x_f, y_f = self.rays.rays(out.depth.shape, result.k)  # cached, as for the cloud
        z = out.depth.ravel()
        valid = np.isfinite(z)
        ids_all = out.instances.ravel()

        def points(index: np.ndarray) -> np.ndarray:
            zi = z[index]
            return np.stack([x_f.ravel()[index] * zi, y_f.ravel()[index] * zi, zi], axis=-1)

        plane = result.plane  # the instance step's primary support, when it found one
        if o["objects_remove_support_plane"] and plane is None:
            background = np.flatnonzero(valid & (ids_all == 0))
            if len(background) > _PLANE_SAMPLES:  # RANSAC on a subsample: same plane, faster
                background = background[:: len(background) // _PLANE_SAMPLES]
            plane = fit_support_plane(points(background))
        if not o["objects_remove_support_plane"]:
            plane = None
        result.plane = plane
        on_object = np.flatnonzero(valid & (ids_all > 0))
        result.objects = object_geometries(
            points(on_object), ids_all[on_object], voxel_m=o["objects_voxel_m"],
            outlier_neighbours=o["objects_outlier_neighbours"], plane=plane,
            min_points=o["objects_min_points"])


#: Background points given to the support-plane RANSAC (a plane needs few points; 200
#: iterations over these cost a few milliseconds).
_PLANE_SAMPLES = 3000


def _filter_dense(cloud: CloudBuffer, voxel_m: float, neighbours: int) -> CloudBuffer:
    """Voxel-downsample and/or outlier-filter a dense cloud, keeping each kept point's fields."""
    import open3d as o3d

    pts = cloud.points
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], -1).astype(np.float64)
    pc = o3d.geometry.PointCloud()
    pc.points = o3d.utility.Vector3dVector(xyz)
    keep = np.arange(len(xyz))
    if voxel_m > 0:
        _, _, groups = pc.voxel_down_sample_and_trace(voxel_m, pc.get_min_bound(),
                                                      pc.get_max_bound())
        keep = np.array([g[0] for g in groups], dtype=np.int64)
        pc = pc.select_by_index(keep.tolist())
    if neighbours > 0 and len(keep) > neighbours:
        _, inliers = pc.remove_statistical_outlier(nb_neighbors=neighbours, std_ratio=2.0)
        keep = keep[np.asarray(inliers, dtype=np.int64)]
    kept = pts[keep]
    return CloudBuffer(points=kept, height=1, width=len(kept), is_dense=True)
