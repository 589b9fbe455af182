"""Where MediaPipe Hands puts the wrist, measured in the Anny hand's palm frame.

    python benchmarks/calib_hand_wrist.py

Why: Anny's wrist joint is not where MediaPipe (and hand datasets) put the hand21 wrist, so
the hand21 ``wrist`` keypoint of Anny is a fixed point rigidly attached to the palm
(``hmrkit/body/anny_keypoints.py``, ``WRIST_KEYPOINT_WEIGHTS``). This script measures that
point WITHOUT any 3D ground truth of the hand dev set:

1. MediaPipe Hands (0.10.21, static, up to 4 hands) on real photos (``demo_images`` incl.
   ``demo_images/hands``, ``coco_mini_dev``, the first LSPET photos) and on shaded renders of
   random Anny hands (random natural poses, phenotypes, orientations, both sides).
2. For each detection, the 23-DoF Anny hand is fitted to MediaPipe's 20 NON-wrist world
   landmarks (IK net start, then 150 post-optimization steps with the wrist's weight 0 and no
   pull towards the start); detections whose 20 points fit worse than 8 mm are dropped.
3. MediaPipe's wrist is expressed in the fitted hand's palm frame (origin the Anny wrist
   joint; y towards the middle MCP joint, x towards the index side, z = x cross y, which on a
   left hand points out of the back of the hand), in units of the palm length
   |middle MCP joint - wrist joint|. The median over the detections is the calibration.
   For the renders the same point is also measured against the TRUE Anny hand (MediaPipe's 20
   non-wrist points aligned rigidly onto the true keypoints): a check of the fit.

Writes benchmarks/results/hand_wrist_calibration.json and .md. 2 CPU cores, CPU only.
"""

from __future__ import annotations

import glob
import json
import sys
import time
from pathlib import Path

import numpy as np
import roma
import torch

from hmrkit.hands.hand_model import BiomechHand, canonical_frame, load_biomech_hand, mirror_points, mirror_rotation
from hmrkit.hands.ik_net import HandIK
from hmrkit.hands.post_opt import PostOptConfig, fit_hand
from hmrkit.hands.synth import SynthConfig, random_angles, random_shapes

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
PALM_JOINTS = ("wrist", "index1", "middle1", "pinky1", "ring1", "thumb1")  # rigid on the wrist bone
MAX_RESIDUAL_MM = 8.0
MIN_SIZE_PX = 96  # smaller hands: MediaPipe's 3D is mostly its prior (measured: their wrist median differs)


def real_images() -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    files = sorted(glob.glob(str(DATA / "demo_images" / "hands" / "*")))
    files += sorted(f for f in glob.glob(str(DATA / "demo_images" / "*")) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    files += sorted(glob.glob(str(DATA / "coco_mini_dev" / "images" / "*")))
    files += sorted(glob.glob(str(DATA / "lspet_dev" / "images" / "*")))[:300]
    images = [(Path(f).name, np.asarray(Image.open(f).convert("RGB"))) for f in files]
    video = DATA / "demo_images" / "sample_video.mp4"
    if video.exists():
        import cv2

        cap = cv2.VideoCapture(str(video))
        k = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if k % 8 == 0:
                images.append((f"sample_video_{k}", np.ascontiguousarray(frame[:, :, ::-1])))
            k += 1
    # and mirrored: another input to the network (MediaPipe then reports the other hand)
    return images + [(f"{name} (flipped)", np.ascontiguousarray(im[:, ::-1])) for name, im in images]


def render_hands(n: int, seed: int = 7) -> tuple[list[tuple[str, np.ndarray]], list[dict]]:
    """Shaded renders of random Anny hands (half left, half right), fingers roughly up."""
    from hmrkit.render.rasterizer import render_meshes

    gen = torch.Generator().manual_seed(seed)
    images, truth = [], []
    for side in ("left", "right"):
        hand = load_biomech_hand(side)
        m = n // 2
        angles = random_angles(m, hand.axes, SynthConfig(natural_share=0.8, swap_prob=0.2), gen)
        shape = random_shapes(m, SynthConfig(), gen)
        rest = hand(torch.zeros(1, 23)).joints
        c = canonical_frame(rest)[0]  # rest-frame hand axes (columns)
        flip = torch.where(torch.rand(m, generator=gen) < 0.5, -1.0, 1.0)  # palm or back to the camera
        target = torch.zeros(m, 3, 3)
        target[:, :, 1] = torch.tensor([0.0, -1.0, 0.0])  # wrist -> middle MCP: image up
        target[:, :, 0] = torch.tensor([1.0, 0.0, 0.0]) * flip[:, None]
        target[:, :, 2] = torch.linalg.cross(target[:, :, 0], target[:, :, 1])
        tilt = roma.rotvec_to_rotmat(torch.randn(m, 3, generator=gen) * torch.tensor([0.4, 0.4, 0.6]))
        rotation = tilt @ target @ c.T
        with torch.no_grad():
            out = hand(angles, shape, rotation, with_vertices=True)
        faces = hand.faces.numpy()
        for i in range(m):
            v = out.vertices[i].numpy()
            shift = np.array([0.0, 0.0, 0.45]) - v.mean(0)
            color = (0.8 + 0.1 * float(torch.rand(1, generator=gen)), 0.62, 0.52)
            img = render_meshes([(v + shift, faces, color)], (420.0, 420.0, 127.5, 127.5), (256, 256),
                                background=tuple(int(x) for x in torch.randint(40, 200, (3,), generator=gen)), ambient=0.35).color
            images.append((f"render_{side}_{i}", img))
            truth.append({"side": side, "angles": angles[i], "shape": shape[i], "rotation": rotation[i],
                          "joints": out.joints[i] + torch.tensor(shift, dtype=torch.float32)})
    return images, truth


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def detect(images: list[tuple[str, np.ndarray]]) -> list[dict]:
    import mediapipe as mp

    hits = []
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=4, model_complexity=1, min_detection_confidence=0.5) as hands:
        for k, (name, image) in enumerate(images):
            result = hands.process(image)
            for world, lms, handed in zip(result.multi_hand_world_landmarks or [], result.multi_hand_landmarks or [],
                                          result.multi_handedness or []):
                label = handed.classification[0].label  # as if mirrored: "Right" is the person's left
                uv = np.array([(p.x, p.y) for p in lms.landmark]) * (image.shape[1], image.shape[0])
                hits.append({"image": k, "name": name, "side": "left" if label == "Right" else "right",
                             "size_px": float((uv.max(0) - uv.min(0)).max()),
                             "world": np.array([(p.x, p.y, p.z) for p in world.landmark], np.float32)})
    return hits


