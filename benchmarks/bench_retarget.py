"""Mocap -> hmrkit core-joint retargeting: bone-direction agreement, speed, and pictures to look at.

For every frame of a motion set's held-out split the script runs the source's forward
kinematics, retargets to the 22 core joints, poses Anny (neutral shape) with the result and
compares the direction of each of our bones with its source counterpart. It also checks the
source data itself (bone lengths over time, feet on the floor, heights), and draws source stick
figures beside the posed Anny mesh, in the same camera.

    python benchmarks/bench_retarget.py               # CMU test split -> results/retarget.{json,md,png}
    python benchmarks/bench_retarget.py --set hdm05   # HDM05 test split -> results/retarget_hdm05.{json,md,png}
    python benchmarks/bench_retarget.py --set iclone  # all iClone BVH files -> results/retarget_iclone.{json,md,png}
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hmrkit.body.anny_model import load_anny_body
from hmrkit.data.cmu import cmu_forward_kinematics, cmu_sequence_files, read_cmu_values
from hmrkit.data.retarget import BODY, CORE_BONES, anny_rest_joints, cmu_skeleton_motion, retarget_motion
from hmrkit.data.skeleton_motion import SkeletonMotion

RESULTS = Path(__file__).resolve().parent / "results"

# (our bone from -> to) vs (source bone from -> to), by CMU segment names. Limb bones are matched
# exactly by the solver; the others follow their source segment, so their angle is the two rigs'
# rest-anatomy difference.
PAIRS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {}
for _side in ("left", "right"):
    _c = _side[0]
    PAIRS.update(
        {
            f"{_side} thigh (hip)": ((f"{_side}_hip", f"{_side}_knee"), (f"{_c}femur", f"{_c}tibia")),
            f"{_side} shin (knee)": ((f"{_side}_knee", f"{_side}_ankle"), (f"{_c}tibia", f"{_c}foot")),
            f"{_side} foot (ankle)": ((f"{_side}_ankle", f"{_side}_foot"), (f"{_c}foot", f"{_c}toes")),
            f"{_side} collar bone (collar)": ((f"{_side}_collar", f"{_side}_shoulder"), (f"{_c}clavicle", f"{_c}humerus")),
            f"{_side} upper arm (shoulder)": ((f"{_side}_shoulder", f"{_side}_elbow"), (f"{_c}humerus", f"{_c}radius")),
            f"{_side} forearm (elbow)": ((f"{_side}_elbow", f"{_side}_wrist"), (f"{_c}radius", f"{_c}wrist")),
            f"{_side} hand (wrist)": ((f"{_side}_wrist", f"{_side}_middle1"), (f"{_c}hand", f"{_c}fingers")),
        }
    )
PAIRS.update(
    {
        "hips line (pelvis)": (("right_hip", "left_hip"), ("rfemur", "lfemur")),
        "lower spine pelvis->spine2 (pelvis, spine1)": (("pelvis", "spine2"), ("root", "upperback")),
        "torso pelvis->neck (spine1-3)": (("pelvis", "neck"), ("root", "lowerneck")),
        "shoulders line (spine3)": (("right_shoulder", "left_shoulder"), ("rhumerus", "lhumerus")),
        "neck->head (neck)": (("neck", "head"), ("lowerneck", "head")),
    }
)
EXACT = {(b.joint, b.primary) for b in CORE_BONES if b.cmu_bone is not None}
FEET = ("lfoot", "ltoes", "ltoes_end", "rfoot", "rtoes", "rtoes_end")
ARM_SEGMENTS = {f"{s}{n}" for s in "lr" for n in ("humerus", "radius", "wrist", "hand", "fingers", "fingers_end", "thumb", "thumb_end")}


@dataclass
class Sequence:
    name: str
    action: str
    motion: SkeletonMotion


@dataclass
class MotionSet:
    """One benchmarked motion set: its held-out sequences and what the report says about them."""

    key: str  # results file stem
    title: str
    sequences: list[Sequence]
    shots: Callable[[list[Sequence]], list[tuple[str, int, str]]]  # (sequence, frame, caption) to draw
    about: list[str] = field(default_factory=list)  # lines for the report
    drawn_only: list[Sequence] = field(default_factory=list)  # other sequences the picture shows (not measured)
    split: str = "test split"  # what was measured


def matched_exactly(our_bone: tuple[str, str]) -> bool:
    """A limb bone the solver points along the source's bone."""
    return our_bone in EXACT


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(torch.arccos((unit(a) * unit(b)).sum(-1).clamp(-1.0, 1.0)))


