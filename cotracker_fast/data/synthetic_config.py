"""What a synthetic clip looks like: :class:`SyntheticConfig` (validated on construction) and the shape and texture
kinds it draws from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

__all__ = ["SHAPES", "TEXTURES", "SyntheticConfig"]

#: Object shapes understood by :class:`SyntheticConfig`.
SHAPES = ("ellipse", "polygon", "blob")
#: Texture kinds understood by :class:`SyntheticConfig` (the default draws from all but ``"ramp"`` and ``"photo"``).
TEXTURES = ("noise", "stripes", "checkers", "gradient", "photo", "ramp")
# "photo" needs photographs (SyntheticConfig.photo_paths), so it is not in the default set.
_DEFAULT_TEXTURES = ("noise", "stripes", "checkers", "gradient")

# ----------------------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------------------


def _check_range(name: str, v: Any, lo: float, hi: float, integer: bool = False) -> Tuple[Any, Any]:
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise ValueError(f"SyntheticConfig.{name} must be a (min, max) pair, got {v!r}")
    a, b = v
    for x in (a, b):
        if (
            isinstance(x, bool)
            or not isinstance(x, (int, float, np.integer, np.floating))
            or (integer and not isinstance(x, (int, np.integer)))
        ):
            raise ValueError(f"SyntheticConfig.{name} must hold {'integers' if integer else 'numbers'}, got {v!r}")
    if not (lo <= a <= b <= hi):
        raise ValueError(f"SyntheticConfig.{name} must satisfy {lo} <= min <= max <= {hi}, got {v!r}")
    return (int(a), int(b)) if integer else (float(a), float(b))


@dataclass(frozen=True)
class SyntheticConfig:
    """What a synthetic clip looks like (all fields validated on construction; ``ValueError`` names the field).

    Attributes:
        num_frames: ``T >= 1``.
        size_hw: ``(H, W)`` in pixels, each >= 8.
        num_points: ``N >= 0`` tracks per clip.
        num_objects: ``(min, max)`` foreground objects, drawn uniformly (inclusive), ``0 <= min <= max <= 16``.
        object_size: ``(min, max)`` object diameter as a fraction of ``min(H, W)``, within ``(0, 2]``.
        shapes: object shapes to draw from (subset of :data:`SHAPES`).
        textures: texture kinds to draw from for every layer (subset of :data:`TEXTURES`; default all but
            ``"ramp"`` and ``"photo"``). ``"photo"`` crops one of ``photo_paths`` at a random scale. ``"ramp"`` is
            a test pattern, not for training: red and green grow linearly with the
            texture's x and y (``R = 255 * x / (w - 1)``), blue is a random constant, so the colour at a point
            names its texture position (bilinear rendering reproduces linear functions exactly).
        photo_paths: image files the ``"photo"`` texture draws from (needed when ``textures`` holds it).
        object_travel: largest distance an object's centre moves over the clip, in units of ``max(H, W)``
            (objects start anywhere in the frame, so large values make them leave it).
        object_rotation: largest total rotation of an object over the clip, degrees.
        object_zoom: largest ``|log|`` of an object's scale change over the clip.
        object_shear: largest anisotropy (log aspect) and shear of an object.
        perspective_probability: probability that an object's motion is a perspective (not affine) map.
        perspective: largest foreshortening of a perspective object: the homogeneous ``w`` varies by at most
            this much between the object's centre and its rim (``< 0.5``).
        wobble: amplitude of the smooth sinusoidal perturbation added to each object's path, in units of
            ``max(H, W)``.
        camera_motion_probability: probability that a camera homography moves all layers (the background too);
            otherwise the background is still.
        camera_translation: largest camera translation over the clip, fraction of the frame size per axis.
        camera_rotation: largest camera rotation over the clip, degrees.
        camera_zoom: largest ``|log|`` camera zoom over the clip.
        camera_perspective: largest camera foreshortening (as ``perspective``, over half the frame diagonal).
        object_point_fraction: fraction of the candidate points drawn on objects (the rest uniformly over the
            frame, mostly background); in ``[0, 1]``.
        mid_frame_sampling: draw candidates in frames 0 and ``T // 2`` (official); False: frame 0 only.
        random_query_fraction: the first ``int(N * f)`` tracks get a random visible query frame (official 0.25;
            0 for evaluation's "query first").
        quantize: round the video to integers (as 8-bit footage), keeping float32 storage.
        photo_share: probability that a layer is textured with a photograph, the other kinds of ``textures`` sharing
            the rest equally (needs ``"photo"`` in ``textures``); None: every kind of ``textures`` equally likely.
    """

    num_frames: int = 24
    size_hw: Tuple[int, int] = (384, 512)
    num_points: int = 256
    num_objects: Tuple[int, int] = (2, 6)
    object_size: Tuple[float, float] = (0.15, 0.5)
    shapes: Tuple[str, ...] = SHAPES
    textures: Tuple[str, ...] = _DEFAULT_TEXTURES
    photo_paths: Tuple[str, ...] = ()
    object_travel: float = 0.5
    object_rotation: float = 60.0
    object_zoom: float = 0.3
    object_shear: float = 0.15
    perspective_probability: float = 0.5
    perspective: float = 0.25
    wobble: float = 0.03
    camera_motion_probability: float = 0.5
    camera_translation: float = 0.12
    camera_rotation: float = 6.0
    camera_zoom: float = 0.15
    camera_perspective: float = 0.08
    object_point_fraction: float = 0.5
    mid_frame_sampling: bool = True
    random_query_fraction: float = 0.25
    quantize: bool = True
    photo_share: Optional[float] = None

    def __post_init__(self) -> None:
        def pos_int(name: str, lo: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"SyntheticConfig.{name} must be an integer >= {lo}, got {v!r}")
            object.__setattr__(self, name, int(v))

        def number(name: str, lo: float, hi: float) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not lo <= v <= hi:
                raise ValueError(f"SyntheticConfig.{name} must be a number in [{lo}, {hi}], got {v!r}")
            object.__setattr__(self, name, float(v))

        pos_int("num_frames", 1)
        pos_int("num_points", 0)
        hw = self.size_hw
        if (
            not isinstance(hw, (tuple, list))
            or len(hw) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 8 for v in hw)
        ):
            raise ValueError(f"SyntheticConfig.size_hw must be (H, W) integers >= 8, got {hw!r}")
        object.__setattr__(self, "size_hw", (int(hw[0]), int(hw[1])))
        object.__setattr__(self, "num_objects", _check_range("num_objects", self.num_objects, 0, 16, integer=True))
        object.__setattr__(self, "object_size", _check_range("object_size", self.object_size, 1e-6, 2.0))
        for name, known in (("shapes", SHAPES), ("textures", TEXTURES)):
            v = getattr(self, name)
            if isinstance(v, str) or not isinstance(v, (tuple, list)) or not v or any(s not in known for s in v):
                raise ValueError(f"SyntheticConfig.{name} must be a non-empty tuple drawn from {known}, got {v!r}")
            object.__setattr__(self, name, tuple(v))
        paths = self.photo_paths
        if isinstance(paths, str) or not isinstance(paths, (tuple, list)) or any(not isinstance(q, str) for q in paths):
            raise ValueError(f"SyntheticConfig.photo_paths must be a tuple of file paths, got {paths!r}")
        object.__setattr__(self, "photo_paths", tuple(paths))
        if "photo" in self.textures and not self.photo_paths:
            raise ValueError("SyntheticConfig.textures holds 'photo' but photo_paths is empty: give the photographs")
        number("object_travel", 0.0, 10.0)
        number("object_rotation", 0.0, 720.0)
        number("object_zoom", 0.0, 1.5)
        number("object_shear", 0.0, 0.5)
        number("perspective_probability", 0.0, 1.0)
        number("perspective", 0.0, 0.49)
        number("wobble", 0.0, 1.0)
        number("camera_motion_probability", 0.0, 1.0)
        number("camera_translation", 0.0, 1.0)
        number("camera_rotation", 0.0, 45.0)
        number("camera_zoom", 0.0, 1.0)
        number("camera_perspective", 0.0, 0.3)
        number("object_point_fraction", 0.0, 1.0)
        number("random_query_fraction", 0.0, 1.0)
        if self.photo_share is not None:
            number("photo_share", 0.0, 1.0)
            if "photo" not in self.textures or (self.photo_share < 1.0 and set(self.textures) == {"photo"}):
                raise ValueError(f"SyntheticConfig.photo_share needs 'photo' and another kind in textures, got "
                                 f"{self.textures!r}")
        for name in ("mid_frame_sampling", "quantize"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"SyntheticConfig.{name} must be a bool, got {getattr(self, name)!r}")
