"""Perception with MediaPipe 0.10.21's legacy solutions (pose, hands, face detection), all bundled.

How it works and why:
- Body: ``mp.solutions.pose`` with ``model_complexity=1``, the only pose model inside the
  wheel (0 and 2 download at run time and must never be used). Photos use static mode;
  ``video=True`` uses MediaPipe's tracking (frames must then come in order from one video).
- Multi-person: MediaPipe Pose finds ONE person per call, and its detector is built for one
  prominent person. Three searches add people, up to ``max_people``:
  1. paint-over: the person found is painted over (landmark box, flat mean colour) and pose
     runs again, until nothing new is found;
  2. face seeds (photos only): faces are found with the bundled full-range face detector on
     square tiles (image short side, then half of it while that keeps finding people or two
     or more people were found); under
     each face not yet explained, pose runs on an upright window of 5 x 10 face heights, and
     the result is kept only when its nose lands on that face (one retry with the wrong person
     painted over);
  3. face ROIs (photos only): under each face (scored 0.7 or more) that no one's nose lies near
     the centre of, the pose landmark model on an upright ROI of 10, 8, 13 or 6 face heights
     in turn, kept when its nose lands on the face and its shoulders are as wide as the face
     says (``face_rois``). The landmarks follow the ROI given, so the crowded, seated rows of
     group photos, where the pose window above picks a neighbour, are found. A person found so
     replaces an earlier one whose nose lay on the face further from its centre (a mix of two
     neighbours); one whose nose lies further than an earlier person's is that person again.
  Limits: people whose face is hidden or turned away are found only by paint-over; painting a
  box can hide an overlapping neighbour; each person costs one or two pose calls. In video mode each
  person slot keeps its own tracking graph and sees the frame with the earlier slots' people
  painted over (no face seeds); slots tracking nobody search for new people only every
  ``new_person_every`` frames, so a frame costs about one pose call per tracked person.
- Concurrency: each MediaPipe call runs on one core and releases the GIL, so the hand
  searches of a person (and the face search of photos) run on ``workers`` threads while the
  body search goes on (benchmarks/results/speed_parts.md: 33 ms per wrist crop one at a time,
  18 ms each two at a time on 2 cores). Each thread has its own hand graph; results do not depend on the order.
- Hands: the hand model finds hands far more reliably on a crop around each pose wrist than on
  the whole frame (``geometry.hand_crop``); the hand whose wrist is nearest the pose wrist
  wins, and the SIDE COMES FROM THE POSE. Every hand seen in either wrist's crop of a person
  may go to either wrist (one crop often holds both hands), and claims are granted cheapest
  first: one hand per wrist, one wrist per hand, so a hand claimed by two wrists (own or
  another person's) goes to the nearer one and the other wrist gets its next candidate. Where
  a wrist lost the only hand seen near it (touching or overlapping hands: the palm detector
  finds the clearer one in both crops), it is searched again on tighter crops, first with the
  hands kept painted over, last as it is (``second_hand_look``; on ehf_dev 30 -> 35 of 40
  hands, none on the wrong side: benchmarks/results/hand_finding_*.md).
- Handedness: MediaPipe Hands labels hands as if the image were mirrored (selfie camera). On
  ordinary photos its label is the opposite of the person's side; measured on the demo photos
  against the pose's sides (benchmarks/results/perception.md). ``mirrored_input=True`` takes
  the labels as given, for selfie-camera frames.
- Hands only: when no body is found (or ``hands_only=True``) the hand model runs on the whole
  image and sides come from its handedness; two hands of opposite sides are reported as one
  person, anything else as one person per hand (a guess: the image says no more).
- No invented people (photos): the hand model also runs on the whole image (on a worker, while
  the body search goes on), and the bodies found are screened on whole-body evidence
  (``plausibility``): a "body" that is a hand seen close becomes that hand, reported alone; a
  body too small to be resolved goes; a body that two other models do not take for a person
  goes (the person segmentation under its seen landmarks, and where that sees little, the
  landmark model's own person flag on the body's ROI: furniture, toys, railings). The
  screening never looks at one limb's landmarks alone.
  Hands of that whole-image search that no wrist search found go onto a free pose wrist within
  half a hand of their wrist, or, outside every body's box (an arm not in view), are reported
  alone. (On the demo photos it rarely finds any: it looks for two hands on the whole image.)
- Second look (photos): when nobody at all was found, the pose model runs again on the photo
  padded, mirrored and turned (``hmrkit.perception.views``), for people cut by the border, upside
  down or lying; when that finds nobody either, BlazePose's person detector on windows of the
  photo and of its mirror image (small people), and the landmark model on its most confident ROIs.
- Turned search (photos): last, BlazePose's person detector runs on the photo turned by 90, 270
  and 180 degrees, and the landmark model on the ROI of each detection that no one found so far
  explains: people upside down or lying in a photo where others were found upright (a high
  jumper over the bar above the people standing by). A person it finds again, with other
  landmarks, is recognised by box overlap (``turned_search``).
- Refinement (photos of one or two people): each body's landmarks are made again on the ROI
  of the landmark model's own alignment points, as MediaPipe's tracking does from frame to
  frame, and kept where they stay near and the model is as sure of them (``refine_passes``).
- No silent cap: ``max_people`` is high by default, and the result says when it was reached.
- What was measured (benchmarks/results/people_before.md, people_after.md): the hand close-ups,
  the group photos against a manual count, and the first 200 lspet_dev photos, through the pipeline.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from hmrkit.io.images import ensure_rgb_uint8
from hmrkit.light_import import import_module_lightly
from hmrkit.perception.geometry import (
    Box,
    Crop,
    body_in_window,
    box_centre,
    clip_box,
    crop_centre_overlaps,
    cut,
    halve_to,
    hand_crop,
    iou,
    overlap,
    person_crop_from_face,
    pixel_box,
    points_box,
    square_tiles,
    union_box,
)
from hmrkit.perception.person_detector import PersonDetector, PersonRoi, body_roi, face_roi, roi_from_points
from hmrkit.perception.plausibility import PersonEvidence, PlausibilityConfig, needs_flag, screen
from hmrkit.perception.silhouette import Silhouette
from hmrkit.perception.views import mirrored_view, retry_views, turned_views
from hmrkit.perception.types import (
    BodyLandmarks,
    HandLandmarks,
    Perception,
    PersonDetection,
    Side,
    mp33_index,
    torso_length,
)

_SIDES: tuple[Side, Side] = ("left", "right")
_OTHER: dict[Side, Side] = {"left": "right", "right": "left"}
_ARM = {s: [mp33_index(f"{s}_{p}") for p in ("shoulder", "elbow", "wrist")] for s in _SIDES}
_KNUCKLES = {s: [mp33_index(f"{s}_{p}") for p in ("index", "pinky", "thumb")] for s in _SIDES}
# Head (0-10), shoulders (11, 12) and hips (23, 24): the landmarks behind a body's score.
_CORE = np.array(list(range(13)) + [23, 24])
_SHOULDERS = [mp33_index("left_shoulder"), mp33_index("right_shoulder")]
_MIN_FACE_TILE = 96  # px: smaller face-search tiles are not searched


@dataclass(frozen=True)
class MediaPipeConfig:
    """Settings of the MediaPipe backend (defaults suit photos).

    video: track between calls (consecutive frames of one video) instead of detecting anew.
    max_people: the most people reported per image; when reached, the result's notes say so
        (more people may be in the image). High by default: a photo's search stops when it
        finds nobody new, so the cap costs nothing below it; in video it is the most tracker slots.
    plausibility: photos: screen the bodies found (hand close-ups, bodies too small to be
        people; see ``hmrkit.perception.plausibility``), which also runs the hand model once on
        the whole image (unless ``hands`` and ``hands_fallback`` are both off: then no hand model
        runs and only the size check is made); None: keep every body MediaPipe reports.
    face_seeds: also look for people under detected faces (photos only; see module notes).
    face_levels: tile levels of the face search (1 = whole short side, 2 adds half-side tiles).
    turned_search: photos: after the searches above and the second look, the person detector on
        the photo turned by 90, 270 and 180 degrees (a copy of at most 640 px: the detector sees
        224); each detection whose hip centre and head point do not both lie inside a
        person found so far gets the landmark model on its ROI in the photo (the ROI's rotation
        turns the body upright). A result is dropped when it repeats a person (``_repeats``) or
        when its box and a found person's share more than half of the smaller box: the landmarks
        of a turned ROI can differ from the upright ones enough that IoU alone misses the
        repetition (three lspet_dev photos in tests/test_perception_views.py). What it adds on
        lspet_dev and the group photos: benchmarks/results/people_turned_*.md.
    second_look: photos where nobody was found: the pose model again on the photo padded,
        mirrored and turned by 90, 270 and 180 degrees, until one finds a body
        (``hmrkit.perception.views``: people cut by the border, upside down or lying); where that
        finds nobody either, the person detector on windows of the photo and of its mirror image
        (``PersonDetector.people_on_windows``: small people), and the landmark model on the ROIs
        of its ``window_tries`` most confident detections, scored ``min_window_score`` or more,
        in turn until one gives a body (0: no windows).
    min_window_score: the detector's score from which a detection on the windows is trusted. On
        the lspet_dev photos where only the windows found the athlete it scored 0.61 to 0.88
        (three of five pass this), and 0.67 on zidane.jpg with its two people inpainted away (the
        synthesis's background check, tests/test_synth_backgrounds.py): a photo without people
        must give nobody (development runs).
    face_detector: a face seed becomes a person by a pose call on an upright window under the
        face, where MediaPipe's pose picks whoever is most prominent (often a neighbour: one
        retry with them painted over). When that finds nobody on the face and this is True, the
        person detector runs on a window around the face and the landmark model on the ROI of
        the detection whose head point lies nearest the face (``person_detector``). Off by
        default: it finds a few more people in group photos (Solvay 16 against 14 of 29,
        tennis 22 against 21 of 24, none invented: benchmarks/results/people_after{_face_detector,}.md
        and a development run with the turned search), but on the 1000 lspet_dev sports photos
        it added 16 people, most of them the athlete found already, reported a second time with
        other landmarks (a development run, looked at by eye), at 6 ms more per person found
        (benchmarks/results/people_turned_speed.md).
    face_rois: last, under each face that no one found by the searches above has their nose near
        the centre of (0.3 face heights), the landmark model on an upright ROI below the face (``person_detector.face_roi``), these many face heights
        wide, in turn until its nose lands on the face (a standing adult is 9-10 face heights,
        a seated one about 7). The seated and half-hidden rows of group photos, where the pose
        window picks a neighbour and the person detector finds nobody. Where two or more people
        were found, every face level is then searched (the smaller tiles find the small faces
        these ROIs need; a portrait stops at the first). () turns this off.
        Measured in benchmarks/results/people_face_rois*.md (the group photos without and with them).
    min_roi_face_px: faces shorter than this get no face ROI. A person of 9-10 such faces is
        under ~200 px, and on the small lspet_dev photos the ROIs of 10-15 px faces put the
        landmarks of someone else, or of no one, on the face (a development run of
        benchmarks/diagnose_lsp_misses.py: 4 athletes fewer found without this limit).
    min_roi_face_score: faces the face detector is less sure of get no face ROI. On the demo
        photos (a development run over both tile levels), the faces it saw that were not faces
        (hands, a dress print, a tie) scored 0.61 to
        0.72, most under 0.7, and of the 102 real faces of 20 px or more in the counted photos 2
        did (0.60, 0.69); the landmark model puts a body under a hand taken for a face as readily
        as under a face (hand4whole_input.png: a hand holding a knife).
    refine_passes: photos of at most ``refine_max_people`` people: each body's landmarks are made
        again by the landmark model on the ROI of the landmarks found, then on the ROI of its own
        alignment points, this many calls in all (MediaPipe's tracking from frame to frame, on one
        photo: the ROI comes to fit the body); kept with the sides as found, and only where the
        landmarks moved less than half a torso and the model is as sure of them (``_as_found``).
        On the 1000 lspet_dev photos (development runs, perception alone, MediaPipe's PCK@0.2 of
        the 12 limb joints, missed athletes counted wrong): always kept after 0 / 1 / 2 / 3
        calls 0.616 / 0.608 / 0.618 / 0.629 (3 calls: 653 athletes found against 658); with
        those checks 0.625, 657 found. Each call costs ~25 ms. 0 turns this off. Not done: also
        starting from the ROI turned by 90, 180 and 270 degrees (people turned over) and keeping
        the most visible result fixed 12 of 49 athletes found badly but broke 14 of 168 found
        well (first 250 photos, a development run); agreement between the turned tries chose
        nothing (they rarely agree).
    refine_max_people: the most bodies a photo may hold for the refinement: in group photos its
        calls would add a quarter to perception's time per person.
    hands: look for hands around each pose wrist.
    hands_only: skip the body and search hands on the whole image.
    hands_fallback: search hands on the whole image when no body is found.
    mirrored_input: the images are mirrored (selfie camera); affects the hand model's labels.
    hand_crop_px: long side limit of wrist crops reaching past the image border (those are
        resampled; crops inside the image go to the model at full resolution).
    hand_crop_scale: wrist crop side in arm lengths (see geometry.hand_crop); 3.2 found the
        most hands on the demo photos among 1.6 to 4.6 (larger crops give the palm detector
        context, smaller ones resolution).
    min_hand_crop_px: wrist crops narrower than this are not searched: the hand in them is too
        small for the hand model (it found none in 19 such crops on the demo and 40 COCO photos,
        development run), and each search costs ~25 ms.
    pose_crop_px: the same limit for face-seeded body windows.
    body_search_px: the whole-image pose calls of photos whose long side exceeds this see the
        photo halved (2 x 2 means) until it fits, made once per photo; landmarks map back to
        full-image pixels. MediaPipe turns every call's input into a packet of its own and
        its models see 224-256 px, so a 4096-px photo cost ~93 ms a pose call against ~54
        halved (development timing, landmarks within 0.7 % of the person's height); only
        people under ~256 px tall in the halved photo lose detail. Wrist crops, face tiles and
        face-seeded windows still come from the full photo.
    new_person_every: video: the slots tracking nobody search for a new person on every n-th
        frame only (and on every frame while nobody is tracked); a search stops at the first
        free slot that finds nobody. Each slot's search is a full pose detection (~40 ms). On
        the sample video, 1 found 3.6 people per frame, 3 found 3.1 and 10 2.2 (MediaPipe's
        tracking often loses people, who are then found again only by a search).
    visible: visibility above which a body landmark counts as seen.
    workers: threads that search hands and faces while the body search goes on (each with its
        own MediaPipe graphs; 2 suits 2 cores).
    hand_model_complexity: MediaPipe Hands' models, both in the wheel: 1, the full palm detector
        and hand landmark model; 0, the lite ones. On the demo photos' wrist crops the lite models
        search a crop faster but find fewer hands (benchmarks/results/speed_floor.md).
    second_hand_look: photos: a wrist that lost the only hand seen near it to another wrist is
        searched again, (factor, painted) in turn until a hand is found: its crop shrunk about its
        centre by the factor (tighter crops give the hidden hand more pixels), on the image with
        every hand kept so far painted over (so the palm detector stops finding that one), or as
        it is (where the hands overlap, the paint also hides much of the other); () turns this
        off. Measured on ehf_dev and the first lspet_dev photos against hand labels
        (benchmarks/results/hand_finding_*.md).
    hand_retry_every: video: after a person's wrist crop finds no hand, that wrist is searched
        again only on every n-th frame (1, the default: every frame). On the first 60 frames of
        the sample video (benchmarks/results/speed_parts.md) 365 of 423 wrist searches found
        nothing; 2 / 3 / 4 cut the searches to 233 / 168 / 130 and perception from 63 to
        52 / 46 / 47 ms per person-frame, but kept hands fell from 33 to 26 / 24 / 20 (hands are
        found in some frames and missed in the next), so speed costs hands here.
    """

    video: bool = False
    max_people: int = 64
    plausibility: PlausibilityConfig | None = field(default_factory=PlausibilityConfig)
    face_seeds: bool = True
    face_levels: int = 2
    face_detector: bool = False
    face_rois: tuple[float, ...] = (10.0, 8.0, 13.0, 6.0)
    window_tries: int = 3
    min_window_score: float = 0.75
    refine_passes: int = 3
    refine_max_people: int = 2
    min_roi_face_px: float = 20.0
    min_roi_face_score: float = 0.7
    turned_search: bool = True
    second_look: bool = True
    hands: bool = True
    hands_only: bool = False
    hands_fallback: bool = True
    mirrored_input: bool = False
    min_pose_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    min_hand_confidence: float = 0.5
    min_face_confidence: float = 0.5
    hand_crop_px: int = 256
    hand_crop_scale: float = 3.2
    min_hand_crop_px: int = 80
    pose_crop_px: int = 1280
    body_search_px: int = 2048
    new_person_every: int = 1
    visible: float = 0.5
    workers: int = 2
    hand_retry_every: int = 1
    hand_model_complexity: int = 1
    second_hand_look: tuple[tuple[float, bool], ...] = ((0.75, True), (0.5, True), (0.45, False))

    def __post_init__(self) -> None:
        if self.workers < 1 or self.hand_retry_every < 1:
            raise ValueError(f"workers and hand_retry_every must be >= 1, got {self.workers}, {self.hand_retry_every}")
        if not all(0.0 < f <= 1.0 for f, _ in self.second_hand_look):
            raise ValueError(f"second_hand_look crop factors must lie in (0, 1], got {self.second_hand_look}")
        if self.hand_model_complexity not in (0, 1):
            raise ValueError(f"hand_model_complexity must be 0 or 1, got {self.hand_model_complexity}")
        if self.refine_passes < 0 or self.refine_max_people < 0:
            raise ValueError(f"refine_passes and refine_max_people must be >= 0, got {self.refine_passes}, "
                             f"{self.refine_max_people}")
        if self.window_tries < 0:
            raise ValueError(f"window_tries must be >= 0, got {self.window_tries}")
        if self.max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {self.max_people}")
        if self.new_person_every < 1:
            raise ValueError(f"new_person_every must be >= 1, got {self.new_person_every}")
        if not all(k > 0 for k in self.face_rois):
            raise ValueError(f"face_rois must be positive face heights, got {self.face_rois}")
        if self.face_levels < 1:
            raise ValueError(f"face_levels must be >= 1, got {self.face_levels}")
        if min(self.hand_crop_px, self.pose_crop_px, self.body_search_px) < 64:
            raise ValueError("hand_crop_px, pose_crop_px and body_search_px must be >= 64")
        for name in ("min_pose_confidence", "min_tracking_confidence", "min_hand_confidence",
                     "min_face_confidence", "min_roi_face_score", "min_window_score", "visible"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {v}")


@dataclass(frozen=True)
class _HandHit:
    """A hand the hand model found, already in full-image pixels."""

    xy: np.ndarray
    world: np.ndarray
    label_side: Side  # the person's side according to the hand model
    label_score: float


class MediaPipeBackend:
    """PerceptionBackend on MediaPipe's bundled pose, hand and face models.

    The MediaPipe graphs are created on first use and reused (creating one costs ~100 ms).
    Not thread-safe: use one backend per thread. Use as a context manager or call close().
    """

    def __init__(self, config: MediaPipeConfig | None = None) -> None:
        self.config = config or MediaPipeConfig()
        self._pose_graphs: list = []
        self._hand_graphs: list = []  # every hand graph made; the idle ones wait in _idle_hand_graphs
        self._idle_hand_graphs: queue.SimpleQueue = queue.SimpleQueue()
        self._face_graph = None
        self._detector: PersonDetector | None = None  # the person detector and ROI landmarks (main thread: faces, turns)
        self._silhouette: Silhouette | None = None  # person segmentation for the plausibility screen (main thread)
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._tracked_slots: list[int] = []  # video: the slots that found their person in the last frame
        self._frames = 0  # video: frames seen
        self._hand_waits: dict[tuple[int, Side], int] = {}  # video: frames a (track, wrist) that found no hand still skips

    # ------------------------------------------------------------------ public API
    def detect(self, image_rgb: np.ndarray) -> Perception:
        image = self._check(image_rgb)
        h, w = image.shape[:2]
        cfg = self.config
        notes: list[str] = []
        people: list[PersonDetection] = []
        whole: Future | None = None  # the hand model on the whole image
        if not cfg.hands_only:
            searches = _HandSearches(self, image) if cfg.hands else None
            screening = cfg.plausibility is not None and not cfg.video
            if screening and (cfg.hands or cfg.hands_fallback):  # no hand model at all otherwise
                whole = self._workers().submit(self._hands_on_whole, image)
            people = self._find_bodies(image, None if searches is None else searches.start)
            if len(people) >= cfg.max_people:
                notes.append(f"max_people ({cfg.max_people}) reached: the image may hold more people (raise --max-people)")
            if searches is not None:
                people = searches.attach(people)
            if not cfg.video and 0 < len(people) <= cfg.refine_max_people:
                people = [self._refined(image, person) for person in people]
            if screening:
                on_whole = [] if whole is None else [_lone_hand(hit) for hit in whole.result()]
                evidence = [self._evidence(image, p) for p in people] if cfg.plausibility.min_silhouette > 0 else None
                screened = screen(people, on_whole, w, h, cfg.plausibility, evidence)
                people = screened.people + [self._hands_person([hand], w, h) for hand in screened.lone_hands]
                notes += screened.notes
                if cfg.hands and people:
                    people, alone = _claim_whole_image_hands(people, on_whole, w, h)
                    people += [self._hands_person([hand], w, h) for hand in alone]
        if cfg.hands_only or (not people and cfg.hands_fallback):
            people = self._hands_only(image, None if whole is None else whole.result())
            notes.append("no body found: hands searched on the whole image, sides from the hand model"
                         if not cfg.hands_only else "hands only: sides from the hand model")
        return Perception(image_size=(w, h), people=people, notes=tuple(notes))

    def detect_pose(self, image_rgb: np.ndarray) -> list[PersonDetection]:
        """Bodies only (no hands): the body part of ``detect``, without its refinement (``refine_passes``)."""
        return self._find_bodies(self._check(image_rgb))

    def detect_hands(self, image_rgb: np.ndarray, people: list[PersonDetection]) -> list[PersonDetection]:
        """``people`` with hands searched on crops around their pose wrists."""
        searches = _HandSearches(self, self._check(image_rgb))
        for person in people:
            searches.start(person)
        return searches.attach(people)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for g in [*self._pose_graphs, *self._hand_graphs, self._face_graph, self._detector, self._silhouette]:
            if g is not None:
                g.close()
        self._detector = self._silhouette = None
        self._pose_graphs, self._hand_graphs, self._face_graph, self._pool = [], [], None, None
        self._closed = True

    def __enter__(self) -> MediaPipeBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, image_rgb: np.ndarray) -> np.ndarray:
        if self._closed:
            raise RuntimeError("MediaPipeBackend is closed")
        return ensure_rgb_uint8(image_rgb)

    # ------------------------------------------------------------------ graphs
    def _pose_graph(self, slot: int):
        """Static mode: one graph for every call. Video: one tracking graph per person slot."""
        index = slot if self.config.video else 0
        while len(self._pose_graphs) <= index:
            self._pose_graphs.append(
                _solution("pose").Pose(
                    static_image_mode=not self.config.video,
                    model_complexity=1,  # the only bundled pose model; 0 and 2 download
                    smooth_landmarks=True,
                    enable_segmentation=False,
                    min_detection_confidence=self.config.min_pose_confidence,
                    min_tracking_confidence=self.config.min_tracking_confidence,
                )
            )
        return self._pose_graphs[index]

    def _workers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="hmrkit-mediapipe")
        return self._pool

    def _borrow_hand_graph(self):
        """An idle hand graph (a new one when all are busy: one per thread at most)."""
        try:
            return self._idle_hand_graphs.get_nowait()
        except queue.Empty:
            graph = _solution("hands").Hands(
                static_image_mode=True,
                max_num_hands=2,
                model_complexity=self.config.hand_model_complexity,
                min_detection_confidence=self.config.min_hand_confidence,
            )
            self._hand_graphs.append(graph)
            return graph

    def _faces(self):
        if self._face_graph is None:
            self._face_graph = _solution("face_detection").FaceDetection(
                model_selection=1,  # full-range model (bundled), finds small faces too
                min_detection_confidence=self.config.min_face_confidence,
            )
        return self._face_graph

    # ------------------------------------------------------------------ model calls
    def _pose_in(self, patch: np.ndarray, crop: Crop, slot: int = 0) -> BodyLandmarks | None:
        """The body MediaPipe finds in ``patch``, which shows the window ``crop`` of the image."""
        result = self._pose_graph(slot).process(patch)
        if result.pose_landmarks is None:
            return None
        return body_in_window(result.pose_landmarks.landmark, result.pose_world_landmarks.landmark, crop)

    def _hands_in(self, image: np.ndarray, crop: Crop) -> list[_HandHit]:
        patch, _ = cut(image, crop, self.config.hand_crop_px)
        graph = self._borrow_hand_graph()
        try:
            result = graph.process(patch)
        finally:
            self._idle_hand_graphs.put(graph)
        if not result.multi_hand_landmarks:
            return []
        hits = []
        for lms, world, handed in zip(
            result.multi_hand_landmarks, result.multi_hand_world_landmarks, result.multi_handedness
        ):
            uv = np.array([(p.x, p.y) for p in lms.landmark], dtype=np.float64)
            label = handed.classification[0]
            hits.append(_HandHit(
                xy=uv * (crop.width, crop.height) + (crop.x0, crop.y0),
                world=np.array([(p.x, p.y, p.z) for p in world.landmark]),
                label_side=_person_side(label.label, self.config.mirrored_input),
                label_score=float(label.score),
            ))
        return hits

    def _faces_in(self, image: np.ndarray, crop: Crop) -> list[tuple[Box, float]]:
        patch, _ = cut(image, crop, 1024)
        result = self._faces().process(patch)
        faces = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            x0, y0 = crop.x0 + b.xmin * crop.width, crop.y0 + b.ymin * crop.height
            faces.append(((x0, y0, x0 + b.width * crop.width, y0 + b.height * crop.height), float(d.score[0])))
        return faces

    # ------------------------------------------------------------------ bodies
    def _find_bodies(self, image: np.ndarray, found: Callable[[PersonDetection], None] | None = None) -> list[PersonDetection]:
        """Everyone's body; ``found`` is told of each person as soon as they are found."""
        canvas = _Canvas(image, self.config.body_search_px)
        seeds = self.config.face_seeds and not self.config.video and min(image.shape[:2]) >= _MIN_FACE_TILE
        faces = self._workers().submit(self._faces_on_tiles, image, min(image.shape[:2])) if seeds else None
        people = self._paint_over(canvas, found)
        if faces is not None:
            seeded, seen = self._face_seeded(canvas, people, faces, found)
            people = self._at_faces(canvas, people + seeded, seen, found)
        if not people and self.config.second_look and not self.config.video:
            people = self._second_look(image, found)
        if self.config.turned_search and not self.config.video and len(people) < self.config.max_people:
            people += self._turned_search(image, people, found)
        return people[: self.config.max_people]

    def _second_look(self, image: np.ndarray, found: Callable[[PersonDetection], None] | None) -> list[PersonDetection]:
        """The first person the pose model finds on another view of the photo (see ``second_look``)."""
        h, w = image.shape[:2]
        reduced, scale = halve_to(image, self.config.body_search_px)  # as the whole-image search sees it
        for view in retry_views(reduced):
            vh, vw = view.image.shape[:2]
            body = self._pose_in(view.image, Crop(0.0, 0.0, float(vw), float(vh)))
            if body is None:
                continue
            back = view.body_back(body)
            person = self._person(back if scale == 1.0 else replace(back, xy=back.xy / scale), w, h)
            if person is not None:
                if found is not None:
                    found(person)
                return [person]
        person = self._on_windows(image)
        if person is not None and found is not None:
            found(person)
        return [] if person is None else [person]

    def _on_windows(self, image: np.ndarray) -> PersonDetection | None:
        """The most confident person the detector finds on windows of the photo or of its mirror
        image (``PersonDetector.people_on_windows``) whose ROI gives landmarks."""
        h, w = image.shape[:2]
        detector = self._person_detector()
        mirrored = mirrored_view(image)
        candidates = [(roi, None) for roi in detector.people_on_windows(image)]
        candidates += [(roi, mirrored) for roi in detector.people_on_windows(mirrored.image)]
        sure = [c for c in candidates if c[0].score >= self.config.min_window_score]
        for roi, view in sorted(sure, key=lambda c: -c[0].score)[: self.config.window_tries]:
            hip, head = [roi.centre, roi.head] if view is None else view.points_back(np.stack([roi.centre, roi.head]))
            centre, size, rotation = roi_from_points(hip, head)
            body = detector.landmarks(image, PersonRoi(centre, size, rotation, head, roi.score))
            person = None if body is None else self._person(body, w, h)
            if person is not None:
                return person
        return None

    def _turned_search(self, image: np.ndarray, people: list[PersonDetection],
                       tell: Callable[[PersonDetection], None] | None) -> list[PersonDetection]:
        """People the person detector finds on the photo turned (see ``turned_search``)."""
        h, w = image.shape[:2]
        detector = self._person_detector()
        scale = min(1.0, detector.max_window_px / max(h, w))  # the detector sees 224 px: turn a small copy
        small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                      interpolation=cv2.INTER_AREA)
        found: list[PersonDetection] = []
        for view in turned_views(small):
            vh, vw = view.image.shape[:2]
            for roi in detector.people_in(view.image, Crop(0.0, 0.0, float(vw), float(vh))):
                if len(people) + len(found) >= self.config.max_people:
                    return found
                hip, head = (view.points_back(np.stack([roi.centre, roi.head])) + 0.5) / scale - 0.5
                if any(_inside(hip, p.box) and _inside(head, p.box) for p in people + found):
                    continue  # most likely someone found already, seen turned
                centre, size, rotation = roi_from_points(hip, head)
                body = detector.landmarks(image, PersonRoi(centre, size, rotation, head, roi.score))
                person = None if body is None else self._person(body, w, h)
                # the landmarks of a turned ROI can differ enough from a found person's that their boxes
                # overlap little by IoU while one holds most of the other: the same person again
                if person is not None and not _repeats(person, people + found) and \
                        all(overlap(person.box, p.box) <= 0.5 for p in people + found):
                    found.append(person)
                    if tell is not None:
                        tell(person)
        return found

    def _evidence(self, image: np.ndarray, person: PersonDetection) -> PersonEvidence | None:
        """What the person segmentation, and where it doubts, the landmark model's person flag
        say of ``person``'s body (None for a hands-only person)."""
        if person.body is None:
            return None
        if self._silhouette is None:
            self._silhouette = Silhouette()
        cover = self._silhouette.coverage(image, person.body, self.config.visible)
        if not needs_flag(cover, self.config.plausibility):
            return PersonEvidence(cover)
        return PersonEvidence(cover, self._person_detector().person_flag(image, body_roi(person.body)))

    def _person_detector(self) -> PersonDetector:
        if self._detector is None:
            self._detector = PersonDetector()
        return self._detector

    def _faces_on_tiles(self, image: np.ndarray, side: int) -> list[tuple[Box, float]]:
        h, w = image.shape[:2]
        return _merge_faces([f for t in square_tiles(w, h, side) for f in self._faces_in(image, t)])

    def _paint_over(self, canvas: _Canvas, found: Callable[[PersonDetection], None] | None = None) -> list[PersonDetection]:
        """Pose on the whole image, painting each person found over before the next call.

        Video: the slots that tracked a person in the last frame go first (each sees the frame
        with the earlier ones' people painted over), then, on search frames, free slots until
        one finds nobody (``MediaPipeConfig.new_person_every``)."""
        h, w = canvas.shape
        cfg = self.config
        people: list[PersonDetection] = []
        slots: list[int] = list(range(cfg.max_people))
        if cfg.video:
            search = not self._tracked_slots or self._frames % cfg.new_person_every == 0
            free = [s for s in slots if s not in self._tracked_slots]
            slots = self._tracked_slots + (free if search else [])
            self._frames += 1
        for slot in slots:
            tracked = cfg.video and slot in self._tracked_slots
            body = self._pose_in(canvas.search, canvas.search_window, slot)
            person = None if body is None else self._person(body, w, h)
            if person is None or _repeats(person, people) or canvas.mostly_painted(body, cfg.visible):
                if tracked:
                    continue  # the next tracked slot still follows its person
                break
            people.append(replace(person, track_id=slot) if cfg.video else person)
            if found is not None:
                found(people[-1])
            if len(people) < cfg.max_people or cfg.face_seeds:
                canvas.paint(person.box)
        if cfg.video:
            self._tracked_slots = sorted(p.track_id for p in people)
        return people

    def _face_seeded(self, canvas: _Canvas, people: list[PersonDetection], first_faces: Future,
                     tell: Callable[[PersonDetection], None] | None = None
                     ) -> tuple[list[PersonDetection], list[tuple[Box, float]]]:
        """People under faces that no person found so far explains (see module notes), and every
        face seen, with its score. ``first_faces``: the faces on the first tile level (searched
        while bodies were)."""
        h, w = canvas.shape
        found: list[PersonDetection] = []
        seen: list[tuple[Box, float]] = list(first_faces.result())  # (face, score)
        if len(people) >= self.config.max_people:
            return found, seen
        short = min(w, h)
        for level in range(self.config.face_levels):
            side = short // (2**level)
            if side < _MIN_FACE_TILE:
                break
            faces = seen if level == 0 else self._faces_on_tiles(canvas.original, side)
            if level > 0:
                seen += faces
            new = 0
            for face in sorted((box for box, _ in faces), key=lambda b: -(b[3] - b[1])):
                if len(people) + len(found) >= self.config.max_people:
                    return found, seen
                if _explained(face, people + found):
                    continue
                person = self._person_under_face(canvas, face)
                if person is not None and not _repeats(person, people + found):
                    found.append(person)
                    if tell is not None:
                        tell(person)
                    canvas.paint(person.box)
                    new += 1
            if new == 0 and (not self.config.face_rois or len(people) + len(found) < 2):
                break  # smaller tiles: the small faces of group photos, for the face ROIs
        return found, seen

    def _at_faces(self, canvas: _Canvas, people: list[PersonDetection], faces: list[tuple[Box, float]],
                  tell: Callable[[PersonDetection], None] | None = None) -> list[PersonDetection]:
        """``people`` and the people the landmark model finds on ROIs at the faces that no one's
        nose lies near the centre of (``face_rois``, ``face_detector``). Its landmarks follow the
        ROI it is given, so nothing is painted over for it (painting its people's boxes would hide
        neighbours from the pose windows, which is why it comes after them). A person found so
        takes over their face: an earlier person whose nose lies on it, further from its centre, goes
        (their head landmarks straddle this face and a neighbour's: the pose model's mix of two
        people, or a second, worse copy of this one). Where an earlier person's nose lies nearer
        the centre, the new one is that worse copy and goes."""
        sure = [box for box, score in _merge_faces(faces) if score >= self.config.min_roi_face_score]
        for face in sorted(sure, key=lambda b: -(b[3] - b[1])):
            if len(people) >= self.config.max_people or face[3] - face[1] < self.config.min_roi_face_px:
                break
            if _explained(face, people, centred=True):
                continue
            person = self._person_at_face(canvas, face)
            if person is None:
                continue
            centre = box_centre(face)
            on_face = [p.body is not None and _nose_on_face(p.body, face) for p in people]
            off = [float(np.linalg.norm(p.body.xy[0] - centre)) if on else np.inf for p, on in zip(people, on_face)]
            if min(off, default=np.inf) <= np.linalg.norm(person.body.xy[0] - centre):
                continue  # someone found already is this face's, their nose nearer its centre
            others = [p for p, on in zip(people, on_face) if not on]
            if not _repeats(person, others):
                people = others + [person]
                if tell is not None:
                    tell(person)
        return people

    def _person_at_face(self, canvas: _Canvas, face: Box) -> PersonDetection | None:
        """The person whose face is ``face``, by the landmark model on a ROI: the person
        detector's (``face_detector``), else those of ``face_rois``; kept when the nose lands on the face."""
        if self.config.face_detector:
            person = self._person_by_detector(canvas, face)
            if person is not None:
                return person
        h, w = canvas.shape
        detector = self._person_detector()
        for faces_tall in self.config.face_rois:
            body = detector.landmarks(canvas.original, face_roi(face, faces_tall))
            if body is not None and _nose_on_face(body, face):
                return self._person(body, w, h) if _fits_face(body, face) else None
        return None

    def _person_by_detector(self, canvas: _Canvas, face: Box) -> PersonDetection | None:
        """The person detector on a window of 3 face heights (the face in its upper part), the
        detection whose head point lies nearest this face, and the landmark model on that
        detection's ROI; kept when the nose lands on the face."""
        h, w = canvas.shape
        x0, y0, x1, y1 = face
        fh = max(y1 - y0, 1.0)
        side = 3.0 * fh  # the detector finds crowded, seated people best with the face large (Solvay: 19 of
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2 + 0.5 * fh])  # 29 faces at 3, 18 at 4, fewer at 5-8)
        detector = self._person_detector()
        found = detector.people_in(canvas.original, Crop(centre[0] - side / 2, centre[1] - side / 2, side, side))
        face_centre = box_centre(face)
        near = [r for r in found if np.linalg.norm(r.head - face_centre) < 2.0 * fh]
        for roi in sorted(near, key=lambda r: np.linalg.norm(r.head - face_centre)):
            body = detector.landmarks(canvas.original, roi)
            if body is not None and _nose_on_face(body, face):
                return self._person(body, w, h)
        return None

    def _person_under_face(self, canvas: _Canvas, face: Box) -> PersonDetection | None:
        h, w = canvas.shape
        crop = person_crop_from_face(face)
        work = canvas.unpainted(face)
        for _ in range(2):
            body = self._pose_in(cut(work, crop, self.config.pose_crop_px)[0], crop)
            if body is None:
                return None
            if _nose_on_face(body, face):
                return self._person(body, w, h)
            wrong = self._person(body, w, h)
            if wrong is None:
                return None
            if work is canvas.image:
                work = work.copy()
            canvas.paint(wrong.box, into=work, keep=face)
        return None

    def _refined(self, image: np.ndarray, person: PersonDetection) -> PersonDetection:
        """``person`` with the landmarks the model gives after ``refine_passes`` calls on the ROI
        its own alignment points give (``PersonDetector.follow``), starting from the ROI of the
        landmarks found; as found where the model loses them."""
        if person.body is None or self.config.refine_passes == 0:
            return person
        h, w = image.shape[:2]
        body = self._person_detector().follow(image, body_roi(person.body), self.config.refine_passes)
        body = None if body is None else _as_found(body, person.body)
        refined = None if body is None else self._person(body, w, h)
        if refined is None:
            return person
        box = union_box([refined.box] + [points_box(hd.xy) for hd in person.hands.values()])
        return replace(person, body=body, box=clip_box(box, w, h), score=refined.score)

    def _person(self, body: BodyLandmarks, w: int, h: int) -> PersonDetection | None:
        seen = body.visibility >= self.config.visible
        pts = body.xy[seen] if seen.sum() >= 3 else body.xy
        x0, y0, x1, y1 = points_box(pts, margin=0.1)
        nose, shoulders = body.xy[0], body.xy[_SHOULDERS].mean(axis=0)
        head_top = nose[1] - 0.8 * abs(shoulders[1] - nose[1])  # landmarks stop at the eyes
        box = clip_box((x0, min(y0, head_top), x1, y1), w, h)
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            return None  # entirely outside the image
        return PersonDetection(box=box, score=float(body.visibility[_CORE].mean()), body=body)

    # ------------------------------------------------------------------ hands
    def _hands_on_whole(self, image: np.ndarray) -> list[_HandHit]:
        """The hand model on the whole image (halved like the body search when large: its palm
        detector sees 192 px anyway), in full-image pixels."""
        reduced, scale = halve_to(image, self.config.body_search_px)
        h, w = reduced.shape[:2]
        hits = self._hands_in(reduced, Crop(0.0, 0.0, float(w), float(h)))
        return hits if scale == 1.0 else [replace(hit, xy=hit.xy / scale) for hit in hits]

    def _hands_only(self, image: np.ndarray, hits: list[_HandHit] | None = None) -> list[PersonDetection]:
        """People of hands alone, from the whole-image hand search (``hits`` when already made)."""
        h, w = image.shape[:2]
        hands = [_lone_hand(hit) for hit in (self._hands_on_whole(image) if hits is None else hits)]
        groups = [hands] if len(hands) == 2 and hands[0].side != hands[1].side else [[hd] for hd in hands]
        return [self._hands_person(group, w, h) for group in groups]

    @staticmethod
    def _hands_person(hands: list[HandLandmarks], w: int, h: int) -> PersonDetection:
        return PersonDetection(box=clip_box(union_box([points_box(hd.xy) for hd in hands]), w, h),
                               score=max(hd.score for hd in hands), body=None, hands={hd.side: hd for hd in hands})


