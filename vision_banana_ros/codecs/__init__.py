"""RGB task codecs: every task's answer painted as an RGB image, and decoded back.

See DESIGN.md's "RGB task interface". numpy functions are channels last, torch channels first.
"""

from vision_banana_ros.codecs.depth import (
    decode_depth,
    decode_depth_reference,
    decode_depth_torch,
    depth_quantisation_step_m,
    encode_depth,
    encode_depth_torch,
    encode_depth_uint8,
)
from vision_banana_ros.codecs.instances import decode_instances, encode_instances, instance_palette
from vision_banana_ros.codecs.normals import (
    decode_normals,
    decode_normals_torch,
    encode_normals,
    encode_normals_torch,
)
from vision_banana_ros.codecs.semantic import (
    DEFAULT_SEMANTIC_PALETTE,
    SemanticPalette,
    decode_semantic,
    decode_semantic_torch,
    encode_semantic,
)
from vision_banana_ros.codecs.tasks import TASKS, TaskSpec, get_task, parse_tasks

__all__ = [
    "DEFAULT_SEMANTIC_PALETTE",
    "TASKS",
    "SemanticPalette",
    "TaskSpec",
    "decode_depth",
    "decode_depth_reference",
    "decode_depth_torch",
    "decode_instances",
    "decode_normals",
    "decode_normals_torch",
    "decode_semantic",
    "decode_semantic_torch",
    "depth_quantisation_step_m",
    "encode_depth",
    "encode_depth_torch",
    "encode_depth_uint8",
    "encode_instances",
    "encode_normals",
    "encode_normals_torch",
    "encode_semantic",
    "get_task",
    "instance_palette",
    "parse_tasks",
]
