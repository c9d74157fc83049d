"""Randomised tabletop scenes in pybullet, settled by physics, rendered from several views.

A scene is a support surface (a table standing on a floor, or the floor itself), 0 to 20
objects dropped and settled by physics (pybullet's procedural ``random_urdfs``, its named objects
and primitive shapes, scaled to 3-30 cm, with random colours and textures), distractor objects at
the table edge, and background furniture. Physics runs once per scene; each view then samples a
camera, lighting and sensor effects.

Ground truth per view (:class:`Frame`): rgb, metric depth along the optical axis, instance ids
(objects and edge distractors 1..N in loading order, stable across views; support surfaces,
floor and furniture are 0), semantic ids (0 background, 1 support surface, 2 object), normals
from the exact depth, K and the camera pose.
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
from vision_banana_ros.synthetic.textures import KINDS, apply_sensor_effects, texture_file

#: Named pybullet_data objects used besides the procedural ones.
NAMED_OBJECTS = ("duck_vhacd.urdf", "lego/lego.urdf", "jenga/jenga.urdf", "objects/mug.urdf",
                 "domino/domino.urdf", "soccerball.urdf", "cube_small.urdf", "teddy_vhacd.urdf",
                 "sphere_small.urdf", "tray/traybox.urdf")


@dataclass(frozen=True)
class SceneConfig:
    """Randomisation ranges. Lengths in metres, angles in degrees."""

    resolutions: tuple[tuple[int, int], ...] = ((320, 240),)
    min_objects: int = 0
    max_objects: int = 20
    object_size_m: tuple[float, float] = (0.03, 0.30)
    floor_scene_probability: float = 0.25
    clutter_probability: float = 0.3
    camera_distance_m: tuple[float, float] = (0.3, 2.0)
    camera_elevation_deg: tuple[float, float] = (20.0, 90.0)
    hfov_deg: tuple[float, float] = (45.0, 90.0)
    shadow_probability: float = 0.6
    texture_probability: float = 0.35
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
    meta: dict = field(default_factory=dict)


@dataclass
class Scene:
    """A settled scene inside a pybullet client."""

    client: int
    body_instance: dict[int, int]  # pybullet body id -> instance id (>= 1)
    body_semantic: dict[int, int]  # pybullet body id -> semantic id
    support_height_m: float        # world z of the support surface's top
    support_half_extent: np.ndarray  # half sizes (x, y) of the support top, metres
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

    def _texture(self, rng: np.random.Generator) -> int:
        kind = KINDS[int(rng.integers(len(KINDS)))]
        path = texture_file(kind, rng, self.texture_dir, self.data_path)
        if path not in self._textures:
            self._textures[path] = self.p.loadTexture(path, physicsClientId=self.client)
        return self._textures[path]

    def _paint(self, body: int, rng: np.random.Generator, textured: bool) -> None:
        colour = [*rng.uniform(0.05, 1.0, 3).tolist(), 1.0]
        kwargs: dict[str, Any] = {"rgbaColor": colour, "physicsClientId": self.client}
        if textured:
            kwargs["textureUniqueId"] = self._texture(rng)
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

    def _primitive(self, rng: np.random.Generator, size: float, pos: list[float],
                   orn: list[float]) -> int:
        p = self.p
        kind = int(rng.integers(3))
        if kind == 0:
            half = (rng.uniform(0.3, 1.0, 3) * size / 2).tolist()
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=self.client)
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, physicsClientId=self.client)
        elif kind == 1:
            r, h = size / 2 * rng.uniform(0.3, 1.0), size * rng.uniform(0.4, 1.0)
            col = p.createCollisionShape(p.GEOM_CYLINDER, radius=r, height=h,
                                         physicsClientId=self.client)
            vis = p.createVisualShape(p.GEOM_CYLINDER, radius=r, length=h,
                                      physicsClientId=self.client)
        else:
            r = size / 2
            col = p.createCollisionShape(p.GEOM_SPHERE, radius=r, physicsClientId=self.client)
            vis = p.createVisualShape(p.GEOM_SPHERE, radius=r, physicsClientId=self.client)
        return p.createMultiBody(0.2, col, vis, basePosition=pos, baseOrientation=orn,
                                 physicsClientId=self.client)

    def _object(self, rng: np.random.Generator, pos: list[float]) -> int:
        """One object scaled so its largest extent is within the configured size range."""
        p = self.p
        size = float(np.exp(rng.uniform(*np.log(self.config.object_size_m))))
        orn = p.getQuaternionFromEuler(rng.uniform(0, 2 * np.pi, 3).tolist())
        choice = rng.random()
        if choice < 0.25:
            return self._primitive(rng, size, pos, orn)
        if choice < 0.45:
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

    def build(self, rng: np.random.Generator) -> Scene:
        """Reset the world and build, drop and settle one random scene."""
        p, cfg = self.p, self.config
        p.resetSimulation(physicsClientId=self.client)
        self._textures.clear()  # texture ids die with the world; reusing them breaks determinism
        p.setGravity(0, 0, -9.81, physicsClientId=self.client)
        body_instance: dict[int, int] = {}
        body_semantic: dict[int, int] = {}

        floor = self._box([6.0, 6.0, 0.05], [0, 0, -0.05])
        on_floor = rng.random() < cfg.floor_scene_probability
        self._paint(floor, rng, rng.random() < 0.6)
        body_semantic[floor] = SEMANTIC_SUPPORT if on_floor else SEMANTIC_BACKGROUND

        if on_floor:
            height, half = 0.0, np.array([0.8, 0.6])
        else:
            height = float(rng.uniform(0.5, 0.9))
            half = np.array([rng.uniform(0.3, 0.8), rng.uniform(0.25, 0.5)])
            thickness = float(rng.uniform(0.02, 0.05))
            top = self._box([half[0], half[1], thickness / 2], [0, 0, height - thickness / 2])
            self._paint(top, rng, rng.random() < cfg.texture_probability + 0.2)
            body_semantic[top] = SEMANTIC_SUPPORT
            leg = 0.03
            for sx in (-1, 1):
                for sy in (-1, 1):
                    b = self._box([leg, leg, (height - thickness) / 2],
                                  [sx * (half[0] - 2 * leg), sy * (half[1] - 2 * leg),
                                   (height - thickness) / 2])
                    self._paint(b, rng, False)
                    body_semantic[b] = SEMANTIC_BACKGROUND

        # Background furniture and walls: large, never objects.
        for _ in range(int(rng.integers(0, 4))):
            angle = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(1.5, 3.5)
            hx, hy, hz = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.3, 1.2)
            b = self._box([hx, hy, hz], [dist * np.cos(angle), dist * np.sin(angle), hz])
            self._paint(b, rng, rng.random() < 0.5)
            body_semantic[b] = SEMANTIC_BACKGROUND

        n_objects = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        clutter = rng.random() < cfg.clutter_probability
        spread = half * (0.3 if clutter else 0.8)
        for i in range(n_objects):
            xy = rng.uniform(-spread, spread)
            b = self._object(rng, [float(xy[0]), float(xy[1]), height + 0.1 + 0.06 * i])
            self._paint(b, rng, rng.random() < cfg.texture_probability)
            body_instance[b] = len(body_instance) + 1
            body_semantic[b] = SEMANTIC_OBJECT
        # Distractors at the table edge (objects too, partly outside the support).
        for _ in range(int(rng.integers(0, 3))):
            side = rng.choice([-1, 1])
            edge = [side * half[0] * rng.uniform(0.9, 1.05), rng.uniform(-half[1], half[1])]
            b = self._object(rng, [float(edge[0]), float(edge[1]), height + 0.15])
            self._paint(b, rng, rng.random() < cfg.texture_probability)
            body_instance[b] = len(body_instance) + 1
            body_semantic[b] = SEMANTIC_OBJECT

        for _ in range(int(cfg.settle_seconds * 240)):
            p.stepSimulation(physicsClientId=self.client)
        return Scene(client=self.client, body_instance=body_instance,
                     body_semantic=body_semantic, support_height_m=height,
                     support_half_extent=half,
                     meta={"on_floor": on_floor, "objects": n_objects, "clutter": clutter})

    # -- views ----------------------------------------------------------------------------

    def sample_camera(self, scene: Scene, rng: np.random.Generator) -> Camera:
        """A camera 0.3-2 m from a point on the support, looking down 20-90 degrees."""
        cfg = self.config
        w, h = cfg.resolutions[int(rng.integers(len(cfg.resolutions)))]
        target = np.array([*(rng.uniform(-0.5, 0.5, 2) * scene.support_half_extent),
                           scene.support_height_m])
        dist = rng.uniform(*cfg.camera_distance_m)
        elev = np.radians(rng.uniform(*cfg.camera_elevation_deg))
        azim = rng.uniform(0, 2 * np.pi)
        eye = target + dist * np.array([np.cos(elev) * np.cos(azim),
                                        np.cos(elev) * np.sin(azim), np.sin(elev)])
        pose = look_at(eye, target)
        return Camera(width=w, height=h, hfov_deg=float(rng.uniform(*cfg.hfov_deg)), pose=pose)

    def render(self, scene: Scene, camera: Camera, rng: np.random.Generator | None = None,
               *, effects: bool = True) -> tuple[Frame, np.ndarray]:
        """Render one view; returns the frame and pybullet's raw segmentation (body ids).

        ``rng`` randomises lighting, shadows and sensor effects; ``None`` uses fixed lighting
        and no effects (for tests).
        """
        p = self.p
        light: dict[str, Any] = {"lightDirection": [1.0, 1.0, 2.0], "shadow": 0}
        if rng is not None:
            direction = rng.normal(size=3)
            direction[2] = abs(direction[2]) + 0.3
            light = {
                "lightDirection": direction.tolist(),
                "lightColor": rng.uniform(0.8, 1.0, 3).tolist(),
                "lightDistance": float(rng.uniform(2, 6)),
                "shadow": int(rng.random() < self.config.shadow_probability),
                "lightAmbientCoeff": float(rng.uniform(0.3, 0.7)),
                "lightDiffuseCoeff": float(rng.uniform(0.3, 0.8)),
                "lightSpecularCoeff": float(rng.uniform(0.0, 0.4)),
            }
        _, _, rgba, depth_buf, seg = p.getCameraImage(
            camera.width, camera.height, camera.view_matrix(), camera.projection_matrix(),
            renderer=p.ER_TINY_RENDERER, physicsClientId=self.client, **light)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(camera.height, camera.width, 4)[..., :3]
        seg = np.asarray(seg, dtype=np.int64).reshape(camera.height, camera.width)
        depth = depth_buffer_to_metres(
            np.asarray(depth_buf, dtype=np.float32).reshape(camera.height, camera.width))
        instances, semantic = self.labels(scene, seg)
        depth[seg < 0] = np.inf
        k = camera.k
        record: dict[str, Any] = {"light": light, "hfov_deg": camera.hfov_deg}
        if rng is not None and effects:
            rgb, record["sensor"] = apply_sensor_effects(rgb, rng, self.config.sensor_effects)
        frame = Frame(rgb=np.ascontiguousarray(rgb), depth=depth, instances=instances,
                      semantic=semantic, normals=normals_from_depth(depth, k), k=k,
                      pose=camera.pose.copy(), meta=record)
        return frame, seg

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