class _Canvas:
    """The image with found people painted over in a flat mean colour (copied on first paint),
    and the same at reduced resolution for whole-image pose calls (``search``; see
    ``MediaPipeConfig.body_search_px``)."""

    def __init__(self, image: np.ndarray, search_px: int) -> None:
        self.original = image
        self.image = image
        self.painted = np.zeros(image.shape[:2], dtype=bool)
        # OpenCV's mean: the same colour as numpy's axis mean, which took longer than a pose call
        # on large photos
        self.fill = np.array(cv2.mean(image)[:3]).astype(np.uint8)
        self._reduced, self._scale = halve_to(image, search_px)

    @property
    def search(self) -> np.ndarray:
        """The painted canvas for whole-image pose calls, at reduced resolution when large."""
        return self.image if self._scale == 1.0 else self._reduced

    @property
    def search_window(self) -> Crop:
        """The window of the image that ``search`` shows (all of it but an odd last pixel)."""
        h, w = self.search.shape[:2]
        return Crop(0.0, 0.0, w / self._scale, h / self._scale)

    @property
    def shape(self) -> tuple[int, int]:
        return self.original.shape[0], self.original.shape[1]

    def paint(self, box: Box, into: np.ndarray | None = None, keep: Box | None = None) -> None:
        """Paint ``box`` over on the canvas (or on ``into``), leaving the ``keep`` box as it was."""
        h, w = self.shape
        x0, y0, x1, y1 = pixel_box(box, w, h)
        if into is None:
            if self.image is self.original:
                self.image = self.original.copy()
            into = self.image
            self.painted[y0:y1, x0:x1] = True
            if self._scale != 1.0:
                rh, rw = self._reduced.shape[:2]
                r0, s0, r1, s1 = pixel_box([v * self._scale for v in box], rw, rh)
                self._reduced[s0:s1, r0:r1] = self.fill
        saved = None
        if keep is not None:
            k0, l0, k1, l1 = pixel_box(keep, w, h)
            saved = (k0, l0, k1, l1, into[l0:l1, k0:k1].copy())
        into[y0:y1, x0:x1] = self.fill
        if saved is not None:
            k0, l0, k1, l1, patch = saved
            into[l0:l1, k0:k1] = patch

    def unpainted(self, box: Box) -> np.ndarray:
        """The canvas with ``box`` as in the original image (a copy only when needed)."""
        h, w = self.shape
        x0, y0, x1, y1 = pixel_box(box, w, h)
        if not self.painted[y0:y1, x0:x1].any():
            return self.image
        image = self.image.copy()
        image[y0:y1, x0:x1] = self.original[y0:y1, x0:x1]
        return image

    def mostly_painted(self, body: BodyLandmarks | None, visible: float) -> bool:
        """Most of the body's seen, in-image landmarks lie on painted pixels (a ghost)."""
        if body is None:
            return True
        h, w = self.shape
        pts = body.xy[body.visibility >= visible]
        pts = pts[(pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)].astype(int)
        if len(pts) == 0:
            return True
        return bool(self.painted[pts[:, 1], pts[:, 0]].mean() > 0.5)