# -- the motion sets ------------------------------------------------------------------------------


def cmu_set() -> MotionSet:
    files = cmu_sequence_files("test")
    sequences = [
        Sequence(f.name, f.action, cmu_skeleton_motion(cmu_forward_kinematics(torch.from_numpy(read_cmu_values(f.path)))))
        for f in files
    ]
    fixed = [("walking_1", 200), ("running_1", 60), ("jumping_1", 450), ("basketball_1", 300), ("soccer_1", 380), ("washwindow_1", 700)]
    return MotionSet(
        key="retarget",
        title="CMU",
        sequences=sequences,
        shots=lambda _: [(name, t, f"{name} f{t}") for name, t in fixed],
        about=[
            "The hips line agrees because both rigs' rest hips lie along x.",
            "This CMU skeleton's thorax bone has zero length: the torso is short (head top ~1.48 m).",
        ],
    )


def hdm05_set() -> MotionSet:
    from hmrkit.data.hdm05 import hdm05_sequence_files, read_hdm05_motion

    sequences = [Sequence(f.name, f.action, read_hdm05_motion(f)) for f in hdm05_sequence_files("test")]
    squat = next(f for f in hdm05_sequence_files("train", ["squat1Reps"]) if f.name == "HDM_dg_squat1Reps_025_120")
    return MotionSet(
        key="retarget_hdm05",
        title="HDM05",
        sequences=sequences,
        shots=hdm05_shots,
        about=[
            "HDM05's ASF skeletons are the full Vicon layout (thorax and neck bones have length), so the",
            "source torso is anatomically closer to Anny's than the CMU exponential-map skeleton's.",
            "The test split is subjects mm and tr (train: bd, bk, dg). The picture's last row is a training",
            "take (dg) whose deepest squat frames hold a broken right leg in the data itself.",
        ],
        drawn_only=[Sequence(squat.name, squat.action, read_hdm05_motion(squat))],
    )


def _first(sequences: list[Sequence], action: str, subject: str = "") -> Sequence:
    return next(s for s in sequences if s.action == action and f"_{subject}_" in s.name)


def hdm05_shots(sequences: list[Sequence]) -> list[tuple[str, int, str]]:
    """Frames chosen by what happens in them, so the picture shows the hard poses."""
    shots = []

    def add(seq: Sequence, t: int, what: str) -> None:
        shots.append((seq.name, int(t), f"{seq.name.removeprefix('HDM_')} f{int(t)} ({what})"))

    def pos(seq: Sequence, name: str) -> torch.Tensor:
        return seq.motion.positions[:, seq.motion.skeleton.index(name)]

    lie = _first(sequences, "lieDownFloor", "mm")
    add(lie, len(lie.motion) - 1, "lying, last frame")
    squat = _first(sequences, "squat1Reps", "mm")
    add(squat, pos(squat, "root")[:, 1].argmin(), "deepest squat")
    kick = _first(sequences, "kickLFront1Reps", "tr")
    add(kick, pos(kick, "ltoes_end")[:, 1].argmax(), "left foot highest")
    deposit = _first(sequences, "depositFloorR", "tr")
    add(deposit, pos(deposit, "rfingers")[:, 1].argmin(), "right hand lowest")
    elbow = _first(sequences, "elbowToKnee1RepsLelbowStart", "tr")
    add(elbow, (pos(elbow, "lradius") - pos(elbow, "rtibia")).norm(dim=-1).argmin(), "left elbow to right knee")
    broken = _first(sequences, "squat1Reps", "dg")
    add(broken, pos(broken, "root")[:, 1].argmin(), "TRAIN, deepest; data's right leg broken")
    return shots


def iclone_set() -> MotionSet:
    from hmrkit.data.iclone import find_iclone_rest, iclone_sequence_files, iclone_skeleton_motion
    from hmrkit.data.bvh import read_bvh

    files = iclone_sequence_files()
    rest = find_iclone_rest(files)
    return MotionSet(
        key="retarget_iclone",
        title="iClone CMU",
        sequences=[Sequence(f.name, f.action, iclone_skeleton_motion(read_bvh(f.path), rest)) for f in files],
        shots=iclone_shots,
        split="all files",
        about=[
            "All 61 files (the set has no split; 60 fps). The source skeleton is the CC_Base rig mapped to CMU",
            "segment roles (hmrkit.data.iclone.ICLONE_SEGMENTS); its rest is the rig's T-pose. The source's",
            "`head_end` is a point 20 cm above the head joint (the rig has no head-top joint). CC's own spine is",
            "curved too: its lumbar leans ~20 deg forward from the Hip to Spine01 in the T-pose (the lower-spine row).",
        ],
    )


