"""``hmrkit view OUT_DIR``: the results of ``hmrkit run`` in the browser, with viser.

Per photo (and per video, with a frame slider): the people's meshes in the camera frame, the
camera as a frustum showing the picture, so that looking through the camera (the view a browser
starts with) puts the meshes over the photo, and a panel with each person's parameters (shape,
translation, limbs, reprojection error) and the 23 angles of each hand. Everything is read from
the ``.npz`` (vertices, faces, camera) and ``.json`` (parameters) files ``hmrkit run`` wrote; the
picture from the input named in the JSON, else the overlay picture. viser is optional
(``pip install "viser==1.1.1"``); without it the command stops with one line.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VISER_VERSION = "1.1.1"
FRAME = re.compile(r"frame_(\d+)\.npz")
# the camera frame (OpenCV: x right, y down, z forward) shown with viser's +z up: a -90 degree turn about x
CAMERA_TO_WORLD_WXYZ = (math.cos(-math.pi / 4), math.sin(-math.pi / 4), 0.0, 0.0)
PERSON_COLOURS = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167))


class ViewerUnavailable(RuntimeError):
    """viser is not installed, or the folder holds no results: said in one line."""


@dataclass(frozen=True)
class ResultSet:
    """One input's results: a photo (one frame) or a video (its frames in order)."""

    name: str
    frames: tuple[Path, ...]  # the .npz files; each has its .json beside it
    video: bool = False
    overlay: Path | None = None  # the overlay PNG or MP4 hmrkit wrote


@dataclass
class Frame:
    """What one frame shows: meshes, camera, picture and the panel's text."""

    vertices: list[np.ndarray]  # per person (V, 3), metres, camera frame
    faces: np.ndarray
    fov_y: float  # radians
    aspect: float  # width / height
    picture: np.ndarray | None  # (H, W, 3) uint8
    people: list[dict] = field(default_factory=list)  # the JSON's people


def find_results(out_dir: Path) -> list[ResultSet]:
    """Every photo and video result under ``out_dir`` (recursively), photos and videos by name."""
    sets, videos = [], {}
    for npz in sorted(out_dir.rglob("*.npz")):
        if not npz.with_suffix(".json").exists():
            continue
        if FRAME.fullmatch(npz.name):
            videos.setdefault(npz.parent, []).append(npz)
        else:
            overlay = npz.with_name(f"{npz.stem}_overlay.png")
            sets.append(ResultSet(str(npz.relative_to(out_dir).with_suffix("")), (npz,), False, overlay if overlay.exists() else None))
    for folder, frames in videos.items():
        frames.sort(key=lambda p: int(FRAME.fullmatch(p.name).group(1)))
        overlay = folder.with_name(f"{folder.name}_overlay.mp4")
        sets.append(ResultSet(str(folder.relative_to(out_dir)), tuple(frames), True, overlay if overlay.exists() else None))
    return sorted(sets, key=lambda s: s.name)


def _source_candidates(source: Path, npz: Path) -> list[Path]:
    if source.is_absolute():
        return [source]
    return [source] + [folder / source for folder in npz.resolve().parents]


def _picture(result: ResultSet, index: int, source: str | None, frame_index: int | None) -> np.ndarray | None:
    """The input picture of a frame (the source file, else hmrkit's overlay), RGB uint8, or None.

    A relative source path is as the run was given it: from the folder it ran in, which is
    looked for among the results folder's parents when it is not the current one."""
    import cv2

    candidates = _source_candidates(Path(source), result.frames[index]) if source else []
    candidates += [result.overlay] if result.overlay is not None else []
    for path in candidates:
        if not path.is_file():
            continue
        if result.video:
            capture = cv2.VideoCapture(str(path))
            capture.set(cv2.CAP_PROP_POS_FRAMES, frame_index if frame_index is not None and path != result.overlay else index)
            ok, bgr = capture.read()
            capture.release()
        else:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            ok = bgr is not None
        if ok:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return None


def load_frame(result: ResultSet, index: int) -> Frame:
    """Frame ``index`` of a result set, read from its files."""
    npz = result.frames[index]
    with np.load(npz, allow_pickle=False) as data:
        fx, fy, cx, cy = (float(v) for v in data["camera"])
        width, height = (int(v) for v in data["image_size"])
        vertices = [np.asarray(v, np.float32) for v in data["vertices"]] if "vertices" in data.files else []
        faces = np.asarray(data["faces"], np.int32) if "faces" in data.files else np.zeros((0, 3), np.int32)
    info = json.loads(npz.with_suffix(".json").read_text())
    picture = _picture(result, index, info.get("source"), info.get("frame_index"))
    if picture is not None and picture.shape[:2] != (height, width):  # a downscaled run: the JSON's size rules
        import cv2

        picture = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    return Frame(vertices, faces, 2 * math.atan(height / (2 * fy)), width / height, picture, info.get("people", []))


