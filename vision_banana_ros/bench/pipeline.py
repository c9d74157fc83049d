"""Pipeline benchmarks: node overhead without the network, backends, tasks batched or not."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from vision_banana_ros.bench.harness import BenchResult, compare, register


class RecordedPaintings:
    """A backend that returns paintings recorded from a real model run (isolates everything
    but the network for the overhead benchmark)."""

    name, device, precision = "recorded", "cpu", "fp32"

    def __init__(self, paintings: np.ndarray) -> None:
        self.paintings = paintings

    def run(self, images: np.ndarray, task_ids: np.ndarray,
            depth: np.ndarray | None = None) -> np.ndarray:
        return self.paintings

    def close(self) -> None:
        pass


def _depth_input_cost(ort: Any, ort_pipe: Any, rgb: np.ndarray, k: np.ndarray,
                      rgbd_options: dict[str, Any], rgb_options: dict[str, Any],
                      repeats: int) -> list[Any]:
    """The node's whole 640x480 frame (its default parameters: four tasks, cloud, objects,
    overlay) with and without the camera's depth (bar: at most 10 % more), and the narrower
    depth + instances network-and-fusion step alone (no bar).

    Both frames make their instances the same way (clusters of the painting's object pixels,
    what an RGB-only frame uses): the bar prices the camera's depth (its planes into the
    network, the fusion, the source image), and the instances from geometry, which only a
    frame with the camera's depth can run, are priced by their own bar (:func:`_instances_cost`).
    The two default frames' ratio is reported beside (``default_frames_ratio``)."""
    from vision_banana_ros import node_config
    from vision_banana_ros.processing import FrameProcessor, make_processor

    camera = _camera_depth()
    details = {"camera_valid_fraction": float(np.isfinite(camera).mean())}
    node_rgbd = make_processor(ort, node_config.validate({"depth_input": "auto",
                                                          "instances_source": "clusters"}))
    node_rgb = make_processor(ort, node_config.validate({"depth_input": "off"}))
    node_default = make_processor(ort, node_config.validate({"depth_input": "auto"}))
    default = compare("", ("", lambda: node_default(rgb, k, camera)),
                      ("", lambda: node_rgb(rgb, k)), max(3, repeats // 3))
    whole = compare("depth input 640x480, node frame (onnxruntime)",
                    ("the node's default frame with the camera's depth (planes, fusion), "
                     "instances as RGB only makes them (clusters)",
                     lambda: node_rgbd(rgb, k, camera)),
                    ("the same frame RGB only", lambda: node_rgb(rgb, k)), repeats,
                    target="<= 10 % more than RGB only (ratio >= 0.91)",
                    details={**details, "default_frames_ratio": round(default.ratio, 3)})
    whole.met = whole.ratio >= 1 / 1.1
    with_depth = FrameProcessor(ort_pipe, rgbd_options)
    without = FrameProcessor(ort_pipe, rgb_options)
    narrow = compare("depth input 640x480, network + fusion (onnxruntime)",
                     ("depth + instances with the camera's depth (planes, fusion)",
                      lambda: with_depth(rgb, k, camera)),
                     ("the same RGB only", lambda: without(rgb, k)), repeats, details=details)
    return [whole, narrow]


def _instances_cost(ort: Any, repeats: int) -> list[Any]:
    """Instances from geometry (the default) against the painting's object pixels grouped by
    depth clusters (the default before), on a tabletop frame with touching boxes, a mug, a
    bottle and a small cube and a simulated camera depth: the node's whole default frame
    (bar: at most 15 % more) and the instance step alone."""
    from vision_banana_ros import node_config
    from vision_banana_ros.fusion import fuse_depth
    from vision_banana_ros.geometry.clusters import object_clusters
    from vision_banana_ros.geometry.instances import segment_instances
    from vision_banana_ros.processing import OBJECT_CLASS, make_processor
    from vision_banana_ros.synthetic.analytic import Shape, render_tabletop
    from vision_banana_ros.synthetic.sensor import simulate_sensor_depth

    shapes = [Shape("box", (-0.2, 0.0), (0.08, 0.06, 0.12)),
              Shape("box", (-0.12, 0.01), (0.08, 0.06, 0.08)),
              Shape("cup", (0.08, 0.08), (0.045, 0.04, 0.1)),
              Shape("cylinder", (0.14, -0.1), (0.03, 0.03, 0.15)),
              Shape("box", (-0.02, -0.16), (0.02, 0.02, 0.02))]
    f = render_tabletop(shapes, 640, 480)
    camera = simulate_sensor_depth(np.where(np.isfinite(f.depth), f.depth, np.inf), f.k,
                                   np.random.default_rng(0))
    geometry = make_processor(ort, node_config.validate({}))
    clusters = make_processor(ort, node_config.validate({"instances_source": "clusters"}))
    whole = compare("instances 640x480, node frame (onnxruntime)",
                    ("the node's default frame, instances from geometry",
                     lambda: geometry(f.rgb, f.k, camera)),
                    ("the same, instances from painted objects + depth clusters",
                     lambda: clusters(f.rgb, f.k, camera)), repeats,
                    target="<= 15 % more than clusters (ratio >= 0.87)")
    whole.met = whole.ratio >= 1 / 1.15
    out = geometry.pipeline(f.rgb, f.k, camera)
    depth = fuse_depth(out.depth, camera, "holes", 0.15)[0]
    objects = out.semantic == OBJECT_CLASS
    valid = np.isfinite(camera)
    step = compare("instance step 640x480",
                   ("segment_instances (geometry)",
                    lambda: segment_instances(depth, f.k, sensor_valid=valid, rgb=f.rgb,
                                              object_vote=objects)),
                   ("object_clusters (painted objects, DBSCAN)",
                    lambda: object_clusters(depth, f.k, objects)), repeats)
    return [whole, step]


def _anchor_cost(ort: Any, rgb: np.ndarray, k: np.ndarray, repeats: int) -> BenchResult:
    """The support-plane scale anchor on an RGB-only 640x480 frame: the node's frame with a
    plane given against the same without (bar: at most 3 ms more)."""
    from vision_banana_ros import node_config
    from vision_banana_ros.processing import make_processor
    from vision_banana_ros.scale_anchor import parse_plane

    tilt = np.radians(40.0)  # _frame's table (render_spheres_on_plane)
    plane = parse_plane(f"0 {-np.cos(tilt)} {-np.sin(tilt)} {0.9 * np.sin(tilt)}")
    node = make_processor(ort, node_config.validate({"depth_input": "off"}))
    result = compare("scale anchor 640x480, node frame RGB only (onnxruntime)",
                     ("with the support plane (anchored)", lambda: node(rgb, k, None, plane)),
                     ("the same without a plane", lambda: node(rgb, k)), repeats,
                     target="<= 3 ms more")
    result.met = result.candidate_p50_s - result.baseline_p50_s <= 0.003
    result.details["anchored"] = node(rgb, k, None, plane).anchor.reason
    return result


def _frame(width: int = 640, height: int = 480) -> tuple[np.ndarray, np.ndarray, Any]:
    from types import SimpleNamespace

    from vision_banana_ros.imageconv import array_to_image_fields
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    f = render_spheres_on_plane(width, height, n_spheres=6, seed=2)
    msg = SimpleNamespace(**array_to_image_fields(f.rgb, "rgb8"))
    return f.rgb, f.k, msg


def _camera_depth() -> np.ndarray:
    """The benchmark frame's depth as a depth camera would measure it."""
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane
    from vision_banana_ros.synthetic.sensor import simulate_sensor_depth

    f = render_spheres_on_plane(640, 480, n_spheres=6, seed=2)  # _frame's scene
    return simulate_sensor_depth(f.depth, f.k, np.random.default_rng(0))


def _model_path() -> str:
    from vision_banana_ros.runtime.select import resolve_model

    return str(resolve_model(None))


def _outputs_to_buffers(result: Any) -> int:
    """Build every output message's data buffer as the node does (one copy each)."""
    from vision_banana_ros.imageconv import array_to_image_fields

    o, n = result.outputs, 0
    for arr, enc in ((o.depth, "32FC1"), (o.instances, "16UC1"), (o.semantic, "mono8"),
                     (o.normals, "32FC3"), (result.overlay, "rgb8")):
        if arr is not None:
            n += len(array_to_image_fields(arr, enc)["data"])
    if result.cloud is not None:
        import array as pyarray

        data = pyarray.array("B")
        data.frombytes(np.ascontiguousarray(result.cloud.points).view(np.uint8).data)
        n += len(data)
    return n


def _naive_cloud(depth: np.ndarray, k: np.ndarray, rgb: np.ndarray, ids: np.ndarray) -> bytes:
    """What naive nodes do: a Python loop packing each point with struct."""
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    out = bytearray()
    pack = struct.Struct("<ffffHxx").pack
    h, w = depth.shape
    for v in range(h):
        for u in range(w):
            z = float(depth[v, u])
            r, g, b = (int(c) for c in rgb[v, u])
            bits = struct.unpack("<f", struct.pack("<I", (r << 16) | (g << 8) | b))[0]
            out += pack((u - cx) / fx * z, (v - cy) / fy * z, z, bits, int(ids[v, u]))
    return bytes(out)


@register("pipeline")
def bench_pipeline(quick: bool) -> list[BenchResult]:
    """Overhead of everything except the network at 640x480, against a naive node; backends."""
    import torch

    from vision_banana_ros import node_config
    from vision_banana_ros.imageconv import image_to_rgb
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.processing import FrameProcessor
    from vision_banana_ros.runtime.select import create_backend

    torch.set_num_threads(2)
    rgb, k, msg = _frame()
    model = _model_path()
    ort = create_backend("onnxruntime", model, threads=2)
    cfg = node_config.validate({"publish_objects": False})
    tasks = cfg["tasks"]
    real = Pipeline(ort, ort.config, tasks)
    paint = ort.run(real.preprocess(rgb, k)[0], real.task_ids)
    recorded = FrameProcessor(Pipeline(RecordedPaintings(paint), ort.config, tasks), cfg)

    def overhead() -> None:
        frame = np.ascontiguousarray(image_to_rgb(msg))
        _outputs_to_buffers(recorded(frame, k))

    ref = recorded(rgb, k)

    def naive() -> None:
        frame = np.ascontiguousarray(image_to_rgb(msg))
        r = recorded(frame, k)
        _naive_cloud(r.outputs.depth, k, frame, r.outputs.instances)

    results = [compare(
        "node overhead 640x480 (no network)",
        ("conversion + decode (4 tasks) + overlay + 307k-point cloud + message buffers",
         overhead),
        ("same with the cloud packed by a Python struct loop", naive),
        2 if quick else 4, target="<= 25 ms per frame", bar_s=0.025,
        details={"cloud_points": int(np.isfinite(ref.outputs.depth).sum())})]

    # Backends at the default input size on one 640x480 frame, depth + instances.
    torch_b = create_backend("torch", model, threads=2)
    two = ["depth", "instances"]
    ort_pipe = Pipeline(ort, ort.config, two)
    quiet = {"publish_points": False, "publish_objects": False, "publish_overlay": False,
             "tasks": "depth,instances", "instances_source": "painting"}
    rgbd_options = node_config.validate({**quiet, "depth_input": "auto"})
    rgb_options = node_config.validate({**quiet, "depth_input": "off"})
    torch_pipe = Pipeline(torch_b, torch_b.config, two)
    repeats = 10 if quick else 30
    results.append(compare(
        "depth+instances 640x480 onnxruntime", ("ONNX Runtime, 2 threads",
                                                lambda: ort_pipe(rgb, k)),
        ("PyTorch eager, 2 threads", lambda: torch_pipe(rgb, k)), repeats,
        target="<= 150 ms (ONNX Runtime)", bar_s=0.150,
        details={"input": f"{ort.config.input_width}x{ort.config.input_height}"}))
    if ort.config.depth_input:  # the camera's depth as a second input: what it costs
        results += _depth_input_cost(ort, ort_pipe, rgb, k, rgbd_options, rgb_options, repeats)
    results += _instances_cost(ort, repeats)
    results.append(_anchor_cost(ort, rgb, k, repeats))
    x = real.preprocess(rgb, k)[0]
    all_ids = np.arange(len(ort.config.tasks))
    for name, backend in (("onnxruntime", ort), ("torch", torch_b)):
        results.append(compare(
            f"{name}: 4 tasks batched vs one at a time",
            ("one call, tasks batched", lambda b=backend: b.run(x, all_ids)),
            ("four calls, one task each", lambda b=backend: [b.run(x, all_ids[i:i + 1])
                                                              for i in range(4)]),
            repeats, details={"backend": name}))
        r = results[-1]
        r.details["fps_batched"] = 1.0 / r.candidate_p50_s
    ort.close()
    torch_b.close()
    return results
