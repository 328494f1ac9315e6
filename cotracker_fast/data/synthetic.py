"""Procedural training clips with exact point-track ground truth.

A clip is a stack of textured layers composited back to front: a background and 2-6 (configurable) foreground
objects. Each object is a shape (ellipse, convex polygon or smooth blob) with an anti-aliased alpha mask, filled
with a procedural texture (multi-scale noise, stripes, checkers, gradients, all with a noise overlay so that
every patch is trackable) or, when photographs are given (``SyntheticConfig.photo_paths``), with a crop of one. The
demo's photograph is never a default texture: the demo measures the tracker on it.
Every layer moves by its own smooth homography (affine, or perspective with some probability), a smooth
function of time; objects can travel out of the frame; with some probability a camera homography moves every
layer, the background included.

Rendering is inverse warping: frame pixel ``p`` of layer ``k`` at frame ``t`` takes the layer's bilinear value
(``torch.nn.functional.grid_sample``) at ``M[t, k]^-1 p``, where ``M[t, k]`` maps layer texture pixels to frame
pixels (pixel centres at integer coordinates in both). Layers are blended with their alpha, nearest last.

Ground truth is exact: a track is a texture point ``uv`` of one layer and ``tracks[t] = M[t, k] uv``. It is
*visible* at ``t`` when it lies in the frame (``0 <= x <= W-1``, ``0 <= y <= H-1``) and the nearer layers cover
it with alpha ``1 - prod_j (1 - alpha_j) < 0.5`` there (alpha of each nearer layer bilinearly sampled at the
point, the same function the renderer samples at pixel centres).

Tracks follow the official Kubric sampling: candidate points are drawn in frame 0 and in frame ``T // 2`` (so
every track is visible at least once), on the layer seen there (points within an anti-aliased edge are
rejected so each point belongs to one layer), with ``object_point_fraction`` of them drawn on objects, and the
``N`` tracks are a random subset of the two candidate lists together. Queries follow the official training rule
(:func:`cotracker_fast.data.clip.training_queries`).

Everything random is drawn from one ``numpy.random.Generator`` seeded by the clip seed, and rendering uses only
operations whose results do not depend on the number of threads (grid sampling and element-wise arithmetic; no
multi-threaded reductions), so a seed gives a bit-identical clip in any process or DataLoader worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .clip import TrackClip, inside_frame, sample_track_indices, training_queries

__all__ = [
    "SyntheticConfig",
    "SyntheticScene",
    "render_scene",
    "render_clip",
    "SyntheticTracks",
    "item_seed",
    "synthetic_eval_clips",
    "synthetic_eval_samples",
    "SHAPES",
    "TEXTURES",
    "SEED_STRIDE",
    "EVAL_CONFIG",
]

#: Object shapes understood by :class:`SyntheticConfig`.
SHAPES = ("ellipse", "polygon", "blob")
#: Texture kinds understood by :class:`SyntheticConfig` (the default draws from all but ``"ramp"`` and ``"photo"``).
TEXTURES = ("noise", "stripes", "checkers", "gradient", "photo", "ramp")
# "photo" needs photographs (SyntheticConfig.photo_paths), so it is not in the default set.
_DEFAULT_TEXTURES = ("noise", "stripes", "checkers", "gradient")
#: Item ``i`` of ``SyntheticTracks(seed=s)`` is rendered from seed ``s * SEED_STRIDE + i``.
SEED_STRIDE = 1_000_003
# Tags that keep the seed streams apart. numpy's SeedSequence ignores trailing zero words ((s, 0) seeds like s),
# so every derived seed ends in a non-zero tag or attempt number.
_RETRY_TAG = 0x5EED0001  # re-renders of an augmented training item
_AUG_TAG = 0x5EED0002  # the augmentation of a training item
_EVAL_TAG = 0xE7A15E7  # evaluation clips
# a candidate point belongs to a layer when that layer's alpha is >= 1 - _EDGE_EPS there and every nearer
# layer's alpha is <= _EDGE_EPS (points on anti-aliased edges are ambiguous and rejected)
_EDGE_EPS = 1e-3

Seed = Union[int, Sequence[int]]


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
        for name in ("mid_frame_sampling", "quantize"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"SyntheticConfig.{name} must be a bool, got {getattr(self, name)!r}")


# ----------------------------------------------------------------------------------------------------------
# small geometry helpers (numpy float64; explicit element-wise formulas, no BLAS)
# ----------------------------------------------------------------------------------------------------------


def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _linear(a: float, b: float, c: float, d: float) -> np.ndarray:
    return np.array([[a, b, 0.0], [c, d, 0.0], [0.0, 0.0, 1.0]])


def _chain(*ms: np.ndarray) -> np.ndarray:
    out = ms[0]
    for m in ms[1:]:
        out = out @ m
    return out


def _apply_h(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Apply homographies ``m (..., 3, 3)`` to points ``x, y`` (broadcastable ``(...)``): returns ``(x', y')``."""
    xn = m[..., 0, 0] * x + m[..., 0, 1] * y + m[..., 0, 2]
    yn = m[..., 1, 0] * x + m[..., 1, 1] * y + m[..., 1, 2]
    w = m[..., 2, 0] * x + m[..., 2, 1] * y + m[..., 2, 2]
    return xn / w, yn / w


def _normaliser(h: int, w: int) -> np.ndarray:
    """Texture pixel coordinates -> ``grid_sample`` coordinates (``align_corners=False``)."""
    return np.array([[2.0 / w, 0.0, 1.0 / w - 1.0], [0.0, 2.0 / h, 1.0 / h - 1.0], [0.0, 0.0, 1.0]])


def _smooth_curve(rng: np.random.Generator, u: np.ndarray, total: float, wobble: float) -> np.ndarray:
    """A smooth scalar path over normalised time ``u`` (T,), 0 at ``u = 0``: a linear drift of ``total`` with a
    random quadratic ease and a sinusoid of amplitude ``wobble`` (less than 1.5 periods over the clip)."""
    ease = rng.uniform(-0.5, 0.5)
    drift = total * (u + ease * u * (1.0 - u) * 2.0)
    f = rng.uniform(0.3, 1.5)
    ph = rng.uniform(0.0, 2.0 * math.pi)
    return drift + wobble * (np.sin(2.0 * math.pi * f * u + ph) - math.sin(ph))


