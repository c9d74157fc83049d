"""Randomised tabletop scenes in pybullet at real-world scale, settled by physics, rendered
from where robots carry their cameras.

A scene is a table 0.70-0.80 m high (or, sometimes, the floor) in a room (floor and walls),
with household objects at their real sizes (mugs, bottles, cans, boxes, bowls, fruit, tools as
primitives sized like the real thing, and pybullet's named and procedural meshes scaled to
5-15 cm), some in piles, some glass (transparent), shiny or very dark; distractors at the table
edge. Physics runs once per scene; each view samples a camera 0.3-1.2 m from the objects,
looking down 30-80 degrees, with a real camera's field of view (D435, Azure Kinect, ZED),
lighting and sensor effects.

Ground truth per view (:class:`Frame`): rgb, metric depth along the optical axis (transparent
objects opaque, as ClearGrasp's ground truth), the depth with transparent objects removed
(what a stereo camera may see through them), a material map (:mod:`.sensor`'s classes),
instance ids (objects 1..N in loading order, stable across views; support, floor, walls and
furniture are 0), semantic ids (0 background, 1 support surface, 2 object), normals from the
exact depth, K and the camera pose.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vision_banana_ros.errors import VisionBananaError
from vision_banana_ros.geometry import normals_from_depth
from vision_banana_ros.synthetic.analytic import (
    SEMANTIC_BACKGROUND,
    SEMANTIC_OBJECT,
    SEMANTIC_SUPPORT,
)
from vision_banana_ros.synthetic.camera import Camera, depth_buffer_to_metres, look_at
from vision_banana_ros.synthetic.sensor import DARK, OPAQUE, SPECULAR, TRANSPARENT
from vision_banana_ros.synthetic.textures import KINDS, apply_sensor_effects, texture_file

#: Named pybullet_data objects used besides the procedural ones (scaled to 5-15 cm).
NAMED_OBJECTS = ("duck_vhacd.urdf", "lego/lego.urdf", "jenga/jenga.urdf", "objects/mug.urdf",
                 "domino/domino.urdf", "soccerball.urdf", "cube_small.urdf", "teddy_vhacd.urdf",
                 "sphere_small.urdf", "tray/traybox.urdf")

#: Household objects at real sizes: shape and (min, max) dimensions in metres (box: x, y, z;
#: cylinder: diameter, height; sphere: diameter), relative frequency, and whether it can be
#: glass. Sources: common retail dimensions (mugs 8 x 10 cm, 330 ml cans 6.6 x 11.5 cm, wine
#: and water bottles 6-8 x 20-30 cm, cereal boxes 19 x 7 x 28 cm).
CATEGORIES: dict[str, tuple[str, tuple[tuple[float, float], ...], float, bool]] = {
    "mug": ("cylinder", ((0.07, 0.09), (0.08, 0.11)), 1.0, True),
    "bottle": ("cylinder", ((0.055, 0.085), (0.17, 0.30)), 1.0, True),
    "can": ("cylinder", ((0.063, 0.068), (0.095, 0.125)), 1.0, False),
    "jar": ("cylinder", ((0.07, 0.11), (0.08, 0.16)), 0.6, True),
    "bowl": ("cylinder", ((0.12, 0.18), (0.045, 0.08)), 0.6, True),
    "cereal_box": ("box", ((0.15, 0.22), (0.05, 0.08), (0.20, 0.32)), 0.6, False),
    "small_box": ("box", ((0.04, 0.14), (0.04, 0.12), (0.03, 0.12)), 1.2, False),
    "book": ("box", ((0.14, 0.24), (0.10, 0.17), (0.015, 0.05)), 0.5, False),
    "tool": ("box", ((0.14, 0.26), (0.015, 0.04), (0.015, 0.035)), 0.8, False),
    "fruit": ("sphere", ((0.05, 0.095),), 1.0, False),
    "ball": ("sphere", ((0.06, 0.12),), 0.3, False),
    "named": ("mesh", ((0.06, 0.15),), 0.8, False),
    "procedural": ("mesh", ((0.05, 0.14),), 1.2, False),
}

#: Horizontal fields of view of common robot cameras' colour streams (degrees): RealSense
#: D435 (69), D405 (87), Azure Kinect (90 at 16:9, 75 at 4:3), ZED 2 (up to 110, cropped).
CAMERA_HFOV_DEG = (69.0, 87.0, 90.0, 75.0, 58.0, 100.0)


@dataclass(frozen=True)
class SceneConfig:
    """Randomisation ranges. Lengths in metres, angles in degrees."""

    resolutions: tuple[tuple[int, int], ...] = ((320, 240),)
    min_objects: int = 1
    max_objects: int = 14
    table_height_m: tuple[float, float] = (0.70, 0.80)
    floor_scene_probability: float = 0.1
    clutter_probability: float = 0.4
    camera_distance_m: tuple[float, float] = (0.3, 1.2)
    camera_elevation_deg: tuple[float, float] = (30.0, 80.0)
    hfov_deg: tuple[float, float] = (55.0, 95.0)
    camera_roll_deg: float = 6.0
    shadow_probability: float = 0.7
    texture_probability: float = 0.45
    transparent_probability: float = 0.12
    specular_probability: float = 0.10
    dark_probability: float = 0.08
    sensor_effects: float = 1.0
    settle_seconds: float = 1.5

    def validate(self) -> None:
        """Raise :class:`VisionBananaError` naming the first impossible setting."""
        lo, hi = self.hfov_deg
        if not 0 < lo <= hi < 180:
            raise VisionBananaError(f"field of view must satisfy 0 < min <= max < 180 degrees, "
                                    f"got {self.hfov_deg}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise VisionBananaError(f"object counts must satisfy 0 <= min <= max, got "
                                    f"{self.min_objects}..{self.max_objects}")
        if not 0 < self.camera_distance_m[0] <= self.camera_distance_m[1]:
            raise VisionBananaError(f"camera distance range invalid: {self.camera_distance_m}")
        if not 0 < self.camera_elevation_deg[0] <= self.camera_elevation_deg[1] <= 90:
            raise VisionBananaError(f"camera elevation must lie in (0, 90] degrees, got "
                                    f"{self.camera_elevation_deg}")
        for w, h in self.resolutions:
            if w < 8 or h < 8:
                raise VisionBananaError(f"resolution {w}x{h} is too small (at least 8x8)")


@dataclass
class Frame:
    """Ground truth of one rendered view (arrays are (H, W[, 3]))."""

    rgb: np.ndarray          # uint8, after sensor effects
    depth: np.ndarray        # float32 metres along z, +inf where nothing was hit
    instances: np.ndarray    # uint16, 0 = not an object
    semantic: np.ndarray     # uint8 class ids
    normals: np.ndarray      # float32 unit normals (optical frame), NaN where invalid
    k: np.ndarray            # (3, 3) float64
    pose: np.ndarray         # (4, 4) float64 T_world_optical
    material: np.ndarray | None = None       # uint8 material classes (.sensor)
    depth_through: np.ndarray | None = None  # float32 depth without transparent objects
    meta: dict = field(default_factory=dict)


@dataclass
class Scene:
    """A settled scene inside a pybullet client."""

    client: int
    body_instance: dict[int, int]  # pybullet body id -> instance id (>= 1)
    body_semantic: dict[int, int]  # pybullet body id -> semantic id
    support_height_m: float        # world z of the support surface's top
    support_half_extent: np.ndarray  # half sizes (x, y) of the support top, metres
    body_material: dict[int, int] = field(default_factory=dict)  # body -> material class
    #: body -> {"colour": (r, g, b) in [0, 1], "texture": file or None}: for other renderers.
    body_look: dict[int, dict[str, Any]] = field(default_factory=dict)
    object_centre: np.ndarray = field(default_factory=lambda: np.zeros(2))  # world xy
    meta: dict = field(default_factory=dict)


class SceneBuilder:
    """Owns one pybullet DIRECT client and a texture folder; builds and renders scenes."""

    def __init__(self, config: SceneConfig | None = None,
                 texture_dir: Path | None = None) -> None:
        import pybullet
        import pybullet_data

        self.config = config or SceneConfig()
        self.config.validate()
        self.p = pybullet
        self.data_path = pybullet_data.getDataPath()
        self.client = pybullet.connect(pybullet.DIRECT)
        self._tmp = None
        if texture_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="vb_textures_")
            texture_dir = Path(self._tmp.name)
        self.texture_dir = texture_dir
        self._textures: dict[str, int] = {}
        self._looks: dict[int, dict[str, Any]] = {}

    def close(self) -> None:
        """Disconnect the client and remove temporary textures."""
        if self.client is not None:
            self.p.disconnect(self.client)
            self.client = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SceneBuilder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- construction ---------------------------------------------------------------------

    def _texture(self, rng: np.random.Generator, group: str = "object") -> tuple[int, str]:
        """A texture for a surface of ``group`` (table, wall, floor, object): photographs
        where cached (mostly), else procedural patterns."""
        kind = "photo" if rng.random() < 0.7 else KINDS[int(rng.integers(len(KINDS)))]
        path = texture_file(kind, rng, self.texture_dir, self.data_path, group)
        if path not in self._textures:
            self._textures[path] = self.p.loadTexture(path, physicsClientId=self.client)
        return self._textures[path], path

    def _paint(self, body: int, rng: np.random.Generator, textured: bool,
               material: int = OPAQUE, group: str = "object") -> None:
        """Colour (and texture) of a body, by material: glass is pale, dark is near black,
        shiny is a metal grey."""
        if material == TRANSPARENT:
            colour = rng.uniform(0.75, 1.0, 3)
            textured = False
        elif material == DARK:
            colour = rng.uniform(0.01, 0.07, 3)
            textured = False
        elif material == SPECULAR:
            colour = np.full(3, rng.uniform(0.55, 0.9)) * rng.uniform(0.9, 1.0, 3)
            textured = False
        else:
            colour = rng.uniform(0.05, 1.0, 3)
        kwargs: dict[str, Any] = {"rgbaColor": [*colour.tolist(), 1.0],
                                  "physicsClientId": self.client}
        texture = None
        if textured:
            kwargs["textureUniqueId"], texture = self._texture(rng, group)
            colour = np.clip(colour * 0.3 + 0.75, 0, 1)  # photos keep their own colours
            kwargs["rgbaColor"] = [*colour.tolist(), 1.0]
        self._looks[body] = {"colour": colour.tolist(), "texture": texture}
        for link in range(-1, self.p.getNumJoints(body, physicsClientId=self.client)):
            self.p.changeVisualShape(body, link, **kwargs)

    def _box(self, half: list[float], pos: list[float], mass: float = 0.0,
             orn: list[float] | None = None) -> int:
        p = self.p
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=self.client)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, physicsClientId=self.client)
        return p.createMultiBody(mass, col, vis, basePosition=pos,
                                 baseOrientation=orn or [0, 0, 0, 1],
                                 physicsClientId=self.client)

    def _primitive(self, shape: str, dims: list[float], pos: list[float],
                   orn: list[float]) -> int:
        """A box (x, y, z sizes), cylinder (diameter, height) or sphere (diameter)."""
        p, c = self.p, self.client
        if shape == "box":
            half = [d / 2 for d in dims]
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=c)
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, physicsClientId=c)
        elif shape == "cylinder":
            r, h = dims[0] / 2, dims[1]
            col = p.createCollisionShape(p.GEOM_CYLINDER, radius=r, height=h,
                                         physicsClientId=c)
            vis = p.createVisualShape(p.GEOM_CYLINDER, radius=r, length=h, physicsClientId=c)
        else:
            r = dims[0] / 2
            col = p.createCollisionShape(p.GEOM_SPHERE, radius=r, physicsClientId=c)
            vis = p.createVisualShape(p.GEOM_SPHERE, radius=r, physicsClientId=c)
        return p.createMultiBody(0.2, col, vis, basePosition=pos, baseOrientation=orn,
                                 physicsClientId=c)

    def _mesh(self, category: str, size: float, rng: np.random.Generator, pos: list[float],
              orn: list[float]) -> int:
        """A named or procedural pybullet mesh scaled so its largest extent is ``size``."""
        p = self.p
        if category == "named":
            urdf = NAMED_OBJECTS[int(rng.integers(len(NAMED_OBJECTS)))]
        else:
            n = int(rng.integers(1000))
            urdf = f"random_urdfs/{n:03d}/{n:03d}.urdf"
        path = str(Path(self.data_path) / urdf)
        probe = p.loadURDF(path, physicsClientId=self.client)
        lo, hi = p.getAABB(probe, physicsClientId=self.client)
        p.removeBody(probe, physicsClientId=self.client)
        extent = max(float(np.max(np.subtract(hi, lo))), 1e-3)
        return p.loadURDF(path, basePosition=pos, baseOrientation=orn,
                          globalScaling=size / extent, physicsClientId=self.client)

    def _object(self, rng: np.random.Generator, pos: list[float]) -> tuple[int, int, str]:
        """One household object at its real size: (body, material, category)."""
        cfg = self.config
        names = list(CATEGORIES)
        weights = np.array([CATEGORIES[n][2] for n in names])
        category = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        shape, spans, _, glass = CATEGORIES[category]
        dims = [float(rng.uniform(lo, hi)) for lo, hi in spans]
        upright = shape != "sphere" and rng.random() < 0.75
        euler = ([0.0, 0.0, rng.uniform(0, 2 * np.pi)] if upright
                 else rng.uniform(0, 2 * np.pi, 3).tolist())
        orn = self.p.getQuaternionFromEuler(euler)
        if shape == "mesh":
            body = self._mesh(category, dims[0], rng, pos, orn)
        else:
            body = self._primitive(shape, dims, pos, orn)
        draw = rng.random()
        material = OPAQUE
        if glass and draw < cfg.transparent_probability * 2.5:
            material = TRANSPARENT
        elif draw < cfg.transparent_probability * 2.5 + cfg.specular_probability:
            material = SPECULAR
        elif draw < (cfg.transparent_probability * 2.5 + cfg.specular_probability
                     + cfg.dark_probability):
            material = DARK
        self._paint(body, rng, rng.random() < cfg.texture_probability, material)
        return body, material, category

    def _room(self, rng: np.random.Generator, on_floor: bool) -> tuple[dict[int, int], float,
                                                                      np.ndarray]:
        """Floor, walls, furniture and the table: (body -> semantic, support height, half
        extent of the support's top)."""
        cfg = self.config
        semantic: dict[int, int] = {}
        floor = self._box([6.0, 6.0, 0.05], [0, 0, -0.05])
        self._paint(floor, rng, rng.random() < 0.8, group="floor")
        semantic[floor] = SEMANTIC_SUPPORT if on_floor else SEMANTIC_BACKGROUND
        for _ in range(int(rng.integers(1, 4))):  # walls 0.6-2.5 m from the table
            angle = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(0.6, 2.5)
            wall = self._box([0.02, 3.0, 1.4], [dist * np.cos(angle), dist * np.sin(angle), 1.4],
                             orn=self.p.getQuaternionFromEuler([0, 0, angle]))
            self._paint(wall, rng, rng.random() < 0.7, group="wall")
            semantic[wall] = SEMANTIC_BACKGROUND
        for _ in range(int(rng.integers(0, 4))):  # furniture
            angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(1.2, 3.0)
            hx, hy, hz = rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.6), rng.uniform(0.3, 1.0)
            b = self._box([hx, hy, hz], [dist * np.cos(angle), dist * np.sin(angle), hz])
            self._paint(b, rng, rng.random() < 0.5)
            semantic[b] = SEMANTIC_BACKGROUND
        if on_floor:
            return semantic, 0.0, np.array([0.8, 0.6])
        height = float(rng.uniform(*cfg.table_height_m))
        half = np.array([rng.uniform(0.5, 0.9), rng.uniform(0.3, 0.5)])
        thickness = float(rng.uniform(0.02, 0.045))
        top = self._box([half[0], half[1], thickness / 2], [0, 0, height - thickness / 2])
        self._paint(top, rng, rng.random() < cfg.texture_probability + 0.4, group="table")
        semantic[top] = SEMANTIC_SUPPORT
        leg = 0.03
        for sx in (-1, 1):
            for sy in (-1, 1):
                b = self._box([leg, leg, (height - thickness) / 2],
                              [sx * (half[0] - 2 * leg), sy * (half[1] - 2 * leg),
                               (height - thickness) / 2])
                self._paint(b, rng, False)
                semantic[b] = SEMANTIC_BACKGROUND
        return semantic, height, half

    def build(self, rng: np.random.Generator) -> Scene:
        """Reset the world and build, drop and settle one random scene."""
        p, cfg = self.p, self.config
        p.resetSimulation(physicsClientId=self.client)
        self._textures.clear()  # texture ids die with the world; reusing them breaks determinism
        self._looks: dict[int, dict[str, Any]] = {}
        p.setGravity(0, 0, -9.81, physicsClientId=self.client)
        on_floor = rng.random() < cfg.floor_scene_probability
        body_semantic, height, half = self._room(rng, on_floor)
        body_instance: dict[int, int] = {}
        body_material: dict[int, int] = {}
        n_objects = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        clutter = rng.random() < cfg.clutter_probability
        centre = rng.uniform(-0.5, 0.5, 2) * half
        spread = np.minimum(half * (0.25 if clutter else 0.7), 0.45)
        for i in range(n_objects):
            xy = np.clip(centre + rng.uniform(-spread, spread), -half * 0.9, half * 0.9)
            b, material, _ = self._object(rng, [float(xy[0]), float(xy[1]),
                                                height + 0.15 + 0.08 * i])
            body_instance[b] = len(body_instance) + 1
            body_semantic[b] = SEMANTIC_OBJECT
            body_material[b] = material
        for _ in range(int(rng.integers(0, 3))):  # distractors at the table edge
            side = rng.choice([-1, 1])
            edge = [side * half[0] * rng.uniform(0.9, 1.05), rng.uniform(-half[1], half[1])]
            b, material, _ = self._object(rng, [float(edge[0]), float(edge[1]), height + 0.2])
            body_instance[b] = len(body_instance) + 1
            body_semantic[b] = SEMANTIC_OBJECT
            body_material[b] = material
        for _ in range(int(cfg.settle_seconds * 240)):
            p.stepSimulation(physicsClientId=self.client)
        return Scene(client=self.client, body_instance=body_instance,
                     body_semantic=body_semantic, support_height_m=height,
                     support_half_extent=half, body_material=body_material,
                     body_look=dict(self._looks), object_centre=centre,
                     meta={"on_floor": on_floor, "objects": n_objects, "clutter": clutter,
                           "transparent": sum(m == TRANSPARENT
                                              for m in body_material.values())})

    # -- views ----------------------------------------------------------------------------

    def sample_camera(self, scene: Scene, rng: np.random.Generator,
                      size: tuple[int, int] | None = None) -> Camera:
        """A camera where robots carry one: 0.3-1.2 m from a point among the objects, looking
        down 30-80 degrees, a little rolled, with a real camera's field of view; ``size``
        (width, height), or one of the configured resolutions."""
        cfg = self.config
        w, h = size or cfg.resolutions[int(rng.integers(len(cfg.resolutions)))]
        target = np.array([*(scene.object_centre + rng.normal(0, 0.08, 2)),
                           scene.support_height_m + rng.uniform(0.0, 0.08)])
        dist = rng.uniform(*cfg.camera_distance_m)
        elev = np.radians(rng.uniform(*cfg.camera_elevation_deg))
        azim = rng.uniform(0, 2 * np.pi)
        eye = target + dist * np.array([np.cos(elev) * np.cos(azim),
                                        np.cos(elev) * np.sin(azim), np.sin(elev)])
        pose = look_at(eye, target)
        roll = np.radians(rng.uniform(-cfg.camera_roll_deg, cfg.camera_roll_deg))
        c, s_ = np.cos(roll), np.sin(roll)
        pose[:3, :2] = pose[:3, :2] @ np.array([[c, s_], [-s_, c]])
        hfov = float(rng.choice(CAMERA_HFOV_DEG)) if rng.random() < 0.6 else float(
            rng.uniform(*cfg.hfov_deg))
        return Camera(width=w, height=h, hfov_deg=float(np.clip(hfov, *cfg.hfov_deg)),
                      pose=pose)

    def _light(self, rng: np.random.Generator | None) -> dict[str, Any]:
        if rng is None:
            return {"lightDirection": [1.0, 1.0, 2.0], "shadow": 0}
        direction = rng.normal(size=3)
        direction[2] = abs(direction[2]) + 0.5
        return {
            "lightDirection": direction.tolist(),
            "lightColor": rng.uniform(0.85, 1.0, 3).tolist(),
            "lightDistance": float(rng.uniform(2, 6)),
            "shadow": int(rng.random() < self.config.shadow_probability),
            "lightAmbientCoeff": float(rng.uniform(0.35, 0.7)),
            "lightDiffuseCoeff": float(rng.uniform(0.35, 0.8)),
            "lightSpecularCoeff": float(rng.uniform(0.05, 0.5)),
        }

    def _capture(self, camera: Camera, light: dict[str, Any]) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
        """(rgb, depth metres, body-id segmentation) from TinyRenderer."""
        _, _, rgba, depth_buf, seg = self.p.getCameraImage(
            camera.width, camera.height, camera.view_matrix(), camera.projection_matrix(),
            renderer=self.p.ER_TINY_RENDERER, physicsClientId=self.client, **light)
        h, w = camera.height, camera.width
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3]
        seg = np.asarray(seg, dtype=np.int64).reshape(h, w)
        depth = depth_buffer_to_metres(np.asarray(depth_buf, dtype=np.float32).reshape(h, w))
        depth[seg < 0] = np.inf
        return rgb, depth, seg

    def _see_through(self, scene: Scene, camera: Camera, light: dict[str, Any],
                     rgb: np.ndarray, depth: np.ndarray, material: np.ndarray,
                     normals: np.ndarray, rng: np.random.Generator | None,
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Glass: the view without the transparent objects gives the depth behind them, and
        their colour is the background through them, darkened and tinted, brighter at grazing
        angles (TinyRenderer has no transparency). Returns (rgb, depth_through)."""
        glass = [b for b, m in scene.body_material.items() if m == TRANSPARENT]
        region = material == TRANSPARENT
        if not glass or not region.any():
            return rgb, depth.copy()
        p, c = self.p, self.client
        saved = {b: p.getBasePositionAndOrientation(b, physicsClientId=c) for b in glass}
        for b in glass:
            p.resetBasePositionAndOrientation(b, [0, 0, -50.0], [0, 0, 0, 1], physicsClientId=c)
        behind_rgb, behind_depth, _ = self._capture(camera, light)
        for b, (pos, orn) in saved.items():
            p.resetBasePositionAndOrientation(b, pos, orn, physicsClientId=c)
        r = rng if rng is not None else np.random.default_rng(0)
        facing = np.abs(np.nan_to_num(normals[..., 2], nan=1.0))
        fresnel = np.clip(0.12 + 0.6 * (1.0 - facing) ** 2, 0, 0.8)[..., None]
        tint = r.uniform(0.85, 1.0, 3)
        glass_rgb = behind_rgb * tint * r.uniform(0.8, 0.95) * (1 - fresnel) + 235.0 * fresnel
        out = np.where(region[..., None], np.clip(glass_rgb, 0, 255), rgb).astype(np.uint8)
        through = np.where(region, behind_depth, depth).astype(np.float32)
        return out, through

    def render(self, scene: Scene, camera: Camera, rng: np.random.Generator | None = None,
               *, effects: bool = True) -> tuple[Frame, np.ndarray]:
        """Render one view; returns the frame and pybullet's raw segmentation (body ids).

        ``rng`` randomises lighting, shadows and sensor effects; ``None`` uses fixed lighting
        and no effects (for tests).
        """
        light = self._light(rng)
        rgb, depth, seg = self._capture(camera, light)
        instances, semantic = self.labels(scene, seg)
        material = self.materials(scene, seg)
        k = camera.k
        normals = normals_from_depth(depth, k)
        rgb, through = self._see_through(scene, camera, light, rgb, depth, material, normals,
                                         rng)
        record: dict[str, Any] = {"light": light, "hfov_deg": camera.hfov_deg}
        if rng is not None and effects:
            rgb, record["sensor"] = apply_sensor_effects(rgb, rng, self.config.sensor_effects)
        frame = Frame(rgb=np.ascontiguousarray(rgb), depth=depth, instances=instances,
                      semantic=semantic, normals=normals, k=k, pose=camera.pose.copy(),
                      material=material, depth_through=through, meta=record)
        return frame, seg

    @staticmethod
    def materials(scene: Scene, seg: np.ndarray) -> np.ndarray:
        """(H, W) uint8 material classes from pybullet's body-id segmentation."""
        size = max([0, *scene.body_semantic]) + 2
        lut = np.full(size, OPAQUE, np.uint8)
        for body, material in scene.body_material.items():
            lut[body + 1] = material
        return lut[np.clip(seg, -1, size - 2) + 1]

    @staticmethod
    def labels(scene: Scene, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Instance (uint16) and semantic (uint8) ids from pybullet's body-id segmentation."""
        size = max([0, *scene.body_semantic]) + 2
        inst_lut = np.zeros(size, np.uint16)
        sem_lut = np.full(size, SEMANTIC_BACKGROUND, np.uint8)
        for body, sem in scene.body_semantic.items():
            sem_lut[body + 1] = sem
        for body, inst in scene.body_instance.items():
            inst_lut[body + 1] = inst
        idx = np.clip(seg, -1, size - 2) + 1  # -1 (nothing) -> row 0
        return inst_lut[idx], sem_lut[idx]
