"""Frame-by-frame track overlays in plain numpy (no OpenCV / matplotlib / font library).

* :func:`track_colors` - a rainbow colour per track from its height in the frame;
* :func:`draw_frame` - points (filled disks when visible, rings when occluded) and fading trails;
* :func:`draw_banner` - a line of text in a filled box at the top (Pillow's bundled font);
* :class:`OverlayWriter` - streams overlaid frames to a video (keeps the trail history itself).

Coordinates are ``(x, y)`` in pixels with pixel centres at integer positions (``x`` = column, ``y`` = row),
as everywhere in cotracker_fast.
"""
from __future__ import annotations

import collections
import functools
from typing import Any, Deque, Optional, Sequence, Tuple

import numpy as np

from .io import PathLike, VideoWriter
from .io.video_write import AbortOnError

__all__ = [
    "track_colors",
    "draw_frame",
    "draw_banner",
    "text_width",
    "OverlayWriter",
    "UNTRAINED_BANNER",
]

UNTRAINED_BANNER = "UNTRAINED WEIGHTS - TRACKS ARE MEANINGLESS"

# ----------------------------------------------------------------------------------------------------------
# colours
# ----------------------------------------------------------------------------------------------------------


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Convert HSV to RGB.

    Args:
        h: hue in turns, any shape (``0`` red, ``1/3`` green, ``2/3`` blue; taken modulo 1).
        s: saturation in ``[0, 1]``, broadcastable to ``h``.
        v: value in ``[0, 1]``, broadcastable to ``h``.

    Returns:
        float64 array of shape ``broadcast(h, s, v).shape + (3,)`` with R, G, B in ``[0, 1]``.
    """
    h, s, v = np.broadcast_arrays(np.asarray(h, np.float64) % 1.0, np.asarray(s, np.float64), np.asarray(v, np.float64))
    h6 = h * 6.0
    sector = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    # (R, G, B) for each of the six hue sectors
    table = np.stack(
        [
            np.stack([v, t, p], -1),
            np.stack([q, v, p], -1),
            np.stack([p, v, t], -1),
            np.stack([p, q, v], -1),
            np.stack([t, p, v], -1),
            np.stack([v, p, q], -1),
        ],
        0,
    )
    return np.take_along_axis(table, sector[None, ..., None].repeat(3, -1), 0)[0]


def track_colors(tracks_at_query: np.ndarray, height: int) -> np.ndarray:
    """Rainbow colours by each track's vertical position: top of the frame red, through yellow, green,
    cyan and blue, to magenta at the bottom (hue 0 to 300 degrees).

    Args:
        tracks_at_query: ``(N, 2)`` positions ``(x, y)`` in pixels, usually at each track's query frame.
            Rows with a non-finite ``y`` get mid gray.
        height: frame height in pixels (> 0); ``y`` is normalised by ``height - 1`` and clipped to [0, 1].

    Returns:
        ``(N, 3) uint8`` RGB colours.

    Raises:
        ValueError: bad shape or non-positive ``height``.
    """
    pts = np.asarray(tracks_at_query, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"tracks_at_query must have shape (N, 2) with (x, y) in pixels, got {pts.shape}")
    if not np.isscalar(height) or not height > 0:
        raise ValueError(f"height must be a positive number of pixels, got {height!r}")
    y = pts[:, 1]
    finite = np.isfinite(y)
    u = np.clip(np.where(finite, y, 0.0) / max(float(height) - 1.0, 1.0), 0.0, 1.0)
    rgb = _hsv_to_rgb(u * (300.0 / 360.0), 1.0, 1.0)
    out = np.round(rgb * 255.0).astype(np.uint8)
    out[~finite] = 128
    return out


# ----------------------------------------------------------------------------------------------------------
# points and trails
# ----------------------------------------------------------------------------------------------------------


def _as_bool_vector(a: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape (N,) = ({n},), got {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number) or not np.all((arr == 0) | (arr == 1)):
            raise ValueError(f"{name} must be boolean (or 0/1 numbers)")
        arr = arr != 0
    return arr


def _check_frame(frame: Any, name: str = "frame") -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB (values 0..255), got dtype {f.dtype}")
    if f.ndim != 3 or f.shape[2] != 3 or f.shape[0] < 1 or f.shape[1] < 1:
        raise ValueError(f"{name} must have shape (H, W, 3), got {f.shape}")
    return f


def _blend_disk(
    canvas: np.ndarray, cx: float, cy: float, radius: float, color: np.ndarray, ring: bool
) -> None:
    """Blend one anti-aliased filled disk (or ring of ~1.5 px) into float ``canvas`` (H, W, 3) in place.

    Coverage of a pixel is a linear ramp of its centre's distance ``d`` to ``(cx, cy)``:
    disk ``clip(radius + 0.5 - d, 0, 1)``; ring ``clip(1.25 - |d - (radius - 0.75)|, 0, 1)``, i.e. a ring
    of width about 1.5 px whose outer edge matches the disk's. For ``radius >= 2`` the ring leaves the
    centre pixel untouched.
    """
    h, w = canvas.shape[:2]
    reach = radius + 1.5
    x0, x1 = max(int(np.floor(cx - reach)), 0), min(int(np.ceil(cx + reach)), w - 1)
    y0, y1 = max(int(np.floor(cy - reach)), 0), min(int(np.ceil(cy + reach)), h - 1)
    if x0 > x1 or y0 > y1:
        return  # entirely outside the frame
    xs = np.arange(x0, x1 + 1, dtype=np.float32) - np.float32(cx)
    ys = np.arange(y0, y1 + 1, dtype=np.float32) - np.float32(cy)
    d = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2)
    if ring:
        a = np.clip(1.25 - np.abs(d - (radius - 0.75)), 0.0, 1.0)
    else:
        a = np.clip(radius + 0.5 - d, 0.0, 1.0)
    a = a[:, :, None]
    patch = canvas[y0 : y1 + 1, x0 : x1 + 1]
    patch *= 1.0 - a
    patch += a * color


def _blend_segments(
    canvas: np.ndarray,
    p0: np.ndarray,
    p1: np.ndarray,
    colors: np.ndarray,
    alpha: float,
    width: int,
) -> None:
    """Blend straight segments ``p0[i] -> p1[i]`` (each ``(M, 2)`` x, y) with opacity ``alpha`` into
    ``canvas`` in place, by sampling every segment at <= 0.5 px steps and stamping ``width x width``
    pixel squares at the nearest pixels. Overlapping segments of one call do not compound."""
    if p0.shape[0] == 0:
        return
    h, w = canvas.shape[:2]
    length = np.sqrt(((p1 - p0) ** 2).sum(-1))
    n_samples = int(min(np.ceil(length.max() * 2.0) + 1, 4 * (h + w)))
    n_samples = max(n_samples, 2)
    s = np.linspace(0.0, 1.0, n_samples, dtype=np.float64)[:, None, None]  # (S, 1, 1)
    pts = p0[None] + s * (p1 - p0)[None]  # (S, M, 2)
    px = np.rint(pts[..., 0]).astype(np.int64)
    py = np.rint(pts[..., 1]).astype(np.int64)
    col = np.broadcast_to(colors[None].astype(np.float32), px.shape + (3,))
    offsets = range(-((width - 1) // 2), width // 2 + 1)
    xs, ys, cs = [], [], []
    for dy in offsets:
        for dx in offsets:
            xs.append(px + dx)
            ys.append(py + dy)
            cs.append(col)
    xs_a = np.concatenate([x.ravel() for x in xs])
    ys_a = np.concatenate([y.ravel() for y in ys])
    cs_a = np.concatenate([c.reshape(-1, 3) for c in cs])
    inside = (xs_a >= 0) & (xs_a < w) & (ys_a >= 0) & (ys_a < h)
    xs_a, ys_a, cs_a = xs_a[inside], ys_a[inside], cs_a[inside]
    if xs_a.size == 0:
        return
    canvas[ys_a, xs_a] = canvas[ys_a, xs_a] * (1.0 - alpha) + cs_a * alpha


def draw_frame(
    frame: np.ndarray,
    points: np.ndarray,
    visible: np.ndarray,
    colors: np.ndarray,
    *,
    radius: float = 3,
    trails: Optional[np.ndarray] = None,
    trail_visible: Optional[np.ndarray] = None,
    has_prediction: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Draw tracked points (and optional trails) on a copy of ``frame``.

    Visible points are filled anti-aliased disks of ``radius`` px; occluded points are rings (about
    1.5 px wide, same outer radius) whose inside is left as it was. Trails are 1 px (2 px when
    ``radius >= 4``) line segments joining a track's earlier positions to its current one, more
    transparent the older they are (the segment ending at the current point has opacity ``K/(K+1)``,
    the oldest ``1/(K+1)``). Draw order: trails, then rings, then disks. Points (and trail positions)
    that are non-finite or outside the frame are skipped without error.

    Args:
        frame: ``(H, W, 3) uint8`` RGB; not modified.
        points: ``(N, 2)`` current positions ``(x, y)`` in pixels.
        visible: ``(N,)`` bool, True = visible (disk), False = occluded (ring).
        colors: ``(N, 3)`` uint8 RGB per track.
        radius: point radius in pixels (> 0).
        trails: ``(K, N, 2)`` earlier positions, oldest first (``trails[-1]`` is the previous frame), or
            ``None`` for no trails.
        trail_visible: ``(K, N)`` bool, which trail positions are valid; a segment is drawn only when both
            its ends are valid. ``None``: all valid.
        has_prediction: ``(N,)`` bool; tracks with False (e.g. before their query frame) are not drawn at
            all, neither point nor trail. ``None``: all True.

    Returns:
        a new ``(H, W, 3) uint8`` array.

    Raises:
        ValueError: any argument has the wrong shape/dtype, or ``radius <= 0``.
    """
    f = _check_frame(frame)
    h, w = f.shape[:2]
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2) with (x, y) in pixels, got {pts.shape}")
    n = pts.shape[0]
    vis = _as_bool_vector(visible, n, "visible")
    cols = np.asarray(colors)
    if cols.shape != (n, 3):
        raise ValueError(f"colors must have shape (N, 3) = ({n}, 3), got {cols.shape}")
    if not np.issubdtype(cols.dtype, np.number) or cols.min(initial=0) < 0 or cols.max(initial=0) > 255:
        raise ValueError("colors must be RGB numbers in [0, 255] (uint8)")
    cols = cols.astype(np.float32)
    if not np.isscalar(radius) or not radius > 0:
        raise ValueError(f"radius must be a positive number of pixels, got {radius!r}")
    radius = float(radius)
    pred = np.ones(n, bool) if has_prediction is None else _as_bool_vector(has_prediction, n, "has_prediction")

    canvas = f.astype(np.float32)

    if trails is not None:
        tr = np.asarray(trails, dtype=np.float64)
        if tr.ndim != 3 or tr.shape[1:] != (n, 2):
            raise ValueError(f"trails must have shape (K, N, 2) = (K, {n}, 2), got {tr.shape}")
        k = tr.shape[0]
        if trail_visible is None:
            tv = np.ones((k, n), bool)
        else:
            tv = np.asarray(trail_visible)
            if tv.shape != (k, n):
                raise ValueError(f"trail_visible must have shape (K, N) = ({k}, {n}), got {tv.shape}")
            tv = tv.astype(bool)
        if k > 0:
            chain = np.concatenate([tr, pts[None]], 0)  # (K+1, N, 2), oldest first, current last
            valid = np.concatenate([tv, np.ones((1, n), bool)], 0) & np.isfinite(chain).all(-1) & pred[None]
            width = 2 if radius >= 4 else 1
            for j in range(k):  # segment j joins chain[j] -> chain[j + 1]; older segments are fainter
                ok = valid[j] & valid[j + 1]
                if ok.any():
                    _blend_segments(canvas, chain[j][ok], chain[j + 1][ok], cols[ok], (j + 1) / (k + 1), width)

    finite = np.isfinite(pts).all(-1)
    for ring in (True, False):
        idx = np.nonzero(pred & finite & (vis != ring))[0]
        for i in idx:
            _blend_disk(canvas, pts[i, 0], pts[i, 1], radius, cols[i], ring)

    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------