def iclone_shots(sequences: list[Sequence]) -> list[tuple[str, int, str]]:
    """Frames chosen by what happens in them: upside down, sitting, lunging, a leg raised, bending, hanging."""
    by_name = {s.name: s for s in sequences}
    shots = []

    def add(name: str, t: torch.Tensor, what: str) -> None:
        shots.append((name, int(t), f"{name} f{int(t)} ({what})"))

    def pos(name: str, joint: str) -> torch.Tensor:
        motion = by_name[name].motion
        return motion.positions[:, motion.skeleton.index(joint)]

    add("005_06", (pos("005_06", "head")[:, 1] - pos("005_06", "root")[:, 1]).argmin(), "cartwheel, most upside down")
    thighs = sum((unit(pos("001_08", f"{s}tibia") - pos("001_08", f"{s}femur"))[:, 1]).abs() for s in "lr")
    add("001_08", thighs.argmin(), "sitting: thighs most level")
    add("002_07", pos("002_07", "root")[:, 1].argmin(), "swordplay, pelvis lowest")
    add("005_05", torch.maximum(pos("005_05", "ltoes")[:, 1], pos("005_05", "rtoes")[:, 1]).argmax(), "dance, a foot highest")
    add("002_06", pos("002_06", "rfingers")[:, 1].argmin(), "bend over and scoop up, right hand lowest")
    hands = torch.minimum(pos("001_14", "lfingers")[:, 1], pos("001_14", "rfingers")[:, 1]) - pos("001_14", "root")[:, 1]
    add("001_14", hands.argmax(), "playground, both hands highest above the pelvis")
    return shots


MOTION_SETS = {"cmu": cmu_set, "hdm05": hdm05_set, "iclone": iclone_set}


# -- checks -------------------------------------------------------------------------------------


def check_source(motion: SkeletonMotion) -> dict:
    """Facts about the source data after our FK: bone lengths, floor contact, heights."""
    pos = motion.positions
    parents = motion.skeleton.parents
    children = [j for j, p in enumerate(parents) if p >= 0]
    lengths = torch.stack([(pos[:, j] - pos[:, parents[j]]).norm(dim=-1) for j in children], dim=1)
    expected = (motion.rest[children] - motion.rest[[parents[j] for j in children]]).norm(dim=-1)
    feet = [motion.skeleton.index(n) for n in FEET]
    lowest = pos[:, feet, 1].min(dim=1).values
    return {
        "frames": int(pos.shape[0]),
        "bone_length_max_deviation_m": float((lengths - expected).abs().max()),
        "lowest_foot_point_height_m": {
            "median": float(lowest.median()),
            "p5": float(lowest.quantile(0.05)),
            "p95": float(lowest.quantile(0.95)),
        },
        "head_top_height_m_median": float(pos[:, motion.skeleton.index("head_end"), 1].median()),
        "root_height_m_median": float(pos[:, 0, 1].median()),
    }


def concatenate(sequences: list[Sequence]) -> SkeletonMotion:
    """One motion of all sequences (they share a skeleton layout; rests may differ per subject:
    the rest is only used for bone lengths here, so those are checked per sequence)."""
    first = sequences[0].motion
    return SkeletonMotion(
        first.skeleton,
        torch.cat([s.motion.positions for s in sequences]),
        torch.cat([s.motion.rotations for s in sequences]),
        first.rest,
    )


def bone_length_deviation(sequences: list[Sequence]) -> float:
    return max(check_source(s.motion)["bone_length_max_deviation_m"] for s in sequences)


# -- pictures -----------------------------------------------------------------------------------


def horizontal(v: np.ndarray) -> np.ndarray:
    h = np.array([v[0], 0.0, v[2]])
    return h / np.linalg.norm(h)


def camera_axes(toward: np.ndarray, image_up: np.ndarray) -> np.ndarray:
    """(3, 3) rows: an OpenCV camera's x (right), y (down), z (forward) in world axes, for a camera
    placed along ``toward`` from the body and looking back at it, ``image_up`` pointing up."""
    z = -toward / np.linalg.norm(toward)
    y = -(image_up - (image_up @ z) * z)
    y /= np.linalg.norm(y)
    return np.stack([np.cross(y, z), y, z])


