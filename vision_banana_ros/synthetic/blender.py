"""Photoreal rendering of the settled pybullet scenes with Blender's Cycles (``bpy``).

pybullet keeps doing what it is good at (building and settling piles); every body's visual
shapes (primitives and OBJ meshes, with their world poses, colours, textures and material
class) are rebuilt in Blender and rendered with area lights, a bright environment, soft
shadows, glass that refracts, metals that reflect, and OpenImageDenoise. Ground truth comes
from Blender's own passes of the same render (planar depth, object index), so labels and pixels
always agree; normals follow from the exact depth as for pybullet frames.

``bpy`` (Blender 5.0 as a Python module, about 1 GB) is an install extra (``pip install
'vision_banana_ros[render]'``, README): it is imported only here, inside the render workers.
Multi-layer EXR passes are read with the ``OpenEXR`` package (the same extra).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.geometry import normals_from_depth
from vision_banana_ros.geometry.camera import quaternion_to_rotation
from vision_banana_ros.synthetic.camera import Camera
from vision_banana_ros.synthetic.scene import Frame, Scene, SceneBuilder
from vision_banana_ros.synthetic.sensor import DARK, SPECULAR, TRANSPARENT
from vision_banana_ros.synthetic.textures import apply_sensor_effects

#: pybullet geometry types (pybullet.GEOM_*).
_SPHERE, _BOX, _CYLINDER, _MESH = 2, 3, 4, 5
#: Blender's depth pass value where no surface was hit (1e10) is above this.
_NO_HIT_M = 1e6

BLENDER_HINT = ("rendering with Blender needs the render extra: pip install bpy==5.0.1 "
                "OpenEXR (about 1 GB; Python 3.11), see the README")


def blender_available() -> tuple[bool, str]:
    """(usable, why): ``bpy`` and ``OpenEXR`` are installed. Found, not imported: importing
    bpy puts Blender's own script folders first on ``sys.path``, and render workers spawned
    after that import Blender's internal ``bpy`` package instead of the module."""
    import importlib.util

    missing = [m for m in ("bpy", "OpenEXR") if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"{BLENDER_HINT} (missing: {', '.join(missing)})"
    return True, "Blender (bpy) and OpenEXR found"


def render_python() -> Path | None:
    """The interpreter of the render environment (``$VISION_BANANA_RENDER_PYTHON`` or the
    repository's ``.venv-render``, made by ``make render-env``), when it exists."""
    given = os.environ.get("VISION_BANANA_RENDER_PYTHON")
    path = Path(given) if given else Path(__file__).resolve().parents[2] / ".venv-render" / \
        "bin" / "python"
    return path if path.is_file() else None


def run_in_render_env(argv: list[str]) -> int:
    """Run ``vision-banana ARGV`` with the render environment's Python (this checkout's code);
    returns its exit status.

    Raises:
        VisionBananaError: there is no render environment, or it is this environment.
    """
    import subprocess
    import sys

    python = render_python()
    if python is None or Path(sys.prefix).resolve() == python.parent.parent.resolve():
        raise VisionBananaError(f"{BLENDER_HINT}; `make render-env` creates .venv-render")
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    return subprocess.run([str(python), "-m", "vision_banana_ros.cli", *argv], env=env,
                          check=False).returncode


def _pose(pos: Any, orn: Any) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = quaternion_to_rotation(*orn), np.asarray(pos, float)
    return t


def describe(builder: SceneBuilder, scene: Scene) -> list[dict[str, Any]]:
    """Every visual shape of the settled scene: geometry, world pose (4x4), look, material and
    the pass index Blender writes for it (pybullet body id + 1)."""
    p, c = builder.p, builder.client
    shapes = []
    for body in range(p.getNumBodies(physicsClientId=c)):
        body = p.getBodyUniqueId(body, physicsClientId=c)
        com = _pose(*p.getBasePositionAndOrientation(body, physicsClientId=c))
        inertial = _pose(*p.getDynamicsInfo(body, -1, physicsClientId=c)[3:5])
        base = com @ np.linalg.inv(inertial)  # the URDF base link frame
        look = scene.body_look.get(body, {"colour": [0.7, 0.7, 0.7], "texture": None})
        for shape in p.getVisualShapeData(body, physicsClientId=c):
            link, kind, dims, mesh, lpos, lorn = shape[1:7]
            frame = base if link < 0 else _pose(*p.getLinkState(
                body, link, physicsClientId=c)[4:6])
            shapes.append({
                "kind": int(kind), "dims": [float(d) for d in dims],
                "mesh": mesh.decode() if isinstance(mesh, bytes) else str(mesh),
                "pose": frame @ _pose(lpos, lorn), "colour": look["colour"],
                "texture": look["texture"], "material": scene.body_material.get(body, 0),
                "index": body + 1})
    return shapes


class BlenderRenderer:
    """One Blender scene in this process; :meth:`render` draws a view of a described scene.

    Args:
        samples: Cycles samples per pixel (16 with denoising is clean at 256x192).
        threads: CPU threads for Cycles (one per render worker).
    """

    def __init__(self, samples: int = 16, threads: int = 1) -> None:
        ok, why = blender_available()
        if not ok:
            raise VisionBananaError(why)
        import bpy

        self.bpy = bpy
        self.samples, self.threads = samples, threads
        self._tmp = tempfile.TemporaryDirectory(prefix="vb_blender_")
        self._built_key: Any = None
        self._images: dict[str, Any] = {}

    def close(self) -> None:
        self._tmp.cleanup()

    @staticmethod
    def _matrix(t: np.ndarray) -> Any:
        """A Blender 4x4 matrix of a (4, 4) row-major transform."""
        from mathutils import Matrix

        return Matrix(np.asarray(t, float).tolist())

    # -- scene --------------------------------------------------------------------------

    def _reset(self) -> None:
        bpy = self.bpy
        bpy.ops.wm.read_factory_settings(use_empty=True)
        self._images.clear()
        scene = bpy.context.scene
        scene.render.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.samples = self.samples
        scene.cycles.use_denoising = True
        scene.cycles.denoising_prefilter = "FAST"
        scene.cycles.use_adaptive_sampling = True
        scene.cycles.adaptive_threshold = 0.05
        scene.cycles.max_bounces = 6
        scene.cycles.diffuse_bounces = 2
        scene.cycles.glossy_bounces = 2
        scene.cycles.transmission_bounces = 6
        scene.cycles.caustics_reflective = scene.cycles.caustics_refractive = False
        scene.render.threads_mode = "FIXED"
        scene.render.threads = self.threads
        scene.render.resolution_percentage = 100
        layer = scene.view_layers[0]
        layer.use_pass_z = layer.use_pass_object_index = True
        tree = bpy.data.node_groups.new("passes", "CompositorNodeTree")
        scene.compositing_node_group = tree
        layers = tree.nodes.new("CompositorNodeRLayers")
        out = tree.nodes.new("CompositorNodeOutputFile")
        out.directory, out.file_name = self._tmp.name + "/", "view"
        out.format.media_type = "MULTI_LAYER_IMAGE"
        out.format.color_depth = "32"
        for name, kind in (("Image", "RGBA"), ("Depth", "FLOAT"), ("Object Index", "FLOAT")):
            item = out.file_output_items.new(kind, name)
            tree.links.new(layers.outputs[name], out.inputs[item.name])

    def _material(self, shape: dict[str, Any], rng: np.random.Generator) -> Any:
        bpy = self.bpy
        mat = bpy.data.materials.new(f"m{shape['index']}")
        tree = mat.node_tree if mat.node_tree is not None else None
        if tree is None:
            mat.use_nodes = True
            tree = mat.node_tree
        bsdf = tree.nodes["Principled BSDF"]
        c = np.clip(np.asarray(shape["colour"], float), 0, 1)  # sRGB, as pybullet paints
        colour = [*np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).tolist(), 1.0]
        bsdf.inputs["Base Color"].default_value = colour
        bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.3, 0.85))
        if shape["material"] == TRANSPARENT:
            bsdf.inputs["Transmission Weight"].default_value = 1.0
            bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.0, 0.08))
            bsdf.inputs["IOR"].default_value = float(rng.uniform(1.44, 1.52))
        elif shape["material"] == SPECULAR:
            bsdf.inputs["Metallic"].default_value = 1.0
            bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.05, 0.3))
        elif shape["material"] == DARK:
            bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.4, 0.9))
        if shape["texture"] and shape["material"] not in (TRANSPARENT, SPECULAR, DARK):
            path = shape["texture"]
            if path not in self._images:
                self._images[path] = bpy.data.images.load(path)
            tex = tree.nodes.new("ShaderNodeTexImage")
            tex.image = self._images[path]
            tex.projection = "BOX"
            tex.projection_blend = 0.2
            coords = tree.nodes.new("ShaderNodeTexCoord")
            mapping = tree.nodes.new("ShaderNodeMapping")
            mapping.inputs["Scale"].default_value = [float(rng.uniform(2, 8))] * 3
            tree.links.new(coords.outputs["Object"], mapping.inputs["Vector"])
            tree.links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
            tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        return mat

    def _object(self, shape: dict[str, Any], rng: np.random.Generator) -> Any:
        """The Blender object of one visual shape, placed, with its material."""
        bpy = self.bpy
        kind, dims = shape["kind"], shape["dims"]
        scale = (1.0, 1.0, 1.0)
        if kind == _BOX:
            bpy.ops.mesh.primitive_cube_add(size=1.0)
            scale = tuple(dims[:3])
        elif kind == _CYLINDER:
            bpy.ops.mesh.primitive_cylinder_add(vertices=48, radius=dims[1], depth=dims[0])
        elif kind == _SPHERE:
            bpy.ops.mesh.primitive_uv_sphere_add(segments=32, ring_count=16, radius=dims[0])
        elif kind == _MESH and shape["mesh"].endswith(".obj") and Path(shape["mesh"]).exists():
            before = set(bpy.data.objects)
            bpy.ops.wm.obj_import(filepath=shape["mesh"], forward_axis="Y", up_axis="Z")
            new = [o for o in bpy.data.objects if o not in before]
            if not new:
                return None
            if len(new) > 1:
                bpy.ops.object.select_all(action="DESELECT")
                for o in new:
                    o.select_set(True)
                bpy.context.view_layer.objects.active = new[0]
                bpy.ops.object.join()
            scale = tuple(dims[:3])
        else:
            return None
        obj = bpy.context.view_layer.objects.active
        obj.matrix_world = self._matrix(shape["pose"])
        obj.scale = scale
        obj.pass_index = shape["index"]
        if kind in (_CYLINDER, _SPHERE) or kind == _MESH:
            bpy.ops.object.shade_smooth()
        obj.data.materials.clear()
        obj.data.materials.append(self._material(shape, rng))
        return obj

    def _lights(self, rng: np.random.Generator, centre: np.ndarray) -> None:
        """A bright environment and one to three area lights above the scene."""
        bpy = self.bpy
        world = bpy.data.worlds.new("world")
        bpy.context.scene.world = world
        if world.node_tree is None:
            world.use_nodes = True
        background = world.node_tree.nodes["Background"]
        tone = rng.uniform(0.75, 1.0, 3)
        background.inputs["Color"].default_value = [*tone.tolist(), 1.0]
        background.inputs["Strength"].default_value = float(rng.uniform(0.15, 0.8))
        for _ in range(int(rng.integers(1, 4))):
            data = bpy.data.lights.new("area", type="AREA")
            data.size = float(rng.uniform(0.4, 2.0))
            data.energy = float(rng.uniform(25, 180))
            data.color = (rng.uniform(0.85, 1.0, 3)).tolist()
            light = bpy.data.objects.new("area", data)
            bpy.context.scene.collection.objects.link(light)
            offset = np.array([*rng.uniform(-1.5, 1.5, 2), rng.uniform(1.2, 2.5)])
            light.location = (centre + offset).tolist()
            direction = centre - np.array(light.location)
            light.rotation_euler = _look_rotation(direction)

    def build(self, shapes: list[dict[str, Any]], rng: np.random.Generator,
              centre: np.ndarray) -> None:
        """Rebuild the Blender scene from :func:`describe`'s shapes."""
        self._reset()
        self.objects = [(s, self._object(s, rng)) for s in shapes]
        self._lights(rng, centre)

    # -- views --------------------------------------------------------------------------

    def _camera(self, camera: Camera) -> None:
        bpy = self.bpy
        scene = bpy.context.scene
        scene.render.resolution_x, scene.render.resolution_y = camera.width, camera.height
        if scene.camera is None:
            data = bpy.data.cameras.new("camera")
            obj = bpy.data.objects.new("camera", data)
            scene.collection.objects.link(obj)
            scene.camera = obj
        cam = scene.camera
        cam.data.sensor_fit = "HORIZONTAL"
        cam.data.angle_x = math.radians(camera.hfov_deg)
        cam.data.clip_start, cam.data.clip_end = 0.02, 50.0
        blender = np.eye(4)
        blender[:3, :3] = camera.pose[:3, :3] @ np.diag([1.0, -1.0, -1.0])
        blender[:3, 3] = camera.pose[:3, 3]
        cam.matrix_world = self._matrix(blender)

    def _render_passes(self, samples: int) -> dict[str, np.ndarray]:
        import OpenEXR

        scene = self.bpy.context.scene
        scene.cycles.samples = samples
        path = Path(self._tmp.name) / "view.exr"
        if path.exists():
            path.unlink()
        self.bpy.ops.render.render(write_still=False)
        with OpenEXR.File(str(path), separate_channels=True) as f:
            parts = {part.name(): {k.split(".")[-1]: v.pixels for k, v in part.channels.items()}
                     for part in f.parts}
        try:
            rgb = np.stack([parts["Image"][c] for c in "RGB"], -1)
            return {"rgb": rgb, "depth": parts["Depth"]["V"],
                    "index": parts["Object Index"]["V"]}
        except KeyError as err:
            layout = {name: sorted(ch) for name, ch in parts.items()}
            raise VisionBananaError(f"Blender wrote passes {layout}; missing {err}") from err

    def render(self, scene: Scene, camera: Camera, rng: np.random.Generator,
               sensor_effects: float = 1.0) -> Frame:
        """One view of the built scene, labelled from its own passes."""
        self._camera(camera)
        passes = self._render_passes(self.samples)
        depth = passes["depth"].astype(np.float32)
        depth[~(depth < _NO_HIT_M)] = np.inf
        seg = np.rint(passes["index"]).astype(np.int64) - 1  # pybullet body ids, -1 nothing
        seg[~np.isfinite(depth)] = -1
        instances, semantic = SceneBuilder.labels(scene, seg)
        material = SceneBuilder.materials(scene, seg)
        through = depth.copy()
        glass = [o for s, o in self.objects if o is not None and s["material"] == TRANSPARENT]
        if glass and (material == TRANSPARENT).any():
            for o in glass:
                o.hide_render = True
            behind = self._render_passes(1)["depth"].astype(np.float32)
            for o in glass:
                o.hide_render = False
            behind[~(behind < _NO_HIT_M)] = np.inf
            through = np.where(material == TRANSPARENT, behind, depth).astype(np.float32)
        exposure = auto_exposure(passes["rgb"], rng)
        rgb = _to_srgb8(passes["rgb"] * exposure)
        record: dict[str, Any] = {"renderer": "blender", "samples": self.samples,
                                  "exposure": round(exposure, 3), "hfov_deg": camera.hfov_deg}
        if sensor_effects > 0:
            rgb, record["sensor"] = apply_sensor_effects(rgb, rng, sensor_effects)
        k = blender_k(camera)
        return Frame(rgb=np.ascontiguousarray(rgb), depth=depth, instances=instances,
                     semantic=semantic, normals=normals_from_depth(depth, k), k=k,
                     pose=camera.pose.copy(), material=material, depth_through=through,
                     meta=record)


