"""Types and constants shared by the io modules."""
from __future__ import annotations

import os
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]

#: Still-image extensions read as single frames (and collected from directories), lower case.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
#: Video extensions read through ffmpeg (any other non-image, non-GIF extension is tried with ffmpeg too).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
#: Extensions understood by :func:`save_tracks` / :func:`load_tracks`.
TRACK_EXTENSIONS = (".npz", ".csv", ".json")

DEFAULT_FPS = 25.0


class VideoReadError(OSError):
    """A video (or image sequence) exists but could not be read: corrupt, unsupported, or no frames."""
