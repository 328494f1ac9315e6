"""A synthetic demo clip with exact ground truth: a real photograph moved by a known smooth motion.

The shipped photograph (``assets/grace_hopper.jpg``, a public-domain US Navy portrait, see
``assets/ASSETS.md``) is moved by a per-frame similarity transform (translation + rotation + zoom) and
rendered by inverse warping with bilinear interpolation. Because the motion is known, the ground-truth
track of any query point is the forward transform of the photo point under it, so the demo can report
a tracker's error in pixels.

Coordinates are ``(x, y)`` pixels with pixel centres at integer positions (``x`` = column, ``y`` = row).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Tuple

import numpy as np

from .evaluation.metrics import TAPVID_THRESHOLDS, tracking_error  # noqa: F401  (re-exported for the demo)

__all__ = [
    "ASSET_DIR",
    "PHOTO_NAME",
    "DemoClip",
    "load_photo",
    "bilinear_sample",
    "warp_photo",
    "make_demo_clip",
    "tracking_error",
    "TAPVID_THRESHOLDS",
]

ASSET_DIR = Path(__file__).resolve().parent / "assets"
PHOTO_NAME = "grace_hopper.jpg"

# Where the (unmoved) frame centre looks at in the photograph, as a fraction of its (width, height):
# the face, cap and flag of the portrait, the most textured part.
_ANCHOR_FRAC = (0.5, 0.42)


@dataclass
class DemoClip:
    """A rendered clip with its exact ground truth.

    Attributes:
        frames: ``(T, H, W, 3) uint8`` RGB.
        queries: ``(N, 3) float32`` rows ``(t, x, y)``: query frame index and pixel position there.
        gt_tracks: ``(T, N, 2) float32`` true ``(x, y)`` of every query point in every frame, in pixels
            (defined for all frames, also before a query's frame and outside the image).
        gt_visible: ``(T, N) bool``: the true position is inside the frame
            (``0 <= x <= W-1`` and ``0 <= y <= H-1``). The scene is a flat photo, so nothing is occluded
            otherwise.
        description: one human-readable line about the clip.
        fps: suggested playback rate (frames per second).
        photo: ``(h, w, 3) uint8`` the photograph that was warped (pre-shrunk by an integer factor when the
            clip is much smaller than the photo, to avoid aliasing).
        photo_to_frame: ``(T, 2, 3) float64`` affine maps, photo pixel ``(x, y, 1)`` -> frame pixel ``(x, y)``.
    """

    frames: np.ndarray
    queries: np.ndarray
    gt_tracks: np.ndarray
    gt_visible: np.ndarray
    description: str
    fps: float = 10.0
    photo: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    photo_to_frame: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]


def load_photo() -> np.ndarray:
    """Load the shipped photograph.

    Returns:
        ``(600, 512, 3) uint8`` RGB (height 600, width 512).

    Raises:
        FileNotFoundError: the package was installed without its ``assets/`` data.
    """
    import imageio.v3 as iio

    path = ASSET_DIR / PHOTO_NAME
    if not path.is_file():
        raise FileNotFoundError(f"demo photograph missing: {str(path)!r} (package data 'assets/*' not installed?)")
    img = np.asarray(iio.imread(path))
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3].astype(np.uint8))


def bilinear_sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``image`` at continuous pixel positions with bilinear interpolation.

    Pixel centres are at integer coordinates; positions outside ``[0, W-1] x [0, H-1]`` are clamped to the
    border (edge pixels repeated).

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array, ``H, W >= 2``.
        x: column positions in pixels, any shape ``S``.
        y: row positions in pixels, same shape as ``x``.

    Returns:
        array of shape ``S`` (2-D image) or ``S + (C,)``; float32 for a float32 image, float64 otherwise.

    Raises:
        ValueError: bad image shape or mismatched ``x`` / ``y`` shapes.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.shape[0] < 2 or img.shape[1] < 2:
        raise ValueError(f"image must have shape (H, W) or (H, W, C) with H, W >= 2, got {img.shape}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    h, w = img.shape[:2]
    xc = np.clip(x, 0.0, w - 1.0)
    yc = np.clip(y, 0.0, h - 1.0)
    x0 = np.minimum(np.floor(xc).astype(np.int64), w - 2)
    y0 = np.minimum(np.floor(yc).astype(np.int64), h - 2)
    im = img if img.dtype == np.float32 else img.astype(np.float64, copy=False)
    fx = (xc - x0).astype(im.dtype)
    fy = (yc - y0).astype(im.dtype)
    if img.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    flat = im.reshape(h * w, *im.shape[2:])
    i00 = y0 * w + x0
    top = flat[i00] * (1 - fx) + flat[i00 + 1] * fx
    bottom = flat[i00 + w] * (1 - fx) + flat[i00 + w + 1] * fx
    return top * (1 - fy) + bottom * fy


def _invert_affine(a: np.ndarray) -> np.ndarray:
    """Inverse of a ``(2, 3)`` affine map."""
    lin = a[:, :2]
    inv = np.linalg.inv(lin)
    return np.concatenate([inv, -inv @ a[:, 2:3]], axis=1)


def _apply_affine(a: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply ``(2, 3)`` affine ``a`` to ``(..., 2)`` points."""
    return xy @ a[:, :2].T + a[:, 2]


def warp_photo(photo: np.ndarray, photo_to_frame: np.ndarray, size_hw: Tuple[int, int]) -> np.ndarray:
    """Render one frame by inverse warping: frame pixel ``p`` takes the photo's bilinear value at
    ``photo_to_frame^-1(p)``.

    Args:
        photo: ``(h, w, 3)`` uint8 (or float32 with values 0..255, faster when warping many frames).
        photo_to_frame: ``(2, 3)`` affine, photo pixel ``(x, y, 1)`` -> frame pixel ``(x, y)``.
        size_hw: output ``(H, W)`` in pixels.

    Returns:
        ``(H, W, 3) uint8``.
    """
    h, w = size_hw
    inv = _invert_affine(np.asarray(photo_to_frame, dtype=np.float64))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    src = _apply_affine(inv, np.stack([xs, ys], -1))
    out = bilinear_sample(photo, src[..., 0], src[..., 1])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _motion(num_frames: int, size_hw: Tuple[int, int], rng: np.random.Generator):
    """Draw the motion: per-frame translation ``d`` (T, 2) px, rotation ``theta`` (T,) rad, zoom ``z`` (T,)
    (relative, 1 at t = 0). All are 0/1 at frame 0 and smooth sinusoids over the clip."""
    h, w = size_hw
    u = np.arange(num_frames, dtype=np.float64) / max(num_frames - 1, 1)

    def wave(amplitude: float) -> np.ndarray:
        cycles = rng.uniform(0.35, 0.75)  # fraction of a period over the whole clip: smooth, no reversals
        phase = rng.uniform(0.0, 2.0 * np.pi)
        sign = rng.choice([-1.0, 1.0])
        return sign * amplitude * (np.sin(2.0 * np.pi * cycles * u + phase) - np.sin(phase))

    # each wave stays within +-2 x its amplitude
    d = np.stack([wave(rng.uniform(0.04, 0.07) * w), wave(rng.uniform(0.04, 0.07) * h)], -1)
    theta = wave(math.radians(rng.uniform(2.0, 4.0)))
    z = np.exp(wave(rng.uniform(0.04, 0.08)))
    return d, theta, z


def _required_scale(
    d: np.ndarray, theta: np.ndarray, z: np.ndarray, size_hw: Tuple[int, int], anchor: np.ndarray, photo_hw
) -> float:
    """Smallest base scale ``s0`` for which every frame pixel maps inside the photo (1 px margin)."""
    h, w = size_hw
    ph, pw = photo_hw
    c_f = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64) - c_f
    lim = np.array([min(anchor[0], pw - 1 - anchor[0]), min(anchor[1], ph - 1 - anchor[1])]) - 1.0
    need = 0.0
    for t in range(len(theta)):
        c, s = math.cos(theta[t]), math.sin(theta[t])
        rot_inv = np.array([[c, s], [-s, c]])
        v = (corners - d[t]) @ rot_inv.T / z[t]  # photo offsets from the anchor, times s0
        need = max(need, float(np.max(np.abs(v) / lim)))
    return need


