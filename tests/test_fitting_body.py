"""The body fit on synthetic targets made by posing Anny: it must recover what made them."""

import copy

import roma
import torch

from hmrkit.body.anny_keypoints import anny_keypoint_library
from hmrkit.body.keypoints import build_keypoint_map
from hmrkit.fitting.body_fit import BodyFitConfig, BodyFitter, FixedJoints, centring_matrix
from hmrkit.fitting.targets import BODY, FIT_KEYPOINTS, HAND_SLICES, FitTargets
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project
from hmrkit.models.pose_prior import load_pose_prior

CAMERA = PerspectiveCamera(800.0, 800.0, 400.0, 400.0)


def fitter_for(model, **config) -> BodyFitter:
    kmap = model.compile_keypoints(build_keypoint_map(anny_keypoint_library(), model.skeleton, FIT_KEYPOINTS))
    return BodyFitter(model, kmap, BodyFitConfig(**config), load_pose_prior())


def make_targets(model, fitter, rotations, shape, translation) -> tuple[FitTargets, torch.Tensor]:
    with torch.no_grad():
        points = model(rotations, shape, translation, with_vertices=False, keypoints=fitter.keypoints).keypoints
    batch, k = points.shape[:2]
    # MediaPipe's frames, computed independently of centring_matrix: hips' midpoint, hand centroids
    world = points.clone()
    hips = points[:, [FIT_KEYPOINTS.index("left_hip"), FIT_KEYPOINTS.index("right_hip")]].mean(1, keepdim=True)
    world[:, BODY] -= hips
    for part in HAND_SLICES.values():
        world[:, part] -= points[:, part].mean(1, keepdim=True)
    xy = perspective_project(points, CAMERA)
    ones = torch.ones(batch, k)
    box = (xy.amax(1) - xy.amin(1)).amax(1)
    return FitTargets(xy, ones.clone(), world, ones.clone(), box), points


def random_pose(model, batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rotations = model.identity_pose(batch)
    # moderate limb angles on shoulders, elbows, hips, knees; body facing the camera
    for name, scale in (("left_shoulder", 0.5), ("right_shoulder", 0.5), ("left_elbow", 0.6), ("right_elbow", 0.6),
                        ("left_hip", 0.4), ("right_hip", 0.4), ("spine1", 0.2)):
        j = model.skeleton.index(name)
        rotations[:, j] = roma.rotvec_to_rotmat(torch.randn(batch, 3, generator=g) * scale)
    for name in ("left_knee", "right_knee"):  # bent forward only (inside the hinge limit)
        j = model.skeleton.index(name)
        rotations[:, j] = roma.rotvec_to_rotmat(torch.tensor([[0.8, 0.0, 0.0]]).expand(batch, 3) * torch.rand(batch, 1, generator=g))
    facing = roma.rotvec_to_rotmat(torch.tensor([torch.pi, 0.0, 0.0]))  # model y up -> camera y down
    rotations[:, 0] = facing @ roma.rotvec_to_rotmat(torch.randn(batch, 3, generator=g) * 0.3)
    return rotations


def test_centring_matrix_is_what_mediapipe_world_frames_mean():
    torch.manual_seed(0)
    points = torch.randn(2, len(FIT_KEYPOINTS), 3)
    centred = centring_matrix() @ points
    hips = points[:, [FIT_KEYPOINTS.index("left_hip"), FIT_KEYPOINTS.index("right_hip")]].mean(1)
    assert torch.allclose(centred[:, 0], points[:, 0] - hips, atol=1e-6)
    left = HAND_SLICES["left"]
    assert torch.allclose(centred[:, left], points[:, left] - points[:, left].mean(1, keepdim=True), atol=1e-6)


def test_fit_recovers_a_posed_body_from_its_own_keypoints(anny_body):
    fitter = fitter_for(anny_body)
    batch = 3
    rotations = random_pose(anny_body, batch, seed=1)
    shape = torch.tensor([[0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [0.3, 0.6, 0.5, 0.7, 0.6, 0.5], [0.8, 0.4, 0.6, 0.4, 0.3, 0.5]])
    translation = torch.tensor([[0.1, 0.2, 4.0], [-0.3, 0.0, 5.0], [0.0, -0.1, 3.5]])
    targets, truth = make_targets(anny_body, fitter, rotations, shape, translation)
    fit = fitter.fit(targets, CAMERA)
    # the starting point is far: rest limbs, translation unknown
    start = (perspective_project(anny_body(anny_body.identity_pose(batch), None, translation, with_vertices=False,
                                           keypoints=fitter.keypoints).keypoints, CAMERA) - targets.xy).norm(dim=-1).mean(1)
    assert (start > 15).all()
    assert (fit.reprojection_error < 2.0).all(), fit.reprojection_error  # pixels, on a ~500 px tall body
    # hip-centred (size vs depth is ambiguous in 2D); the priors (pose, VAE, shape towards
    # neutral) leave a few centimetres of bias on exact data
    centre = centring_matrix()

    def error(points: torch.Tensor) -> torch.Tensor:
        return (centre @ points - centre @ truth)[:, BODY].norm(dim=-1).mean(1)

    at_rest = anny_body.identity_pose(batch)
    at_rest[:, 0] = rotations[:, 0]
    with torch.no_grad():
        rest = anny_body(at_rest, shape, translation, with_vertices=False, keypoints=fitter.keypoints).keypoints
    rest_error = error(rest)
    assert (error(fit.keypoints) < 0.05).all() and (error(fit.keypoints) < 0.3 * rest_error).all(), (error(fit.keypoints), rest_error)


def test_fixed_joints_stay_and_unseen_limbs_stay_plausible(anny_body):
    fitter = fitter_for(anny_body)
    rotations = random_pose(anny_body, 1, seed=2)
    targets, _ = make_targets(anny_body, fitter, rotations, torch.full((1, 6), 0.5), torch.tensor([[0.0, 0.0, 4.0]]))
    leg = [FIT_KEYPOINTS.index(n) for n in ("left_knee", "left_ankle", "left_heel", "left_foot_index")]
    targets.xy_weight[:, leg] = 0
    targets.world_weight[:, leg] = 0
    targets.xy[:, leg] = 1e4  # garbage where nothing is seen must not matter
    mask = torch.zeros(1, anny_body.num_joints, dtype=torch.bool)
    finger = anny_body.skeleton.index("left_index2")
    mask[0, finger] = True
    held = anny_body.identity_pose(1)
    held[0, finger] = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, 1.0]))
    fit = fitter.fit(targets, CAMERA, fixed=FixedJoints(held, mask))
    assert torch.allclose(fit.rotations[0, finger], held[0, finger], atol=1e-6)
    knee = anny_body.skeleton.index("left_knee")
    bend = roma.rotmat_to_rotvec(fit.rotations[0, knee]).norm()
    assert bend < 1.0  # near rest, not folded or flung
    assert torch.isfinite(fit.keypoints).all()
    assert (fit.reprojection_error < 3.0).all()