class _HandSearches:
    """The wrist-crop hand searches of one image, started per person as the body search finds
    them (on the backend's worker threads), then resolved together: a hand claimed twice goes
    to the claim with the lower cost."""

    def __init__(self, backend: MediaPipeBackend, image: np.ndarray) -> None:
        self.backend, self.image = backend, image
        self.started: list[tuple[PersonDetection, dict[Side, tuple[Crop, Future]]]] = []

    def start(self, person: PersonDetection) -> None:
        h, w = self.image.shape[:2]
        cfg = self.backend.config
        searches: dict[Side, tuple[Crop, Future]] = {}
        waits = self.backend._hand_waits
        if person.body is not None:
            for side in _SIDES:
                if waits.get((person.track_id, side), 0) > 0:  # video: this wrist found nothing lately
                    waits[person.track_id, side] -= 1
                    continue
                arm = person.body.xy[_ARM[side]]
                knuckles = person.body.xy[_KNUCKLES[side]].mean(axis=0)
                crop = hand_crop(*arm, knuckles, cfg.hand_crop_scale)
                if crop is None or crop.width < cfg.min_hand_crop_px or not crop_centre_overlaps(crop, w, h):
                    continue
                searches[side] = (crop, self.backend._workers().submit(self.backend._hands_in, self.image, crop))
        self.started.append((person, searches))

    def attach(self, people: list[PersonDetection]) -> list[PersonDetection]:
        """``people`` (each one started before) with their hands."""
        h, w = self.image.shape[:2]
        claims: list[tuple[float, int, HandLandmarks]] = []
        searched = [next(found for p, found in self.started if p is person) for person in people]
        seen = [[hit for _, hits in searches.values() for hit in hits.result()] for searches in searched]  # either wrist's
        for k, (person, searches) in enumerate(zip(people, searched)):
            for side, (crop, _) in searches.items():
                claims += [(cost, k, _wrist_hand(hit, side, crop)) for hit, cost in
                           _hand_candidates(seen[k], person.body.xy[_ARM[side]][2], side, crop.width)]
        for _, searches in self.started:  # people found but not kept: let their searches finish
            for _, hits in searches.values():
                hits.result()
        kept = _assign(claims)
        if self.backend.config.second_hand_look and not self.backend.config.video:
            kept = self._second_look(people, searched, seen, kept)
        self._note_misses(people, searched, kept)
        out = []
        for k, person in enumerate(people):
            hands = {hand.side: hand for j, hand in kept if j == k}
            box = union_box([person.box] + [points_box(hd.xy) for hd in hands.values()])
            out.append(replace(person, box=clip_box(box, w, h), hands=hands))
        return out

    def _second_look(self, people: list[PersonDetection], searched: list[dict[Side, tuple[Crop, Future]]],
                     seen: list[list[_HandHit]], kept: list[tuple[int, HandLandmarks]]) -> list[tuple[int, HandLandmarks]]:
        """Wrists left without a hand although one was seen near them (it went to the other wrist:
        hands that touch or overlap, where the palm detector finds the clearer hand in both wrists'
        crops) are searched again on tighter crops, with every hand kept so far painted over or
        not (``MediaPipeConfig.second_hand_look``, in turn until each finds a hand). A hand found
        so is kept under the first search's rule (its wrist within 0.3 crop sides of the pose
        wrist; not a hand already kept)."""
        open_wrists = [(k, side, crop) for k, searches in enumerate(searched) for side, (crop, _) in searches.items()
                       if not any(j == k and hand.side == side for j, hand in kept)
                       and _hand_candidates(seen[k], people[k].body.xy[_ARM[side]][2], side, crop.width)]
        if not open_wrists:
            return kept
        painted = self.image.copy()
        fill = tuple(int(v) for v in cv2.mean(self.image)[:3])
        for _, hand in kept:
            cv2.fillConvexPoly(painted, cv2.convexHull(_widened(hand.xy, 0.15).astype(np.int32)), fill)
        pool = self.backend._workers()
        for factor, paint in self.backend.config.second_hand_look:
            image = painted if paint else self.image
            looks = [(k, side, _shrunk(crop, factor)) for k, side, crop in open_wrists]
            looks = [(k, side, crop, pool.submit(self.backend._hands_in, image, crop)) for k, side, crop in looks]
            claims = [(cost, k, _wrist_hand(hit, side, crop)) for k, side, crop, hits in looks
                      for hit, cost in _hand_candidates(hits.result(), people[k].body.xy[_ARM[side]][2], side, crop.width)]
            kept = _assign(claims, kept)
            open_wrists = [(k, side, crop) for k, side, crop in open_wrists
                           if not any(j == k and hand.side == side for j, hand in kept)]
            if not open_wrists:
                break
        return kept

    def _note_misses(self, people: list[PersonDetection], searched: list[dict[Side, tuple[Crop, Future]]],
                     kept: list[tuple[int, HandLandmarks]]) -> None:
        """Video: a tracked wrist searched (``searched``: each person's searches) without a hand kept
        waits ``hand_retry_every - 1`` frames."""
        config, waits = self.backend.config, self.backend._hand_waits
        if not config.video:
            return
        tracks = {p.track_id for p in people}
        for key in [key for key in waits if key[0] not in tracks]:  # people no longer tracked
            del waits[key]
        for k, (person, searches) in enumerate(zip(people, searched)):
            for side in searches:
                if any(j == k and hand.side == side for j, hand in kept):
                    waits.pop((person.track_id, side), None)
                else:
                    waits[person.track_id, side] = config.hand_retry_every - 1


