"""The node's parameters: one table with defaults, descriptions, ranges and liveness.

The ROS node declares every row (with its description and range), ``config/vision_banana.yaml``
holds the same defaults (a test keeps them equal), and :func:`validate` checks a full set at
configure time with errors that name the parameter. Rows with ``live=True`` are applied while
running through the parameter callback; the others need cleanup and configure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vision_banana_ros.codecs import parse_tasks
from vision_banana_ros.errors import VisionBananaError


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    live: bool = False


PARAMS: tuple[Param, ...] = (
    Param("model_path", "", "Model checkpoint (.pt) or ONNX (.onnx); empty: the shipped model"),
    Param("backend", "auto", "Inference backend", choices=("auto", "tensorrt", "onnxruntime",
                                                           "torch")),
    Param("device", "auto", "auto, cpu, cuda or cuda:N"),
    Param("precision", "fp32", "fp32, fp16 (CUDA) or int8 (TensorRT)",
          choices=("fp32", "fp16", "int8")),
    Param("threads", 2, "CPU threads for inference (at most the core count)", 1, 256),
    Param("tasks", "depth,instances,semantic,normals",
          "Comma-separated tasks: depth, instances, semantic, normals"),
    Param("instances_source", "geometry",
          "Instances: geometry (what stands on the support surfaces of the published depth, "
          "split at depth edges and creases; with the camera's depth, else clusters), "
          "clusters (the semantic painting's object pixels grouped by Euclidean clusters of "
          "the published depth) or painting (the instance painting's colours); geometry and "
          "clusters run the semantic task too", choices=("geometry", "clusters", "painting")),
    Param("instances_grid_pixels", 80_000,
          "instances_source geometry works on a grid of at most this many pixels (a 640x480 "
          "frame at 320x240)", 1_000, 10_000_000, live=True),
    Param("instances_min_size_m", 0.015, "Smallest object instance across (metres)",
          0.0, 1.0, live=True),
    Param("instances_max_size_m", 0.6,
          "Widest object instance (footprint on its support, metres; wider segments are "
          "furniture or walls)", 0.05, 100.0, live=True),
    Param("instances_max_height_m", 0.5,
          "Objects end this far above their support surface (metres)", 0.01, 10.0, live=True),
    Param("instances_track", True,
          "Keep an object's instance id across consecutive frames where it overlaps itself",
          live=True),
    Param("input_transport", "raw", "Subscribe to image (raw) or image/compressed",
          choices=("raw", "compressed")),
    Param("use_camera_info", True, "Scale metric depth with the camera's focal length"),
    Param("camera_info_tolerance_ms", 5.0, "Largest stamp difference for a camera_info match",
          0.0, 10000.0, live=True),
    Param("camera_info_fallback_latest", True,
          "Use the latest camera_info when none matches the image stamp", live=True),
    Param("pairing_wait_ms", 1000.0,
          "Longest wait for the camera_info and depth of exactly the image's stamp before "
          "falling back", 0.0, 10000.0, live=True),
    Param("depth_input", "auto",
          "Use the camera's depth (topic depth/image, aligned to colour): auto when it comes, "
          "off, or required (frames without it are skipped)",
          choices=("auto", "off", "required")),
    Param("depth_missing", "skip",
          "A frame without its depth image (waited for up to pairing_wait_ms) while the "
          "camera sends depth (a depth publisher matched, or depth seen): skip it, or run it "
          "rgb_only (counted; ~/depth/source marks every pixel completed). A camera without "
          "depth runs RGB-only either way", choices=("skip", "rgb_only"), live=True),
    Param("depth_tolerance_ms", 15.0, "Largest stamp difference for a depth image match",
          0.0, 10000.0, live=True),
    Param("depth_fill", "holes",
          "Published depth with camera depth: holes (the sensor's where valid and consistent, "
          "the model's elsewhere), all (model only), none (sensor only)",
          choices=("holes", "all", "none"), live=True),
    Param("depth_consistency", 0.15,
          "Largest relative difference between the sensor's and the model's depth for the "
          "sensor's to be published (depth_fill holes)", 0.0, 10.0, live=True),
    Param("scale_anchor", "support_plane",
          "Metric scale of frames without the camera's depth: support_plane (the model's "
          "support-surface pixels put on the support plane the robot knows, from "
          "support_frame, the support_plane topic or support_plane_static; unanchored where "
          "none is configured) or none", choices=("support_plane", "none"), live=True),
    Param("support_frame", "",
          "TF frame whose z = 0 plane is the support surface (needs tf2_ros, in a ROS "
          "workspace); empty: none"),
    Param("support_plane_static", "",
          "Support plane of a fixed camera, 'nx ny nz d' in the camera optical frame (the "
          "plane n . p + d = 0, metres); empty: none", live=True),
    Param("support_plane_max_age_s", 1.0,
          "A support_plane pose (topic) or transform older than this against the image is "
          "stale (0: never)", 0.0, 3600.0, live=True),
    Param("scale_unanchored", "skip",
          "A frame whose scale cannot be anchored although a plane is configured (stale or "
          "missing plane, too few support pixels, normals disagreeing): skip its metric "
          "outputs (depth, cloud, objects) or publish them at the model's own scale",
          choices=("skip", "publish"), live=True),
    Param("scale_smoothing", 0.0,
          "Weight of the previous frames' scale in the anchored scale (0: each frame its own; "
          "0.8 for a static camera)", 0.0, 0.99, live=True),
    Param("require_camera_info", True,
          "Skip images until a camera_info arrives (false: run without intrinsics)", live=True),
    Param("depth_min_m", 0.05, "Smallest published depth; closer is NaN", 0.0, 1000.0,
          live=True),
    Param("depth_max_m", 10.0, "Largest published depth; farther is NaN", 0.0, 1000.0,
          live=True),
    Param("publish_points", True, "Publish ~/points", live=True),
    Param("points_organized", True, "Organised (H x W, NaN holes) or dense cloud", live=True),
    Param("points_stride", 1, "Use every n-th pixel in both directions", 1, 64, live=True),
    Param("points_voxel_m", 0.0, "Voxel downsampling of ~/points (0 off; makes it dense)",
          0.0, 1.0, live=True),
    Param("points_outlier_neighbours", 0,
          "Statistical outlier removal neighbours for ~/points (0 off; makes it dense)",
          0, 200, live=True),
    Param("publish_objects", True, "Publish ~/objects (one oriented box per instance)",
          live=True),
    Param("objects_remove_support_plane", True,
          "Remove the RANSAC support plane from object clouds", live=True),
    Param("objects_voxel_m", 0.005, "Voxel size for object clouds (0 off)", 0.0, 1.0,
          live=True),
    Param("objects_outlier_neighbours", 16, "Outlier removal neighbours for objects (0 off)",
          0, 200, live=True),
    Param("objects_min_points", 50, "Smallest object in points", 1, 1_000_000, live=True),
    Param("publish_overlay", True, "Publish ~/segmentation/overlay", live=True),
    Param("publish_task_images", False, "Publish raw paintings on ~/task_images/<task>",
          live=True),
    Param("max_input_pixels", 4096 * 2160,
          "Largest input image in pixels (width x height), checked before decoding; larger "
          "frames are skipped", 1, 1 << 31, live=True),
    Param("max_rate_hz", 0.0, "Processing rate cap (0: as fast as frames come)", 0.0, 1000.0,
          live=True),
    Param("qos_input_reliability", "auto",
          "Input QoS reliability; auto: reliable while every publisher offers it, else "
          "best effort", choices=("auto", "best_effort", "reliable")),
    Param("qos_input_depth", 5, "Input QoS history depth", 1, 1000),
    Param("qos_output_reliability", "reliable", "Output QoS reliability",
          choices=("best_effort", "reliable")),
    Param("qos_output_depth", 5, "Output QoS history depth", 1, 1000),
    Param("autostart", True, "Configure and activate at start-up"),
    Param("diagnostics_period_s", 1.0, "Period of /diagnostics", 0.1, 60.0),
    Param("diagnostics_window_s", 10.0,
          "Problems within this many seconds set the status (totals are kept apart)",
          0.5, 3600.0, live=True),
    Param("log_throttle_s", 5.0, "Throttle of repeated warnings", 0.0, 3600.0, live=True),
)
BY_NAME = {p.name: p for p in PARAMS}


def defaults() -> dict[str, Any]:
    """name -> default value."""
    return {p.name: p.default for p in PARAMS}


def check_value(name: str, value: Any) -> Any:
    """Check one value against its row; returns it (ints accepted for floats).

    Raises:
        VisionBananaError: unknown name, wrong type, out of range, or not a choice.
    """
    if name not in BY_NAME:
        raise VisionBananaError(f"unknown parameter {name!r}")
    p = BY_NAME[name]
    kind = type(p.default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise VisionBananaError(f"parameter {name} must be {kind.__name__}, got "
                                f"{type(value).__name__} {value!r}")
    if p.choices and value not in p.choices:
        raise VisionBananaError(f"parameter {name} must be one of {', '.join(p.choices)}, got "
                                f"{value!r}")
    if (p.low is not None and value < p.low) or (p.high is not None and value > p.high):
        raise VisionBananaError(f"parameter {name}={value} is outside [{p.low}, {p.high}]")
    return value


def check_relations(values: dict[str, Any]) -> None:
    """Check the relations between values of a complete set (after every value of a change is
    applied to it, so an atomic change of several parameters is checked as a whole).

    Raises:
        VisionBananaError: naming the parameters that do not fit together.
    """
    if values["depth_min_m"] >= values["depth_max_m"]:
        raise VisionBananaError(f"depth_min_m ({values['depth_min_m']}) must be below "
                                f"depth_max_m ({values['depth_max_m']})")
    from vision_banana_ros.scale_anchor import parse_plane

    parse_plane(values["support_plane_static"])  # raises naming the problem
    if values["instances_min_size_m"] >= values["instances_max_size_m"]:
        raise VisionBananaError(f"instances_min_size_m ({values['instances_min_size_m']}) must "
                                f"be below instances_max_size_m "
                                f"({values['instances_max_size_m']})")


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Check a complete set of values, including relations between them."""
    out = {name: check_value(name, values.get(name, BY_NAME[name].default)) for name in BY_NAME}
    parse_tasks(out["tasks"])
    check_relations(out)
    dev = out["device"]
    if dev not in ("auto", "cpu", "cuda") and not (
            dev.startswith("cuda:") and dev[5:].isdigit()):
        raise VisionBananaError(f"parameter device must be auto, cpu, cuda or cuda:N, got "
                                f"{dev!r}")
    return out


