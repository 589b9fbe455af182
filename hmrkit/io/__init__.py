"""Reading inputs (photos, video frames) into the RGB uint8 arrays hmrkit works on."""

from hmrkit.io.images import (
    DEFAULT_MAX_SIDE,
    ImageError,
    LoadedImage,
    VideoError,
    VideoFrame,
    VideoReader,
    ensure_rgb_uint8,
    load_image,
)

__all__ = [
    "DEFAULT_MAX_SIDE",
    "ImageError",
    "LoadedImage",
    "VideoError",
    "VideoFrame",
    "VideoReader",
    "ensure_rgb_uint8",
    "load_image",
]
