"""Video, query, mask and track input/output for cotracker_fast.

Everything here is numpy + imageio (with the ffmpeg binary shipped by ``imageio-ffmpeg`` for video files
and imageio's pillow plugin for GIF/PNG/JPEG); there is no OpenCV dependency.

Conventions used throughout the package:

* frames are ``uint8`` RGB arrays of shape ``(H, W, 3)``;
* pixel coordinates are ``(x, y)`` with ``x`` the column and ``y`` the row, in pixels, and the *centre*
  of pixel ``(row i, column j)`` sits at ``(x=j, y=i)``;
* a query is a row ``(t, x, y)``: frame index ``t`` (0-based) and the pixel position in that frame.

Files are written atomically: data goes to a temporary file in the destination's directory which is
moved over the destination with :func:`os.replace` only once it is complete.
"""
from .common import (  # noqa: F401  (DEFAULT_FPS and PathLike are used by other modules)
    DEFAULT_FPS,
    IMAGE_EXTENSIONS,
    TRACK_EXTENSIONS,
    VIDEO_EXTENSIONS,
    PathLike,
    VideoReadError,
)
from .queries import load_mask, load_queries
from .tracks import load_tracks, save_tracks
from .video_read import VideoReader, read_video
from .video_write import VideoWriter, atomic_output

__all__ = [
    "VideoReadError",
    "VideoReader",
    "read_video",
    "VideoWriter",
    "load_queries",
    "load_mask",
    "save_tracks",
    "load_tracks",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "TRACK_EXTENSIONS",
    "atomic_output",
]

#: Still-image extensions read as single frames (and collected from directories), lower case.