def apply_change(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``current`` with every value of ``changes`` checked and applied, relations checked on
    the result as a whole; ``current`` is not modified.

    Raises:
        VisionBananaError: a bad value, or values that do not fit together.
    """
    merged = dict(current)
    for name, value in changes.items():
        merged[name] = check_value(name, value)
    check_relations({**defaults(), **merged})
    return merged


def defaults_yaml() -> str:
    """``config/vision_banana.yaml``: every parameter's default with its description
    (``python -m vision_banana_ros.node_config > config/vision_banana.yaml``)."""
    import json

    lines = ["# Default parameters of the vision_banana node (ros2 run ... --ros-args "
             "--params-file).",
             "# Generated from the table in vision_banana_ros/node_config.py:",
             "#   python -m vision_banana_ros.node_config > config/vision_banana.yaml",
             "/**:", "  ros__parameters:"]
    for p in PARAMS:
        lines.append(f"    # {p.description}{' (live)' if p.live else ''}")
        value = json.dumps(p.default) if not isinstance(p.default, bool) else str(
            p.default).lower()
        if isinstance(p.default, float):
            value = repr(p.default)
        lines.append(f"    {p.name}: {value}")
    return "\n".join(lines) + "\n"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def markdown_table() -> str:
    """The README's parameter table
    (``python -m vision_banana_ros.node_config --markdown``; a test keeps the README equal)."""
    import json

    lines = ["| parameter | default | live | description |", "|---|---|---|---|"]
    for p in PARAMS:
        named = all(c in p.description for c in p.choices)
        extra = f" ({' / '.join(p.choices)})" if p.choices and not named else ""
        if p.low is not None and p.high is not None:
            extra += f" [{_number(p.low)}, {_number(p.high)}]"
        default = json.dumps(p.default) if not isinstance(p.default, bool) else str(
            p.default).lower()
        lines.append(f"| `{p.name}` | `{default}` | {'yes' if p.live else 'no'} | "
                     f"{p.description}{extra} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(markdown_table() if "--markdown" in sys.argv[1:] else defaults_yaml(), end="")