def blender_k(camera: Camera) -> np.ndarray:
    """Intrinsics of a Blender render: square pixels, the axis at the image centre
    ((W - 1) / 2, (H - 1) / 2 in ROS's pixel-centre convention)."""
    fx = (camera.width / 2.0) / math.tan(math.radians(camera.hfov_deg) / 2.0)
    return np.array([[fx, 0.0, (camera.width - 1) / 2.0],
                     [0.0, fx, (camera.height - 1) / 2.0], [0.0, 0.0, 1.0]])


def auto_exposure(linear: np.ndarray, rng: np.random.Generator) -> float:
    """A camera's automatic exposure: the factor that brings the median scene-linear luminance
    of (H, W, 3) ``linear`` to mid-grey (0.18, times 0.6-1.5 drawn from ``rng``, as cameras
    differ), lowered so that at most about 2 % of the pixels clip."""
    lum = np.nan_to_num(linear[..., :3], nan=0.0) @ np.array([0.2126, 0.7152, 0.0722])
    median, high = np.percentile(lum, [50, 98])
    scale = 0.18 * float(rng.uniform(0.6, 1.5)) / max(float(median), 1e-4)
    return float(min(scale, 1.0 / max(float(high), 1e-4)))


def _to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Scene-linear RGB -> 8-bit sRGB (IEC 61966-2-1 transfer)."""
    c = np.clip(np.nan_to_num(linear, nan=0.0), 0.0, 1.0)
    srgb = np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)


def _look_rotation(direction: np.ndarray) -> tuple[float, float, float]:
    """Euler XYZ of an object whose -Z axis points along ``direction`` (lights)."""
    d = np.asarray(direction, float)
    d /= max(np.linalg.norm(d), 1e-9)
    pitch = math.acos(max(-1.0, min(1.0, -d[2])))
    yaw = math.atan2(d[1], d[0]) + math.pi / 2
    return (pitch, 0.0, yaw)


def quiet_blender() -> None:
    """Keep Cycles' per-tile progress lines out of the render workers' output."""
    os.environ.setdefault("BLENDER_QUIET", "1")
