"""Start-up: what ``hmrkit run`` leaves out of its imports, and that what replaces it computes the same.

hmrkit's rotation conversions and Procrustes solver replace roma's (whose import loads
torch._dynamo), Anny's phenotype anchors are made here (anny's __init__ loads roma), and MediaPipe's
solutions are imported without mediapipe's __init__ (matplotlib): each is compared with the
original, and fresh interpreters check that the heavy modules stay out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import roma
import torch

from hmrkit.geometry.procrustes import rigid_registration
from hmrkit.geometry.rotations import (
    axis_angle_to_matrix,
    geodesic_angle,
    gram_schmidt,
    matrix_to_axis_angle,
    matrix_to_euler_xyz,
    matrix_to_quaternion,
    quaternion_to_matrix,
)

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("roma", "torch._dynamo", "matplotlib", "sounddevice", "anny.models.rigged_model", "trimesh")


def _rotvecs(dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    v = torch.randn(400, 3, generator=g, dtype=dtype) * 2.0  # angles past pi too
    v[:4] *= 1e-8  # the first-order branch
    v[4:8] = 0.0
    v[8:12] = torch.nn.functional.normalize(v[8:12], dim=-1) * torch.pi  # half-turns
    return v


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conversions_equal_roma(dtype):
    v = _rotvecs(dtype)
    R = roma.rotvec_to_rotmat(v)
    torch.testing.assert_close(axis_angle_to_matrix(v), R, rtol=0, atol=0)
    torch.testing.assert_close(matrix_to_quaternion(R), roma.rotmat_to_unitquat(R), rtol=0, atol=0)
    torch.testing.assert_close(matrix_to_axis_angle(R), roma.rotmat_to_rotvec(R), rtol=0, atol=0)
    torch.testing.assert_close(matrix_to_euler_xyz(R), roma.rotmat_to_euler("XYZ", R), rtol=0, atol=0)
    q = roma.random_unitquat(50, dtype=dtype)
    torch.testing.assert_close(quaternion_to_matrix(q), roma.unitquat_to_rotmat(q), rtol=0, atol=0)
    M = torch.randn(50, 3, 2, dtype=dtype)
    torch.testing.assert_close(gram_schmidt(M), roma.special_gramschmidt(M), rtol=0, atol=0)
    R2 = roma.random_rotmat(len(R), dtype=dtype)
    torch.testing.assert_close(geodesic_angle(R, R2), roma.rotmat_geodesic_distance(R, R2), rtol=0, atol=0)


def test_euler_at_gimbal_lock_equals_roma():
    angles = torch.randn(40, 3, dtype=torch.float64)
    angles[:20, 1], angles[20:, 1] = torch.pi / 2, -torch.pi / 2
    R = roma.euler_to_rotmat("XYZ", angles)
    ours = matrix_to_euler_xyz(R)
    torch.testing.assert_close(ours, roma.rotmat_to_euler("XYZ", R), rtol=0, atol=1e-12)
    torch.testing.assert_close(roma.euler_to_rotmat("XYZ", ours), R, rtol=0, atol=1e-9)  # still the same rotation


def test_gradient_at_the_zero_rotation_equals_roma():
    """The hand post-optimization starts its turn at exactly zero: the first-order branch's gradient."""
    ours, theirs = (torch.zeros(3, 3, dtype=torch.float64, requires_grad=True) for _ in range(2))
    w = torch.randn(3, 3, 3, dtype=torch.float64)
    g_ours = torch.autograd.grad((axis_angle_to_matrix(ours) * w).sum(), ours)[0]
    g_theirs = torch.autograd.grad((roma.rotvec_to_rotmat(theirs) * w).sum(), theirs)[0]
    assert g_ours.abs().sum() > 0
    torch.testing.assert_close(g_ours, g_theirs, rtol=0, atol=0)


