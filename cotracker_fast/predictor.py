"""Drop-in replacement for the official ``cotracker.predictor.CoTrackerPredictor`` (v1).

``CoTrackerPredictor(checkpoint=path)`` takes the official checkpoint files, and ``forward`` takes the official
arguments and returns the official outputs. Extra options are keyword-only and default to the official behaviour.
"""
from __future__ import annotations

import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

from .predictor_v3 import V3_DENSE_GRID_SIZE
from .models.cotracker import SlidingWindowTracker, _check_video, _pad_frames, window_schedule
from .predictor_base import (  # noqa: F401  (re-exported: the predictor's public helpers live there)
    OFFICIAL_DEFAULT_CHECKPOINT,
    SUPPORT_GRID_SIZE,
    VISIBILITY_THRESHOLD,
    PredictorBase,
    _check_user_queries,
    build_model,
    check_bucket,
    check_segm_mask,
    check_video_values,
    compile_model_once,
    get_points_on_a_grid,
    grid_queries,
    is_untrained,
    place_at_queries,
    support_grid_queries,
    untrained_model_warning,
)

DENSE_GRID_SIZE = 30
DENSE_MODES = ("official", "one_pass")
#: Default largest number of points per model call in ``dense_mode="one_pass"``. Memory grows linearly with the chunk
#: on the fast path (SDPA attention, local correlation) and quadratically with ``backend="reference"``, whose explicit
#: space attention holds ``heads x S x chunk^2`` float32 scores per block (8 x 8 x 2048^2 x 4 bytes = 1.1 GB at S = 8).
#: Compute also grows with it: by the FLOP model of ``benchmarks/baselines/flops.py`` (estimates, not measurements;
#: 384x512, S = 8, 6 iterations, per point and window) a point costs 2.36 GFLOP in a 660-point call, 2.97 in a
#: 2048-point call, 3.88 in a 4096-point call and 86 in one call over all 190,740 dense points of a 384x512 video,
#: against 2.99 in the official mode (660-point lattices, 0.63 of it re-encoding the frames for every lattice). 2048
#: matches the official mode's estimate with 3x larger calls and one encoder pass.
DEFAULT_DENSE_CHUNK = 2048