# ----------------------------------------------------------------------------------------------------------
# textures (torch, element-wise arithmetic + grid_sample only)
# ----------------------------------------------------------------------------------------------------------


def _resize(x: torch.Tensor, size_hw: Tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize ``(C, h, w)`` to ``(C, H, W)`` with half-pixel centres (as ``F.interpolate(align_corners=False)``)
    through ``grid_sample`` (border-clamped), which gives the same result for any thread count."""
    c, h, w = x.shape
    hh, ww = size_hw
    xs = (torch.arange(ww, dtype=torch.float32) + 0.5) * (2.0 / ww) - 1.0
    ys = (torch.arange(hh, dtype=torch.float32) + 0.5) * (2.0 / hh) - 1.0
    grid = torch.stack([xs[None, :].expand(hh, ww), ys[:, None].expand(hh, ww)], -1)[None]
    return F.grid_sample(x[None], grid, mode=mode, padding_mode="border", align_corners=False)[0]


def _fbm(rng: np.random.Generator, channels: int, h: int, w: int, cell_max: float, persistence: float) -> torch.Tensor:
    """Multi-scale value noise ``(C, h, w)`` in ``[0, 1]``: random grids with cells from ``cell_max`` down to 4 px,
    each octave upsampled (bicubic) onto the next finer one and added with weight ``persistence ** octave``."""
    cells = []
    c = max(float(cell_max), 4.0)
    while c >= 4.0 - 1e-9:
        cells.append(c)
        c /= 2.0
    acc: Optional[torch.Tensor] = None
    for i, cell in enumerate(cells):
        gh, gw = max(2, int(math.ceil(h / cell)) + 1), max(2, int(math.ceil(w / cell)) + 1)
        g = torch.from_numpy(rng.random((channels, gh, gw), dtype=np.float32)) * float(persistence**i)
        acc = g if acc is None else _resize(acc, (gh, gw)) + g
    out = _resize(acc, (h, w))
    lo = out.amin(dim=(1, 2), keepdim=True)  # min / max reductions do not depend on the summation order
    hi = out.amax(dim=(1, 2), keepdim=True)
    return (out - lo) / torch.clamp(hi - lo, min=1e-6)


def _colour_pair(rng: np.random.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    a = rng.uniform(0.0, 255.0, 3)
    d = rng.normal(size=3)
    d = d / max(float(np.sqrt((d * d).sum())), 1e-6) * rng.uniform(90.0, 200.0)
    b = np.clip(a + d, 0.0, 255.0)
    return (torch.tensor(a, dtype=torch.float32)[:, None, None], torch.tensor(b, dtype=torch.float32)[:, None, None])


def _coords(h: int, w: int, rng: np.random.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates of an ``(h, w)`` canvas rotated by a random angle: ``(h, w)`` each."""
    th = rng.uniform(0.0, math.pi)
    c, s = math.cos(th), math.sin(th)
    x = torch.arange(w, dtype=torch.float32)[None, :]
    y = torch.arange(h, dtype=torch.float32)[:, None]
    return x * c + y * s, y * c - x * s


def _triangle(s: torch.Tensor) -> torch.Tensor:
    """Triangle wave of period 1 with values in ``[-1, 1]``."""
    return torch.abs((s - torch.floor(s)) - 0.5) * 4.0 - 1.0


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = torch.clamp(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@lru_cache(maxsize=1)
@lru_cache(maxsize=64)
def _photo_tensor(path: str) -> torch.Tensor:
    """The photograph at ``path`` as ``(3, h, w) float32`` RGB in 0..255 (grey images repeated), cached per path."""
    import imageio.v3 as iio

    img = np.asarray(iio.imread(path))
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[0] < 16 or img.shape[1] < 16:
        raise ValueError(f"photo {path!r}: expected an (H, W[, C]) image of at least 16x16, got {img.shape}")
    return torch.from_numpy(np.ascontiguousarray(img[:, :, :3]).astype(np.float32)).permute(2, 0, 1).contiguous()


def _texture(kind: str, rng: np.random.Generator, h: int, w: int, photos: Sequence[str] = ()) -> torch.Tensor:
    """A texture ``(3, h, w) float32`` in 0..255 of the given kind."""
    if kind == "ramp":
        x = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w) * (255.0 / max(w - 1, 1))
        y = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w) * (255.0 / max(h - 1, 1))
        return torch.stack([x, y, torch.full((h, w), float(rng.uniform(0.0, 255.0)))])
    if kind == "photo":
        photo = _photo_tensor(str(photos[int(rng.integers(len(photos)))]))
        ph, pw = photo.shape[1:]
        sc = min(rng.uniform(0.5, 1.3), (ph - 1) / h, (pw - 1) / w)  # photo pixels per texture pixel
        y0 = rng.uniform(0.0, ph - h * sc)
        x0 = rng.uniform(0.0, pw - w * sc)
        xs = x0 + (torch.arange(w, dtype=torch.float32) + 0.5) * sc  # photo edge coordinates
        ys = y0 + (torch.arange(h, dtype=torch.float32) + 0.5) * sc
        grid = torch.stack(
            [(xs * (2.0 / pw) - 1.0)[None, :].expand(h, w), (ys * (2.0 / ph) - 1.0)[:, None].expand(h, w)], -1
        )
        tex = F.grid_sample(photo[None], grid[None], mode="bilinear", padding_mode="border", align_corners=False)[0]
        if rng.random() < 0.5:
            tex = tex[torch.from_numpy(rng.permutation(3))]
        if rng.random() < 0.5:
            tex = torch.flip(tex, dims=[2])
        return tex.contiguous()
    a, b = _colour_pair(rng)
    fine = _fbm(rng, 3, h, w, rng.uniform(8.0, 32.0), rng.uniform(0.5, 0.8))
    detail = (fine - 0.5) * float(rng.uniform(40.0, 90.0))  # every texture carries trackable detail
    if kind == "noise":
        m = _fbm(rng, 1, h, w, rng.uniform(16.0, 128.0), rng.uniform(0.45, 0.75))
        tex = a + (b - a) * m
    elif kind == "stripes":
        x, _ = _coords(h, w, rng)
        period = rng.uniform(8.0, 40.0)
        sharp = rng.uniform(1.0, 3.0)
        prof = _smoothstep(_triangle(x / period + rng.random()) * sharp * 0.5 + 0.5)
        tex = a + (b - a) * prof
    elif kind == "checkers":
        x, y = _coords(h, w, rng)
        cell = rng.uniform(8.0, 48.0)
        k = cell / 3.0  # transition over about 3 px
        sx = torch.clamp(_triangle(x / (2.0 * cell) + rng.random()) * k, -1.0, 1.0)
        sy = torch.clamp(_triangle(y / (2.0 * cell) + rng.random()) * k, -1.0, 1.0)
        tex = a + (b - a) * (0.5 + 0.5 * sx * sy)
    elif kind == "gradient":
        x, y = _coords(h, w, rng)
        lin = x / max(h, w)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        xx = torch.arange(w, dtype=torch.float32)[None, :] - cx
        yy = torch.arange(h, dtype=torch.float32)[:, None] - cy
        rad = torch.sqrt(xx * xx + yy * yy) / max(h, w)
        m = torch.clamp(lin * rng.uniform(0.5, 1.5) + rad * rng.uniform(-1.0, 1.0) + rng.uniform(-0.2, 0.2), 0.0, 1.0)
        tex = a + (b - a) * m
        detail = detail * 1.5
    else:  # pragma: no cover - guarded by the config
        raise ValueError(f"unknown texture kind {kind!r}")
    return torch.clamp(tex + detail, 0.0, 255.0)


