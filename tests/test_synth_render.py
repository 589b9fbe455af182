"""Synthesis parts: the supersampled render lines up with the camera, the composite, the visible
box, clothes painted on the right body regions, the camera placement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmrkit.synth.appearance import Outfit, body_regions, random_outfit, vertex_colours
from hmrkit.synth.camera import CameraSettings, place_person, project
from hmrkit.synth.render import Light, PersonLayer, composite, random_light, render_person, visible_box

LIGHT = Light(np.array([0.0, 0.0, -1.0]), np.ones(3), 0.4)


def _square(z: float = 2.0, half: float = 0.3):
    v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]], float)
    return v, np.array([[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize("supersample", [1, 2, 3])
def test_render_covers_the_projected_square(supersample):
    v, f = _square()
    k = np.array([200.0, 200.0, 63.5, 47.5])
    layer = render_person(v, f, np.full((4, 3), 0.8), k, (96, 128), LIGHT, supersample)
    uv = project(v, k)  # corners at 33.5..93.5 x 17.5..77.5
    box = visible_box(layer.alpha)
    np.testing.assert_allclose(box, [34, 18, 93, 77])
    assert np.isclose(layer.alpha[18:78, 34:94], 1).all() and layer.alpha.sum() == pytest.approx(60 * 60, abs=1)
    assert (uv.min(0) < box[:2]).all() and (uv.max(0) > box[2:]).all()
    # facing the light head-on: ambient + direct = full albedo
    np.testing.assert_allclose(layer.rgb[40, 60], 0.8, atol=1e-3)


def test_render_edges_are_partial_coverage_when_supersampled():
    v, f = _square()
    k = np.array([200.0, 200.0, 64.0, 48.0])  # corners on pixel centres + 0.5: edges cut pixels in half
    layer = render_person(v, f, np.full((4, 3), 0.5), k, (96, 128), LIGHT, 2)
    edge = layer.alpha[50, 34]
    assert 0.2 < edge < 0.8


def test_composite_blends_and_keeps_the_background_outside():
    rng = np.random.default_rng(0)
    background = np.full((32, 32, 3), 200, np.uint8)
    alpha = np.zeros((32, 32), np.float32)
    alpha[8:24, 8:24] = 1
    rgb = alpha[..., None] * np.array([0.0, 0.0, 1.0], np.float32)
    out = composite(background, PersonLayer(rgb.astype(np.float32), alpha), rng)
    assert abs(out[:4, :4].astype(int) - 200).mean() < 8  # background, plus a little noise
    assert out[16, 16, 2] > 230 and out[16, 16, 0] < 25  # the person's colour inside
    assert np.isnan(visible_box(np.zeros((4, 4)))).all()


def test_light_comes_from_the_camera_side_and_above():
    rng = np.random.default_rng(3)
    for _ in range(50):
        light = random_light(rng)
        assert light.direction[2] < 0.31 and light.direction[1] < 0  # towards the camera (mostly), from above
        assert np.isclose(np.linalg.norm(light.direction), 1)


def test_placement_fills_the_frame_as_asked():
    rng = np.random.default_rng(1)
    body = np.random.default_rng(2).uniform([-0.3, -0.9, -0.15], [0.3, 0.9, 0.15], (500, 3))
    settings = CameraSettings(fill=(0.6, 0.6), truncation_prob=0.0)
    for _ in range(20):
        p = place_person(body, (256, 256), rng, settings)
        uv = project(body + p.translation, p.intrinsics)
        assert (body + p.translation)[:, 2].min() > 0.3
        assert (uv >= -1).all() and (uv <= 256).all()  # inside the frame when not truncated
        extent = (uv.max(0) - uv.min(0)).max()
        assert 0.5 * 256 < extent < 0.75 * 256  # ~60 % of the side (perspective adds a little)
    cut = CameraSettings(truncation_prob=1.0)
    for _ in range(20):  # cut at an edge: 10-35 % of the box outside along one axis, most of the body in view
        q = place_person(body, (256, 256), rng, cut)
        uv = project(body + q.translation, q.intrinsics)
        outside = ((uv < 0) | (uv > 255)).any(1)
        assert 0.03 < outside.mean() < 0.5


@pytest.fixture(scope="module")
def regions(anny_body):
    with torch.no_grad():
        rest = anny_body(anny_body.identity_pose(1))
    s = anny_body.skeleton
    return body_regions(s.names, s.parents, anny_body.skin_weights.numpy(), rest.vertices[0].numpy(), rest.joints[0].numpy())


def _outfit(**changes) -> Outfit:
    base = dict(skin=np.array([0.8, 0.6, 0.5]), hair=np.array([0.1, 0.1, 0.1]), hair_kept=True,
                top=np.array([1.0, 0.0, 0.0]), bottom=np.array([0.0, 0.0, 1.0]), shoes=np.array([0.0, 1.0, 0.0]),
                sleeve=0.5, leg=2.0, pattern="plain", pattern_colour=np.zeros(3), pattern_period=0.1)
    base.update(changes)
    return Outfit(**base)


def test_clothes_on_their_regions(regions):
    colours = vertex_colours(regions, _outfit())

    def share(joint: str, colour) -> float:
        return float(np.isclose(colours[regions.on(joint)], colour).all(1).mean())

    assert share("spine2", [1, 0, 0]) > 0.95  # the top on the chest
    assert share("left_knee", [0, 0, 1]) > 0.95  # long trousers on the shins
    assert share("right_foot", [0, 1, 0]) > 0.95  # shoes
    assert share("left_wrist", [0.8, 0.6, 0.5]) > 0.95  # bare hands
    assert share("left_elbow", [0.8, 0.6, 0.5]) > 0.95  # short sleeves: bare forearms
    assert 0.2 < share("left_shoulder", [1, 0, 0]) < 0.8  # half the upper arm in the sleeve
    head = np.nonzero(regions.on("head"))[0]
    top = head[np.argsort(regions.rest[head, 1])[-len(head) // 20:]]
    face = head[np.argsort(regions.rest[head, 2])[-len(head) // 20:]]  # Anny faces +z at rest
    assert regions.scalp[top].mean() > 0.9 and regions.scalp[face].mean() < 0.1  # hair on top, the face bare
    shorts = vertex_colours(regions, _outfit(leg=0.5, sleeve=2.0, hair_kept=False))
    assert np.isclose(shorts[regions.on("left_knee")], [0.8, 0.6, 0.5]).all(1).mean() > 0.95
    assert np.isclose(shorts[regions.on("left_elbow")], [1, 0, 0]).all(1).mean() > 0.95
    assert not np.isclose(shorts[regions.scalp], [0.1, 0.1, 0.1]).all(1).any()


def test_outfits_vary_and_stay_in_range():
    rng = np.random.default_rng(0)
    outfits = [random_outfit(rng) for _ in range(200)]
    skins = np.stack([o.skin for o in outfits])
    assert skins.min() >= 0 and skins.max() <= 1
    assert skins.mean(1).max() - skins.mean(1).min() > 0.4  # light to dark
    assert {o.pattern for o in outfits} == {"plain", "stripes", "checks"}
