"""Camera intrinsics from the user (``--intrinsics``, ``PipelineConfig.intrinsics``) or the photo's
EXIF, and the fit using the principal point and both focal lengths as given."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from hmrkit.cli import main
from hmrkit.geometry.cameras import CameraIntrinsics, PerspectiveCamera, perspective_project
from hmrkit.io.images import load_image
from hmrkit.pipeline import PipelineConfig

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "astronaut.png"
EXIF_IFD = 0x8769


def _photo(path: Path, size=(400, 300), orientation: int | None = None, **tags) -> Path:
    """A JPEG of ``size`` (width, height) as stored, with Exif sub-IFD ``tags`` (tag id -> value)."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    sub = exif.get_ifd(EXIF_IFD)
    for tag, value in tags.items():
        sub[int(tag, 16)] = value
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path, "JPEG", exif=exif)
    return path


def _mm(value: float) -> IFDRational:
    return IFDRational(round(value * 100), 100)


# --- EXIF -----------------------------------------------------------------------------------

def test_35mm_equivalent_gives_the_same_diagonal_view_as_on_film(tmp_path):
    loaded = load_image(_photo(tmp_path / "a.jpg", (400, 300), **{"0xA405": 26}))
    focal = loaded.exif_focal
    assert focal is not None and focal.fx == focal.fy and focal.equivalent_mm == 26
    # independently: 26 mm on 36 x 24 mm film sees 2 atan(21.63 / 26) across the diagonal; so must the picture
    film_view = 2 * math.atan(math.hypot(36, 24) / 2 / 26)
    assert 2 * math.atan(math.hypot(400, 300) / 2 / focal.fx) == pytest.approx(film_view, rel=1e-9)
    camera, source = PipelineConfig(estimator=None).camera(*loaded.size, loaded)
    assert source == "exif" and (camera.cx, camera.cy) == (199.5, 149.5) and camera.fx == pytest.approx(focal.fx)


def test_png_exif_is_read_too(tmp_path):
    # Pillow writes a PNG's eXIf chunk after the pixels: it is only seen once the picture is loaded
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[0xA405] = 32
    path = tmp_path / "p.png"
    Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(path, exif=exif.tobytes())
    focal = load_image(path).exif_focal
    assert focal is not None and focal.fx == pytest.approx(32 * 500 / math.hypot(36, 24))


def test_focal_length_with_sensor_resolution_and_resized_picture(tmp_path):
    # a 6.4 x 4.8 mm sensor of 4000 x 3000 pixels (625 / mm, written per inch), a 4.8 mm lens,
    # the picture exported at 400 x 300: the lens sees 2 atan(3.2 / 4.8) across -> fx = 200 / (3.2 / 4.8) = 300
    tags = {"0x920A": _mm(4.8), "0xA20E": IFDRational(15875), "0xA20F": IFDRational(15875), "0xA210": 2,
            "0xA002": 4000, "0xA003": 3000}
    focal = load_image(_photo(tmp_path / "b.jpg", (400, 300), **tags)).exif_focal
    assert focal is not None
    assert (focal.fx, focal.fy) == pytest.approx((300.0, 300.0))
    assert focal.equivalent_mm == pytest.approx(4.8 * math.hypot(36, 24) / math.hypot(6.4, 4.8))


def test_exif_orientation_turns_the_focal_lengths_with_the_picture(tmp_path):
    # unequal sensor resolutions (x 625 / mm, y 500 / mm): fx, fy of the stored picture are 300 and 240
    tags = {"0x920A": _mm(4.8), "0xA20E": IFDRational(625), "0xA20F": IFDRational(500), "0xA210": 4,
            "0xA002": 4000, "0xA003": 3000}
    upright = load_image(_photo(tmp_path / "c.jpg", (400, 300), **tags))
    turned = load_image(_photo(tmp_path / "d.jpg", (400, 300), orientation=6, **tags))
    assert upright.size == (400, 300) and turned.size == (300, 400)  # as load_image shows it
    assert (upright.exif_focal.fx, upright.exif_focal.fy) == pytest.approx((300.0, 240.0))
    assert (turned.exif_focal.fx, turned.exif_focal.fy) == pytest.approx((240.0, 300.0))
    camera, _ = PipelineConfig(estimator=None).camera(*turned.size, turned)
    assert (camera.cx, camera.cy) == (149.5, 199.5)


@pytest.mark.parametrize("tags, says", [
    ({"0xA405": 0}, "35 mm-equivalent focal length 0 mm ignored"),
    ({"0xA405": 20000}, "35 mm-equivalent focal length 20000 mm ignored"),
    ({"0x920A": _mm(88)}, "focal length 88 mm ignored (no 35 mm equivalent"),  # a resized export without pixel sizes
    ({"0x920A": _mm(4.8), "0xA20E": IFDRational(625), "0xA210": 4, "0xA002": 4000, "0xA003": 2000}, "cropped?"),
    ({"0x920A": _mm(4.8), "0xA20E": IFDRational(625_000), "0xA210": 4, "0xA002": 4000, "0xA003": 3000}, "35 mm-equivalent)"),
])
def test_wrong_exif_is_ignored_with_a_note_and_the_default_used(tmp_path, tags, says):
    loaded = load_image(_photo(tmp_path / "e.jpg", (400, 300), **tags))
    assert loaded.exif_focal is None
    assert any(says in note for note in loaded.notes), loaded.notes
    camera, source = PipelineConfig(estimator=None).camera(*loaded.size, loaded)
    assert source == "default" and camera.fx == pytest.approx(400 / (2 * math.tan(math.radians(30))))


