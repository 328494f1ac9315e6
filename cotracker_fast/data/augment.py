"""The training augmentations of CoTracker (paper, and the official Kubric loader as described in the spec),
written in torch, applied to a :class:`~cotracker_fast.data.clip.TrackClip` of any source.

Order (as the official loader): photometric (eraser, replace, colour jitter, blur) in the input's coordinates,
then spatial (pad, per-frame scale, crop, flips), then visibility is set False outside the crop, then the queries
are recomputed by the official rule. Track sampling (256 of the tracks visible in frame 0 or ``T // 2``) is the
dataset's job, after augmenting (:func:`~cotracker_fast.data.clip.sample_track_indices`).

Coordinates use the package convention (pixel ``(row i, column j)`` has its centre at ``(x=j, y=i)``), and every
coordinate map matches the pixels exactly except the flips' official quirk (below):

* padding by ``(left, top)`` maps ``x -> x + left``;
* resizing a width ``W`` to ``W'`` (bilinear, half-pixel centres, as ``F.interpolate(align_corners=False)`` or
  OpenCV's ``resize``) maps ``x -> (x + 0.5) * W' / W - 0.5``; the official loader multiplies by ``W' / W``
  instead, which is off by up to half a pixel;
* cropping at ``x0`` maps ``x -> x - x0``;
* a horizontal flip of a crop of width ``W`` maps ``x -> W - x`` (the official map, kept by default; the pixel
  that sat at ``x`` really moves to ``W - 1 - x``, so flipped tracks are one pixel off their texels).
  ``Augmentations(exact_flip=True)`` uses ``W - 1 - x``. Vertical flips likewise with ``H``.

All randomness comes from one ``numpy.random.Generator`` and the maths uses only operations whose result does
not depend on the number of threads, so a seed gives bit-identical output in any process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .clip import TrackClip, training_queries
from .colour import _apply_jitter, _draw_jitter, color_jitter, gaussian_blur, hsv_to_rgb, rgb_to_hsv  # noqa: F401

__all__ = ["Augmentations", "as_generator", "color_jitter", "gaussian_blur", "rgb_to_hsv", "hsv_to_rgb"]

RngLike = Union[np.random.Generator, int, torch.Generator, None]



def as_generator(rng: RngLike) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator, a non-negative integer seed, a ``torch.Generator`` (one
    64-bit draw of it seeds the numpy generator) or ``None`` (fresh, non-reproducible entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=rng).item()))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy Generator, a torch.Generator, a non-negative int seed or None, got {rng!r}")


# ----------------------------------------------------------------------------------------------------------
# the augmentation pipeline
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentations:
    """The paper's augmentations with the official defaults (spec section 5), one switch per group.

    Output size:
        crop_size: ``(H, W)`` of the output frames (default 384x512); ``None`` keeps the input size.

    Group switches: ``eraser``, ``replace``, ``color_jitter``, ``blur`` (photometric); ``pad``, ``scale``,
    ``crop_jitter``, ``flip`` (spatial). The crop itself always happens (with ``scale`` off the frames are not
    resized and must be at least ``crop_size`` after padding).

    Photometric:
        eraser_prob, eraser_max_boxes, eraser_size: each frame after the first is, with probability
            ``eraser_prob`` (0.5), given 1..``eraser_max_boxes`` (10) boxes with sides drawn from
            ``eraser_size`` (2..100 px, inclusive), each filled with its mean colour; tracks inside become
            invisible.
        replace_prob, replace_max_boxes, replace_size: the same, the box instead copied from a random place of a
            random frame of a twice colour-jittered copy of the clip.
        brightness, contrast, saturation, hue: colour jitter strengths (0.2, 0.2, 0.2, 0.25/pi turns).
        color_jitter_prob: probability (0.25) of jittering a frame.
        blur_prob, blur_kernel, blur_sigma: probability (0.25) of blurring a frame with a ``blur_kernel`` (11)
            Gaussian of sigma drawn from ``blur_sigma`` (0.1..2).
        per_frame_decision: True: the jitter and blur probabilities apply to each frame independently (as the
            spec states); False: one draw per clip decides for all its frames (factors still drawn per frame).

    Spatial:
        pad_range: padding drawn per side, in pixels (0..25), filled with zeros.
        scale_range: a clip scale drawn from it (0.75..1.25); per frame, x and y scale change by deltas drawn from
            ``[-scale_delta, scale_delta]`` (0.05) smoothed as ``d = scale_smoothing * d + (1 - scale_smoothing) *
            new`` (0.8), are pulled halfway towards each other, clipped to ``scale_clip`` (0.2..2), and the
            resized frame is kept at least ``crop_size + crop_margin`` (10) px.
        crop_offset, crop_smoothing: the crop is centred on the mean of the tracks visible in frame 0, then moved
            per frame by offsets drawn from ``[-crop_offset, crop_offset]`` (15 px) smoothed like the scale
            deltas (0.8), accumulated, and clamped to the frame.
        hflip_prob, vflip_prob: flip probabilities (0.5 each, per clip).
        exact_flip: False (official): a flip maps ``x -> W - x``; True: ``x -> W - 1 - x`` (exact).

    Queries:
        random_query_fraction: queries are recomputed after augmenting by the official rule with this fraction
            of random visible frames (0.25).
    """

    crop_size: Optional[Tuple[int, int]] = (384, 512)
    eraser: bool = True
    replace: bool = True
    color_jitter: bool = True
    blur: bool = True
    pad: bool = True
    scale: bool = True
    crop_jitter: bool = True
    flip: bool = True
    eraser_prob: float = 0.5
    eraser_max_boxes: int = 10
    eraser_size: Tuple[int, int] = (2, 100)
    replace_prob: float = 0.5
    replace_max_boxes: int = 10
    replace_size: Tuple[int, int] = (2, 100)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.25 / math.pi
    color_jitter_prob: float = 0.25
    blur_prob: float = 0.25
    blur_kernel: int = 11
    blur_sigma: Tuple[float, float] = (0.1, 2.0)
    per_frame_decision: bool = True
    pad_range: Tuple[int, int] = (0, 25)
    scale_range: Tuple[float, float] = (0.75, 1.25)
    scale_delta: float = 0.05
    scale_smoothing: float = 0.8
    scale_clip: Tuple[float, float] = (0.2, 2.0)
    crop_margin: int = 10
    crop_offset: int = 15
    crop_smoothing: float = 0.8
    hflip_prob: float = 0.5
    vflip_prob: float = 0.5
    exact_flip: bool = False
    random_query_fraction: float = 0.25

    def __post_init__(self) -> None:
        def bad(name: str, want: str) -> ValueError:
            return ValueError(f"Augmentations.{name} must be {want}, got {getattr(self, name)!r}")

        def is_num(v: Any) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

        def is_int(v: Any) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("bool",) and not isinstance(v, bool):
                raise bad(f.name, "a bool")
        if self.crop_size is not None:
            cs = self.crop_size
            if not isinstance(cs, (tuple, list)) or len(cs) != 2 or not all(is_int(v) and v >= 1 for v in cs):
                raise bad("crop_size", "None or (H, W) positive integers")
            object.__setattr__(self, "crop_size", (int(cs[0]), int(cs[1])))
        for name in (
            "eraser_prob",
            "replace_prob",
            "color_jitter_prob",
            "blur_prob",
            "hflip_prob",
            "vflip_prob",
            "scale_smoothing",
            "crop_smoothing",
            "random_query_fraction",
        ):
            v = getattr(self, name)
            if not is_num(v) or not 0.0 <= v <= 1.0:
                raise bad(name, "a number in [0, 1]")
        for name in ("brightness", "contrast", "saturation", "scale_delta"):
            v = getattr(self, name)
            if not is_num(v) or v < 0:
                raise bad(name, "a number >= 0")
        if not is_num(self.hue) or not 0.0 <= self.hue <= 0.5:
            raise bad("hue", "a number in [0, 0.5] (turns)")
        for name in ("eraser_max_boxes", "replace_max_boxes"):
            v = getattr(self, name)
            if not is_int(v) or v < 1:
                raise bad(name, "an integer >= 1")
        for name in ("crop_margin", "crop_offset"):
            v = getattr(self, name)
            if not is_int(v) or v < 0:
                raise bad(name, "an integer >= 0")
        if not is_int(self.blur_kernel) or self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise bad("blur_kernel", "an odd integer >= 1")
        for name, lo, integer in (
            ("eraser_size", 1, True),
            ("replace_size", 1, True),
            ("pad_range", 0, True),
            ("blur_sigma", 1e-6, False),
            ("scale_range", 1e-6, False),
            ("scale_clip", 1e-6, False),
        ):
            v = getattr(self, name)
            ok = isinstance(v, (tuple, list)) and len(v) == 2 and all((is_int if integer else is_num)(x) for x in v)
            if not ok or not lo <= v[0] <= v[1]:
                raise bad(name, f"a (min, max) pair of {'integers' if integer else 'numbers'} with {lo} <= min <= max")
            object.__setattr__(self, name, tuple(int(x) if integer else float(x) for x in v))

    # ------------------------------------------------------------------------------------------------------
    def __call__(self, clip: TrackClip, rng: RngLike = None) -> TrackClip:
        """Same as :meth:`apply`."""
        return self.apply(clip, rng)

    def apply(self, clip: TrackClip, rng: RngLike = None) -> TrackClip:
        """Photometric then spatial augmentation of one clip, then the queries recomputed.

        Args:
            clip: unbatched :class:`TrackClip` (``video (T, 3, H, W)`` 0..255, ``tracks (T, N, 2)``,
                ``visible (T, N)``).
            rng: numpy ``Generator`` (consumed), integer seed, ``torch.Generator`` or ``None`` (random).

        Returns:
            a new :class:`TrackClip` with ``video (T, 3, h, w)`` (``(h, w) = crop_size``, values clamped to
            0..255), the tracks mapped into it, visibility False where a track is erased/replaced or outside the
            crop, and queries ``(N, 3)`` by the official rule (a never-visible track gets frame 0).

        Raises:
            ValueError: a batched clip or not a clip; frames smaller than the crop with ``scale`` off.
        """
        g = as_generator(rng)
        out = self.photometric(clip, g)
        out = self.spatial(out, g)
        q = training_queries(out.tracks, out.visible, g, self.random_query_fraction)
        video = out.video.clamp_(0.0, 255.0)  # bilinear weights can round a hair past the input range
        return TrackClip(video, out.tracks, out.visible, torch.from_numpy(q), name=clip.name, valid=clip.valid)

    # ------------------------------------------------------------------------------------------------------
    @staticmethod
    def _check(clip: Any) -> None:
        if not isinstance(clip, TrackClip):
            raise ValueError(f"expected a TrackClip, got {type(clip).__name__}")
        if clip.batched:
            raise ValueError("augmentations apply to one clip at a time, got a batch (video (B, T, 3, H, W))")

    def _box(self, rng: np.random.Generator, size: Tuple[int, int], hw: Tuple[int, int]) -> Tuple[int, int, int, int]:
        """A box ``[x0, x1) x [y0, y1)`` in pixels, sides from ``size`` centred at a uniform point, clipped."""
        h, w = hw
        xc, yc = rng.uniform(0.0, w), rng.uniform(0.0, h)
        dx, dy = int(rng.integers(size[0], size[1] + 1)), int(rng.integers(size[0], size[1] + 1))
        x0 = min(max(int(round(xc - dx / 2.0)), 0), w - 1)
        y0 = min(max(int(round(yc - dy / 2.0)), 0), h - 1)
        return x0, min(x0 + dx, w), y0, min(y0 + dy, h)

    @staticmethod
    def _inside(tr: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
        """Points whose position falls on the box's pixels, ``x0 - 0.5 <= x < x1 - 0.5`` (same for y)."""
        x, y = tr[:, 0], tr[:, 1]
        return (x >= x0 - 0.5) & (x < x1 - 0.5) & (y >= y0 - 0.5) & (y < y1 - 0.5)

    def _strengths(self) -> Tuple[float, float, float, float]:
        return (self.brightness, self.contrast, self.saturation, self.hue)

    def _jitter(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return color_jitter(img, rng, *self._strengths())

    def _jittered_patches(self, frame: torch.Tensor, jitters: Any, cuts: List[torch.Tensor]) -> List[torch.Tensor]:
        """Patches ``cuts`` (each ``(3, h, w)``) of ``frame (3, H, W)`` as they are in ``frame`` after a chain of
        colour jitters. The jitter is per pixel except for the contrast op's mean grey level, which is taken on
        every 4th pixel of every 4th row of the jittered frame; the patches (up to 10 boxes per frame, drawn from
        any frame) are then jittered alone, together, about 16 times less work than jittering whole frames."""
        y = frame[:, ::4, ::4] / 255.0
        means = []
        for params in jitters:
            y, m = _apply_jitter(y, params, self._strengths())
            means.append(m)
        sizes = [c.shape[1] * c.shape[2] for c in cuts]
        x = torch.cat([c.reshape(3, -1) for c in cuts], 1) / 255.0
        for params, m in zip(jitters, means):
            x, _ = _apply_jitter(x, params, self._strengths(), mean=m)
        x = x * 255.0
        return [part.reshape(c.shape) for part, c in zip(torch.split(x, sizes, 1), cuts)]

    def photometric(self, clip: TrackClip, rng: RngLike = None) -> TrackClip:
        """Eraser, replace, colour jitter and blur (each when switched on), in the clip's own coordinates.

        Args:
            clip: unbatched :class:`TrackClip`.
            rng: as in :meth:`apply`.

        Returns:
            a new :class:`TrackClip` (same shapes; tracks and queries unchanged, ``visible`` False for tracks on
            erased or replaced boxes).
        """
        self._check(clip)
        g = as_generator(rng)
        video = clip.video.clone() if (self.eraser or self.replace or self.color_jitter or self.blur) else clip.video
        visible = clip.visible.clone()
        tracks = clip.tracks
        t_len = video.shape[0]
        hw = (video.shape[2], video.shape[3])
        if self.eraser:
            for t in range(1, t_len):
                if g.random() < self.eraser_prob:
                    for _ in range(int(g.integers(1, self.eraser_max_boxes + 1))):
                        x0, x1, y0, y1 = self._box(g, self.eraser_size, hw)
                        region = video[t, :, y0:y1, x0:x1]
                        mean = np.mean(region.numpy(), axis=(1, 2), dtype=np.float64).astype(np.float32)
                        region.copy_(torch.from_numpy(mean)[:, None, None].expand_as(region))
                        visible[t] &= ~self._inside(tracks[t], x0, x1, y0, y1)
        if self.replace:
            # draw every box first, cut all patches from the frames as they are now, then paste them
            boxes = []
            alt: Dict[int, Any] = {}  # source frame -> its two jitters (parameters and contrast means)
            for t in range(1, t_len):
                if g.random() < self.replace_prob:
                    for _ in range(int(g.integers(1, self.replace_max_boxes + 1))):
                        x0, x1, y0, y1 = self._box(g, self.replace_size, hw)
                        bh, bw = y1 - y0, x1 - x0
                        s = int(g.integers(0, t_len))
                        if s not in alt:
                            alt[s] = [_draw_jitter(g, *self._strengths()) for _ in range(2)]
                        sy = int(g.integers(0, hw[0] - bh + 1))
                        sx = int(g.integers(0, hw[1] - bw + 1))
                        boxes.append((t, x0, x1, y0, y1, s, sx, sy))
            patches: List[Optional[torch.Tensor]] = [None] * len(boxes)
            for s_, jitters in alt.items():
                idx = [i for i, b in enumerate(boxes) if b[5] == s_]
                cuts = [
                    video[s_, :, sy : sy + y1 - y0, sx : sx + x1 - x0]
                    for (_, x0, x1, y0, y1, _, sx, sy) in (boxes[i] for i in idx)
                ]
                for i, patch in zip(idx, self._jittered_patches(video[s_], jitters, cuts)):
                    patches[i] = patch
            for (t, x0, x1, y0, y1, _, _, _), patch in zip(boxes, patches):
                video[t, :, y0:y1, x0:x1] = patch
                visible[t] &= ~self._inside(tracks[t], x0, x1, y0, y1)
        if self.color_jitter:
            clip_on = g.random() < self.color_jitter_prob
            for t in range(t_len):
                on = g.random() < self.color_jitter_prob if self.per_frame_decision else clip_on
                if on:
                    video[t] = self._jitter(video[t], g)
        if self.blur:
            clip_on = g.random() < self.blur_prob
            for t in range(t_len):
                on = g.random() < self.blur_prob if self.per_frame_decision else clip_on
                if on:
                    blurred = gaussian_blur(video[t], self.blur_kernel, float(g.uniform(*self.blur_sigma)))
                    video[t] = blurred.clamp_(0.0, 255.0)  # weights summing to 1 may round a hair past 255
        return TrackClip(video, tracks.clone(), visible, clip.queries.clone(), name=clip.name, valid=clip.valid)

    # ------------------------------------------------------------------------------------------------------
    def spatial_params(self, clip: TrackClip, rng: RngLike = None) -> Dict[str, Any]:
        """Draw the spatial augmentation of a clip (without applying it).

        Returns:
            ``{"pad": (left, top, right, bottom)``, ``"size": (T, 2) int64`` resized ``(H_t, W_t)`` of each padded
            frame, ``"origin": (T, 2) int64`` crop corner ``(x0, y0)`` in each resized frame, ``"crop": (h, w)``,
            ``"hflip": bool, "vflip": bool}``.
        """
        self._check(clip)
        g = as_generator(rng)
        t_len = clip.num_frames
        h, w = clip.size_hw
        ch, cw = self.crop_size if self.crop_size is not None else (h, w)
        if self.pad:
            left, right, top, bottom = (int(g.integers(self.pad_range[0], self.pad_range[1] + 1)) for _ in range(4))
        else:
            left = right = top = bottom = 0
        hp, wp = h + top + bottom, w + left + right
        size = np.zeros((t_len, 2), np.int64)
        if self.scale:
            sx = sy = float(g.uniform(*self.scale_range))
            dx = dy = 0.0
            a = self.scale_smoothing
            for t in range(t_len):
                if t == 1:
                    dx = g.uniform(-self.scale_delta, self.scale_delta)
                    dy = g.uniform(-self.scale_delta, self.scale_delta)
                elif t > 1:
                    dx = dx * a + g.uniform(-self.scale_delta, self.scale_delta) * (1.0 - a)
                    dy = dy * a + g.uniform(-self.scale_delta, self.scale_delta) * (1.0 - a)
                sx, sy = sx + dx, sy + dy
                m = 0.5 * (sx + sy)
                sx, sy = 0.5 * (sx + m), 0.5 * (sy + m)
                sx = min(max(sx, self.scale_clip[0]), self.scale_clip[1])
                sy = min(max(sy, self.scale_clip[0]), self.scale_clip[1])
                size[t] = (max(int(hp * sy), ch + self.crop_margin), max(int(wp * sx), cw + self.crop_margin))
        else:
            if hp < ch or wp < cw:
                raise ValueError(
                    f"frames of {h}x{w} (padded {hp}x{wp}) are smaller than crop_size {(ch, cw)} and scale is off"
                )
            size[:] = (hp, wp)
        # crop centre: mean of the frame-0 visible tracks, mapped into the resized frame 0
        vis0 = clip.visible[0].numpy()
        if vis0.any():
            p = clip.tracks[0].numpy()[vis0].astype(np.float64)
            mx = ((p[:, 0] + left + 0.5) * size[0, 1] / wp - 0.5).mean()
            my = ((p[:, 1] + top + 0.5) * size[0, 0] / hp - 0.5).mean()
        else:
            mx, my = (size[0, 1] - 1) / 2.0, (size[0, 0] - 1) / 2.0
        x0, y0 = int(mx - cw // 2), int(my - ch // 2)
        ox = oy = 0
        origin = np.zeros((t_len, 2), np.int64)
        a = self.crop_smoothing
        for t in range(t_len):
            if self.crop_jitter:
                if t == 1:
                    ox = int(g.integers(-self.crop_offset, self.crop_offset + 1))
                    oy = int(g.integers(-self.crop_offset, self.crop_offset + 1))
                elif t > 1:
                    ox = int(ox * a + int(g.integers(-self.crop_offset, self.crop_offset + 1)) * (1.0 - a))
                    oy = int(oy * a + int(g.integers(-self.crop_offset, self.crop_offset + 1)) * (1.0 - a))
            x0 = min(max(x0 + ox, 0), int(size[t, 1]) - cw)
            y0 = min(max(y0 + oy, 0), int(size[t, 0]) - ch)
            origin[t] = (x0, y0)
        hflip = bool(self.flip and g.random() < self.hflip_prob)
        vflip = bool(self.flip and g.random() < self.vflip_prob)
        return {
            "pad": (left, top, right, bottom),
            "size": size,
            "origin": origin,
            "crop": (ch, cw),
            "hflip": hflip,
            "vflip": vflip,
        }

    def map_points(self, params: Dict[str, Any], tracks: torch.Tensor, padded_hw: Tuple[int, int]) -> torch.Tensor:
        """Map ``tracks (T, N, 2)`` (input pixels) through the spatial parameters to output pixels (float64 maths,
        float32 result). ``padded_hw`` is the input size plus padding."""
        left, top = params["pad"][:2]
        hp, wp = padded_hw
        size = torch.from_numpy(params["size"]).to(torch.float64)
        origin = torch.from_numpy(params["origin"]).to(torch.float64)
        ch, cw = params["crop"]
        tr = tracks.to(torch.float64)
        x = (tr[..., 0] + left + 0.5) * (size[:, 1:2] / wp) - 0.5 - origin[:, 0:1]
        y = (tr[..., 1] + top + 0.5) * (size[:, 0:1] / hp) - 0.5 - origin[:, 1:2]
        off = 0.0 if self.exact_flip else 1.0
        if params["hflip"]:
            x = (cw - 1 + off) - x
        if params["vflip"]:
            y = (ch - 1 + off) - y
        return torch.stack([x, y], -1).to(torch.float32)

    def spatial(self, clip: TrackClip, rng: RngLike = None) -> TrackClip:
        """Pad, per-frame scale, crop and flip (each when switched on; the crop always), rendered with one bilinear
        ``grid_sample`` per clip that equals zero-padding, ``F.interpolate(align_corners=False)`` to each frame's
        size and cropping; tracks mapped exactly (flips: see the module notes); visibility False outside the
        crop (``x < 0``, ``x > w - 1``, ``y < 0`` or ``y > h - 1``).

        Args:
            clip: unbatched :class:`TrackClip`.
            rng: as in :meth:`apply`.

        Returns:
            a new :class:`TrackClip` of ``crop_size`` frames (queries: the input's, mapped; :meth:`apply`
            recomputes them).
        """
        params = self.spatial_params(clip, rng)
        h, w = clip.size_hw
        left, top, right, bottom = params["pad"]
        hp, wp = h + top + bottom, w + left + right
        ch, cw = params["crop"]
        t_len = clip.num_frames
        if (params["size"] == np.array([hp, wp])).all():  # no resizing: integer pad, crop and flip, exact
            video = clip.video
            if left or top or right or bottom:
                video = F.pad(video, (left, right, top, bottom), mode="constant", value=0.0)
            out = torch.stack([video[t, :, y0 : y0 + ch, x0 : x0 + cw] for t, (x0, y0) in enumerate(params["origin"])])
            dims = ([3] if params["hflip"] else []) + ([2] if params["vflip"] else [])
            out = torch.flip(out, dims) if dims else out.contiguous()
            return self._finish(clip, params, out, (hp, wp))
        # output pixel j -> crop pixel (flipped) -> resized pixel -> padded pixel -> input pixel (half-pixel
        # centres). Sampling the unpadded input with zero padding equals resizing the zero-padded frame on a
        # padded side; on an unpadded side the resize clamps to the edge pixel, which clamping the coordinate
        # reproduces. So no padded copy is made.
        size = params["size"].astype(np.float64)
        origin = params["origin"].astype(np.float64)
        j = np.arange(cw, dtype=np.float64)
        i = np.arange(ch, dtype=np.float64)
        jc = (cw - 1 - j) if params["hflip"] else j
        ic = (ch - 1 - i) if params["vflip"] else i
        sx = (jc[None] + origin[:, 0:1] + 0.5) * (wp / size[:, 1:2]) - 0.5 - left  # (T, cw) input x
        sy = (ic[None] + origin[:, 1:2] + 0.5) * (hp / size[:, 0:1]) - 0.5 - top  # (T, ch) input y
        sx = np.clip(sx, 0.0 if left == 0 else -np.inf, (w - 1.0) if right == 0 else np.inf)
        sy = np.clip(sy, 0.0 if top == 0 else -np.inf, (h - 1.0) if bottom == 0 else np.inf)
        gx = torch.from_numpy(((2.0 * sx + 1.0) / w - 1.0).astype(np.float32))
        gy = torch.from_numpy(((2.0 * sy + 1.0) / h - 1.0).astype(np.float32))
        grid = torch.stack([gx[:, None, :].expand(t_len, ch, cw), gy[:, :, None].expand(t_len, ch, cw)], -1)
        out = F.grid_sample(clip.video, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return self._finish(clip, params, out, (hp, wp))

    def _finish(
        self, clip: TrackClip, params: Dict[str, Any], out: torch.Tensor, padded_hw: Tuple[int, int]
    ) -> TrackClip:
        """Map the tracks and queries, and hide tracks outside the crop."""
        ch, cw = params["crop"]
        t_len = clip.num_frames
        tracks = self.map_points(params, clip.tracks, padded_hw)
        inside = (tracks[..., 0] >= 0) & (tracks[..., 0] <= cw - 1) & (tracks[..., 1] >= 0) & (tracks[..., 1] <= ch - 1)
        visible = clip.visible & inside
        qt = clip.queries[:, 0].round().long().clamp(0, t_len - 1)
        qxy = tracks[qt, torch.arange(clip.num_points)] if clip.num_points else torch.zeros(0, 2)
        queries = torch.cat([clip.queries[:, :1], qxy], 1)
        return TrackClip(out, tracks, visible, queries, name=clip.name, valid=clip.valid)
