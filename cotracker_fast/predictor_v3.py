"""The CoTracker3 side of :class:`~cotracker_fast.predictor.CoTrackerPredictor` and
:class:`~cotracker_fast.online.CoTrackerOnlinePredictor`: the official v3 predictors' geometry and protocol.

Geometry (differs from v1): frames are resized to 384x512 bilinearly with ``align_corners=True``; a query's
``(x, y)`` is scaled by ``(511 / (W - 1), 383 / (H - 1))`` and tracks by the inverse; grids are spread with
``linspace`` over ``[margin, size - margin]`` (``margin = W / 64``).

Offline predictor: a 6x6 support grid at frame 0 is tracked with user queries (or a mask), 6 iterations, visible
where ``sigmoid(vis) > 0.9`` (the confidence is not used), each point placed at its query at its query frame;
``backward_tracking`` fills the frames before each query frame from the time-reversed video. Dense mode tracks the
``step^2`` offset lattices of an 80-wide grid (``step = W // 80``) one after the other.

Online predictor: the official call protocol (a first call with ``is_first_step=True`` that only sets the points
up, then chunks ``video[:, i : i + 16]`` for ``i = 0, 8, 16, ...``; each call returns every frame so far), visible
where ``sigmoid(vis) * sigmoid(conf) > 0.6``, no query-point correction.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: Visibility rule of the v3 online predictor and of the v3 evaluation: ``vis * conf > 0.6``.
V3_ONLINE_THRESHOLD = 0.6
#: Offline predictor: ``vis > 0.9``.
V3_OFFLINE_THRESHOLD = 0.9
#: Dense mode spreads an 80-wide grid (step ``W // 80`` pixels) over the frame.
V3_DENSE_GRID_SIZE = 80


def v3_grid_points(size: int, extent: Tuple[int, int], center: Optional[Tuple[float, float]] = None, device=None):
    """``size x size`` points over an ``extent = (H, W)`` image as ``(1, size^2, 2)`` (x, y), row-major (y outer):
    ``linspace`` from ``margin`` to ``extent - margin`` with ``margin = W / 64`` (around ``center = (y, x)`` when
    given, else the image centre); ``size = 1`` gives the centre."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"grid size must be an int >= 1, got {size!r}")
    H, W = extent
    if size == 1:
        return torch.tensor([[[W / 2.0, H / 2.0]]], device=device)
    cy, cx = (H / 2.0, W / 2.0) if center is None else (float(center[0]), float(center[1]))
    margin = W / 64.0
    ys = torch.linspace(cy - H / 2.0 + margin, cy + H / 2.0 - margin, size, device=device)
    xs = torch.linspace(cx - W / 2.0 + margin, cx + W / 2.0 - margin, size, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).reshape(1, -1, 2)


def v3_scale(hw: Tuple[int, int], interp_shape: Tuple[int, int]) -> Tuple[float, float]:
    """``(sx, sy)`` from a video's pixels to the working resolution's: ``((w - 1) / (W - 1), (h - 1) / (H - 1))``."""
    (H, W), (h, w) = hw, interp_shape
    return (w - 1) / max(W - 1, 1), (h - 1) / max(H - 1, 1)


def v3_resize(frames: Tensor, interp_shape: Tuple[int, int]) -> Tensor:
    """``(B, F, 3, H, W)`` -> ``(B, F, 3, h, w)``, bilinear with ``align_corners=True``."""
    B, F_, C, H, W = frames.shape
    out = F.interpolate(frames.reshape(B * F_, C, H, W), tuple(interp_shape), mode="bilinear", align_corners=True)
    return out.reshape(B, F_, C, *interp_shape)


def v3_to_working(queries: Tensor, hw, interp_shape) -> Tensor:
    """Queries ``(..., 3)`` ``(t, x, y)`` in pixels of an ``hw`` video -> working pixels (a new tensor)."""
    sx, sy = v3_scale(hw, interp_shape)
    q = queries.clone()
    q[..., 1] *= sx
    q[..., 2] *= sy
    return q