def views(motion: SkeletonMotion, t: int) -> list[tuple[str, np.ndarray]]:
    """Two cameras for frame t, world up kept up: front and left side of the hips line (any
    posture but lying, upside down included); a body lying on its back or front is seen from
    above (head at the top) and from its left side."""
    pelvis = motion.rotations[t, 0].numpy()  # columns: the pelvis's left, up, forward
    up = np.array([0.0, 1.0, 0.0])
    if abs(pelvis[1, 1]) < 0.5 and abs(pelvis[1, 2]) > 0.7:
        return [("above", camera_axes(up, horizontal(pelvis[:, 1]))), ("left side", camera_axes(horizontal(pelvis[:, 0]), up))]
    forward = horizontal(np.cross(pelvis[:, 0], up))  # where the hips line faces
    return [("front", camera_axes(forward, up)), ("left side", camera_axes(np.cross(up, forward), up))]


def project(points: np.ndarray, focal: float, distance: float, size: int) -> np.ndarray:
    """Camera-frame points (the body at the origin) -> pixels of the mesh render's pinhole camera."""
    z = points[:, 2:3] + distance
    return focal * points[:, :2] / z + size / 2


def segment_colour(name: str) -> str:
    side = name[0] if name[0] in "lr" and name not in ("lowerback", "lowerneck", "root") else "c"
    return {"l": "tab:red", "r": "tab:blue", "c": "k"}[side]


