"""Poses for synthetic people: mocap (CMU's train split) and hmrkit's own fits of real photos.

AJAHR fits ScoreHMR to benchmark photos for poses people really take in photos; here hmrkit's
pipeline plays that role on the photos synthesis may learn from (the even-numbered
``lspet_dev`` photos and the demo photos, :func:`hmrkit.synth.backgrounds.training_photo_sources`;
never the odd ones or ``coco_mini_dev``). The fitted poses, and only they (no image), are cached
as a pose bank. Their finger poses (from hmrkit's hand IK) also dress the mocap poses' hands.

All poses here are in the canonical body frame (x left, y up, z forward) with the heading
about the vertical removed, as :mod:`hmrkit.data.synth_keypoints` uses them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.data.synth_keypoints import CANONICAL_TO_CAMERA, remove_heading
from hmrkit.paths import cache_dir

BANK_VERSION = "1"


@dataclass
class PoseBank:
    rotations: np.ndarray  # (N, J, 3, 3) float32 local rotations, canonical frame, heading removed
    sources: np.ndarray  # (N,) str: the photo each pose came from

    def __len__(self) -> int:
        return len(self.rotations)


def canonical_from_camera(rotations: torch.Tensor) -> torch.Tensor:
    """(N, J, 3, 3) poses whose root is in the camera frame -> canonical frame, heading removed."""
    root = remove_heading(CANONICAL_TO_CAMERA.to(rotations) @ rotations[:, 0])
    return torch.cat([root[:, None], rotations[:, 1:]], 1)


def fitted_pose_bank(sources: list[Path], cache: Path | None = None, max_error: float = 0.05, progress=None) -> PoseBank:
    """Run :class:`hmrkit.Pipeline` on ``sources`` once (then read the cache); keep people whose
    mean reprojection error is under ``max_error`` of their box diagonal."""
    names = sorted(str(p) for p in sources)
    key = hashlib.sha1("\n".join([BANK_VERSION, f"{max_error}"] + [f"{Path(n).name}:{Path(n).stat().st_size}" for n in names]).encode())
    path = Path(cache or cache_dir() / "synth") / f"pose_bank_{key.hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            return PoseBank(data["rotations"], data["sources"])
    from hmrkit.pipeline import Pipeline

    rotations, kept = [], []
    with Pipeline() as pipeline:
        for n, name in enumerate(names):
            if progress is not None:
                progress(n, len(names))
            try:
                result = pipeline.run(name, source=name)
            except Exception:  # noqa: BLE001 - a photo the pipeline cannot read adds no pose
                continue
            for person in result.people:
                x0, y0, x1, y1 = person.box
                if person.reprojection_error <= max_error * float(np.hypot(x1 - x0, y1 - y0)):
                    rotations.append(person.pose.astype(np.float32))
                    kept.append(Path(name).name)
    poses = canonical_from_camera(torch.from_numpy(np.stack(rotations))).numpy().astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, rotations=poses, sources=np.array(kept))
    return PoseBank(poses, np.array(kept))


def mocap_poses(stride: int = 8) -> np.ndarray:
    """(N, 22, 3, 3) CMU train-split poses (canonical frame, heading removed)."""
    from hmrkit.data.retarget import load_cmu_poses

    poses = torch.from_numpy(load_cmu_poses("train", stride=stride).rotations).float()
    root = remove_heading(poses[:, 0])
    return torch.cat([root[:, None], poses[:, 1:NUM_BODY_CORE]], 1).numpy()