# ----------------------------------------------------------------------------------------------------------
# shapes: anti-aliased alpha from a signed distance (texture pixels, negative inside)
# ----------------------------------------------------------------------------------------------------------


def _shape_alpha(shape: str, rng: np.random.Generator, size: int, radius: float) -> torch.Tensor:
    """Alpha ``(1, size, size)`` in ``[0, 1]`` of a shape of outer radius ``radius`` centred on the canvas."""
    c = (size - 1) / 2.0
    x = torch.arange(size, dtype=torch.float32)[None, :] - c
    y = torch.arange(size, dtype=torch.float32)[:, None] - c
    if shape == "ellipse":
        a = radius * rng.uniform(0.85, 1.0)
        b = a * rng.uniform(0.45, 1.0)
        th = rng.uniform(0.0, math.pi)
        co, si = math.cos(th), math.sin(th)
        xr, yr = x * co + y * si, y * co - x * si
        q = torch.sqrt((xr / a) ** 2 + (yr / b) ** 2)
        grad = torch.sqrt((xr / (a * a)) ** 2 + (yr / (b * b)) ** 2) / torch.clamp(q, min=1e-6)
        sd = torch.where(q < 0.5, torch.full_like(q, -radius), (q - 1.0) / torch.clamp(grad, min=1e-6))
    elif shape == "polygon":
        n = int(rng.integers(3, 9))
        ang = np.arange(n) * (2.0 * math.pi / n) + rng.uniform(-0.3, 0.3, n) * (2.0 * math.pi / n) + rng.uniform(0, 6.3)
        squash = rng.uniform(0.6, 1.0)
        th = rng.uniform(0.0, math.pi)
        vx0, vy0 = np.cos(ang) * radius, np.sin(ang) * radius * squash
        vx = vx0 * math.cos(th) - vy0 * math.sin(th)  # an affine image of a convex polygon is convex
        vy = vx0 * math.sin(th) + vy0 * math.cos(th)
        sd = None
        for i in range(n):
            x0_, y0_, x1_, y1_ = vx[i], vy[i], vx[(i + 1) % n], vy[(i + 1) % n]
            ex, ey = x1_ - x0_, y1_ - y0_
            ln = math.hypot(ex, ey)
            nx, ny = ey / ln, -ex / ln  # outward normal for counter-clockwise vertices
            if nx * x0_ + ny * y0_ < 0:
                nx, ny = -nx, -ny
            d = x * float(nx) + y * float(ny) - float(nx * x0_ + ny * y0_)
            sd = d if sd is None else torch.maximum(sd, d)
    elif shape == "blob":
        k_max = 4
        ca = rng.uniform(-1.0, 1.0, k_max + 1) / np.arange(1, k_max + 2) ** 1.2 * 0.25
        sa = rng.uniform(-1.0, 1.0, k_max + 1) / np.arange(1, k_max + 2) ** 1.2 * 0.25
        ca[:2] = 0.0
        sa[:2] = 0.0
        thg = np.linspace(0.0, 2.0 * math.pi, 721)
        rg = 1.0 + sum(ca[k] * np.cos(k * thg) + sa[k] * np.sin(k * thg) for k in range(2, k_max + 1))
        scale = radius / float(rg.max())
        rho = torch.sqrt(x * x + y * y)
        cth = x / torch.clamp(rho, min=1e-6)
        sth = y / torch.clamp(rho, min=1e-6)
        # cos(k th) = T_k(cos th), sin(k th) = sin th * U_{k-1}(cos th) (Chebyshev): no transcendental calls
        t_prev, t_cur = torch.ones_like(cth), cth
        u_prev, u_cur = torch.ones_like(cth), 2.0 * cth
        r = torch.ones_like(cth)
        for k in range(2, k_max + 1):
            t_prev, t_cur = t_cur, 2.0 * cth * t_cur - t_prev  # T_k
            r = r + float(ca[k]) * t_cur + float(sa[k]) * sth * u_cur  # u_cur = U_{k-1}
            u_prev, u_cur = u_cur, 2.0 * cth * u_cur - u_prev
        sd = rho - r * scale
    else:  # pragma: no cover - guarded by the config
        raise ValueError(f"unknown shape {shape!r}")
    return torch.clamp(0.5 - sd, 0.0, 1.0)[None]


# ----------------------------------------------------------------------------------------------------------
# scene
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _Layer:
    rgb: torch.Tensor  # (3, h, w) float32 0..255
    alpha: Optional[torch.Tensor]  # (1, h, w) float32 or None (opaque background)
    maps: np.ndarray  # (T, 3, 3) float64, texture pixel -> frame pixel
    info: Dict[str, Any]

    @property
    def hw(self) -> Tuple[int, int]:
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])