def _solution(name: str):
    """``mediapipe.solutions.<name>`` without ``mediapipe/__init__`` (matplotlib, audio tasks: start-up time)."""
    return import_module_lightly(f"mediapipe.python.solutions.{name}")


# ---------------------------------------------------------------------- decisions
def _repeats(person: PersonDetection, people: list[PersonDetection]) -> bool:
    """Same person as one already found: boxes overlap a lot or the noses nearly coincide."""
    for other in people:
        if iou(person.box, other.box) > 0.5:
            return True
        if person.body is not None and other.body is not None:
            scale = max(1.0, float(np.linalg.norm(other.body.xy[_SHOULDERS[0]] - other.body.xy[_SHOULDERS[1]])))
            if np.linalg.norm(person.body.xy[0] - other.body.xy[0]) < 0.3 * scale:
                return True
    return False


def _inside(point: np.ndarray, box: Box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _merge_faces(faces: list[tuple[Box, float]]) -> list[tuple[Box, float]]:
    """One (box, score) per face across overlapping tiles or tile levels (the most confident one)."""
    kept: list[tuple[Box, float]] = []
    for box, score in sorted(faces, key=lambda f: -f[1]):
        c = box_centre(box)
        size = box[3] - box[1]
        if all(np.linalg.norm(c - box_centre(k)) > 0.5 * max(size, k[3] - k[1])
               for k, _ in kept):
            kept.append((box, score))
    return kept


def _nose_on_face(body: BodyLandmarks, face: Box) -> bool:
    x0, y0, x1, y1 = face
    mx, my = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
    nx, ny = body.xy[0]
    return bool(x0 - mx <= nx <= x1 + mx and y0 - my <= ny <= y1 + my)


def _as_found(body: BodyLandmarks, found: BodyLandmarks) -> BodyLandmarks | None:
    """Refined landmarks ``body`` of the person whose landmarks were ``found``, with their sides
    as found (where the refined ones lie nearer the found ones with left and right exchanged, the
    model read the person the other way round this time: which way is right the photo often does
    not say, and refining should move landmarks, not reread the person); None where they moved
    half a torso or more on average (another reading of the photo, or another person) or where
    the model is less sure of them (a lower mean visibility)."""
    torso = torso_length(found.xy)
    swapped = body.sides_exchanged()
    moved, moved_swapped = (float(np.linalg.norm(b.xy - found.xy, axis=1).mean()) for b in (body, swapped))
    if moved_swapped < moved:
        body, moved = swapped, moved_swapped
    if body.visibility.mean() < found.visibility.mean():
        return None  # the model is less sure of the person this time
    return body if moved < 0.5 * torso else None


def _fits_face(body: BodyLandmarks, face: Box) -> bool:
    """The body is as large as its face: the shoulders at least 0.9 face heights apart. The
    landmark model puts a body on any ROI it is given; of the people the face ROIs found on the
    group photos the shoulders lay 1.17 to 2.24 face heights apart, and 0.66 on a pair of hands
    the face detector took for a face (the bodies of faces seen frontally face the camera too)."""
    shoulders = float(np.linalg.norm(body.xy[_SHOULDERS[0]] - body.xy[_SHOULDERS[1]]))
    return shoulders >= 0.9 * (face[3] - face[1])


def _explained(face: Box, people: list[PersonDetection], centred: bool = False) -> bool:
    """A found person's nose lies on this face already; ``centred``: within 0.3 face heights of
    its centre (a body whose head landmarks straddle two faces, the pose model's mix of two
    people, still leaves each face to the face ROIs)."""
    if not centred:
        return any(p.body is not None and _nose_on_face(p.body, face) for p in people)
    centre = box_centre(face)
    near = 0.3 * (face[3] - face[1])
    return any(p.body is not None and np.linalg.norm(p.body.xy[0] - centre) <= near for p in people)


def _hand_candidates(hits: list[_HandHit], wrist: np.ndarray, side: Side, crop_side: float) -> list[tuple[_HandHit, float]]:
    """(hit, cost) for each hit that may be this wrist's hand.

    Cost: wrist distance in crop sides, +0.15 when the hand model's label disagrees with the
    pose side. Hits farther than 0.3 crop sides are another hand, not this wrist's.
    """
    out = []
    for hit in hits:
        d = float(np.linalg.norm(hit.xy[0] - wrist)) / crop_side
        if d <= 0.3:
            out.append((hit, d + (0.15 if hit.label_side != side else 0.0)))
    return out


def _wrist_hand(hit: _HandHit, side: Side, crop: Crop) -> HandLandmarks:
    """A hit as the hand of the pose wrist on ``side`` (its score: the label's belief in that side)."""
    score = hit.label_score if hit.label_side == side else 1.0 - hit.label_score
    return HandLandmarks(side=side, xy=hit.xy, world=hit.world, score=score, side_source="pose", crop=crop.box)


def _assign(claims: list[tuple[float, int, HandLandmarks]], kept: list[tuple[int, HandLandmarks]] | None = None
            ) -> list[tuple[int, HandLandmarks]]:
    """Claims (cost, person, hand) granted cheapest first: one hand per wrist, one wrist per hand."""
    kept = list(kept or [])
    for _, k, hand in sorted(claims, key=lambda c: c[0]):
        if not any((j == k and other.side == hand.side) or _same_hand(hand, other) for j, other in kept):
            kept.append((k, hand))
    return kept


def _shrunk(crop: Crop, factor: float) -> Crop:
    """The crop scaled by ``factor`` about its centre."""
    cx, cy = crop.centre
    return Crop(float(cx - factor * crop.width / 2), float(cy - factor * crop.height / 2), factor * crop.width, factor * crop.height)


def _widened(points: np.ndarray, margin: float) -> np.ndarray:
    """(N, 2) points pushed away from their centroid by ``margin`` of their extent."""
    centre = points.mean(axis=0)
    extent = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    away = points - centre
    norm = np.linalg.norm(away, axis=1, keepdims=True)
    return points + margin * extent * away / np.maximum(norm, 1e-9)


def _same_hand(a: HandLandmarks, b: HandLandmarks) -> bool:
    """Two detections of one physical hand: mean landmark gap under 15 % of the hand's size."""
    size = float(np.linalg.norm(a.xy.max(axis=0) - a.xy.min(axis=0)))
    return float(np.linalg.norm(a.xy - b.xy, axis=1).mean()) < 0.15 * max(size, 1.0)


def _claim_whole_image_hands(people: list[PersonDetection], hands: list[HandLandmarks], w: int, h: int
                             ) -> tuple[list[PersonDetection], list[HandLandmarks]]:
    """Hands the whole-image search found that no wrist search did: onto the body whose pose wrist
    lies within half the hand's size of the hand's wrist, on that side (when the side has no hand
    yet); alone when the hand lies outside every body's box (an arm not in view); dropped
    otherwise (on someone's body but near no free wrist: whose it is, the image does not say)."""
    people = list(people)
    alone: list[HandLandmarks] = []
    for hand in hands:
        if any(_same_hand(hand, other) for p in people for other in p.hands.values()):
            continue
        size = float(np.linalg.norm(hand.xy.max(axis=0) - hand.xy.min(axis=0)))
        best = None
        for k, person in enumerate(people):
            if person.body is None:
                continue
            for side in _SIDES:
                d = float(np.linalg.norm(person.body.xy[_ARM[side][2]] - hand.xy[0]))
                if side not in person.hands and d < 0.5 * size and (best is None or d < best[0]):
                    best = (d, k, side)
        if best is not None:
            _, k, side = best
            score = hand.score if hand.side == side else 1.0 - hand.score
            placed = replace(hand, side=side, score=score, side_source="pose")
            person = people[k]
            people[k] = replace(person, hands={**person.hands, side: placed},
                                box=clip_box(union_box([person.box, points_box(hand.xy)]), w, h))
            continue
        cx, cy = hand.xy.mean(axis=0)
        if not any(p.box[0] <= cx <= p.box[2] and p.box[1] <= cy <= p.box[3] for p in people):
            alone.append(hand)
    return people, alone


def _lone_hand(hit: _HandHit) -> HandLandmarks:
    """A hand found without a body: its side from the hand model."""
    return HandLandmarks(side=hit.label_side, xy=hit.xy, world=hit.world, score=hit.label_score, side_source="hand_model")


def _person_side(label: str, mirrored_input: bool) -> Side:
    """The person's side from MediaPipe's handedness label (which assumes a mirrored image)."""
    side: Side = "left" if label.lower() == "left" else "right"
    return side if mirrored_input else _OTHER[side]
