"""Streaming (online) CoTracker v1 predictor: frames arrive in chunks of any size, tracks come out as soon as they
are final.

The window schedule is the offline one (:class:`~cotracker_fast.models.cotracker.SlidingWindowTracker`): the window
starting at frame ``s`` runs once frames ``[s, s + S)`` have arrived, and after it frames ``[s, s + S/2)`` are final
because the next window starts at ``s + S/2``. So the tracks are those of :class:`CoTrackerPredictor` on the whole
video with the same (forward) queries, emitted with a delay of at most ``S`` frames, while only one window of frames
and feature maps is held.

A video shorter than one window (``T < S`` frames) runs its only window in :meth:`CoTrackerOnlinePredictor.finish`,
since until then a later frame may still arrive: :meth:`~CoTrackerOnlinePredictor.step` emits nothing for it and
``finish`` returns all of its frames (a clip of at most S/2 frames included: see
:func:`~cotracker_fast.models.cotracker.window_schedule`).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from .models.cotracker import SlidingWindowTracker, window_schedule
from .models.cotracker import _check_video
from .predictor_v3 import V3_ONLINE_THRESHOLD, V3Stream
from .predictor_base import (
    OFFICIAL_DEFAULT_CHECKPOINT,
    VISIBILITY_THRESHOLD,
    PredictorBase,
    _check_user_queries,
    check_segm_mask,
    check_video_values,
    compile_model_once,
    grid_queries,
    place_at_queries,
    support_grid_queries,
)


class _Step(int):
    """An ``int`` (frames between windows) that can also be called: ``step(frames)`` feeds frames."""

    def __new__(cls, value: int, feed):
        obj = super().__new__(cls, value)
        obj._feed = feed
        return obj

    def __call__(self, frames: Tensor) -> Tuple[Tensor, Tensor, int]:
        return self._feed(frames)


class CoTrackerOnlinePredictor(PredictorBase):
    """Online tracking with a CoTracker v1 model.

    Usage::

        online = CoTrackerOnlinePredictor("cotracker_stride_4_wind_8.pth")
        online.start(video_hw=(H, W), queries=queries)          # (B, N, 3) rows (t, x, y), pixels
        for chunk in chunks:                                      # (B, F, 3, H, W), RGB 0..255, any F >= 1
            tracks, vis, first = online.step(chunk)               # frames [first, first + tracks.shape[1])
        tracks, vis, first = online.finish()                      # the remaining frames

    Queries may be added between steps with :meth:`add_queries`, as long as each query's frame has not arrived yet.
    With all queries given to :meth:`start` the tracks are bit-identical to the offline predictor's. Queries added
    later are tracked the same way up to one detail: the official order of tracks comes from ``torch.sort``'s
    unstable algorithm over *all* queries, whose tie order (points with the same query frame) depends on the whole
    array, and the official token layout makes that order matter slightly (0.018 px in our tests).
    Like the offline predictor, a 6x6 support grid queried at frame 0 is tracked with user queries (or a mask) and
    dropped from the output, the visibility threshold is 0.9 and each point is placed exactly at its query.

    Args: as :class:`~cotracker_fast.predictor.CoTrackerPredictor` (``checkpoint``, ``model_name``, ``device``,
    ``backend``, ``dtype``, ``iters``, ``compile``, ``compile_bucket``).
    """

    # state of the video being tracked; start() sets it
    _state: Optional[SlidingWindowTracker] = None
    _received: int = 0
    _v3: Optional[V3Stream] = None  # CoTracker3 models: start()/step()/finish()
    _v3_call: Optional[dict] = None  # CoTracker3 models: the official call protocol (forward)

    def __init__(
        self,
        checkpoint: Optional[str] = OFFICIAL_DEFAULT_CHECKPOINT,
        offline: Optional[bool] = None,
        v2: bool = False,
        window_len: Optional[int] = None,
        **common,
    ):
        """As the official ``CoTrackerOnlinePredictor``, ``offline`` is accepted and ignored: a CoTracker3 file
        always gives the online model (windows of ``window_len`` frames, by default its time table's length)."""
        super().__init__(checkpoint, None, v2, window_len, online=True, **common)

    @torch.no_grad()
    def forward(
        self,
        video_chunk: Tensor,
        is_first_step: bool = False,
        queries: Optional[Tensor] = None,
        grid_size: int = 5,
        grid_query_frame: int = 0,
        add_support_grid: bool = False,
    ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """The official CoTracker3 call protocol.

        First call ``(video_chunk, is_first_step=True, queries=... or grid_size=G)``: only sets the points up
        (``queries`` ``(B, N, 3)`` rows ``(t, x, y)`` in pixels of ``video_chunk``, else a G x G grid at
        ``grid_query_frame``; ``add_support_grid`` adds the 6x6 grid at frame 0) and returns ``(None, None)``.
        Then call ``k`` takes ``video_chunk = video[:, 8k : 8k + 16]`` (B, F, 3, H, W) RGB 0..255, more than 8
        frames after the first call, and returns ``tracks`` ``(B, T_k, N, 2)`` pixels and ``visibilities``
        ``(B, T_k, N)`` bool (``vis * conf > 0.6``) for every frame so far. The support grid is always dropped from
        the output (the official code drops it only when ``add_support_grid`` is repeated on every call).
        """
        if self.family != "v3":
            raise RuntimeError(
                "the is_first_step call protocol is CoTracker3's; a v1 model streams with start()/step()/finish()"
            )
        _check_video(video_chunk, "video_chunk")
        B, T, _, H, W = video_chunk.shape
        if is_first_step:
            self.model.init_video_online_processing()
            if queries is not None:
                q = self.to_working(_check_user_queries(queries, B, None, H, W).to(self.device), (H, W))
            elif isinstance(grid_size, int) and grid_size > 0:
                q = self.grid_queries(grid_size, grid_query_frame, B)
            else:
                raise ValueError(f"the first step needs queries or grid_size > 0, got grid_size={grid_size!r}")
            n = q.shape[1]
            if add_support_grid:
                q = torch.cat([q, self.support_grid(B)], dim=1)
            self._v3_call = {"queries": q, "num_user": n}
            return None, None
        if self._v3_call is None:
            raise RuntimeError("call with is_first_step=True (and queries or grid_size) first")
        q = self._v3_call["queries"]
        if B != q.shape[0]:
            raise ValueError(f"video_chunk has batch {B}, but the first step set up {q.shape[0]} samples")
        check_video_values(video_chunk, "video_chunk")
        chunk = self.resize_frames(video_chunk.to(self.device, torch.float32))
        with self.autocast():
            tracks, vis, conf, _ = self.model(chunk, q, iters=self.iters, is_online=True)
        n = self._v3_call["num_user"]
        tracks, vis, conf = tracks[:, :, :n].float(), vis[:, :, :n].float(), conf[:, :, :n].float()
        visible = vis * conf > V3_ONLINE_THRESHOLD
        return self.to_video(tracks.clone(), (H, W)).to(video_chunk.device), visible.to(video_chunk.device)

    @property
    def window_len(self) -> int:
        """Frames per sliding window (S); tracks are emitted with a delay of at most S frames."""
        return self.model.window_len

    @property
    def frames_received(self) -> int:
        """Frames given to :meth:`step` since :meth:`start`."""
        return self._received

    @property
    def buffered_frames(self) -> int:
        """Frames received but not yet consumed by a window (at most one window's worth between calls)."""
        return sum(b.shape[1] for b in getattr(self, "_buffer", []))

    @property
    def windows_run(self) -> int:
        """Sliding windows processed since :meth:`start`."""
        return 0 if self._state is None else self._state.next_start // self.model.config.window_step

    @property
    def tracked_queries(self) -> Tensor:
        """``(B, N, 3)`` the user (or grid) points being tracked, rows ``(t, x, y)`` in pixels of the video."""
        self._require_started()
        return self.to_video(self._queries.clone(), self._hw, xy_at=1)

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def start(
        self,
        video_hw: Tuple[int, int],
        queries: Optional[Tensor] = None,
        *,
        grid_size: int = 0,
        grid_query_frame: int = 0,
        segm_mask: Optional[Tensor] = None,
        batch_size: Optional[int] = None,
    ) -> None:
        """Begin a new video of frame size ``video_hw = (H, W)`` pixels.

        Give ``queries`` ``(B, N, 3)`` (rows ``(t, x, y)`` in pixels), or ``grid_size > 0`` for a grid queried at
        ``grid_query_frame`` (optionally restricted to ``segm_mask`` ``(1, 1, H, W)``), or neither and add queries
        later with :meth:`add_queries`. ``batch_size`` defaults to ``queries.shape[0]`` (or 1).
        """
        if self.compile:
            compile_model_once(self.model, self.compile_bucket)
        H, W = (int(v) for v in video_hw)
        if H < 1 or W < 1:
            raise ValueError(f"video_hw must be two positive sizes (H, W), got {video_hw}")
        if queries is not None and grid_size > 0:
            raise ValueError("pass either queries or grid_size > 0, not both")
        if segm_mask is not None and grid_size == 0:
            raise ValueError("segm_mask selects grid points: it needs grid_size > 0")
        B = batch_size or (queries.shape[0] if torch.is_tensor(queries) and queries.dim() == 3 else 1)
        if self.family == "v3":
            self._start_v3((H, W), B, queries, grid_size, grid_query_frame, segm_mask)
            return
        self._v3 = None
        self._begin((H, W), B)
        if grid_size > 0:
            if segm_mask is not None:
                check_segm_mask(segm_mask, B, H, W)
            q = grid_queries(grid_size, grid_query_frame, self.interp_shape, B, segm_mask, self.device)
            self._add_model_queries(q, user=True)
        elif queries is not None:
            self.add_queries(queries)
        if grid_size == 0 or segm_mask is not None:
            self._add_model_queries(support_grid_queries(self.support_grid_size, self.interp_shape, B, self.device), False)

    def _start_v3(self, hw, B, queries, grid_size, grid_query_frame, segm_mask) -> None:
        """start() for a CoTracker3 model: every query is known up front (the model samples each query's
        neighbourhood from the first window that holds its frame)."""
        H, W = hw
        if grid_size > 0:
            if segm_mask is not None:
                check_segm_mask(segm_mask, B, H, W)
            q = self.grid_queries(grid_size, grid_query_frame, B, segm_mask)
        elif queries is not None:
            q = self.to_working(_check_user_queries(queries, B, None, H, W).to(self.device), (H, W))
        else:
            raise ValueError("a CoTracker3 model needs its queries (or grid_size > 0) in start()")
        n = q.shape[1]
        if queries is not None or segm_mask is not None:
            q = torch.cat([q, self.support_grid(B)], dim=1)
        self._state = None
        self._v3 = V3Stream(self, q, n, hw)
        self._hw, self._B, self._received, self._finished = hw, B, 0, False
        self._queries = q[:, :n]

    @torch.no_grad()
    def start_backward(self, num_frames: Optional[int] = None) -> None:
        """Begin a pass over the time-reversed video (frames fed last to first) that tracks the same points as the
        run just finished, with query frames ``t' = T - 1 - t``: the support grid included, as the offline
        predictor's ``backward_tracking`` does. Outputs come in reversed time. ``num_frames`` (T) defaults to, and
        must equal, the number of frames of the finished run."""
        self._require_started()
        if not self._finished:
            raise RuntimeError("finish() the forward pass before start_backward()")
        if num_frames is not None and num_frames != self._received:
            raise ValueError(f"num_frames={num_frames}, but the forward pass had {self._received} frames")
        num_frames = self._received
        if self._v3 is not None:
            rq = self._v3.queries.clone()
            rq[..., 0] = num_frames - 1 - rq[..., 0]
            self._v3 = V3Stream(self, rq, self._v3.num_user, self._hw)
            self._received, self._finished = 0, False
            return
        history = self._added
        self._begin(self._hw, self._B)
        for q, user in history:
            rq = q.clone()
            rq[..., 0] = num_frames - 1 - rq[..., 0]
            self._add_model_queries(rq, user)

    @torch.no_grad()
    def add_queries(self, queries: Tensor) -> None:
        """Add points ``(B, M, 3)`` rows ``(t, x, y)`` in pixels; every ``t`` must be a frame not received yet."""
        self._require_started()
        if self._v3 is not None:
            raise NotImplementedError("a CoTracker3 model takes all its queries in start()")
        if self._finished:
            raise RuntimeError("finish() was called: no queries can be added to a finished video")
        H, W = self._hw
        queries = _check_user_queries(queries, self._B, None, H, W).to(self.device)
        early = queries[..., 0] < self._received
        if bool(early.any()):
            raise ValueError(
                f"queries for frame {int(queries[..., 0][early].min())} arrived after that frame "
                f"({self._received} frames received): queries must arrive before their frame"
            )
        self._add_model_queries(self.to_working(queries, (H, W)), user=True)

    @property
    def step(self) -> "_Step":
        """Two things at once, so that both APIs read naturally: the official attribute, frames between windows
        (an ``int``: ``range(0, T - online.step, online.step)`` as in the official README), and our call
        ``online.step(frames)`` (:meth:`feed`)."""
        return _Step(self.model.config.window_step, self.feed)

    @torch.no_grad()
    def feed(self, frames: Tensor) -> Tuple[Tensor, Tensor, int]:
        """Feed ``frames`` ``(B, F, 3, H, W)`` (RGB 0..255, float or uint8) and get the frames that became final
        (also reachable as ``online.step(frames)``).

        Returns:
            ``(tracks (B, F_out, N, 2) pixels, visibilities (B, F_out, N) bool, first_frame_index)``, N being the
            user queries known so far (F_out may be 0).
        """
        self._require_started()
        if self._finished:
            raise RuntimeError("finish() was called; call start() for a new video")
        H, W = self._hw
        if not torch.is_tensor(frames) or frames.dim() != 5 or tuple(frames.shape[2:]) != (3, H, W) or (
            frames.shape[0] != self._B
        ):
            shape = tuple(frames.shape) if torch.is_tensor(frames) else type(frames).__name__
            raise ValueError(f"frames must be (B={self._B}, F, 3, H={H}, W={W}), got {shape}")
        frames = frames.to(self.device, torch.float32)
        if self._v3 is not None:
            if frames.shape[1] == 0:
                return self._v3._emit(self._v3.emitted)
            check_video_values(frames, "frames")
            self._received += frames.shape[1]
            return self._v3.step(frames)
        if frames.shape[1] == 0:
            return self._emit_until(self._emitted)
        check_video_values(frames, "frames")
        F_ = frames.shape[1]
        resized = self.resize_frames(frames)
        self._buffer.append(resized)
        self._received += F_
        self._last_frame = resized[:, -1:]
        S = self.model.window_len
        # A full window is available once frames [start, start + S) have arrived.
        while self._state.next_start + S <= self._received:
            self._run_next(total=None)
        return self._emit_until(self._state.next_start)

    @torch.no_grad()
    def finish(self) -> Tuple[Tensor, Tensor, int]:
        """End of the video: run the last (padded) windows and return all remaining frames."""
        self._require_started()
        if self._finished:
            raise RuntimeError("finish() was already called")
        T = self._received
        if T == 0:
            raise ValueError("no frames were given: the video is empty")
        if self._v3 is not None:
            self._finished = True
            return self._v3.finish()
        for win in window_schedule(T, self.model.window_len):  # the windows not run yet, now that T is known
            if win.start >= self._state.next_start:
                self._run_next(total=T)
        self._finished = True
        return self._emit_until(T)

    # ------------------------------------------------------------------ internals
    def _begin(self, hw, B) -> None:
        self._hw, self._B = hw, B
        self._received = 0
        self._emitted = 0
        self._buffer = []  # frames received but not yet fed to a window, resized, (B, F, 3, 384, 512)
        self._last_frame: Optional[Tensor] = None
        self._queries = torch.zeros(B, 0, 3, device=self.device)  # user queries, model pixels
        self._tracks = torch.zeros(B, 0, 0, 2, device=self.device)  # pending outputs from frame self._emitted
        self._vis = torch.zeros(B, 0, 0, device=self.device)
        self._state = SlidingWindowTracker(self.model, B, self.iters, self.device)
        self._is_user = torch.zeros(0, dtype=torch.bool, device=self.device)  # per model track: user point?
        self._added = []  # (model-resolution queries, is_user) in the order they were added
        self._finished = False

    def _require_started(self):
        if self._state is None and self._v3 is None:
            raise RuntimeError("call start(video_hw=..., queries=...) first")

    def _add_model_queries(self, q: Tensor, user: bool) -> None:
        self._state.add_queries(q, group=0 if user else 1)
        self._added.append((q, user))
        if user:
            self._queries = torch.cat([self._queries, q], 1)
        M = q.shape[1]
        self._tracks = torch.cat([self._tracks, self._tracks.new_zeros(self._B, self._tracks.shape[1], M, 2)], 2)
        self._vis = torch.cat([self._vis, self._vis.new_zeros(self._B, self._vis.shape[1], M)], 2)
        self._is_user = torch.cat([self._is_user, torch.full((M,), user, dtype=torch.bool, device=self.device)])

    def _take_frames(self, n: int) -> Tensor:
        """Pop ``n`` frames from the buffer, padding with the last frame past the end of the video."""
        out, need = [], n
        while need > 0 and self._buffer:
            head = self._buffer[0]
            if head.shape[1] <= need:
                out.append(head)
                need -= head.shape[1]
                self._buffer.pop(0)
            else:
                out.append(head[:, :need])
                self._buffer[0] = head[:, need:]
                need = 0
        if need > 0:
            out.append(self._last_frame.expand(-1, need, -1, -1, -1))
        return torch.cat(out, 1)

    def _run_next(self, total: Optional[int]) -> None:
        state = self._state
        start, S, step = state.next_start, self.model.window_len, self.model.config.window_step
        n_new = S if start == 0 else step
        frames = self._take_frames(n_new)
        num_real = S if total is None else min(S, total - start)
        with self.autocast():
            out = state.run_window(frames, num_real)
        end = start + num_real
        have = self._emitted + self._tracks.shape[1]
        if end > have:  # grow the pending-output buffer (zeros = not predicted)
            self._tracks = torch.cat([self._tracks, self._tracks.new_zeros(self._B, end - have, *self._tracks.shape[2:])], 1)
            self._vis = torch.cat([self._vis, self._vis.new_zeros(self._B, end - have, self._vis.shape[2])], 1)
        if out is not None:
            out.tracks, out.vis_logits = out.tracks.float(), out.vis_logits.float()
            out.write_into(self._tracks, self._vis, offset=self._emitted)

    def _emit_until(self, frame: int) -> Tuple[Tensor, Tensor, int]:
        first = self._emitted
        n = max(0, frame - first)
        have = self._tracks.shape[1]
        if n > have:  # frames no window has written yet hold zeros (not predicted)
            self._tracks = torch.cat([self._tracks, self._tracks.new_zeros(self._B, n - have, *self._tracks.shape[2:])], 1)
            self._vis = torch.cat([self._vis, self._vis.new_zeros(self._B, n - have, self._vis.shape[2])], 1)
        tracks, logits = self._tracks[:, :n], self._vis[:, :n]
        self._tracks, self._vis = self._tracks[:, n:], self._vis[:, n:]
        self._emitted += n
        user = self._is_user
        tracks = tracks[:, :, user].clone()
        vis = torch.sigmoid(logits[:, :, user]) > VISIBILITY_THRESHOLD
        place_at_queries(tracks, vis, self._queries, first)
        return self.to_video(tracks, self._hw), vis, first
