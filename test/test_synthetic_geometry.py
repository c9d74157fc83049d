"""The synthetic engine's geometry against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from vision_banana_ros.geometry import backproject
from vision_banana_ros.synthetic.analytic import SEMANTIC_OBJECT, SEMANTIC_SUPPORT
from vision_banana_ros.synthetic.camera import Camera, look_at
from vision_banana_ros.synthetic.scene import Scene, SceneBuilder

TABLE_TOP_Z = 0.75
SPHERE_CENTRE = np.array([0.10, -0.05, TABLE_TOP_Z + 0.06])
SPHERE_RADIUS = 0.06
BOX_CENTRE = np.array([-0.15, 0.10, TABLE_TOP_Z + 0.04])
BOX_HALF = np.array([0.05, 0.03, 0.04])


@pytest.fixture(scope="module")
def known_scene():
    """A table top, a sphere and a box at exactly known poses (no physics)."""
    with SceneBuilder() as builder:
        p, c = builder.p, builder.client
        top = builder._box([0.6, 0.4, 0.02], [0.0, 0.0, TABLE_TOP_Z - 0.02])
        col = p.createCollisionShape(p.GEOM_SPHERE, radius=SPHERE_RADIUS, physicsClientId=c)
        vis = p.createVisualShape(p.GEOM_SPHERE, radius=SPHERE_RADIUS, physicsClientId=c)
        sphere = p.createMultiBody(0, col, vis, basePosition=SPHERE_CENTRE.tolist(),
                                   physicsClientId=c)
        box = builder._box(BOX_HALF.tolist(), BOX_CENTRE.tolist())
        scene = Scene(client=c, body_instance={sphere: 1, box: 2},
                      body_semantic={top: SEMANTIC_SUPPORT, sphere: SEMANTIC_OBJECT,
                                     box: SEMANTIC_OBJECT},
                      support_height_m=TABLE_TOP_Z,
                      support_half_extent=np.array([0.6, 0.4]))
        views = []
        # The second view is rolled (image up not along world z), so both cx and cy matter.
        for eye, hfov, size, up in (([0.5, -0.6, 1.4], 60.0, (320, 240), [0, 0, 1]),
                                    ([-0.4, -0.3, 1.25], 75.0, (256, 256), [0.6, 0.2, 1.0]),
                                    ([0.05, 0.02, 1.55], 50.0, (200, 150), [0, 0, 1])):
            cam = Camera(width=size[0], height=size[1], hfov_deg=hfov,
                         pose=look_at(np.array(eye), np.array([0.0, 0.0, TABLE_TOP_Z]),
                                      up=np.array(up, float)))
            frame, seg = builder.render(scene, cam)
            views.append((cam, frame, seg, sphere, box))
        yield views


def _world_points(frame, mask):
    pts = backproject(frame.depth, frame.k)[mask].astype(np.float64)
    return pts @ frame.pose[:3, :3].T + frame.pose[:3, 3]


def test_table_plane_matches_its_pose(known_scene):
    for _, frame, _, _, _ in known_scene:
        pts = _world_points(frame, frame.semantic == SEMANTIC_SUPPORT)
        assert len(pts) > 500
        centroid = pts.mean(0)
        normal = np.linalg.svd(pts - centroid, full_matrices=False)[2][2]
        normal *= np.sign(normal[2])
        angle = np.degrees(np.arccos(np.clip(normal[2], -1, 1)))
        assert angle < 1.0
        assert abs(centroid[2] - TABLE_TOP_Z) < 0.01


def test_object_pixels_lie_inside_their_bounding_box(known_scene):
    margin = 0.003  # depth-buffer precision and pixel footprint at about 1 m
    for _, frame, _, _, _ in known_scene:
        for instance, centre, half in ((1, SPHERE_CENTRE, np.full(3, SPHERE_RADIUS)),
                                       (2, BOX_CENTRE, BOX_HALF)):
            pts = _world_points(frame, frame.instances == instance)
            assert len(pts) > 20
            assert np.all(np.abs(pts - centre) <= half + margin)
            # and they fill it: not a uniformly shrunken or shifted object
            assert np.all(pts.max(0) - pts.min(0) >= 0.5 * half)


def test_depth_at_box_top_centre_matches_the_distance_along_the_axis(known_scene):
    top_centre = BOX_CENTRE + np.array([0.0, 0.0, BOX_HALF[2]])
    for cam, frame, _, _, _ in known_scene:
        world_to_cam = np.linalg.inv(cam.pose)
        c = world_to_cam[:3, :3] @ top_centre + world_to_cam[:3, 3]
        u = round(frame.k[0, 0] * c[0] / c[2] + frame.k[0, 2])
        v = round(frame.k[1, 1] * c[1] / c[2] + frame.k[1, 2])
        # Independent: intersect the pixel's ray (z = 1) with the top face's plane.
        n = world_to_cam[:3, :3] @ np.array([0.0, 0.0, 1.0])
        ray = np.linalg.solve(frame.k, np.array([u, v, 1.0]))
        expected = (n @ c) / (n @ ray)
        assert frame.instances[v, u] == 2
        assert frame.depth[v, u] == pytest.approx(expected, abs=0.0005)
        assert expected == pytest.approx(c[2], abs=0.01)  # within half a pixel of the centre


def test_instance_ids_follow_pybullet_segmentation_and_are_stable(known_scene):
    for _, frame, seg, sphere, box in known_scene:
        expected = np.zeros(seg.shape, np.uint16)
        expected[seg == sphere] = 1
        expected[seg == box] = 2
        np.testing.assert_array_equal(frame.instances, expected)
        assert set(np.unique(frame.instances)) == {0, 1, 2}  # both visible in every view