def test_no_exif_means_default_and_the_user_always_wins(tmp_path):
    plain = load_image(_photo(tmp_path / "f.jpg"))
    assert plain.exif_focal is None and plain.notes == ()
    assert PipelineConfig(estimator=None).camera(400, 300, plain)[1] == "default"
    with_exif = load_image(_photo(tmp_path / "g.jpg", **{"0xA405": 50}))
    user = CameraIntrinsics(500.0, 480.0, 210.0, 140.0)
    camera, source = PipelineConfig(estimator=None, intrinsics=user).camera(400, 300, with_exif)
    assert source == "user" and (camera.fx, camera.fy, camera.cx, camera.cy) == (500.0, 480.0, 210.0, 140.0)
    camera, source = PipelineConfig(estimator=None, fov_degrees=90.0).camera(400, 300, with_exif)
    assert source == "user" and camera.fx == pytest.approx(200.0)


def test_downscaled_picture_gets_scaled_intrinsics(tmp_path):
    path = _photo(tmp_path / "h.jpg", (800, 600), **{"0xA405": 35})
    full, small = load_image(path), load_image(path, max_side=200)
    assert small.scale == 0.25 and small.exif_focal == full.exif_focal  # EXIF focal: original pixels
    config = PipelineConfig(estimator=None, intrinsics=CameraIntrinsics(1000.0, 900.0, 410.0, 290.0))
    camera, _ = config.camera(*small.size, small)
    # a point seen at original pixel (u, v) lies at ((u + 0.5) s - 0.5, (v + 0.5) s - 0.5) in the small picture
    point = torch.tensor([[[0.3, -0.2, 2.5]]], dtype=torch.float64)
    original = perspective_project(point, PerspectiveCamera(1000.0, 900.0, 410.0, 290.0))
    assert torch.allclose(perspective_project(point, camera), (original + 0.5) * 0.25 - 0.5)
    exif_camera, _ = PipelineConfig(estimator=None).camera(*small.size, small)
    assert exif_camera.fx == pytest.approx(full.exif_focal.fx * 0.25) and (exif_camera.cx, exif_camera.cy) == (99.5, 74.5)


# --- parsing and errors ---------------------------------------------------------------------

def test_intrinsics_parse_and_refuse_what_is_not_a_camera():
    assert CameraIntrinsics.parse(" 1498.2, 1498.2,790.3 ,578.9") == CameraIntrinsics(1498.2, 1498.2, 790.3, 578.9)
    for text in ("1498,1498,790", "1,2,3,4,5", "a,b,c,d", "1498,,790,578", "nan,1498,790,578", "1498,inf,790,578"):
        with pytest.raises(ValueError, match="intrinsics|finite"):
            CameraIntrinsics.parse(text)
    for text in ("0,1498,790,578", "1498,-5,790,578"):
        with pytest.raises(ValueError, match="positive"):
            CameraIntrinsics.parse(text)