def _object_maps(
    rng: np.random.Generator, cfg: SyntheticConfig, u: np.ndarray, centre_tex: float, radius: float
) -> Tuple[np.ndarray, bool]:
    """Texture -> frame maps ``(T, 3, 3)`` of one object (before the camera), and whether it is perspective."""
    h, w = cfg.size_hw
    big = float(max(h, w))
    cx0, cy0 = rng.uniform(0.05 * w, 0.95 * w), rng.uniform(0.05 * h, 0.95 * h)
    travel = rng.uniform(0.0, 1.0) * cfg.object_travel * big
    ang = rng.uniform(0.0, 2.0 * math.pi)
    wob = cfg.wobble * big
    px = cx0 + _smooth_curve(rng, u, travel * math.cos(ang), wob * rng.random())
    py = cy0 + _smooth_curve(rng, u, travel * math.sin(ang), wob * rng.random())
    rot = rng.uniform(0.0, 2.0 * math.pi) + _smooth_curve(
        rng, u, math.radians(rng.uniform(-1.0, 1.0) * cfg.object_rotation), math.radians(3.0) * rng.random()
    )
    zoom = np.exp(rng.uniform(-0.15, 0.15) + _smooth_curve(rng, u, rng.uniform(-1.0, 1.0) * cfg.object_zoom, 0.02))
    sh = cfg.object_shear
    aniso = rng.uniform(-sh, sh) + _smooth_curve(rng, u, rng.uniform(-sh, sh) * 0.5, 0.0)
    shear = rng.uniform(-sh, sh) + _smooth_curve(rng, u, rng.uniform(-sh, sh) * 0.5, 0.0)
    persp = rng.random() < cfg.perspective_probability and cfg.perspective > 0
    if persp:
        # |g . (x, y)| <= |g| * radius * sqrt(2) on the canvas: keep it below cfg.perspective
        lim = cfg.perspective / math.sqrt(2.0)
        g0 = rng.uniform(-lim, lim, 2) * 0.5
        g1 = rng.uniform(-lim, lim, 2) * 0.5
        gx = (g0[0] + (g1[0] - g0[0]) * u) / radius
        gy = (g0[1] + (g1[1] - g0[1]) * u) / radius
    maps = np.zeros((len(u), 3, 3))
    to_centre = _translate(-centre_tex, -centre_tex)
    for t in range(len(u)):
        c, s = math.cos(rot[t]), math.sin(rot[t])
        sx, sy = zoom[t] * math.exp(aniso[t]), zoom[t] * math.exp(-aniso[t])
        m = _chain(
            _translate(px[t], py[t]), _linear(c, -s, s, c), _linear(sx, 0.0, 0.0, sy), _linear(1.0, shear[t], 0.0, 1.0)
        )
        if persp:
            m = m @ np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [gx[t], gy[t], 1.0]])
        maps[t] = m @ to_centre
    return maps, bool(persp)


def _camera_maps(rng: np.random.Generator, cfg: SyntheticConfig, u: np.ndarray) -> Optional[np.ndarray]:
    """Camera homographies ``(T, 3, 3)`` (identity at frame 0) or ``None`` for a still camera."""
    if not rng.random() < cfg.camera_motion_probability:
        return None
    h, w = cfg.size_hw
    fc = ((w - 1) / 2.0, (h - 1) / 2.0)
    rf = 0.5 * math.hypot(h, w)
    tx = _smooth_curve(rng, u, rng.uniform(-1.0, 1.0) * cfg.camera_translation * w, 0.01 * w * rng.random())
    ty = _smooth_curve(rng, u, rng.uniform(-1.0, 1.0) * cfg.camera_translation * h, 0.01 * h * rng.random())
    rot = _smooth_curve(rng, u, math.radians(rng.uniform(-1.0, 1.0) * cfg.camera_rotation), 0.0)
    zoom = np.exp(_smooth_curve(rng, u, rng.uniform(-1.0, 1.0) * cfg.camera_zoom, 0.0))
    g = rng.uniform(-1.0, 1.0, 2) * cfg.camera_perspective / math.sqrt(2.0)
    maps = np.zeros((len(u), 3, 3))
    for t in range(len(u)):
        c, s = math.cos(rot[t]), math.sin(rot[t])
        p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [g[0] * u[t] / rf, g[1] * u[t] / rf, 1.0]])
        maps[t] = _chain(
            _translate(fc[0] + tx[t], fc[1] + ty[t]),
            _linear(c, -s, s, c),
            _linear(zoom[t], 0.0, 0.0, zoom[t]),
            p,
            _translate(-fc[0], -fc[1]),
        )
    return maps


def _build_layers(rng: np.random.Generator, cfg: SyntheticConfig) -> Tuple[List[_Layer], bool]:
    h, w = cfg.size_hw
    t_len = cfg.num_frames
    u = np.arange(t_len, dtype=np.float64) / max(t_len - 1, 1)
    cam = _camera_maps(rng, cfg, u)
    # background: a canvas larger than the frame when the camera moves (reflection-padded beyond it)
    m = 1.0 if cam is None else 1.0 + 2.0 * (cfg.camera_translation + 0.5 * cfg.camera_zoom) + 0.1
    bh, bw = int(math.ceil(h * m)) + 8, int(math.ceil(w * m)) + 8
    kind = str(rng.choice(cfg.textures))
    bg_map = _translate((w - 1) / 2.0 - (bw - 1) / 2.0, (h - 1) / 2.0 - (bh - 1) / 2.0)
    bg_maps = np.repeat(bg_map[None], t_len, 0) if cam is None else cam @ bg_map
    layers = [_Layer(_texture(kind, rng, bh, bw, cfg.photo_paths), None, bg_maps, {"texture": kind, "shape": "background"})]
    n_obj = int(rng.integers(cfg.num_objects[0], cfg.num_objects[1] + 1))
    for _ in range(n_obj):
        diam = rng.uniform(*cfg.object_size) * min(h, w)
        radius = max(2.0, diam / 2.0)
        size = 2 * int(math.ceil(radius)) + 7
        centre = (size - 1) / 2.0
        shape = str(rng.choice(cfg.shapes))
        alpha = _shape_alpha(shape, rng, size, radius)
        kind = str(rng.choice(cfg.textures))
        tex = _texture(kind, rng, size, size, cfg.photo_paths)
        maps, persp = _object_maps(rng, cfg, u, centre, radius)
        if cam is not None:
            maps = cam @ maps
        layers.append(_Layer(tex, alpha, maps, {"texture": kind, "shape": shape, "perspective": persp}))
    return layers, cam is not None