def _shi_tomasi(gray: np.ndarray, window: int = 7) -> np.ndarray:
    """Min eigenvalue of the ``window x window`` box-filtered structure tensor: a cornerness map (H, W)."""
    gy, gx = np.gradient(gray.astype(np.float64))

    def box(a: np.ndarray) -> np.ndarray:
        r = window // 2
        p = np.pad(a, r + 1, mode="edge")
        c = p.cumsum(0).cumsum(1)
        k = window
        s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
        return s[: a.shape[0], : a.shape[1]]

    a, b, c = box(gx * gx), box(gx * gy), box(gy * gy)
    return (a + c) / 2.0 - np.sqrt(((a - c) / 2.0) ** 2 + b * b)


def _cell_maxima(score: np.ndarray, grid_hw: Tuple[int, int], margin: int) -> Tuple[np.ndarray, np.ndarray]:
    """Best-scoring pixel of every cell of a ``grid_hw`` grid laid over the frame minus ``margin`` px at
    each border. Returns positions ``(rows*cols, 2)`` float64 ``(x, y)`` in row-major cell order and their
    scores ``(rows*cols,)``."""
    h, w = score.shape
    gh, gw = grid_hw
    ys = np.linspace(margin, h - 1 - margin, gh + 1).round().astype(int)
    xs = np.linspace(margin, w - 1 - margin, gw + 1).round().astype(int)
    pos = np.zeros((gh * gw, 2))
    val = np.zeros(gh * gw)
    for r in range(gh):
        for c in range(gw):
            y0, y1 = ys[r], max(ys[r + 1], ys[r] + 1)
            x0, x1 = xs[c], max(xs[c + 1], xs[c] + 1)
            patch = score[y0:y1, x0:x1]
            iy, ix = np.unravel_index(int(np.argmax(patch)), patch.shape)
            pos[r * gw + c] = (x0 + ix, y0 + iy)
            val[r * gw + c] = patch[iy, ix]
    return pos, val


