"""Hand poses people really make: what MediaPipe Hands + the IK net find on real photos.

ManoRender (Fan & Wang 2023, Sec. 3.2.3) starts from MANO's 895 fitted scan poses; hmrkit has
no such scans, so the real poses come from hmrkit's own hand path (MediaPipe Hands' world
landmarks -> the biomechanical IK net, as :class:`hmrkit.fitting.hands.HandSolver` runs it in
the pipeline) on the photos synthesis may learn from: the even-numbered ``lspet_dev`` photos and
everything in ``demo_images`` including its ``hands/`` close-ups. Never ``hands_ge2019_dev`` (the
hand validation set), the odd ``lspet_dev`` photos or ``coco_mini_dev``.

Only the 23 angles and the 6 phenotypes are kept (no image), cached like the body pose bank
(:mod:`hmrkit.synth.poses`), in hmrkit's cache folder: outside the repository.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmrkit.paths import cache_dir
from hmrkit.synth.backgrounds import IMAGE_SUFFIXES, read_rgb, training_photo_sources

BANK_VERSION = "1"


@dataclass
class HandPoseBank:
    angles: np.ndarray  # (N, 23) float32, each hand in its own side's convention (biomech.ANGLE_NAMES)
    shapes: np.ndarray  # (N, 6) float32 the IK net's phenotypes
    sides: np.ndarray  # (N,) str "left" / "right": the side it was found on
    sources: np.ndarray  # (N,) str the photo's file name

    def __len__(self) -> int:
        return len(self.angles)


def hand_photo_sources(data_root: Path) -> list[Path]:
    """The body synthesis' photos (even lspet_dev, top-level demo_images) plus ``demo_images/hands``."""
    hands = Path(data_root) / "demo_images" / "hands"
    close_ups = sorted(p for p in hands.glob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) if hands.is_dir() else []
    return training_photo_sources(data_root) + close_ups


def hand_pose_bank(sources: list[Path], cache: Path | None = None, progress=None) -> HandPoseBank:
    """Find the hands in ``sources`` once (then read the cache) and solve each with the IK net."""
    import torch

    names = sorted(str(p) for p in sources)
    key = hashlib.sha1("\n".join([BANK_VERSION] + [f"{Path(n).name}:{Path(n).stat().st_size}" for n in names]).encode())
    path = Path(cache or cache_dir() / "synth") / f"hand_pose_bank_{key.hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            return HandPoseBank(data["angles"], data["shapes"], data["sides"], data["sources"])
    from hmrkit.fitting.hands import HandSolver
    from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig

    solver = HandSolver(refine=False)  # the pipeline's default: the IK net alone
    angles, shapes, sides, kept = [], [], [], []
    with torch.no_grad():
        backend = MediaPipeBackend(MediaPipeConfig())
        try:
            for n, name in enumerate(names):
                if progress is not None:
                    progress(n, len(names))
                rgb = read_rgb(Path(name))
                if rgb is None:
                    continue
                people = backend.detect(rgb).people
                for solved, person in zip(solver.solve_people(people), people):
                    for side, fit in solved.items():
                        angles.append(fit.angles[0].numpy())
                        shapes.append(fit.shape[0].numpy())
                        sides.append(side)
                        kept.append(Path(name).name)
        finally:
            backend.close()
    bank = HandPoseBank(np.asarray(angles, np.float32).reshape(-1, 23), np.asarray(shapes, np.float32).reshape(-1, 6),
                        np.array(sides, dtype="<U5"), np.array(kept, dtype=str))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez(tmp, angles=bank.angles, shapes=bank.shapes, sides=bank.sides, sources=bank.sources)
    tmp.replace(path)
    return bank
