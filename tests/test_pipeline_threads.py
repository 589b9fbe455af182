"""The fit's thread settings: PyTorch's and numpy's BLAS pools limited inside, restored after."""

import torch
from threadpoolctl import threadpool_info

from hmrkit.pipeline import compute_threads


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_compute_threads_limits_torch_and_blas_and_restores_them():
    torch_before, blas_before = torch.get_num_threads(), _blas_threads()
    assert blas_before, "numpy's BLAS pool is visible to threadpoolctl"
    with compute_threads(1):
        assert torch.get_num_threads() == 1
        assert _blas_threads() == [1] * len(blas_before)
    assert torch.get_num_threads() == torch_before and _blas_threads() == blas_before
    with compute_threads(1, limit_blas=False):  # photos: the fit runs alone, BLAS keeps its threads
        assert torch.get_num_threads() == 1 and _blas_threads() == blas_before
    assert torch.get_num_threads() == torch_before


class _Recorded:
    """A perception backend that answers with detections made before (the protocol and no more)."""

    def __init__(self, perception) -> None:
        self.perception, self.closed = perception, False

    def detect(self, image_rgb):
        return self.perception

    def close(self) -> None:
        self.closed = True


def test_the_pipeline_needs_only_the_backend_protocol():
    """Benchmarks hand the pipeline one MediaPipe result for several estimators through a backend
    of their own: the pipeline may use nothing beyond ``PerceptionBackend`` (detect, close)."""
    from conftest import shared_data

    from hmrkit.io import load_image
    from hmrkit.perception import PerceptionBackend
    from hmrkit.pipeline import Pipeline

    rgb = load_image(shared_data("demo_images", "astronaut.png")).rgb
    with Pipeline() as pipeline:
        direct = pipeline.run(rgb)
        recorded = _Recorded(pipeline.backend.detect(rgb))
        assert isinstance(recorded, PerceptionBackend)
        pipeline.backend.close()
        pipeline.backend = recorded
        replayed = pipeline.run(rgb)
    assert recorded.closed and len(direct.people) == len(replayed.people) == 1
    torch.testing.assert_close(replayed.people[0].joints3d, direct.people[0].joints3d)


def test_the_limb_classifier_runs_on_the_fits_threads():
    """BPAC-Net on a few people is per-op overhead like the fit: with PyTorch's default two threads
    and the other core busy it took 66 instead of 14 ms a person (``benchmarks/results/limb_threads.md``),
    so the stage runs inside ``compute_threads`` too."""
    from conftest import shared_data

    from hmrkit.io import load_image
    from hmrkit.limb_stage import LimbChoice
    from hmrkit.models.bpac_net import BpacClassifier
    from hmrkit.pipeline import Pipeline

    class Recording(BpacClassifier):  # the shipped classifier, noting the threads it was called with
        threads: list[int] = []

        def classify(self, rgb, people):
            self.threads.append(torch.get_num_threads())
            return super().classify(rgb, people)

    shipped = BpacClassifier.load()
    classifier = Recording(shipped.net, shipped.thresholds, shipped.metadata)
    torch.set_num_threads(2)
    rgb = load_image(shared_data("demo_images", "astronaut.png")).rgb
    with Pipeline() as pipeline:
        pipeline.limbs = LimbChoice(classifier=classifier)  # the stage's choice: limbs decided per person
        result = pipeline.run(rgb)
    assert len(result.people) == 1 and result.people[0].limbs is not None
    assert Recording.threads == [pipeline.config.fit_threads] == [1]
    assert torch.get_num_threads() == 2  # restored after
