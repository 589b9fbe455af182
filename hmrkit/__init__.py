"""hmrkit: 3D human mesh recovery (body, hands, limb differences) from photos and videos, offline on a CPU."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hmrkit")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.1.0+source"


def __getattr__(name: str):
    # ``from hmrkit import Pipeline`` without importing torch/mediapipe for ``hmrkit --version``
    if name in ("Pipeline", "PipelineConfig"):
        from hmrkit import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)


__all__ = ["Pipeline", "PipelineConfig", "__version__"]