def v3_to_video(tracks: Tensor, hw, interp_shape) -> Tensor:
    """Tracks ``(..., 2)`` in working pixels -> pixels of an ``hw`` video (in place; returned)."""
    (H, W), (h, w) = hw, interp_shape
    tracks[..., 0] *= (W - 1) / (w - 1)
    tracks[..., 1] *= (H - 1) / (h - 1)
    return tracks


def v3_grid_queries(size, frame, interp_shape, batch, segm_mask=None, device=None) -> Tensor:
    """``(batch, M, 3)`` grid queries at ``frame`` in working pixels; with ``segm_mask`` only the points where the
    mask (nearest-resized to ``interp_shape``) is non-zero."""
    from .predictor_base import grid_queries

    pts = v3_grid_points(size, interp_shape, device=device)
    return grid_queries(size, frame, interp_shape, batch, segm_mask, device, points=pts)


class V3Stream:
    """Streaming state of a CoTracker3 online model behind ``start()`` / ``step()`` / ``finish()`` of
    :class:`~cotracker_fast.online.CoTrackerOnlinePredictor`.

    Frames are resized as they arrive and held from the next window's first frame on; the window at frame ``8k``
    runs once frames ``[8k, 8k + 16)`` are in, and then frames ``[8k, 8k + 8)`` are final. :meth:`finish` runs the
    last, shorter window (at least 9 frames, or the whole clip when it is shorter than one window). So the chunks
    the model sees are exactly those of the official protocol, and the tracks equal its output.
    """

    def __init__(self, predictor, queries: Tensor, num_user: int, hw: Tuple[int, int]):
        self.pred = predictor
        self.model = predictor.model
        self.queries = queries  # (B, M, 3) working pixels, user points first
        self.num_user = num_user
        self.hw = hw
        self.pending: Optional[Tensor] = None  # resized frames from the next window's first frame on
        self.received = 0
        self.emitted = 0
        self.last: Optional[Tuple[Tensor, Tensor, Tensor]] = None  # the model's buffers after the last window
        self.model.init_video_online_processing()

    def _run(self, frames: Tensor) -> None:
        with self.pred.autocast():
            tracks, vis, conf, _ = self.model(frames, self.queries, iters=self.pred.iters, is_online=True)
        self.last = (tracks.float(), vis.float(), conf.float())

    def _emit(self, until: int) -> Tuple[Tensor, Tensor, int]:
        first = self.emitted
        if self.last is None or until <= first:
            B, M = self.queries.shape[:2]
            empty = self.queries.new_zeros(B, 0, self.num_user)
            return empty[..., None].expand(-1, -1, -1, 2).clone(), empty.bool(), first
        tracks, vis, conf = (x[:, first:until, : self.num_user] for x in self.last)
        self.emitted = until
        visible = vis * conf > V3_ONLINE_THRESHOLD
        return self.pred.to_video(tracks.clone(), self.hw), visible, first

    def step(self, frames: Tensor) -> Tuple[Tensor, Tensor, int]:
        resized = self.pred.resize_frames(frames)
        self.pending = resized if self.pending is None else torch.cat([self.pending, resized], dim=1)
        self.received += frames.shape[1]
        S, step = self.model.window_len, self.model.config.window_step
        final = self.emitted
        while self.pending.shape[1] >= S:
            self._run(self.pending[:, :S])
            final = self.model.online_ind  # the window just run started at online_ind - step
            self.pending = self.pending[:, step:]
        return self._emit(final)

    def finish(self) -> Tuple[Tensor, Tensor, int]:
        if self.received == 0:
            raise ValueError("no frames were given: the video is empty")
        S, step = self.model.window_len, self.model.config.window_step
        if self.last is None or self.pending.shape[1] > S - step:
            self._run(self.pending)
        return self._emit(self.received)