def _textured_points(score: np.ndarray, count: int, margin: int, grid_hw: Tuple[int, int]) -> np.ndarray:
    """``count`` well-spread textured points: the maxima of the ``count`` highest-scoring cells of a grid
    twice as fine as ``grid_hw`` (so featureless regions such as plain sky are skipped). ``(count, 2)``
    ``(x, y)``, ordered by row then column."""
    fine = (2 * grid_hw[0], 2 * grid_hw[1])
    pos, val = _cell_maxima(score, fine, margin)
    best = np.sort(np.argsort(-val, kind="stable")[:count])
    return pos[best]


def make_demo_clip(
    num_frames: int = 24,
    size_hw: Tuple[int, int] = (384, 512),
    *,
    seed: int = 0,
    grid_hw: Tuple[int, int] = (6, 8),
    num_late_queries: int = 8,
) -> DemoClip:
    """Render the demo clip: the shipped photograph moved by a random (seeded) smooth similarity motion.

    Frame ``t`` shows the photo through the forward map
    ``p_frame = s0 * z_t * R(theta_t) (p_photo - anchor) + c_frame + d_t``: translation ``d_t`` at most
    14% of the frame size per axis, rotation at most 8 degrees, zoom ``z_t`` within x0.85..x1.17, each a
    sinusoid over the clip and zero/identity at ``t = 0``. Frames are rendered by bilinear inverse warping;
    the base scale ``s0`` is chosen so that every frame pixel maps inside the photo (no empty borders).

    Queries are put on textured places: ``rows * cols`` Shi-Tomasi corners of frame 0, the maxima of the
    most textured cells of a grid twice as fine as ``grid_hw`` (spread out, but skipping featureless areas
    such as plain sky), plus ``num_late_queries`` more at frames spread over the middle half of the clip,
    each the corner of a random one of the 8 most textured cells of a 4x6 grid over its frame. The
    ground-truth track of a query is the forward map (at every frame) of the photo point under it.

    Args:
        num_frames: ``T >= 2``.
        size_hw: ``(H, W)`` frame size in pixels, each >= 32.
        seed: seeds the motion; equal arguments give identical clips.
        grid_hw: ``(rows, cols)``: ``rows * cols`` queries at t = 0 (>= 1 each).
        num_late_queries: number of queries at later frames (>= 0), at frames ``1 <= t <= T-1``.

    Returns:
        :class:`DemoClip` with ``N = rows * cols + num_late_queries`` queries.

    Raises:
        ValueError: arguments out of range.
        FileNotFoundError: the photograph asset is missing.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 2:
        raise ValueError(f"num_frames must be an integer >= 2, got {num_frames!r}")
    if len(size_hw) != 2 or any(not isinstance(v, (int, np.integer)) or v < 32 for v in size_hw):
        raise ValueError(f"size_hw must be (H, W) integers >= 32, got {size_hw!r}")
    if len(grid_hw) != 2 or any(not isinstance(v, (int, np.integer)) or v < 1 for v in grid_hw):
        raise ValueError(f"grid_hw must be (rows, cols) positive integers, got {grid_hw!r}")
    if not isinstance(num_late_queries, (int, np.integer)) or num_late_queries < 0:
        raise ValueError(f"num_late_queries must be a non-negative integer, got {num_late_queries!r}")
    t_len = int(num_frames)
    h, w = int(size_hw[0]), int(size_hw[1])
    rng = np.random.default_rng(seed)

    photo = load_photo()
    d, theta, z = _motion(t_len, (h, w), rng)

    def anchor_of(p: np.ndarray) -> np.ndarray:
        return np.array([_ANCHOR_FRAC[0] * (p.shape[1] - 1), _ANCHOR_FRAC[1] * (p.shape[0] - 1)])

    s0 = _required_scale(d, theta, z, (h, w), anchor_of(photo), photo.shape[:2])
    shrink = int(math.floor(1.0 / s0)) if s0 < 0.75 else 1
    if shrink > 1:  # the clip is much smaller than the photo: box-filter it first so the warp does not alias
        ph, pw = (photo.shape[0] // shrink) * shrink, (photo.shape[1] // shrink) * shrink
        photo = photo[:ph, :pw].reshape(ph // shrink, shrink, pw // shrink, shrink, 3).mean((1, 3))
        photo = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
        s0 = _required_scale(d, theta, z, (h, w), anchor_of(photo), photo.shape[:2])
    anchor = anchor_of(photo)
    c_f = np.array([(w - 1) / 2.0, (h - 1) / 2.0])

    affines = np.zeros((t_len, 2, 3))
    for t in range(t_len):
        c, s = math.cos(theta[t]), math.sin(theta[t])
        lin = s0 * z[t] * np.array([[c, -s], [s, c]])
        affines[t, :, :2] = lin
        affines[t, :, 2] = c_f + d[t] - lin @ anchor

    photo_f = photo.astype(np.float32)
    frames = np.stack([warp_photo(photo_f, affines[t], (h, w)) for t in range(t_len)], 0)

    # queries: textured points on a grid at t = 0, plus a few at later frames
    margin = max(4, int(round(0.06 * min(h, w))))
    luma = np.array([0.299, 0.587, 0.114])

    def cornerness(t: int) -> np.ndarray:
        return _shi_tomasi(frames[t].astype(np.float64) @ luma)

    gh, gw = grid_hw
    q0 = _textured_points(cornerness(0), gh * gw, margin, (gh, gw))
    queries = [np.concatenate([np.zeros((len(q0), 1)), q0], 1)]
    n_late = int(num_late_queries)
    if n_late:
        lo, hi = max(1, t_len // 4), max(1, (3 * t_len) // 4)
        late_t = np.clip(np.round(np.linspace(lo, hi, n_late)).astype(int), 1, t_len - 1)
        for tq in late_t:
            pos, val = _cell_maxima(cornerness(int(tq)), (4, 6), margin)
            top = np.argsort(-val, kind="stable")[:8]  # one of the 8 most textured of 24 cells
            queries.append(np.concatenate([[[float(tq)]], pos[top[rng.integers(len(top))]][None]], 1))
    q = np.concatenate(queries, 0)

    # ground truth: photo point under each query, mapped forward to every frame
    n = q.shape[0]
    photo_pts = np.zeros((n, 2))
    for i in range(n):
        photo_pts[i] = _apply_affine(_invert_affine(affines[int(q[i, 0])]), q[i, 1:3])
    gt = np.stack([_apply_affine(affines[t], photo_pts) for t in range(t_len)], 0)
    gt_visible = (gt[..., 0] >= 0) & (gt[..., 0] <= w - 1) & (gt[..., 1] >= 0) & (gt[..., 1] <= h - 1)

    description = (
        f"{PHOTO_NAME} (public-domain US Navy photograph) moved by a smooth similarity transform: "
        f"translation up to {np.abs(d).max():.0f} px, rotation up to {math.degrees(np.abs(theta).max()):.1f} deg, "
        f"zoom x{z.min():.2f}..x{z.max():.2f}; {t_len} frames of {h}x{w}, {n} queries "
        f"({n - n_late} at t=0, {n_late} later), seed {seed}"
    )
    return DemoClip(
        frames=frames,
        queries=q.astype(np.float32),
        gt_tracks=gt.astype(np.float32),
        gt_visible=gt_visible,
        description=description,
        photo=photo,
        photo_to_frame=affines,
    )