# text
# ----------------------------------------------------------------------------------------------------------

_MARGIN = 2  # px (times scale) around the text in the banner box
_LINE = 7  # px (times scale) of text height in the banner box


@functools.lru_cache(maxsize=8)
def _font(scale: int):
    """Pillow's bundled font at a size whose capitals are about ``_LINE * scale`` px tall (its fixed-size bitmap
    font where Pillow was built without FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=round(_LINE * scale * 1.35))
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def text_width(text: str, scale: int = 2) -> int:
    """Width in pixels of one line of ``text`` as :func:`draw_banner` draws it at ``scale``."""
    if not text:
        return 0
    left, _, right, _ = _font(scale).getbbox(str(text))
    return int(right - min(left, 0))


def draw_banner(
    frame: np.ndarray,
    text: str,
    *,
    scale: int = 2,
    fg: Sequence[int] = (255, 255, 255),
    bg: Sequence[int] = (170, 20, 20),
) -> np.ndarray:
    """Write one line of text in a filled box across the top of a copy of ``frame`` (Pillow's bundled font).

    The box spans the full width and is ``11 * scale`` px tall (text about ``7 * scale`` px tall with a
    ``2 * scale`` px margin above and below), clipped to the frame. If the text does not fit at ``scale`` it is drawn
    at scale 1, and if it still does not fit it is cut at the right edge.

    Args:
        frame: ``(H, W, 3) uint8`` RGB; not modified.
        text: the line to write.
        scale: integer magnification (>= 1).
        fg: text colour, RGB 0..255.
        bg: box colour, RGB 0..255.

    Returns:
        a new ``(H, W, 3) uint8`` array.

    Raises:
        ValueError: bad ``frame`` shape/dtype, ``scale`` < 1, or colours outside 0..255.
    """
    from PIL import Image, ImageDraw

    f = _check_frame(frame)
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    fg_a, bg_a = np.asarray(fg), np.asarray(bg)
    for name, c in (("fg", fg_a), ("bg", bg_a)):
        if c.shape != (3,) or c.min() < 0 or c.max() > 255:
            raise ValueError(f"{name} must be an RGB triple with values in 0..255, got {c.tolist()}")
    h, w = f.shape[:2]
    scale = int(scale)
    if scale > 1 and text_width(text, scale) + 2 * _MARGIN * scale > w:
        scale = 1
    out = f.copy()
    box_h = min((_LINE + 2 * _MARGIN) * scale, h)
    if box_h == 0:
        return out
    box = Image.new("RGB", (w, box_h), tuple(int(v) for v in bg_a))
    font = _font(scale)
    left, top, _, bottom = font.getbbox(str(text)) if text else (0, 0, 0, 0)
    y = (_LINE + 2 * _MARGIN) * scale / 2 - (top + bottom) / 2  # centred on the box
    ImageDraw.Draw(box).text((_MARGIN * scale - min(left, 0), y), str(text), font=font,
                             fill=tuple(int(v) for v in fg_a))
    out[:box_h] = np.asarray(box)
    return out


# ----------------------------------------------------------------------------------------------------------
# streaming writer
# ----------------------------------------------------------------------------------------------------------


class OverlayWriter(AbortOnError):
    """Draw tracks over frames and stream them to a video file (``.mp4`` or ``.gif``) via
    :class:`~cotracker_fast.io.VideoWriter` (so the output is written atomically and odd sizes are padded
    to even for mp4).

    Trails: the positions of the last ``trail_length`` written frames are kept and drawn as fading
    segments. Colours: given with ``colors=`` or, per track, picked by :func:`track_colors` from its
    position in the first frame where it has a prediction (its query frame when the caller passes
    ``has_prediction``). With ``untrained=True`` every frame gets the banner ``banner_text`` (default
    :data:`UNTRAINED_BANNER`).

    Args:
        path: output ``.mp4`` or ``.gif``.
        fps: frames per second (> 0).
        trail_length: number of earlier positions drawn as a trail (>= 0; 0 = no trails).
        untrained: draw the warning banner on every frame.
        colors: optional ``(N, 3) uint8`` colours, one per track.
        radius: point radius in px; ``None`` = ``max(2, round(min(H, W) / 128))`` from the first frame.
        banner_text: the banner's text (only used with ``untrained=True``).

    Raises:
        ValueError: bad arguments (here or in :meth:`write`).
    """

    def __init__(
        self,
        path: PathLike,
        *,
        fps: float,
        trail_length: int = 8,
        untrained: bool = False,
        colors: Optional[np.ndarray] = None,
        radius: Optional[float] = None,
        banner_text: str = UNTRAINED_BANNER,
    ):
        if isinstance(trail_length, bool) or not isinstance(trail_length, (int, np.integer)) or trail_length < 0:
            raise ValueError(f"trail_length must be a non-negative integer, got {trail_length!r}")
        if radius is not None and (not np.isscalar(radius) or not radius > 0):
            raise ValueError(f"radius must be a positive number of pixels or None, got {radius!r}")
        self._colors: Optional[np.ndarray] = None
        self._colored: Optional[np.ndarray] = None
        if colors is not None:
            c = np.asarray(colors)
            numeric = np.issubdtype(c.dtype, np.number)
            if c.ndim != 2 or c.shape[1] != 3 or not numeric or c.min(initial=0) < 0 or c.max(initial=0) > 255:
                raise ValueError(f"colors must have shape (N, 3) with RGB values in 0..255, got shape {c.shape}")
            self._colors = c.astype(np.uint8)
            self._colored = np.ones(c.shape[0], bool)
        self.trail_length = int(trail_length)
        self.untrained = bool(untrained)
        self.banner_text = banner_text
        self.radius = radius
        self._history: Deque[Tuple[np.ndarray, np.ndarray]] = collections.deque(maxlen=max(self.trail_length, 1))
        self._n: Optional[int] = None
        self._writer = VideoWriter(path, fps=fps)
        self.path = self._writer.path

    @property
    def colors(self) -> Optional[np.ndarray]:
        """``(N, 3) uint8`` track colours picked so far (gray for tracks not yet seen), or None before the
        first :meth:`write`."""
        return None if self._colors is None else self._colors.copy()

    def write(
        self,
        frame: np.ndarray,
        points: np.ndarray,
        visible: np.ndarray,
        has_prediction: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """Draw the tracks on ``frame`` and append it to the video; returns the drawn ``(H, W, 3) uint8`` frame.

        Args:
            frame: ``(H, W, 3) uint8`` RGB (all frames the same size).
            points: ``(N, 2)`` positions ``(x, y)`` in pixels at this frame (N fixed for the whole video).
            visible: ``(N,)`` bool.
            has_prediction: ``(N,)`` bool or None (all True); False tracks are not drawn and their
                position is not used for trails.

        Raises:
            ValueError: bad shapes, or N differs from the first call / from ``colors``.
        """
        f = _check_frame(frame)
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"points must have shape (N, 2) with (x, y) in pixels, got {pts.shape}")
        n = pts.shape[0]
        if self._n is None:
            if self._colors is not None and self._colors.shape[0] != n:
                raise ValueError(f"points has N={n} tracks but colors has {self._colors.shape[0]}")
            self._n = n
            if self._colors is None:
                self._colors = np.full((n, 3), 128, np.uint8)
                self._colored = np.zeros(n, bool)
            if self.radius is None:
                self.radius = max(2, int(round(min(f.shape[:2]) / 128)))
        elif n != self._n:
            raise ValueError(f"points has N={n} tracks but earlier frames had {self._n}")
        vis = _as_bool_vector(visible, n, "visible")
        pred = np.ones(n, bool) if has_prediction is None else _as_bool_vector(has_prediction, n, "has_prediction")
        pred = pred & np.isfinite(pts).all(-1)

        assert self._colors is not None and self._colored is not None
        new = pred & ~self._colored
        if new.any():
            self._colors[new] = track_colors(pts[new], f.shape[0])
            self._colored |= new

        trails = trail_ok = None
        if self.trail_length > 0 and len(self._history) > 0:
            trails = np.stack([p for p, _ in self._history], 0)
            trail_ok = np.stack([ok for _, ok in self._history], 0)
        out = draw_frame(
            f, pts, vis, self._colors, radius=self.radius, trails=trails, trail_visible=trail_ok, has_prediction=pred
        )
        if self.untrained:
            out = draw_banner(out, self.banner_text)
        self._writer.write(out)
        if self.trail_length > 0:
            self._history.append((pts.copy(), pred.copy()))
        return out

    @property
    def num_written(self) -> int:
        """Frames written so far."""
        return self._writer.num_written

    def close(self) -> None:
        """Finish the video and move it into place (see :meth:`VideoWriter.close`)."""
        self._writer.close()

    def abort(self) -> None:
        """Discard the video; the destination is left untouched."""
        self._writer.abort()