@pytest.mark.parametrize("scaling", [False, True])
def test_rigid_registration_equals_roma(scaling):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(30, 6, 3, generator=g)
    truth = roma.random_rotmat(30)
    y = 1.3 * x @ truth.transpose(-1, -2) + torch.randn(30, 1, 3, generator=g) + 0.01 * torch.randn(30, 6, 3, generator=g)
    y[:5] = y[:5] * torch.tensor([-1.0, 1.0, 1.0])  # mirrored targets: the best map is a reflection, a rotation is asked for
    w = torch.rand(30, 6, generator=g) + 0.1
    ours = rigid_registration(x, y, w, scaling=scaling)
    theirs = roma.rigid_points_registration(x, y, w, compute_scaling=scaling)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert torch.allclose(torch.det(ours[0]), torch.ones(30), atol=1e-5)
    if not scaling:
        assert torch.equal(ours[2], torch.ones(30))


def test_phenotype_anchors_equal_annys():
    from anny.models.phenotype import make_phenotype_anchors as annys

    from hmrkit.body.anny_phenotypes import make_phenotype_anchors

    ours, theirs = make_phenotype_anchors(torch.float64), annys(torch.float64)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name


def _fresh(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_hollow_package_completes_on_demand():
    """mediapipe's solutions without its __init__, then the normal package once asked for."""
    out = _fresh(
        "import json, sys\n"
        "from hmrkit.light_import import import_module_lightly\n"
        "pose = import_module_lightly('mediapipe.python.solutions.pose')\n"
        "before = 'matplotlib' in sys.modules\n"
        "from mediapipe.python.solutions import hands\n"  # a submodule through the hollow package
        "still = 'matplotlib' in sys.modules\n"
        "import mediapipe\n"
        "print(json.dumps({'before': before, 'still': still, 'version': mediapipe.__version__, "
        "'same': mediapipe.solutions.pose is pose, 'hands': hands.Hands.__name__, 'after': 'matplotlib' in sys.modules, "
        "'drawing': callable(mediapipe.solutions.drawing_utils.draw_landmarks), 'loaded': 'matplotlib' in sys.modules}))"
    )
    # the package's own names appear when asked for; solutions' submodules (drawing, matplotlib) only when used
    assert out == {"before": False, "still": False, "version": "0.10.21", "same": True, "hands": "Hands", "after": False,
                   "drawing": True, "loaded": True}


def test_missing_names_still_raise():
    from hmrkit.light_import import import_module_lightly

    model_data = import_module_lightly("anny.models.model_data")
    assert "gender" in model_data.PHENOTYPE_VARIATIONS
    with pytest.raises(AttributeError):
        import_module_lightly("anny").no_such_name_here


def test_person_detector_alone_in_a_fresh_process():
    """Its graphs are parsed from text: the option protos they name must be registered without
    mediapipe's __init__ too (a fresh process, where nothing else imported mediapipe first)."""
    photo = ROOT / "assets" / "samples" / "astronaut.png"
    out = _fresh(
        "import json, sys\nfrom hmrkit.io.images import load_image\n"
        "from hmrkit.perception.geometry import Crop\nfrom hmrkit.perception.person_detector import PersonDetector\n"
        f"rgb = load_image({str(photo)!r}).rgb\nh, w = rgb.shape[:2]\nd = PersonDetector()\n"
        "rois = d.people_in(rgb, Crop(0, 0, w, h))\nbody = d.landmarks(rgb, rois[0])\n"
        "print(json.dumps({'people': len(rois), 'landmarks': len(body.xy), 'matplotlib': 'matplotlib' in sys.modules}))"
    )
    assert out == {"people": 1, "landmarks": 33, "matplotlib": False}


def test_cli_import_leaves_heavy_modules_out():
    out = _fresh(f"import json, sys; import hmrkit.cli, hmrkit.pipeline, hmrkit.writers; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert out == []


@pytest.mark.slow
def test_hmrkit_run_on_a_photo_leaves_heavy_modules_out(tmp_path):
    photo = ROOT / "assets" / "samples" / "astronaut.png"
    out = _fresh(
        "import json, sys\nfrom hmrkit.cli import main\n"
        f"rc = main(['run', {str(photo)!r}, '--out', {str(tmp_path)!r}])\n"
        f"print(json.dumps({{'rc': rc, 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    assert out == {"rc": 0, "loaded": []}
    assert json.loads((tmp_path / "astronaut.json").read_text())["people"]