@pytest.mark.parametrize("flags, says", [
    (["--intrinsics", "1000,1000,256"], "--intrinsics: intrinsics take four numbers"),
    (["--intrinsics", "1000,x,256,256"], "--intrinsics: intrinsics take four numbers"),
    (["--intrinsics=-1000,1000,256,256"], "--intrinsics: focal lengths must be positive"),
    (["--intrinsics", "0,1000,256,256"], "--intrinsics: focal lengths must be positive"),
    (["--intrinsics", "1000,1000,256,256", "--fov", "50"], "give --intrinsics or --fov, not both"),
])
def test_cli_refuses_malformed_intrinsics_in_one_line(tmp_path, capsys, flags, says):
    assert main(["run", str(SAMPLE), "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not list((tmp_path / "o").glob("*.json"))


# --- the fit and the pipeline use them --------------------------------------------------------

def test_fit_uses_the_principal_point_and_both_focal_lengths(anny_body):
    """Landmarks projected through an off-centre camera with unequal focal lengths: fitted with
    that camera the body comes back where it was; with the centred square default it cannot."""
    from test_fitting_body import fitter_for, random_pose

    from hmrkit.fitting.targets import BODY, FIT_KEYPOINTS, HAND_SLICES, FitTargets

    camera = PerspectiveCamera(900.0, 820.0, 530.0, 290.0)  # an 800 x 800 picture, its principal point off by (130, -110)
    fitter = fitter_for(anny_body)
    rotations = random_pose(anny_body, 2, seed=3)
    shape = torch.full((2, anny_body.num_shape), 0.5)
    translation = torch.tensor([[0.2, 0.1, 4.0], [-0.4, 0.0, 5.0]])
    with torch.no_grad():
        truth = anny_body(rotations, shape, translation, with_vertices=False, keypoints=fitter.keypoints).keypoints
    world = truth.clone()
    world[:, BODY] -= truth[:, [FIT_KEYPOINTS.index("left_hip"), FIT_KEYPOINTS.index("right_hip")]].mean(1, keepdim=True)
    for part in HAND_SLICES.values():
        world[:, part] -= truth[:, part].mean(1, keepdim=True)
    xy = perspective_project(truth, camera)
    ones = torch.ones(xy.shape[:2])
    targets = FitTargets(xy, ones.clone(), world, ones.clone(), (xy.amax(1) - xy.amin(1)).amax(1))

    fit = fitter.fit(targets, camera)
    assert (fit.reprojection_error < 2.0).all(), fit.reprojection_error
    # the body's centre in the camera frame (its size, hence depth, is the fit's to choose: a few cm)
    assert (fit.keypoints.mean(1) - truth.mean(1)).norm(dim=-1).max() < 0.12
    assert (fit.keypoints.mean(1) - truth.mean(1))[:, :2].norm(dim=-1).max() < 0.03
    # the same landmarks fitted with the centred square camera land the body elsewhere
    centred = PerspectiveCamera.from_image_size(800, 800)
    wrong = fitter.fit(targets, centred)
    assert (wrong.keypoints.mean(1) - truth.mean(1))[:, :2].norm(dim=-1).min() > 0.3


@pytest.mark.slow
def test_pipeline_writes_user_intrinsics_and_its_joints_project_with_them(tmp_path):
    """The pipeline on a downscaled photo with the user's intrinsics (original pixels): the JSON
    says "user", holds them unchanged, and its joints3d project with them onto its joints2d."""
    from conftest import assert_joints3d_project_onto_joints2d

    photo = tmp_path / "big.png"
    Image.open(SAMPLE).convert("RGB").resize((1024, 1024)).save(photo)
    out = tmp_path / "o"
    flags = ["--mesh-format", "none", "--no-overlay", "--no-npz"]
    assert main(["run", str(photo), "--out", str(out), "--intrinsics", "1300,1250,600,450", *flags]) == 0
    data = json.loads((out / "big.json").read_text())
    assert data["schema_version"] == "1.4"
    assert data["camera"] == {"fx": 1300.0, "fy": 1250.0, "cx": 600.0, "cy": 450.0, "source": "user"}
    assert data["people"]
    assert_joints3d_project_onto_joints2d(data, data["people"][0], atol=0.3)
    assert main(["run", str(photo), "--out", str(tmp_path / "d"), *flags]) == 0
    default = json.loads((tmp_path / "d" / "big.json").read_text())
    assert default["camera"]["source"] == "default" and default["camera"]["cx"] == 511.5


@pytest.mark.slow
def test_downscaling_leaves_the_user_camera_result_in_place():
    """The same photo at full size and downscaled by the loader, with the same intrinsics: the
    body lands at the same place (original pixels and metres)."""
    from hmrkit.pipeline import Pipeline

    intrinsics = CameraIntrinsics(700.0, 700.0, 230.0, 280.0)
    with Pipeline(PipelineConfig(intrinsics=intrinsics)) as pipeline:
        full = pipeline.run(load_image(SAMPLE))
        half = pipeline.run(load_image(SAMPLE, max_side=256))
    assert full.camera_source == half.camera_source == "user"
    assert half.camera == pytest.approx({"fx": 700.0, "fy": 700.0, "cx": 230.0, "cy": 280.0})
    a, b = full.people[0], half.people[0]
    inside = ((a.joints2d >= 0) & (a.joints2d < 512)).all(1)  # the legs leave the picture: MediaPipe guesses them
    # pixels of the 512 px original; MediaPipe's own landmarks differ by 9-11 px on average between
    # the two sizes (8.5 unrefined, 10.9 refined on their own ROI: a development run), a wrong camera by far more
    assert inside.sum() > 10 and np.abs(a.joints2d - b.joints2d)[inside].mean() < 8.0
    assert np.linalg.norm(a.translation - b.translation) < 0.15 * a.translation[2]


@pytest.mark.slow
def test_video_frames_use_the_user_intrinsics(tmp_path):
    """Videos have no EXIF: the user's intrinsics hold for every frame, and each frame's joints3d
    project with them onto its joints2d."""
    from conftest import assert_joints3d_project_onto_joints2d, shared_data

    from hmrkit.video import run_video
    from hmrkit.writers import OutputOptions

    video = shared_data("demo_images", "sample_video.mp4")
    config = PipelineConfig(intrinsics=CameraIntrinsics(1100.0, 1050.0, 600.0, 380.0))
    assert run_video(video, tmp_path, "clip", config, OutputOptions(mesh_format=None, npz=False), max_frames=2) == 2
    for frame in sorted((tmp_path / "clip").glob("*.json")):
        data = json.loads(frame.read_text())
        assert data["camera"] == {"fx": 1100.0, "fy": 1050.0, "cx": 600.0, "cy": 380.0, "source": "user"}
        assert data["people"]
        for person in data["people"]:
            assert_joints3d_project_onto_joints2d(data, person, atol=0.3)
