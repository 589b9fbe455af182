"""Photo batches: each photo is read and detected one ahead, on a second thread, in order."""

from __future__ import annotations

import numpy as np
from PIL import Image

from conftest import shared_data
from hmrkit.io import ImageError
from hmrkit.perception import MediaPipeBackend, MediaPipeConfig
from hmrkit.photos import DetectedPhoto, detected_ahead


def test_photos_come_in_order_with_their_own_detections_and_errors(tmp_path):
    good = [shared_data("demo_images", name) for name in ("astronaut.png", "zidane.jpg", "grace_hopper.jpg")]
    bad = tmp_path / "text.png"
    bad.write_text("not an image")
    paths = [good[0], bad, good[1], tmp_path / "missing.jpg", good[2]]
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as ahead, MediaPipeBackend(MediaPipeConfig(hands=False)) as direct:
        out = list(detected_ahead(paths, ahead))
        assert [path for path, _ in out] == paths
        assert isinstance(out[1][1], ImageError) and isinstance(out[3][1], (ImageError, OSError))
        for path, detected in (out[0], out[2], out[4]):
            assert isinstance(detected, DetectedPhoto) and detected.perception_ms > 0
            expected = direct.detect(np.asarray(Image.open(path).convert("RGB")))
            assert len(detected.perception.people) == len(expected.people) >= 1
            for a, b in zip(detected.perception.people, expected.people):
                np.testing.assert_allclose(a.body.xy, b.body.xy, atol=1e-3)
        assert list(detected_ahead([], ahead)) == []