def _grid_for(inv_norm: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, affine: bool) -> torch.Tensor:
    """Sampling grid ``(F, h, w, 2)`` of frame pixels ``xs (F, 1, w)``, ``ys (F, h, 1)`` under normalised inverse
    maps ``inv_norm (F, 3, 3)`` (float32)."""
    g = inv_norm[:, :, :, None, None]  # (F, 3, 3, 1, 1): g[:, r, c] is (F, 1, 1)
    f, w = xs.shape[0], xs.shape[2]
    h = ys.shape[1]
    grid = torch.empty((f, h, w, 2), dtype=torch.float32)
    gx, gy = grid[..., 0], grid[..., 1]
    # the (F, 1, w) and (F, h, 1) parts are summed first, so each coordinate costs one full-size addition,
    # written straight into the grid
    torch.add(g[:, 0, 0] * xs + g[:, 0, 2], g[:, 0, 1] * ys, out=gx)
    torch.add(g[:, 1, 0] * xs + g[:, 1, 2], g[:, 1, 1] * ys, out=gy)
    if not affine:
        den = (g[:, 2, 0] * xs + g[:, 2, 2]) + g[:, 2, 1] * ys
        gx.div_(den)
        gy.div_(den)
    return grid


def _render(layers: List[_Layer], size_hw: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Composite the layers: ``video (T, 3, H, W) float32`` and ``front (T, H, W) int8``, the nearest layer with
    alpha >= 0.5 at each pixel centre."""
    h, w = size_hw
    t_len = layers[0].maps.shape[0]
    bg = layers[0]
    th, tw = bg.hw
    inv = np.linalg.inv(bg.maps)
    norm = torch.from_numpy((_normaliser(th, tw) @ inv).astype(np.float32))
    affine = bool(np.all(inv[:, 2, :2] == 0.0))
    static = bool(np.all(bg.maps == bg.maps[:1]))
    frames = 1 if static else t_len
    xs = torch.arange(w, dtype=torch.float32)[None, None, :].expand(frames, 1, w)
    ys = torch.arange(h, dtype=torch.float32)[None, :, None].expand(frames, h, 1)
    grid = _grid_for(norm[:frames], xs, ys, affine)
    tex = bg.rgb[None].expand(frames, -1, -1, -1)  # no copy: batch stride 0
    out = F.grid_sample(tex, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    video = out.expand(t_len, 3, h, w).contiguous() if static else out
    front = torch.zeros((t_len, h, w), dtype=torch.int8)

    for k, layer in enumerate(layers[1:], 1):
        lh, lw = layer.hw
        cx = np.array([-0.5, lw - 0.5, -0.5, lw - 0.5])
        cy = np.array([-0.5, -0.5, lh - 0.5, lh - 0.5])
        fx, fy = _apply_h(layer.maps[:, None], cx[None], cy[None])  # (T, 4)
        x0 = np.clip(np.floor(fx.min(1)), 0, w - 1).astype(np.int64)
        x1 = np.clip(np.ceil(fx.max(1)), 0, w - 1).astype(np.int64)
        y0 = np.clip(np.floor(fy.min(1)), 0, h - 1).astype(np.int64)
        y1 = np.clip(np.ceil(fy.max(1)), 0, h - 1).astype(np.int64)
        on = (fx.max(1) >= 0) & (fx.min(1) <= w - 1) & (fy.max(1) >= 0) & (fy.min(1) <= h - 1)
        ts = np.flatnonzero(on)
        if ts.size == 0:
            continue
        bw_ = int((x1 - x0)[ts].max()) + 1
        bh_ = int((y1 - y0)[ts].max()) + 1
        ox = np.minimum(x0[ts], w - bw_)
        oy = np.minimum(y0[ts], h - bh_)
        inv = np.linalg.inv(layer.maps[ts])
        norm = torch.from_numpy((_normaliser(lh, lw) @ inv).astype(np.float32))
        affine = bool(np.all(inv[:, 2, :2] == 0.0))
        xs = torch.from_numpy(ox.astype(np.float32))[:, None, None] + torch.arange(bw_, dtype=torch.float32)[None, None]
        ys = (
            torch.from_numpy(oy.astype(np.float32))[:, None, None]
            + torch.arange(bh_, dtype=torch.float32)[None, :, None]
        )
        grid = _grid_for(norm, xs, ys, affine)
        rgba = torch.cat([layer.rgb, layer.alpha], 0)[None].expand(len(ts), -1, -1, -1)
        s = F.grid_sample(rgba, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (F, 4, bh, bw)
        for j, t in enumerate(ts):
            a = s[j, 3:4]
            ya, xa = int(oy[j]), int(ox[j])
            region = video[t, :, ya : ya + bh_, xa : xa + bw_]
            region.copy_(region * (1.0 - a) + s[j, :3] * a)
            fr = front[t, ya : ya + bh_, xa : xa + bw_]
            fr.copy_(torch.where(a[0] >= 0.5, torch.tensor(k, dtype=torch.int8), fr))
    return video, front


def _alpha_at(layer: _Layer, maps_inv: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Alpha of ``layer`` (1 for the background) at frame points ``x, y`` (F, M) under inverse maps ``(F, 3, 3)``:
    the same bilinear function the renderer samples at pixel centres. Returns ``(F, M)`` float64."""
    if layer.alpha is None:
        return np.ones(np.shape(x))
    lh, lw = layer.hw
    u, v = _apply_h(maps_inv[:, None], x, y)
    gx = (2.0 * u + 1.0) / lw - 1.0
    gy = (2.0 * v + 1.0) / lh - 1.0
    grid = torch.from_numpy(np.stack([gx, gy], -1).astype(np.float32))[None]  # (1, F, M, 2)
    a = F.grid_sample(layer.alpha[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return a[0, 0].double().numpy()


def _candidates(
    rng: np.random.Generator, layers: List[_Layer], inv: List[np.ndarray], frame: int, count: int, cfg: SyntheticConfig
) -> Tuple[np.ndarray, np.ndarray]:
    """``count`` points ``(count, 2)`` on layers seen at ``frame`` and their layer index ``(count,)``."""
    h, w = cfg.size_hw
    n_obj_pts = int(round(count * cfg.object_point_fraction)) if len(layers) > 1 else 0
    wanted = {"any": count - n_obj_pts, "object": n_obj_pts}
    got_xy: Dict[str, List[np.ndarray]] = {"any": [], "object": []}
    got_k: Dict[str, List[np.ndarray]] = {"any": [], "object": []}
    # objects' frame bounding boxes at this frame (clipped to the frame), for object-biased draws
    boxes = []
    for layer in layers[1:]:
        lh, lw = layer.hw
        cx = np.array([-0.5, lw - 0.5, -0.5, lw - 0.5])
        cy = np.array([-0.5, -0.5, lh - 0.5, lh - 0.5])
        fx, fy = _apply_h(layer.maps[frame], cx, cy)
        bx0, bx1 = max(0.0, fx.min()), min(w - 1.0, fx.max())
        by0, by1 = max(0.0, fy.min()), min(h - 1.0, fy.max())
        if bx1 > bx0 and by1 > by0:
            boxes.append((bx0, bx1, by0, by1))
    if not boxes:
        wanted = {"any": count, "object": 0}
    for _ in range(64):
        todo = {kd: wanted[kd] - sum(len(a) for a in got_k[kd]) for kd in wanted}
        if all(v <= 0 for v in todo.values()):
            break
        for kd, need in todo.items():
            if need <= 0:
                continue
            m = 2 * need + 8
            if kd == "any":
                px = rng.uniform(0.0, w - 1.0, m)
                py = rng.uniform(0.0, h - 1.0, m)
            else:
                b = np.asarray(boxes)[rng.integers(0, len(boxes), m)]
                px = b[:, 0] + (b[:, 1] - b[:, 0]) * rng.random(m)
                py = b[:, 2] + (b[:, 3] - b[:, 2]) * rng.random(m)
            owner = np.full(m, -1, dtype=np.int64)
            blocked = np.zeros(m, dtype=bool)
            for k in range(len(layers) - 1, -1, -1):  # nearest first
                a = _alpha_at(layers[k], inv[k][frame : frame + 1], px[None], py[None])[0]
                free = (owner < 0) & ~blocked
                owner = np.where(free & (a >= 1.0 - _EDGE_EPS), k, owner)
                blocked |= free & (a > _EDGE_EPS) & (a < 1.0 - _EDGE_EPS)
            ok = (owner >= 0) & ~blocked
            if kd == "object":
                ok &= owner >= 1
            idx = np.flatnonzero(ok)[:need]
            got_xy[kd].append(np.stack([px[idx], py[idx]], -1))
            got_k[kd].append(owner[idx])
    xy = np.concatenate([np.zeros((0, 2))] + got_xy["any"] + got_xy["object"], 0)
    ks = np.concatenate([np.zeros(0, np.int64)] + got_k["any"] + got_k["object"], 0)
    if len(ks) < count:  # objects too small to hit: fill with points anywhere
        if wanted["object"] > 0:
            extra = _candidates(rng, layers, inv, frame, count - len(ks), replace(cfg, object_point_fraction=0.0))
            return np.concatenate([xy, extra[0]], 0), np.concatenate([ks, extra[1]], 0)
        raise RuntimeError(f"could not place {count} track points in frame {frame} (only {len(ks)} found)")
    return xy, ks


@dataclass
class SyntheticScene:
    """A rendered clip with what it was made from (for tests and inspection).

    Attributes:
        clip: the :class:`TrackClip` (``video (T, 3, H, W)``, ``tracks (T, N, 2)``, ``visible (T, N)``,
            ``queries (N, 3)``).
        point_layer: ``(N,) int64`` layer of each track (0 = background, ``k >= 1`` the k-th object; higher is
            nearer).
        coverage: ``(T, N) float32`` how much the nearer layers cover each track point, ``1 - prod(1 - alpha)``
            (a track is visible where it is in the frame and ``coverage < 0.5``).
        layer_maps: ``(T, L, 3, 3) float64`` texture pixel -> frame pixel homographies of the ``L`` layers.
        front_layer: ``(T, H, W) int8`` nearest layer with alpha >= 0.5 at each pixel centre.
        layers: per layer ``{"texture", "shape", ...}``.
        camera_moves: whether a camera motion was applied.
        description: one line describing the clip.
    """

    clip: TrackClip
    point_layer: np.ndarray
    coverage: np.ndarray
    layer_maps: np.ndarray
    front_layer: torch.Tensor
    layers: List[Dict[str, Any]] = field(default_factory=list)
    camera_moves: bool = False
    description: str = ""
    _layers: List[_Layer] = field(default_factory=list, repr=False)

    def layer_weight(self, layer: int, t: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """How much of the rendered colour at frame points ``(x, y)`` of frame ``t`` comes from ``layer``:
        ``alpha_layer * prod_{nearer j} (1 - alpha_j)`` there (1: the layer alone is seen; 0: none of it).

        Args:
            layer: layer index (0 = background).
            t: frame index.
            x, y: ``(M,)`` frame positions in pixels.

        Returns:
            ``(M,) float64`` in ``[0, 1]``.
        """
        x = np.asarray(x, dtype=np.float64)[None]
        y = np.asarray(y, dtype=np.float64)[None]
        out = _alpha_at(self._layers[layer], np.linalg.inv(self._layers[layer].maps[t : t + 1]), x, y)[0]
        for j in range(layer + 1, len(self._layers)):
            out = out * (1.0 - _alpha_at(self._layers[j], np.linalg.inv(self._layers[j].maps[t : t + 1]), x, y)[0])
        return out


def _make_rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, bool):
        raise ValueError(f"seed must be a non-negative integer or a sequence of them, got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        return np.random.default_rng(int(seed))
    if (
        isinstance(seed, (tuple, list))
        and seed
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in seed)
    ):
        return np.random.default_rng([int(s) for s in seed])
    raise ValueError(f"seed must be a non-negative integer or a sequence of them, got {seed!r}")


def render_scene(seed: Seed, config: Optional[SyntheticConfig] = None, *, name: Optional[str] = None) -> SyntheticScene:
    """Render one synthetic clip with its ground truth and the scene it came from.

    Args:
        seed: a non-negative integer (or a non-empty sequence of them): equal seeds and configs give
            bit-identical results, in any process.
        config: :class:`SyntheticConfig` (default: ``SyntheticConfig()``, 24 frames of 384x512, 256 tracks).
        name: the clip's name (default ``f"synthetic_{seed}"``).

    Returns:
        :class:`SyntheticScene`; its ``clip`` has ``video (T, 3, H, W) float32`` 0..255,
        ``tracks (T, N, 2) float32`` pixels, ``visible (T, N) bool``, ``queries (N, 3) float32`` ``(t, x, y)``.

    Raises:
        ValueError: bad seed or config.
    """
    cfg = SyntheticConfig() if config is None else config
    if not isinstance(cfg, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, got {type(cfg).__name__}")
    rng = _make_rng(seed)
    h, w = cfg.size_hw
    t_len, n = cfg.num_frames, cfg.num_points
    layers, cam = _build_layers(rng, cfg)
    video, front = _render(layers, (h, w))
    if cfg.quantize:
        video.round_()
    video.clamp_(0.0, 255.0)

    inv = [np.linalg.inv(layer.maps) for layer in layers]
    pools = [_candidates(rng, layers, inv, 0, n, cfg)]
    if cfg.mid_frame_sampling and t_len // 2 != 0:
        pools.append(_candidates(rng, layers, inv, t_len // 2, n, cfg))
    frames_of = np.concatenate([np.full(len(p[1]), f, np.int64) for p, f in zip(pools, [0, t_len // 2])])
    xy = np.concatenate([p[0] for p in pools], 0)
    ks = np.concatenate([p[1] for p in pools], 0)
    pick = rng.permutation(len(ks))[:n]
    xy, ks, frames_of = xy[pick], ks[pick], frames_of[pick]

    maps = np.stack([layer.maps for layer in layers], 1)  # (T, L, 3, 3)
    inv_all = np.stack(inv, 1)
    u, v = _apply_h(inv_all[frames_of, ks], xy[:, 0], xy[:, 1])  # texture points (N,)
    tx, ty = _apply_h(maps[:, ks], u[None], v[None])  # (T, N)
    tracks = np.stack([tx, ty], -1)
    keep = np.ones((t_len, n))
    for j in range(1, len(layers)):
        nearer = ks < j
        if not nearer.any():
            continue
        a = _alpha_at(layers[j], inv[j], tx, ty)
        keep = keep * np.where(nearer[None], 1.0 - a, 1.0)
    coverage = 1.0 - keep
    visible = inside_frame(tracks, (h, w)) & (coverage < 0.5)
    queries = training_queries(tracks, visible, rng, cfg.random_query_fraction)
    clip = TrackClip(
        video=video,
        tracks=torch.from_numpy(tracks.astype(np.float32)),
        visible=torch.from_numpy(visible),
        queries=torch.from_numpy(queries),
        name=name
        if name is not None
        else f"synthetic_{seed if isinstance(seed, (int, np.integer)) else '_'.join(map(str, seed))}",
    )
    info = [layer.info for layer in layers]
    objs = ", ".join(f"{i['shape']}/{i['texture']}" for i in info[1:]) or "none"
    desc = (
        f"synthetic clip: {t_len} frames of {h}x{w}, {n} tracks; background ({info[0]['texture']}) + "
        f"{len(layers) - 1} objects ({objs}); camera {'moving' if cam else 'still'}"
    )
    return SyntheticScene(
        clip=clip,
        point_layer=ks.astype(np.int64),
        coverage=coverage.astype(np.float32),
        layer_maps=maps,
        front_layer=front,
        layers=info,
        camera_moves=cam,
        description=desc,
        _layers=layers,
    )


def render_clip(seed: Seed, config: Optional[SyntheticConfig] = None, *, name: Optional[str] = None) -> TrackClip:
    """Render one synthetic clip: ``render_scene(seed, config, name=name).clip``.

    Args:
        seed: non-negative integer (or sequence of them); same seed and config -> bit-identical clip.
        config: :class:`SyntheticConfig` (default 24 frames, 384x512, 256 tracks).
        name: clip name (default ``f"synthetic_{seed}"``).

    Returns:
        :class:`TrackClip` with ``video (T, 3, H, W) float32`` 0..255, ``tracks (T, N, 2) float32`` ``(x, y)``
        pixels, ``visible (T, N) bool``, ``queries (N, 3) float32`` ``(t, x, y)``.
    """
    return render_scene(seed, config, name=name).clip


# ----------------------------------------------------------------------------------------------------------
# dataset
# ----------------------------------------------------------------------------------------------------------


def item_seed(seed: int, index: int, epoch: int = 0) -> Seed:
    """Seed of item ``index`` of ``SyntheticTracks(seed=seed)``: ``seed * SEED_STRIDE + index`` in epoch 0, and
    ``(seed * SEED_STRIDE + index, epoch)`` in a later epoch (see :meth:`SyntheticTracks.set_epoch`)."""
    base = int(seed) * SEED_STRIDE + int(index)
    return base if epoch == 0 else (base, int(epoch))


class SyntheticTracks(Dataset):
    """An endless-looking training set of synthetic clips (``torch.utils.data.Dataset`` of :class:`TrackClip`).

    Item ``i`` is ``render_clip(item_seed(seed, i, epoch), config)`` (so ``seed * 1_000_003 + i`` in epoch 0),
    named ``f"synthetic_{seed}_{i}"``. With ``augment`` (an :class:`~cotracker_fast.data.augment.Augmentations`),
    the item is rendered with ``pool_factor * N`` tracks, augmented with a ``numpy`` generator seeded from the
    item seed, and then ``N`` tracks are drawn by the official rule (visible in frame 0 or ``T // 2`` after
    augmentation, :func:`~cotracker_fast.data.clip.sample_track_indices`) and queried by the official rule; if
    too few tracks survive, the item is rendered again from seed ``(item seed, 0x5EED0001, attempt)`` (up to
    ``max_retries`` renders; the augmentation of attempt ``a`` draws from ``default_rng((item seed, 0x5EED0002,
    a))``).
    Everything depends only on ``(seed, epoch, i)``, never on the worker, so a ``DataLoader`` with any number of
    workers yields the same items. Batch with ``DataLoader(..., collate_fn=collate_clips)``.

    Args:
        length: number of items (>= 0).
        seed: non-negative integer.
        config: :class:`SyntheticConfig` (default ``SyntheticConfig()``).
        augment: optional augmentations; their ``crop_size`` sets the output size (``config.size_hw`` is then the
            size rendered before cropping).
        pool_factor: tracks rendered per output track when augmenting (>= 1).
        max_retries: renders tried per item when augmenting (>= 1).
    """

    def __init__(
        self,
        length: int,
        seed: int = 0,
        config: Optional[SyntheticConfig] = None,
        augment: Any = None,
        *,
        pool_factor: int = 2,
        max_retries: int = 8,
    ):
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.config = SyntheticConfig() if config is None else config
        if not isinstance(self.config, SyntheticConfig):
            raise ValueError(f"config must be a SyntheticConfig, got {type(self.config).__name__}")
        if augment is not None and not callable(getattr(augment, "apply", None)):
            raise ValueError(f"augment must be an Augmentations (with .apply), got {type(augment).__name__}")
        if isinstance(pool_factor, bool) or not isinstance(pool_factor, (int, np.integer)) or pool_factor < 1:
            raise ValueError(f"pool_factor must be an integer >= 1, got {pool_factor!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, (int, np.integer)) or max_retries < 1:
            raise ValueError(f"max_retries must be an integer >= 1, got {max_retries!r}")
        self.length = int(length)
        self.seed = int(seed)
        self.augment = augment
        self.pool_factor = int(pool_factor)
        self.max_retries = int(max_retries)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch`` (>= 0) seeds from now on (call before creating the DataLoader iterator, as workers
        copy the dataset when the iterator starts)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> TrackClip:
        """Item ``index`` (``0 <= index < len``; negative indices count from the end) as a :class:`TrackClip`."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        i = int(index) + (self.length if index < 0 else 0)
        if not 0 <= i < self.length:
            raise IndexError(f"index {index} out of range for SyntheticTracks of length {self.length}")
        s = item_seed(self.seed, i, self.epoch)
        name = f"synthetic_{self.seed}_{i}"
        cfg = self.config
        if self.augment is None:
            return render_clip(s, cfg, name=name)
        base = list(s) if isinstance(s, tuple) else [s]
        pool_cfg = replace(cfg, num_points=cfg.num_points * self.pool_factor)
        for attempt in range(self.max_retries):
            render_seed = s if attempt == 0 else tuple(base + [_RETRY_TAG, attempt])
            clip = render_clip(render_seed, pool_cfg, name=name)
            rng = np.random.default_rng(base + [_AUG_TAG, attempt])  # the augmentation's own stream
            aug = self.augment.apply(clip, rng)
            idx = (
                sample_track_indices(aug.visible, cfg.num_points, rng, mid_frame=cfg.mid_frame_sampling)
                if cfg.num_points
                else np.zeros(0, np.int64)
            )
            if idx is None:
                continue
            sel = torch.from_numpy(idx)
            tracks, visible = aug.tracks[:, sel], aug.visible[:, sel]
            queries = training_queries(tracks, visible, rng, cfg.random_query_fraction)
            return TrackClip(aug.video, tracks, visible, torch.from_numpy(queries), name=name)
        raise RuntimeError(
            f"SyntheticTracks item {i}: fewer than {cfg.num_points} tracks visible in frame 0 or "
            f"{cfg.num_frames // 2} after augmentation in {self.max_retries} renders; raise pool_factor"
        )


# ----------------------------------------------------------------------------------------------------------
# evaluation set
# ----------------------------------------------------------------------------------------------------------

#: Default look of the evaluation clips: 24 frames of 256x256, 64 tracks queried at their first visible frame.
EVAL_CONFIG = SyntheticConfig(num_frames=24, size_hw=(256, 256), num_points=64, random_query_fraction=0.0)


def _eval_seed(seed: int, index: int) -> Tuple[int, int, int]:
    return (int(seed), int(index), _EVAL_TAG, _EVAL_TAG)


def synthetic_eval_clips(
    num_videos: int = 3, seed: int = 0, config: Optional[SyntheticConfig] = None
) -> Iterator[TrackClip]:
    """The synthetic evaluation set as :class:`TrackClip` s: clip ``i`` is
    ``render_clip((seed, i, 0xE7A15E7, 0xE7A15E7), config)`` (a seed stream disjoint from the training items'),
    named ``f"synthetic_{i:03d}"``.

    Args:
        num_videos: number of clips (>= 0).
        seed: non-negative integer.
        config: default :data:`EVAL_CONFIG` (24 frames, 256x256, 64 tracks, "query first": the query of each
            track is its first visible frame).

    Returns:
        an iterator rendering one clip at a time.

    Raises:
        ValueError: bad arguments (at call time).
    """
    scenes = _eval_scenes(num_videos, seed, config)
    return (scene.clip for scene in scenes)


def _eval_scenes(num_videos: int, seed: int, config: Optional[SyntheticConfig]) -> Iterator[SyntheticScene]:
    if isinstance(num_videos, bool) or not isinstance(num_videos, (int, np.integer)) or num_videos < 0:
        raise ValueError(f"num_videos must be a non-negative integer, got {num_videos!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    cfg = EVAL_CONFIG if config is None else config
    if not isinstance(cfg, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, got {type(cfg).__name__}")
    return (render_scene(_eval_seed(seed, i), cfg, name=f"synthetic_{i:03d}") for i in range(int(num_videos)))


def synthetic_eval_samples(
    num_videos: int = 3, seed: int = 0, config: Optional[SyntheticConfig] = None
) -> Iterator[Dict[str, Any]]:
    """The clips of :func:`synthetic_eval_clips` as plain numpy fields in the evaluation readers' layout (one
    column per track), ready for ``EvalSample``.

    Yields:
        dicts with ``"name"`` (str), ``"video"`` ``(T, H, W, 3) uint8``, ``"tracks"`` ``(T, N, 2) float32``
        pixels, ``"visible"`` ``(T, N) bool``, ``"query_frames"`` ``(N,) int64``, ``"queries"`` ``(N, 3)
        float32`` ``(t, x, y)`` and ``"description"`` (str).

    Raises:
        ValueError: bad arguments (at call time).
    """
    scenes = _eval_scenes(num_videos, seed, config)
    return (_eval_fields(scene) for scene in scenes)


def _eval_fields(scene: SyntheticScene) -> Dict[str, Any]:
    c = scene.clip
    video = c.video.permute(0, 2, 3, 1).numpy()
    return {
        "name": c.name,
        "video": np.clip(np.rint(video), 0, 255).astype(np.uint8),
        "tracks": c.tracks.numpy().copy(),
        "visible": c.visible.numpy().copy(),
        "query_frames": np.rint(c.queries[:, 0].numpy()).astype(np.int64),
        "queries": c.queries.numpy().copy(),
        "description": scene.description,
    }