class CoTrackerPredictor(PredictorBase):
    """Track points through a video with a CoTracker v1 model (official predictor semantics).

    Args:
        checkpoint: official ``cotracker_stride_{4,8}_wind_{8,12,16}.pth`` (flat or under ``"model"``) or our
            ``.safetensors``. The variant comes from the file's base name, as in the official builder, unless
            ``model_name`` is given. ``None`` (or the official default path where that file does not exist) uses
            the weights shipped in the package; ``None`` with an official ``model_name`` builds a randomly
            initialised model (with a warning). See :func:`build_model`.
        model_name: explicit variant (see :func:`cotracker_fast.models.registry.list_models`).
        device: where to run (default: stay on the CPU until ``.to()``, as the official predictor).
        backend: ops backend, see :mod:`cotracker_fast.ops.backend` (default automatic).
        dtype: ``torch.float32`` (default, the official maths) or ``torch.bfloat16`` / ``torch.float16`` to run the
            network under autocast.
        iters: refinement iterations per window (official: 6).
        dense_batch_size: in dense mode, how many of the offset lattices run as one batch (the official code runs
            them one by one; a batch gives the same tracks, up to float summation order). Only used with
            ``dense_mode="official"``.
        dense_mode: how dense mode (neither ``queries`` nor ``grid_size``) tracks its ``step^2`` offset lattices
            (``step = W // 30``):

            * ``"official"`` (default): one pass per lattice, as the official code (bit-compatible with it).
            * ``"one_pass"``: all lattice points together, in as few model calls as ``dense_chunk`` allows, with
              the frames encoded once for all calls. Same output layout (shapes and point order) as
              ``"official"``, but **not the same tracks**: points attend to the points of the other lattices in
              their call, so this is a different estimator, not bit-identical to the official one. It is meant to
              be faster on a GPU (one encoder pass instead of ``step^2``, fewer and larger calls); that is not
              measured yet. With ``step == 1`` (videos 30 to 59 pixels wide) there is one lattice and both modes
              make the same call.
        dense_chunk: ``dense_mode="one_pass"`` tracks at most this many points per model call (default
            :data:`DEFAULT_DENSE_CHUNK` = 2048, see there for the memory and compute trade-off); chunk ``k`` holds
            points ``[k * dense_chunk, (k + 1) * dense_chunk)`` of the lattice order and gets the tracks that a
            separate model call on those points gives. A 384x512 video has ``17^2 * 660 = 190,740`` dense points.
        compile: ``torch.compile`` the window step on the first call (:meth:`CoTracker.compile_window`: tracks
            padded to buckets of ``compile_bucket``; CUDA graphs via ``mode="reduce-overhead"`` on GPUs). Same tracks
            up to float summation order; the first call pays the compile time.
        compile_bucket: track-count bucket of the compiled step (a new bucket compiles once more).
    """

    def __init__(
        self,
        checkpoint: Optional[str] = OFFICIAL_DEFAULT_CHECKPOINT,
        offline: Optional[bool] = None,
        v2: bool = False,
        window_len: Optional[int] = None,
        *,
        dense_batch_size: int = 1,
        dense_mode: str = "official",
        dense_chunk: int = DEFAULT_DENSE_CHUNK,
        **common,
    ):
        """``common``: the arguments every predictor takes (:class:`PredictorBase`: ``model_name``, ``device``,
        ``backend``, ``dtype``, ``iters``, ``compile``, ``compile_bucket``)."""
        if dense_batch_size < 1:
            raise ValueError(f"dense_batch_size must be >= 1, got {dense_batch_size}")
        if dense_mode not in DENSE_MODES:
            raise ValueError(f"dense_mode must be one of {DENSE_MODES}, got {dense_mode!r}")
        if isinstance(dense_chunk, bool) or not isinstance(dense_chunk, int) or dense_chunk < 1:
            raise ValueError(f"dense_chunk must be an int >= 1 (points per model call), got {dense_chunk!r}")
        super().__init__(checkpoint, offline, v2, window_len, **common)
        self.dense_batch_size = dense_batch_size
        self.dense_mode = dense_mode
        self.dense_chunk = dense_chunk
        #: dense mode spreads a grid this many points wide (official: 30 for v1, 80 for CoTracker3)
        self.dense_grid_size = V3_DENSE_GRID_SIZE if self.family == "v3" else DENSE_GRID_SIZE

    @torch.no_grad()
    def forward(
        self,
        video: Tensor,
        queries: Optional[Tensor] = None,
        segm_mask: Optional[Tensor] = None,
        grid_size: int = 0,
        grid_query_frame: int = 0,
        backward_tracking: bool = False,
    ) -> Tuple[Tensor, Tensor]:
        """Track points.

        Args:
            video: ``(B, T, 3, H, W)`` float RGB in 0..255, any H and W.
            queries: ``(B, N, 3)`` rows ``(t, x, y)``: query frame and position in pixels of ``video``.
            segm_mask: ``(1 or B, 1, H, W)``; with ``grid_size > 0`` keep only grid points inside the mask.
            grid_size: G > 0 tracks a G x G grid queried at frame ``grid_query_frame``.
            grid_query_frame: query frame of the grid points.
            backward_tracking: also track the time-reversed video and fill the frames before each point's first
                window with the backward tracks.

        With neither ``queries`` nor ``grid_size``, dense mode tracks every pixel on ``step^2`` offset lattices
        (``step = W // 30``): one pass per lattice, or all together with ``dense_mode="one_pass"``.

        Returns:
            ``tracks`` ``(B, T, N, 2)`` (x, y) in pixels of ``video`` and ``visibilities`` ``(B, T, N)`` bool
            (probability > 0.9). Frames a point was never predicted in hold (0, 0) and False.
        """
        _check_video(video, "video")
        check_video_values(video, "video")
        if self.compile:
            compile_model_once(self.model, self.compile_bucket)
        B, T, _, H, W = video.shape
        if not isinstance(grid_size, int) or grid_size < 0:
            raise ValueError(f"grid_size must be a non-negative int, got {grid_size!r}")
        if not 0 <= grid_query_frame < T:
            raise ValueError(f"grid_query_frame must be in [0, T={T}), got {grid_query_frame}")
        if queries is not None:
            queries = _check_user_queries(queries, B, T, H, W)
            if grid_size > 0:
                warnings.warn(
                    "both queries and grid_size > 0 given: the queries are tracked and the grid is ignored "
                    "(official behaviour; no support grid is added either unless segm_mask is given)",
                    UserWarning,
                )
        if segm_mask is not None:
            if queries is not None or grid_size == 0:
                warnings.warn(
                    "segm_mask only selects grid points (grid_size > 0 without queries); here it is ignored "
                    "(official behaviour)" + (", apart from adding the support grid" if queries is not None else ""),
                    UserWarning,
                )
            check_segm_mask(segm_mask, B, H, W)

        out_device = video.device
        video = video.to(self.device, torch.float32)
        if queries is not None:
            queries = queries.to(self.device, torch.float32)
        if segm_mask is not None:
            segm_mask = segm_mask.to(self.device)
        if queries is None and grid_size == 0:
            tracks, vis = self._compute_dense_tracks(video, grid_query_frame, backward_tracking)
        else:
            tracks, vis = self._compute_sparse_tracks(
                video,
                queries,
                segm_mask if queries is None else None,
                grid_size,
                add_support_grid=(grid_size == 0 or segm_mask is not None),
                grid_query_frame=grid_query_frame,
                backward_tracking=backward_tracking,
            )
        return tracks.to(out_device), vis.to(out_device)

    # ------------------------------------------------------------------ internals (official structure)
    def _run_model(self, video: Tensor, queries: Tensor, chunk: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """Model call: ``video`` ``(B, T, 3, ih, iw)``, ``queries`` ``(B, N, 3)`` in working pixels ->
        tracks ``(B, T, N, 2)`` working pixels and visibility probabilities ``(B, T, N)``, float32.

        With ``chunk < N`` the points are split into consecutive chunks of at most ``chunk`` points, each tracked
        as by its own model call, but the frames are encoded once per window for all chunks
        (:meth:`_run_model_chunked`)."""
        with self.autocast():
            if self.family == "v3":  # CoTracker3: chunks are separate model calls
                step = chunk or queries.shape[1]
                parts = [
                    self.model(video, queries[:, lo : lo + step], iters=self.iters)
                    for lo in range(0, queries.shape[1], step)
                ]
                tracks, vis = torch.cat([p[0] for p in parts], 2), torch.cat([p[1] for p in parts], 2)
            elif chunk is not None and queries.shape[1] > chunk:
                tracks, vis = self._run_model_chunked(video, queries, chunk)
            else:
                tracks, _, vis, _ = self.model(video, queries, iters=self.iters)
        return tracks.float(), vis.float()

    def _run_model_chunked(self, video: Tensor, queries: Tensor, chunk: int) -> Tuple[Tensor, Tensor]:
        """``CoTracker.forward`` on each chunk of ``chunk`` consecutive points, with shared feature maps.

        Drives one :class:`SlidingWindowTracker` per chunk through the official window schedule; each window's new
        frames are encoded once and handed to every chunk, so the chunks' tracks equal separate model calls while
        the encoder runs once. Peak memory: one window of feature maps plus one chunk's working set (the per-point
        state of all chunks is O(N)). Returns tracks ``(B, T, N, 2)`` pixels and visibility probabilities
        ``(B, T, N)``.
        """
        model = self.model
        _check_video(video, "video")
        B, T = video.shape[:2]
        S = model.window_len
        trackers, traj, vis = [], [], []
        for lo in range(0, queries.shape[1], chunk):
            tracker = SlidingWindowTracker(model, B, self.iters, video.device)
            tracker.add_queries(queries[:, lo : lo + chunk])
            trackers.append(tracker)
            traj.append(video.new_zeros(B, T, tracker.num_tracks, 2))
            vis.append(video.new_zeros(B, T, tracker.num_tracks))
        for win in window_schedule(T, S):
            fmaps = model.encode(_pad_frames(video[:, win.new_from : win.stop], win.stop - win.new_from))
            for tracker, t_c, v_c in zip(trackers, traj, vis):
                out = tracker.run_window(None, win.real_frames(T), new_fmaps=fmaps)
                if out is not None:
                    out.write_into(t_c, v_c)
        return torch.cat(traj, 2), torch.sigmoid(torch.cat(vis, 2))

    def _dense_queries(self, H: int, W: int, query_frame: int, device) -> Tuple[Tensor, int]:
        """Every point of the dense mode, in the official output order: ``(step^2 * n, 3)`` rows ``(t, x, y)`` in
        pixels of the ``H x W`` video, lattice by lattice (offset ``o`` = ``(o % step, o // step)`` pixels, for
        ``o = 0 .. step^2 - 1``), each lattice row-major with ``n = (W // step) * (H // step)`` points spaced
        ``step = W // 30`` pixels apart. Returns the rows and ``n``."""
        step = W // self.dense_grid_size
        if step < 1:
            raise ValueError(f"dense mode needs a video at least {self.dense_grid_size} pixels wide, got W={W}")
        gw, gh = W // step, H // step
        if gh < 1:
            raise ValueError(f"dense mode needs a video at least {step} pixels high for W={W}, got H={H}")
        base_x = torch.arange(gw, device=device).repeat(gh).float() * step
        base_y = torch.arange(gh, device=device).repeat_interleave(gw).float() * step
        q = torch.stack(
            [
                torch.stack([torch.full_like(base_x, float(query_frame)), base_x + o % step, base_y + o // step], -1)
                for o in range(step * step)
            ]
        )  # (step^2, n, 3)
        return q.reshape(-1, 3), base_x.shape[0]

    def _compute_dense_tracks(self, video: Tensor, grid_query_frame: int, backward_tracking: bool):
        from tqdm.auto import tqdm

        B, T, _, H, W = video.shape
        all_q, n = self._dense_queries(H, W, grid_query_frame, video.device)
        small = self.resize_frames(video)  # once for all lattices
        if self.dense_mode == "one_pass":
            return self._compute_sparse_tracks(
                small,
                all_q[None].expand(B, -1, -1),
                None,
                0,
                add_support_grid=False,  # the official dense passes add no support grid either
                backward_tracking=backward_tracking,
                orig_hw=(H, W),
                chunk=self.dense_chunk,
            )
        step = W // self.dense_grid_size
        offsets = list(range(step * step))
        lattices = all_q.reshape(len(offsets), n, 3)
        tracks, vis = [], []
        chunk = self.dense_batch_size
        for first in tqdm(range(0, len(offsets), chunk), desc="dense lattices", unit="batch", disable=None):
            group = offsets[first : first + chunk]
            q = lattices[first : first + chunk]  # (G, n, 3)
            vids = small if len(group) == 1 else small.repeat_interleave(len(group), dim=0)  # sample-major
            qs = q.repeat(B, 1, 1)
            t, v = self._compute_sparse_tracks(
                vids, qs, None, 0, add_support_grid=False, backward_tracking=backward_tracking, orig_hw=(H, W)
            )
            tracks.append(t.reshape(B, len(group), T, n, 2).permute(0, 2, 1, 3, 4).reshape(B, T, -1, 2))
            vis.append(v.reshape(B, len(group), T, n).permute(0, 2, 1, 3).reshape(B, T, -1))
        return torch.cat(tracks, 2), torch.cat(vis, 2)

    def _compute_sparse_tracks(
        self,
        video: Tensor,
        queries: Optional[Tensor],
        segm_mask: Optional[Tensor] = None,
        grid_size: int = 0,
        add_support_grid: bool = False,
        grid_query_frame: int = 0,
        backward_tracking: bool = False,
        orig_hw: Optional[Tuple[int, int]] = None,
        chunk: Optional[int] = None,
    ):
        """Official sparse path. ``orig_hw`` given: ``video`` is already resized to ``interp_shape`` and
        ``orig_hw`` is the (H, W) that queries and outputs refer to. ``chunk``: at most this many points per model
        call (see :meth:`_run_model`; None: one call)."""
        B, T = video.shape[:2]
        if orig_hw is None:
            H, W = video.shape[-2:]
            video = self.resize_frames(video)
        else:
            H, W = orig_hw
        if queries is not None:
            queries = self.to_working(queries.float(), (H, W))
        else:
            queries = self.grid_queries(grid_size, grid_query_frame, B, segm_mask)
        n_user = queries.shape[1]
        if add_support_grid:
            queries = torch.cat([queries, self.support_grid(B)], dim=1)

        tracks, vis = self._run_model(video, queries, chunk)
        if backward_tracking:
            tracks, vis = self._compute_backward_tracks(video, queries, tracks, vis, chunk)
        tracks, vis = tracks[:, :, :n_user], vis[:, :, :n_user]
        vis = vis > VISIBILITY_THRESHOLD

        place_at_queries(tracks, vis, queries[:, :n_user])
        return self.to_video(tracks, (H, W)), vis

    def _compute_backward_tracks(
        self, video: Tensor, queries: Tensor, tracks: Tensor, vis: Tensor, chunk: Optional[int] = None
    ):
        T = video.shape[1]
        inv_queries = queries.clone()
        inv_queries[:, :, 0] = T - 1 - inv_queries[:, :, 0]
        inv_tracks, inv_vis = self._run_model(video.flip(1), inv_queries, chunk)
        inv_tracks, inv_vis = inv_tracks.flip(1), inv_vis.flip(1)
        if self.family == "v3":  # CoTracker3 predicts every frame: the frames before the query frame are filled
            frame = torch.arange(T, device=video.device, dtype=queries.dtype)
            before = frame[None, :, None] < queries[:, None, :, 0]
            return torch.where(before[..., None], inv_tracks, tracks), torch.where(before, inv_vis, vis)
        missing = tracks == 0  # frames before a point's first window hold exactly (0, 0)
        tracks = torch.where(missing, inv_tracks, tracks)
        vis = torch.where(missing[..., 0], inv_vis, vis)
        return tracks, vis