def person_text(k: int, person: dict) -> str:
    """The panel's markdown for one person: parameters and the 23 hand angles (degrees)."""
    shape = ", ".join(f"{n} {v:.2f}" for n, v in person.get("shape", {}).items())
    t = person.get("translation", [])
    lines = [f"**Person {k}**" + (f" (track {person['track_id']})" if person.get("track_id") is not None else ""),
             f"- translation (m): {', '.join(f'{v:.2f}' for v in t)}", f"- shape: {shape}",
             f"- reprojection error: {person.get('reprojection_error_px', float('nan')):.1f} px"]
    absent = [f"{limb} (from {state.get('level')})" for limb, state in (person.get("limbs") or {}).items()
              if state.get("status") == "absent"]
    lines.append(f"- limbs: {', '.join(absent) if absent else 'all present'}")
    for side, hand in sorted(person.get("hands", {}).items()):
        angles = hand.get("angles")
        if angles:
            lines.append(f"- {side} hand, 23 angles (deg): " + ", ".join(f"{n} {math.degrees(v):.0f}" for n, v in angles.items()))
    return "\n".join(lines)


class ResultsViewer:
    """The scene and panel of one viser server over the results in a folder."""

    def __init__(self, server, results: list[ResultSet]) -> None:
        if not results:
            raise ViewerUnavailable("no results to show")
        self.server, self.results = server, results
        self.world = server.scene.add_frame("/camera", wxyz=CAMERA_TO_WORLD_WXYZ, show_axes=False)
        self.meshes: list = []
        self.frustum = None
        self.frame: Frame | None = None
        gui = server.gui
        self.choice = gui.add_dropdown("result", tuple(r.name for r in results), initial_value=results[0].name)
        self.slider = gui.add_slider("frame", min=0, max=max(1, len(results[0].frames) - 1), step=1, initial_value=0,
                                     disabled=not results[0].video)
        self.panel = gui.add_markdown("")
        self.choice.on_update(lambda _: self._choose())
        self.slider.on_update(lambda _: self.show(self.current, int(self.slider.value)))
        server.on_client_connect(self._look_through_camera)
        self.current = results[0]
        self.show(self.current, 0)

    def _choose(self) -> None:
        self.current = next(r for r in self.results if r.name == self.choice.value)
        self.slider.max = max(1, len(self.current.frames) - 1)
        self.slider.disabled = not self.current.video
        self.slider.value = 0
        self.show(self.current, 0)

    def show(self, result: ResultSet, index: int) -> Frame:
        """Put frame ``index`` of ``result`` in the scene (meshes, camera and picture, panel)."""
        frame = load_frame(result, min(max(index, 0), len(result.frames) - 1))
        for mesh in self.meshes:
            mesh.remove()
        self.meshes = [self.server.scene.add_mesh_simple(f"/camera/person_{k}", v, frame.faces,
                                                         color=PERSON_COLOURS[k % len(PERSON_COLOURS)])
                       for k, v in enumerate(frame.vertices)]
        depth = float(np.median([v[:, 2].mean() for v in frame.vertices])) * 1.5 if frame.vertices else 3.0
        if self.frustum is not None:
            self.frustum.remove()
        self.frustum = self.server.scene.add_camera_frustum("/camera/photo", fov=frame.fov_y, aspect=frame.aspect,
                                                            scale=depth, image=frame.picture, color=(40, 40, 40))
        self.panel.content = "\n\n".join(person_text(k, p) for k, p in enumerate(frame.people)) or "nobody found"
        self.frame = frame
        return frame

    def _look_through_camera(self, client) -> None:
        """A new browser tab starts at the photo's camera: the meshes lie over the picture."""
        client.camera.up_direction = (0.0, 0.0, 1.0)  # the camera's -y (image up), turned by the world frame
        client.camera.position = (0.0, 0.0, 0.0)
        client.camera.look_at = (0.0, 3.0, 0.0)  # down the camera's +z, which the world frame turns to +y
        if self.frame is not None:
            client.camera.fov = self.frame.fov_y


def start_viewer(out_dir: Path, host: str = "127.0.0.1", port: int = 8080):
    """A viser server showing the results in ``out_dir``; returns (server, viewer)."""
    try:
        import viser
    except ImportError:
        raise ViewerUnavailable(f'hmrkit view needs viser: pip install "viser=={VISER_VERSION}"') from None
    if not out_dir.is_dir():
        raise ViewerUnavailable(f"{out_dir}: no such folder")
    results = find_results(out_dir)
    if not results:
        raise ViewerUnavailable(f"{out_dir}: no results of hmrkit run (<name>.npz with its .json; --no-npz leaves none)")
    server = viser.ViserServer(host=host, port=port, verbose=False)
    return server, ResultsViewer(server, results)