def palm_frame(hand: BiomechHand, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rest-frame palm joints (B, 6, 3) relative to the wrist joint, frame (B, 3, 3) columns x y z, palm length (B,)."""
    zeros = torch.zeros(shape.shape[0], 23)
    joints = hand(zeros, shape).skeleton_joints
    names = hand.model.skeleton.names
    idx = [names.index(f"{hand.side}_{n}") for n in PALM_JOINTS]
    palm = joints[:, idx]
    y = palm[:, 2]
    length = y.norm(dim=-1)
    y = y / length[:, None]
    x = palm[:, 1] - palm[:, 3]
    x = x - (x * y).sum(-1, keepdim=True) * y
    x = x / x.norm(dim=-1, keepdim=True)
    return palm, torch.stack([x, y, torch.linalg.cross(x, y)], -1), length


def to_left(points: torch.Tensor, side: str) -> torch.Tensor:
    return points if side == "left" else mirror_points(points)


def measure(hits: list[dict], iks: dict[str, HandIK], iterations: int = 150) -> list[dict]:
    """Fit Anny to the 20 non-wrist landmarks; MediaPipe's wrist in palm-frame units."""
    weights = torch.ones(21)
    weights[0] = 0.0
    rows = []
    for side, ik in iks.items():
        mine = [h for h in hits if h["side"] == side]
        if not mine:
            continue
        world = torch.tensor(np.stack([h["world"] for h in mine]))
        init = ik.predict(world)
        fit = fit_hand(world, side, init=init, iterations=iterations, hand=ik.hand, joint_weights=weights,
                       config=PostOptConfig(prior_weight=0.0))
        residual = (fit.joints[:, 1:] - world[:, 1:]).norm(dim=-1).mean(-1) * 1000
        with torch.no_grad():
            _, frame, length = palm_frame(ik.hand, fit.shape)
            local = (fit.global_rotation.transpose(1, 2) @ (world[:, 0] - fit.translation)[..., None])[..., 0]
        coords = (frame.transpose(1, 2) @ local[..., None])[..., 0] / length[:, None]
        if side == "right":  # the mirrored frame's z points the other way: report left-hand coordinates
            coords[:, 2] = -coords[:, 2]
        for h, r, c, s in zip(mine, residual, coords, fit.shape):
            rows.append({**{k: h[k] for k in ("image", "name", "side", "size_px")}, "residual_mm": float(r),
                         "coords": c.tolist(), "shape": s.tolist()})
    return rows


def measure_true(hits: list[dict], truth: list[dict], iks: dict[str, HandIK]) -> list[list[float]]:
    """Renders: MediaPipe's 20 non-wrist points aligned rigidly onto the true Anny keypoints."""
    coords = []
    for h in hits:
        t = truth[h["image"]]
        if h["side"] != t["side"]:
            continue
        hand = iks[t["side"]].hand
        world = torch.tensor(h["world"])
        rot, trans = roma.rigid_points_registration(world[1:][None], t["joints"][1:][None])
        wrist = (rot[0] @ world[0] + trans[0])
        with torch.no_grad():
            out = hand(t["angles"][None], t["shape"][None], t["rotation"][None])
            joint = out.skeleton_joints[0, 0] - out.joints[0, 0] + t["joints"][0]
            _, frame, length = palm_frame(hand, t["shape"][None])
        local = t["rotation"].T @ (wrist - joint)
        c = (frame[0].T @ local) / length[0]
        if t["side"] == "right":
            c[2] = -c[2]
        coords.append(c.tolist())
    return coords


def summarize(coords: np.ndarray) -> dict:
    return {"n": int(len(coords)), "median": np.round(np.median(coords, 0), 4).tolist(),
            "mean": np.round(coords.mean(0), 4).tolist(), "std": np.round(coords.std(0), 4).tolist(),
            "mad": np.round(np.median(np.abs(coords - np.median(coords, 0)), 0), 4).tolist()}


def main(renders: int = 240) -> None:
    torch.set_num_threads(1)
    start = time.time()
    iks = {s: HandIK.load(s) for s in ("left", "right")}
    real = real_images()
    real_hits = detect(real)
    # the few large hands again, turned by +-20 degrees (other inputs to MediaPipe's networks)
    big = sorted({h["image"] for h in real_hits if h["size_px"] >= MIN_SIZE_PX})
    turned = [(f"{real[k][0]} (turned {a:+d})", rotate(real[k][1], a)) for k in big for a in (-20, 20)]
    real_hits += [{**h, "image": h["image"] + len(real)} for h in detect(turned)]
    real += turned
    synth_images, truth = render_hands(renders)
    synth_hits = detect(synth_images)
    real_rows = [r for r in measure(real_hits, iks) if r["residual_mm"] < MAX_RESIDUAL_MM]
    big_rows = [r for r in real_rows if r["size_px"] >= MIN_SIZE_PX]
    synth_rows = [r for r in measure(synth_hits, iks) if r["residual_mm"] < MAX_RESIDUAL_MM]
    truth_rows = measure_true(synth_hits, truth, iks)
    report = {
        "frame": "origin Anny wrist joint; y -> middle MCP joint; x -> index side; z = x cross y on a left hand (out of "
                 "the back of the hand; right hands reported mirrored); units: palm length |middle MCP joint - wrist joint|",
        "real_images": len(real), "real_detections": len(real_hits), "renders": renders, "render_detections": len(synth_hits),
        "max_residual_mm": MAX_RESIDUAL_MM, "min_size_px": MIN_SIZE_PX,
        "real_used": summarize(np.array([r["coords"] for r in big_rows])),
        "real_all_sizes": summarize(np.array([r["coords"] for r in real_rows])),
        "real_small": summarize(np.array([r["coords"] for r in real_rows if r["size_px"] < MIN_SIZE_PX])),
        "renders_fit": summarize(np.array([r["coords"] for r in synth_rows])),
        "renders_true_hand": summarize(np.array(truth_rows)),
        "real_residual_mm_median": round(float(np.median([r["residual_mm"] for r in big_rows])), 2),
        "render_residual_mm_median": round(float(np.median([r["residual_mm"] for r in synth_rows])), 2),
        "real_rows": real_rows,
        "seconds": round(time.time() - start, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hand_wrist_calibration.json").write_text(json.dumps(report, indent=1))
    lines = ["# Hand21 wrist keypoint of the Anny hand: calibration against MediaPipe Hands", "",
             "Command: `python benchmarks/calib_hand_wrist.py`. Machine: 2 CPU cores (shared), CPU only.", "",
             f"Frame: {report['frame']}.", "",
             f"Real photos: {len(real)} images (half of them mirrored copies), {len(real_hits)} MediaPipe hands; kept: 20-point "
             f"fit residual < {MAX_RESIDUAL_MM} mm and hand >= {MIN_SIZE_PX} px (median residual "
             f"{report['real_residual_mm_median']} mm). Renders of Anny hands (no forearm): {renders}, {len(synth_hits)} detected "
             f"(median residual {report['render_residual_mm_median']} mm); a check only, not used.", "",
             "| source | n | median (x, y, z) | MAD | mean | std |", "|---|---|---|---|---|---|"]
    for key, label in (("real_used", f"real photos, hands >= {MIN_SIZE_PX} px (USED)"),
                       ("real_small", f"real photos, hands < {MIN_SIZE_PX} px"),
                       ("renders_fit", "renders, Anny fitted to 20 landmarks"), ("renders_true_hand", "renders, the true Anny hand")):
        s = report[key]
        lines.append(f"| {label} | {s['n']} | {s['median']} | {s['mad']} | {s['mean']} | {s['std']} |")
    (RESULTS / "hand_wrist_calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 240)