def draw(shots: list[tuple[str, int, str]], by_name: dict[str, Sequence], poses: dict[str, torch.Tensor], body, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hmrkit.render import render_meshes

    size, focal, distance = 360, 520.0, 3.0
    fig, axes = plt.subplots(len(shots), 4, figsize=(12, 3.2 * len(shots)))
    for row, (name, t, caption) in enumerate(shots):
        motion = by_name[name].motion
        names, parents = motion.skeleton.names, motion.skeleton.parents
        src = motion.positions[t].numpy()
        rotations = torch.eye(3).expand(1, len(BODY), 3, 3).clone()
        rotations[0, :22] = poses[name][t].float()
        out = body(rotations, translation=torch.from_numpy(src[0:1]).float())
        verts = out.vertices[0].numpy()
        centre = src[0] + np.array([0.0, -0.1, 0.0])
        for k, (view, camera) in enumerate(views(motion, t)):
            ax = axes[row, 2 * k]
            p = project((src - centre) @ camera.T, focal, distance, size)
            for j, parent in enumerate(parents):
                if parent >= 0:
                    ax.plot([p[parent, 0], p[j, 0]], [p[parent, 1], p[j, 1]], "--" if names[j] in ARM_SEGMENTS else "-",
                            color=segment_colour(names[j]), lw=2)
            base = np.array([src[0, 0], 0.0, src[0, 2]])  # the floor under the root, along the image x
            ground = project((np.stack([base - camera[0], base + camera[0]]) - centre) @ camera.T, focal, distance, size)
            if view != "above":
                ax.plot(ground[:, 0], ground[:, 1], color="tab:green", lw=0.8)
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title} {caption} ({view})", fontsize=7)
            v = (verts - centre) @ camera.T + np.array([0.0, 0.0, distance])
            img = render_meshes([(v.astype(np.float32), body.faces.numpy(), (180, 180, 230))],
                                (focal, focal, size / 2, size / 2), (size, size), background=(255, 255, 255)).color
            ax = axes[row, 2 * k + 1]
            ax.imshow(img)
            if view != "above":
                ax.plot(ground[:, 0], ground[:, 1], color="tab:green", lw=0.8)
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"Anny retargeted ({view})", fontsize=8)
    fig.suptitle(f"{title} (red = left, blue = right, dashed = arms, green = floor) beside the retargeted Anny body, same camera", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    fig.savefig(path, dpi=80)
    plt.close(fig)


# -- the run ------------------------------------------------------------------------------------


def pose_joints(body, rotations: torch.Tensor) -> torch.Tensor:
    """(N, 52, 3) Anny joints (float64) for (N, 22, 3, 3) core rotations, in chunks."""
    model = body.double()
    full = torch.eye(3, dtype=torch.float64).expand(512, len(BODY), 3, 3).clone()
    posed = []
    for chunk in rotations.split(512):
        r = full[: len(chunk)].clone()
        r[:, :22] = chunk
        posed.append(model(r, with_vertices=False).joints)
    body.float()
    return torch.cat(posed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(MOTION_SETS), default="cmu", help="motion set (its held-out split)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    body = load_anny_body()
    rest = anny_rest_joints()

    start = time.perf_counter()
    motion_set = MOTION_SETS[args.set]()
    read_fk_s = time.perf_counter() - start
    sequences = motion_set.sequences
    start = time.perf_counter()
    poses = {s.name: retarget_motion(s.motion, rest) for s in sequences}
    retarget_s = time.perf_counter() - start

    source = concatenate(sequences)
    ours = pose_joints(body, torch.cat([poses[s.name] for s in sequences]))
    index = source.skeleton.index
    errors = {}
    for label, ((a, b), (ca, cb)) in PAIRS.items():
        ang = angle_deg(ours[:, BODY.index(b)] - ours[:, BODY.index(a)], source.positions[:, index(cb)] - source.positions[:, index(ca)])
        errors[label] = {
            "mean_deg": float(ang.mean()),
            "median_deg": float(ang.median()),
            "p95_deg": float(ang.quantile(0.95)),
            "max_deg": float(ang.max()),
            "matched_exactly": matched_exactly((a, b)),
        }
    checks = check_source(source)
    checks["bone_length_max_deviation_m"] = bone_length_deviation(sequences)
    frames = checks["frames"]
    result = {
        "set": motion_set.title,
        "split": motion_set.split,
        "sequences": [s.name for s in sequences],
        "source_checks": checks,
        "bone_direction_error": errors,
        "timing_s": {"read_and_fk": read_fk_s, "retarget": retarget_s, "frames": frames},
        "machine": f"2 CPU cores, CPU only ({platform.processor() or platform.machine()}), torch {torch.__version__}, 1 thread",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{motion_set.key}.json").write_text(json.dumps(result, indent=2))

    shown = sequences + motion_set.drawn_only
    poses |= {s.name: retarget_motion(s.motion, rest) for s in motion_set.drawn_only}
    picture = RESULTS / f"{motion_set.key}.png"
    draw(motion_set.shots(shown), {s.name: s for s in shown}, poses, body, motion_set.title, picture)

    lines = [
        f"# {motion_set.title} -> core-joint retargeting",
        "",
        f"{motion_set.title} {motion_set.split} ({frames} frames, {len(sequences)} sequences, every frame), retargeted to",
        "hmrkit's 22 core joints and posed on Anny's neutral body. Angle between each of our bones and",
        "its source counterpart, degrees. *Exact* bones are matched by construction (a check of the solver);",
        "the others follow their source segment's rotation, so the angle is the rigs' rest-anatomy difference",
        "(Anny's S-curved spine and collar bones vs the source's straight ones), nearly constant over time.",
        *motion_set.about,
        "",
        "| bone (our joint) | exact | mean | median | p95 | max |",
        "|---|---|---|---|---|---|",
    ]
    for label, e in errors.items():
        lines.append(f"| {label} | {'yes' if e['matched_exactly'] else 'no'} | {e['mean_deg']:.2f} | {e['median_deg']:.2f} | {e['p95_deg']:.2f} | {e['max_deg']:.2f} |")
    foot = checks["lowest_foot_point_height_m"]
    lines += [
        "",
        f"{motion_set.title} data after our forward kinematics:",
        f"- bone lengths constant: max deviation {checks['bone_length_max_deviation_m']:.2e} m",
        f"- lowest foot point per frame: median {foot['median']:.3f} m (p5 {foot['p5']:.3f}, p95 {foot['p95']:.3f})",
        f"- head top median height {checks['head_top_height_m_median']:.2f} m, root {checks['root_height_m_median']:.2f} m",
        "",
        f"Speed ({result['machine']}; shared with other jobs, so it varies several-fold): reading + FK {read_fk_s:.2f} s,"
        f" retargeting {retarget_s:.2f} s for {frames} frames (float64).",
        "",
        f"Pictures: `{picture.name}` (source stick figure and the retargeted Anny mesh, front and left side).",
        "",
        f"Reproduce: `python benchmarks/bench_retarget.py{'' if args.set == 'cmu' else ' --set ' + args.set}`",
    ]
    (RESULTS / f"{motion_set.key}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