def test_shape_jacobian_matches_forward_mode_autodiff(anny_body):
    """The fit's phenotype columns: forward differences of the shape blend per logit, mapped exactly
    by the kernel, against forward-mode autodiff of the model's keypoints in the logits."""
    import numpy as np

    from hmrkit.fitting.body_fit import _FitState, _Problem
    from hmrkit.fitting.keypoint_kernels import keypoint_jacobian

    fitter = fitter_for(anny_body)
    rotations = random_pose(anny_body, 2, seed=3)
    targets, _ = make_targets(anny_body, fitter, rotations, torch.full((2, 6), 0.5), torch.tensor([[0.0, 0.0, 4.0]] * 2))
    logit = torch.tensor([[0.3, -0.5, 0.1, 0.8, -0.2, 0.0], [0.0, 0.4, -0.7, 0.2, 0.5, -0.3]])
    state = _FitState.start(rotations, logit, torch.zeros(2, 0), [])
    problem = _Problem(fitter, targets, CAMERA, torch.ones(2, 22, dtype=torch.bool))
    posed = problem.pose(state, shape_moves=True)
    ours = keypoint_jacobian(fitter.kernel_skeleton, posed.skeleton, posed.d_coefficients, posed.d_rest, np.zeros(0, np.int64))
    ours = torch.from_numpy(ours[..., 22 * 3 + 3 :]).float()

    def keypoints(lg: torch.Tensor) -> torch.Tensor:
        return anny_body(rotations, 0.5 + 0.5 * torch.tanh(lg), with_vertices=False, keypoints=fitter.keypoints).keypoints

    reference = torch.stack([torch.func.jvp(keypoints, (logit,), (torch.eye(6)[k].expand(2, 6),))[1] for k in range(6)], dim=-1)
    assert (ours - reference).abs().max() < 2e-3 * reference.abs().max()


def test_vae_prior_mean_jacobian_matches_autograd(anny_body):
    from hmrkit.fitting.body_fit import _Problem
    from hmrkit.fitting.keypoint_kernels import _exp_and_right

    fitter = fitter_for(anny_body)
    problem = object.__new__(_Problem)  # only the prior is exercised: no targets needed
    problem.fitter = fitter
    theta = torch.randn(2, 21, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 0.4
    rotations, right = _exp_and_right(theta.numpy())
    mean, ours = problem.latent_mean(rotations, right)
    prior = copy.deepcopy(fitter.pose_prior).double()

    def encode(t: torch.Tensor) -> torch.Tensor:
        return prior.encode(roma.rotvec_to_rotmat(t))[0]

    assert torch.allclose(torch.from_numpy(mean), encode(theta), atol=1e-10)
    full = torch.autograd.functional.jacobian(encode, theta)  # (B, L, B, 21, 3)
    reference = torch.stack([full[b, :, b].flatten(1) for b in range(2)])
    assert (torch.from_numpy(ours) - reference).abs().max() < 1e-9 * reference.abs().max().clamp(min=1)
