"""MediaPipe's BlazePose person detector and pose landmark model run directly (issue 15).

``mp.solutions.pose`` runs the person detector on the whole input, keeps its best detection
and puts the landmark model on it: one person per call, chosen by the model. The same two
models are in the wheel as MediaPipe subgraphs, and running them as graphs of their own gives
what a multi-person search needs:

- ``PoseDetectionCpu`` on a window returns *every* person it finds there (MediaPipe's own SSD
  anchor decoding and non-maximum suppression, letterboxing undone), each with BlazePose's
  alignment points: the hip centre and a point near the top of the head fixing the body's size
  and rotation. (Its box is no face box here: a fixed 0.2 x 0.2 of the window around the upper body.)
- ``PoseLandmarkByRoiCpu`` puts the landmark model on a region we choose: the square ROI
  MediaPipe derives from those points (centred on the hips, 2 x 1.25 x the hip-to-point
  distance wide, turned so the body is upright). So the landmarks are of *that* person, not of
  whoever is most prominent in a crop. It also gives the model's own two alignment points, from
  which MediaPipe's tracking makes the next frame's ROI; ``follow`` does that on one photo.

No new runtime: these are the graphs ``mp.solutions.pose`` itself is built from, loaded from the
wheel's modules (pose_detection.tflite, pose_landmark_full.tflite). Not thread-safe: one
instance per thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmrkit.light_import import import_module_lightly
from hmrkit.perception.geometry import Crop, body_in_window, box_centre, cut
from hmrkit.perception.types import BodyLandmarks, mp33_index

_LEFT_HIP, _RIGHT_HIP = mp33_index("left_hip"), mp33_index("right_hip")
_LEFT_SHOULDER, _RIGHT_SHOULDER = mp33_index("left_shoulder"), mp33_index("right_shoulder")

_DETECTOR_GRAPH = """
input_stream: "image"
output_stream: "detections"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }
"""
_LANDMARK_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
output_stream: "world_landmarks"
output_stream: "alignment"
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
  output_stream: "WORLD_LANDMARKS:world_landmarks"
  output_stream: "AUXILIARY_LANDMARKS:alignment"
}
"""
# The landmark model's own "is a person there" output (its second tensor, a probability), alone:
# the model run on the ROI as PoseLandmarkByRoiCpu prepares it (256 px, aspect kept, [0, 1] input).
_FLAG_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "flag"
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  input_stream: "NORM_RECT:roi"
  output_stream: "TENSORS:input"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] { output_tensor_width: 256 output_tensor_height: 256
    keep_aspect_ratio: true output_tensor_float_range { min: 0.0 max: 1.0 } border_mode: BORDER_ZERO } }
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input"
  output_stream: "TENSORS:output"
  options { [mediapipe.InferenceCalculatorOptions.ext] {
    model_path: "mediapipe/modules/pose_landmark/pose_landmark_full.tflite" delegate { xnnpack {} } } }
}
node {
  calculator: "SplitTensorVectorCalculator"
  input_stream: "output"
  output_stream: "flag_tensor"
  options { [mediapipe.SplitVectorCalculatorOptions.ext] { ranges: { begin: 1 end: 2 } } }
}
node { calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:flag_tensor" output_stream: "FLOAT:flag" }
"""
_FLAG_OPTIONS = ("mediapipe.calculators.tensor.image_to_tensor_calculator_pb2", "mediapipe.calculators.tensor.inference_calculator_pb2",
                 "mediapipe.calculators.core.split_vector_calculator_pb2", "mediapipe.calculators.tensor.tensors_to_floats_calculator_pb2")
ROI_SCALE = 1.25  # MediaPipe's PoseDetectionToRoi: the ROI is 1.25 x the alignment circle's diameter
# The landmark model's alignment point lies this many hip-to-shoulder vectors from the hips' centre
# (median over 322 lspet_dev bodies of the model's own output, 8 % off in the median: a development run)
TOP_PER_TORSO = 1.97


@dataclass(frozen=True)
class PersonRoi:
    """A person the detector found, in full-image pixels.

    centre: (2,) the hip centre (the ROI's centre). size: the square ROI's side. rotation:
    radians that turn the body upright (MediaPipe's convention). head: (2,) the alignment point
    near the top of the head.
    """

    centre: np.ndarray
    size: float
    rotation: float
    head: np.ndarray
    score: float


def roi_from_points(hip: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre, size, rotation) of MediaPipe's pose ROI from the hip centre and the alignment point."""
    d = np.asarray(top, np.float64) - np.asarray(hip, np.float64)
    rotation = math.pi / 2 - math.atan2(-d[1], d[0])
    rotation -= 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    return np.asarray(hip, np.float64), 2.0 * ROI_SCALE * float(np.hypot(*d)), rotation


def body_roi(body: BodyLandmarks) -> PersonRoi:
    """The ROI of a person from their landmarks: centred on the hips, the alignment point
    ``TOP_PER_TORSO`` hip-to-shoulder vectors up the body (MediaPipe derives its tracking ROI from
    that point, which only the landmark model's own output has: ``PersonDetector.follow``)."""
    hip = body.xy[[_LEFT_HIP, _RIGHT_HIP]].mean(axis=0)
    top = hip + TOP_PER_TORSO * (body.xy[[_LEFT_SHOULDER, _RIGHT_SHOULDER]].mean(axis=0) - hip)
    centre, size, rotation = roi_from_points(hip, top)
    return PersonRoi(centre, size, rotation, top, 1.0)


def face_roi(face: tuple[float, float, float, float], faces_tall: float) -> PersonRoi:
    """The ROI of an upright person whose face box is ``face``, ``faces_tall`` face heights wide.

    BlazePose's ROI is a square centred on the hip centre, 1.25 x the alignment circle's
    diameter (the circle through the hips' centre and a point above the head): the head lies in
    its upper part, about 0.4 of the side above the centre. So the hip centre is put that far
    below the face's centre, less 0.7 face heights (the face's centre lies below the head's top).
    A standing adult is about 9-10 face heights tall, seated about 7 (how many tried, in which
    order: ``MediaPipeConfig.face_rois``); the landmark model is robust to the ROI being off by
    a face or two, and what it returns is kept only when its nose lands on the face.
    """
    fh = max(face[3] - face[1], 1.0)
    centre = box_centre(face)
    size = faces_tall * fh
    return PersonRoi(centre + [0.0, 0.4 * size - 0.7 * fh], size, 0.0, centre - [0.0, fh], 1.0)


def _graph(text: str, outputs: list[str], side_inputs: dict | None = None, option_modules: tuple[str, ...] = ()):
    from google.protobuf import text_format

    calculator_pb2 = import_module_lightly("mediapipe.framework.calculator_pb2")  # not mediapipe's __init__: start-up
    solution_base = import_module_lightly("mediapipe.python.solution_base")
    import_module_lightly("mediapipe.python.solutions.pose")  # registers the calculators' option protos the text names
    for name in option_modules:  # the option protos of calculators the solution does not load itself
        import_module_lightly(name)
    config = text_format.Parse(text, calculator_pb2.CalculatorGraphConfig())
    return solution_base.SolutionBase(graph_config=config, side_inputs=side_inputs, outputs=outputs)


class PersonDetector:
    """The person detector on windows of an image, and the landmark model on chosen ROIs."""

    def __init__(self, max_window_px: int = 640) -> None:
        self.max_window_px = max_window_px  # windows are resampled to this side at most (the model sees 224)
        self._detector = None
        self._landmarker = None
        self._flagger = None

    def close(self) -> None:
        for g in (self._detector, self._landmarker, self._flagger):
            if g is not None:
                g.close()
        self._detector = self._landmarker = self._flagger = None

    def people_in(self, image: np.ndarray, window: Crop) -> list[PersonRoi]:
        """Everyone the detector finds in ``window`` of ``image``."""
        if self._detector is None:
            self._detector = _graph(_DETECTOR_GRAPH, ["detections"])
        patch, _ = cut(image, window, self.max_window_px)
        if max(patch.shape[:2]) > self.max_window_px:  # a window inside the image comes at full size
            import cv2

            s = self.max_window_px / max(patch.shape[:2])
            patch = cv2.resize(patch, (max(1, round(patch.shape[1] * s)), max(1, round(patch.shape[0] * s))),
                               interpolation=cv2.INTER_AREA)
        result = self._detector.process({"image": patch})
        found = []
        for d in result.detections or []:
            k = d.location_data.relative_keypoints
            to_image = lambda x, y: np.array([window.x0 + x * window.width, window.y0 + y * window.height])  # noqa: E731
            head = to_image(k[1].x, k[1].y)
            centre, size, rotation = roi_from_points(to_image(k[0].x, k[0].y), head)
            found.append(PersonRoi(centre, size, rotation, head, float(d.score[0])))
        return found

    def people_on_windows(self, image: np.ndarray, sides: tuple[float, ...] = (1.0, 0.75, 0.5)) -> list[PersonRoi]:
        """Everyone the detector finds on square windows of each of ``sides`` x the image's long
        side (3 x 3 overlapping windows below 1; the detector sees 224 px, so the smaller windows
        show small people larger), most confident first; of detections whose hip centres lie
        within a tenth of the ROI apart, the most confident one only."""
        h, w = image.shape[:2]
        found: list[PersonRoi] = []
        for frac in sides:
            side = frac * max(w, h)
            xs = np.linspace(0.0, w - side, 3) if w > side else [(w - side) / 2]
            ys = np.linspace(0.0, h - side, 3) if h > side else [(h - side) / 2]
            for y in dict.fromkeys(ys):
                for x in dict.fromkeys(xs):
                    found += self.people_in(image, Crop(float(x), float(y), side, side))
        kept: list[PersonRoi] = []
        for roi in sorted(found, key=lambda r: -r.score):
            if all(np.linalg.norm(roi.centre - k.centre) > 0.1 * max(roi.size, k.size) for k in kept):
                kept.append(roi)
        return kept

    def landmarks(self, image: np.ndarray, roi: PersonRoi) -> BodyLandmarks | None:
        """The 33 landmarks of the person in ``roi`` (None when the model says nobody is there)."""
        found = self._landmarks(image, roi)
        return None if found is None else found[0]

    def follow(self, image: np.ndarray, roi: PersonRoi, passes: int) -> BodyLandmarks | None:
        """The landmarks after ``passes`` calls of the landmark model, each on the ROI that the
        previous call's alignment points give: what MediaPipe's tracking does from frame to frame,
        here on one still photo (the ROI comes to fit the body the model sees). None when the
        first call finds nobody; a later call that finds nobody ends it."""
        body = None
        for _ in range(passes):
            found = self._landmarks(image, roi)
            if found is None:
                break
            body, (hip, top) = found
            centre, size, rotation = roi_from_points(hip, top)
            roi = PersonRoi(centre, size, rotation, top, roi.score)
        return body

    def person_flag(self, image: np.ndarray, roi: PersonRoi) -> float:
        """The landmark model's own probability that a person fills ``roi`` (its person flag, which
        MediaPipe's tracking uses to drop a lost person; the landmarks themselves are not made)."""
        if self._flagger is None:
            self._flagger = _graph(_FLAG_GRAPH, ["flag"], option_modules=_FLAG_OPTIONS)
        patch, rect, _ = _roi_input(image, roi)
        return float(self._flagger.process({"image": patch, "roi": rect}).flag)

    def _landmarks(self, image: np.ndarray, roi: PersonRoi) -> tuple[BodyLandmarks, np.ndarray] | None:
        """(the landmarks, the (2, 2) alignment points: hips' centre and the point above the
        head), in image pixels; None when the model says nobody is there."""
        if self._landmarker is None:
            self._landmarker = _graph(_LANDMARK_GRAPH, ["landmarks", "world_landmarks", "alignment"],
                                      {"model_complexity": 1})
        patch, rect, window = _roi_input(image, roi)
        result = self._landmarker.process({"image": patch, "roi": rect})
        if result.landmarks is None or result.world_landmarks is None or result.alignment is None:
            return None
        alignment = np.array([(p.x, p.y) for p in result.alignment.landmark[:2]]) * (window.width, window.height)
        return (body_in_window(result.landmarks.landmark, result.world_landmarks.landmark, window),
                alignment + (window.x0, window.y0))


def _roi_input(image: np.ndarray, roi: PersonRoi):
    """(patch, NormalizedRect, window) for the landmark model on ``roi``: the model sees a 256-px
    ROI, so it gets a patch around the ROI (not the whole photo) and the ROI within the patch."""
    rect_pb2 = import_module_lightly("mediapipe.framework.formats.rect_pb2")
    half = 0.75 * roi.size  # covers the turned square (half-diagonal 0.71 x size)
    window = Crop(roi.centre[0] - half, roi.centre[1] - half, 2 * half, 2 * half)
    patch, _ = cut(image, window, 768)
    rect = rect_pb2.NormalizedRect(x_center=0.5, y_center=0.5, width=roi.size / window.width,
                                   height=roi.size / window.height, rotation=roi.rotation)
    return np.ascontiguousarray(patch), rect, window
