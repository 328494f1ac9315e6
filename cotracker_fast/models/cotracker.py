"""CoTracker v1: joint tracking of many points with a sliding-window transformer.

Paper: Karaev et al., "CoTracker: It is Better to Track Together" (2023). This is a clean-room implementation that
loads the official v1 checkpoints unchanged (150 keys, 24,149,859 parameters) and follows the released code where it
differs from the paper (square 7x7 correlation neighbourhoods, x-major order).

Differences from the official code that do not change results:

* batches of any size: samples whose points join windows at different times are handled with a per-sample track
  mask in the space attention (the official code asserts B == 1);
* the tracks of each window are gathered in the official order (sorted by query frame with the same
  ``torch.sort`` call); the order matters beyond round-off because of the official token layout quirk
  (:func:`mask_vis_channels`);
* the window schedule lives in :class:`SlidingWindowTracker`, which the offline ``forward`` and the streaming
  predictor both drive, so the two give the same tracks.

One difference that does change results, on clips of at most S/2 frames only: the official schedule runs windows
while ``start < T - S/2``, so such a clip runs no window and every frame but the query frames stays (0, 0). Here
the first window always runs (:func:`window_runs`), on the clip padded with its last frame as any short window is,
so short clips get real tracks. Clips longer than S/2 frames run exactly the official windows.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .. import ops
from ..ops.op_corr4d import channels_last_level
from .config import CoTrackerConfig
from .embeddings import flow_embedding, position_table_2d, time_embedding
from .encoder import BasicEncoder
from .updateformer import UpdateFormer, linear_full_precision
from .windows import Window, _pad_frames, window_runs, window_schedule  # noqa: F401  (re-exported)

VIS_INIT_LOGIT = 10.0  # initial visibility logit of every new point ("close to 1 after sigmoid")


class CoTracker(nn.Module):
    """The CoTracker v1 network.

    Args:
        config: sizes of the network (:class:`CoTrackerConfig`); the registry names the official variants.
        backend: backend for the ``corr_sample`` and ``attention`` ops (see :mod:`cotracker_fast.ops.backend`).
    """

    def __init__(self, config: Optional[CoTrackerConfig] = None, *, backend: ops.BackendSpec = None):
        super().__init__()
        cfg = config or CoTrackerConfig()
        self.config = cfg
        self.backend = backend
        C = cfg.latent_dim
        self.fnet = BasicEncoder(input_dim=3, output_dim=C, stride=cfg.stride)
        self.updateformer = UpdateFormer(cfg, backend)
        self.norm = nn.GroupNorm(1, C)
        self.ffeat_updater = nn.Sequential(nn.Linear(C, C), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(C, 1))
        # Fixed tables, not parameters: kept out of the state dict so official checkpoints load strictly.
        self.register_buffer("time_embed", time_embedding(cfg.input_dim, cfg.window_len), persistent=False)
        self._pos_tables = {}  # (h, w, device, dtype) -> (1, input_dim, h, w) table (float32 values, cast once)

    @property
    def stride(self) -> int:
        """Input pixels per feature-map cell."""
        return self.config.stride

    @property
    def window_len(self) -> int:
        """Frames per sliding window (S)."""
        return self.config.window_len

    def set_backend(self, backend: ops.BackendSpec) -> None:
        """Change the ops backend of the model and all its attention layers."""
        self.backend = backend
        for m in self.modules():
            if hasattr(m, "backend") and m is not self:
                m.backend = backend

    # ------------------------------------------------------------------ building blocks
    def pos_table(self, h: int, w: int, like: Tensor) -> Tensor:
        """2D sin/cos position table of a ``h x w`` feature map (the official code sizes it by the actual feature
        map, so inputs other than 384x512 get their own table). Cached per size."""
        key = (h, w, like.device, like.dtype)
        table = self._pos_tables.get(key)
        if table is None:
            table = position_table_2d(self.config.input_dim, h, w).to(like.device, like.dtype)
            self._pos_tables[key] = table
        return table

    def encode(self, frames: Tensor) -> Tensor:
        """Frames ``(B, F, 3, H, W)`` RGB in 0..255 -> feature maps ``(B, F, C, H // stride, W // stride)``."""
        B, F_ = frames.shape[:2]
        x = 2 * (frames / 255.0) - 1.0
        fmaps = self.fnet(x.reshape(B * F_, *x.shape[2:]))
        return fmaps.reshape(B, F_, *fmaps.shape[1:])

    def forward_window(
        self,
        fmaps: Tensor,
        coords: Tensor,
        feat_init: Tensor,
        vis_init: Tensor,
        track_mask: Tensor,
        iters: int,
        counts: Optional[Tensor] = None,
    ):
        """Iteratively refine the tracks of one window.

        Args:
            fmaps: ``(B, S, C, h, w)`` feature maps of the window's frames.
            coords: ``(B, S, N, 2)`` initial positions (x, y) in feature-map cells.
            feat_init: ``(B, N, C)`` query features.
            vis_init: ``(B, S, N)`` initial visibility logits.
            track_mask: ``(B, S, N)`` bool/float, 1 on frames not estimated by an earlier window.
            iters: refinement iterations.
            counts: optional ``(B,)`` number of real tracks per sample; tracks ``n >= counts[b]`` are padding
                that no real track attends to (batches whose samples have different active tracks).
                The tracks must be in the official order (sorted by query frame).

        Returns:
            ``(coord_preds, vis_logits)``: a list of ``iters`` tensors ``(B, S, N, 2)`` in input pixels
            (feature cells * stride), and ``(B, S, N)`` visibility logits computed from the final features.
        """
        cfg = self.config
        B, S, N, _ = coords.shape
        # On a CPU the correlation op computes in float32: bf16 maps are converted once here, not at every iteration.
        if fmaps.device.type == "cpu" and fmaps.dtype in (torch.bfloat16, torch.float16):
            fmaps = fmaps.float()
        # Channels-last storage (same logical shape): the correlation op's per-cell feature rows become views, not a
        # transposed copy of every level at every iteration.
        pyramid = [channels_last_level(p) for p in
                   ops.build_pyramid(fmaps, cfg.corr_levels)]
        ffeats = feat_init[:, None].expand(B, S, N, cfg.latent_dim)
        pos = None
        if cfg.pos_embed:
            table = self.pos_table(fmaps.shape[-2], fmaps.shape[-1], coords)  # (1, D, h, w), shared by the batch
            pos = ops.bilinear_sample_border(table, coords[:, 0].reshape(1, B * N, 2)).reshape(B, N, -1)
        times = self.time_embed[:, :S, None, :]  # (1, S, 1, D)
        mask_vis = mask_vis_channels(track_mask, vis_init, counts)
        track_valid = None
        if counts is not None:
            track_valid = torch.arange(N, device=coords.device)[None] < counts[:, None]
            # a sample with no active track yet still flows through the batch (its outputs are discarded); let
            # its padding attend to everything so no softmax row is empty
            track_valid |= (counts == 0)[:, None]
        preds = []
        for _ in range(iters):
            coords = coords.detach()
            fcorrs = ops.corr_sample(pyramid, ffeats, coords, cfg.corr_radius, backend=self.backend)
            flows = flow_embedding(coords - coords[:, :1], cfg.flow_embed_dim)
            tokens = torch.cat([flows, fcorrs, ffeats, mask_vis], dim=-1)
            x = (tokens if pos is None else tokens + pos[:, None]) + times  # (B, S, N, D)
            delta = self.updateformer(x.transpose(1, 2), track_valid).transpose(1, 2)  # (B, S, N, 2 + C)
            dfeats = self.norm(delta[..., 2:].reshape(-1, cfg.latent_dim))
            ffeats = ffeats + self.ffeat_updater(dfeats).reshape(B, S, N, cfg.latent_dim)
            coords = coords + delta[..., :2]
            preds.append(coords * cfg.stride)
        vis_logits = linear_full_precision(self.vis_predictor[0], ffeats)[..., 0]  # float32 logits under autocast
        return preds, vis_logits

    def compile_window(self, bucket: int = 64, **compile_kwargs) -> None:
        """Run every window through ``torch.compile(forward_window)`` from now on (``compile_kwargs`` go to
        ``torch.compile``; e.g. ``mode="reduce-overhead"`` adds CUDA graph capture on GPUs).

        The number of tracks of a window is padded up to a multiple of ``bucket`` (padding tracks are masked out of
        attention and dropped from the outputs), so new points recompile only when they cross a bucket; the frame
        and feature-map sizes are fixed per video. The compiled step gives the eager step's tracks up to float
        summation order (masked attention over the padding)."""
        if isinstance(bucket, bool) or not isinstance(bucket, int) or bucket < 1:
            raise ValueError(f"bucket must be an int >= 1, got {bucket!r}")
        self._bucket = bucket
        self._compiled_window = torch.compile(self.forward_window, **compile_kwargs)

    def uncompile_window(self) -> None:
        """Back to the eager window step."""
        self._compiled_window = None
        self._bucket = None

    def refine_window(
        self, fmaps: Tensor, coords: Tensor, feat_init: Tensor, vis_init: Tensor, track_mask: Tensor, iters: int,
        counts: Optional[Tensor] = None,
    ):
        """:meth:`forward_window`, compiled and bucketed after :meth:`compile_window` (same arguments/outputs)."""
        fn = getattr(self, "_compiled_window", None)
        if fn is None:
            return self.forward_window(fmaps, coords, feat_init, vis_init, track_mask, iters, counts=counts)
        B, _, K, _ = coords.shape
        pad = -K % self._bucket
        if counts is None:  # always pass counts: one graph whether or not the samples' counts differ
            counts = torch.full((B,), K, dtype=torch.long, device=coords.device)
        if pad:
            coords = F.pad(coords, (0, 0, 0, pad))
            feat_init = F.pad(feat_init, (0, 0, 0, pad))
            vis_init = F.pad(vis_init, (0, pad))
            track_mask = F.pad(track_mask, (0, pad))
        preds, vis_logits = fn(fmaps, coords, feat_init, vis_init, track_mask, iters, counts=counts)
        if pad:
            preds = [p[:, :, :K] for p in preds]
            vis_logits = vis_logits[:, :, :K]
        return preds, vis_logits

    # ------------------------------------------------------------------ whole video
    def forward(
        self, rgbs: Tensor, queries: Tensor, iters: int = 4, feat_init: Optional[Tensor] = None, is_train: bool = False
    ):
        """Track ``queries`` through ``rgbs`` with the official sliding-window schedule.

        Args:
            rgbs: ``(B, T, 3, H, W)`` float RGB in 0..255 (the official paths use H, W = 384, 512).
            queries: ``(B, N, 3)`` rows ``(t, x, y)``: query frame and pixel position at the input resolution.
            iters: refinement iterations per window (the official predictor uses 6, training 4).
            feat_init: accepted for signature compatibility with the official model; must be None.
            is_train: also return the per-window, per-iteration predictions for the training losses.

        Returns:
            ``(tracks (B, T, N, 2) pixels, feat_init (B, N, C), visibility (B, T, N) sigmoid probabilities,
            train_data)``. Frames before a point's first window stay (0, 0) with visibility 0.5
            (sigmoid of 0), as in the official code; ``train_data`` is a :class:`TrainData` or None.
            ``feat_init`` is in the order of ``queries`` (the official returns it sorted, repeated over S, and
            None when no window ran).
        """
        if feat_init is not None:
            raise ValueError("feat_init must be None: the model computes query features from the frames itself")
        _check_video(rgbs, "rgbs")
        B, T = rgbs.shape[:2]
        _check_queries(queries, B, T, "queries")
        S = self.window_len
        state = SlidingWindowTracker(self, B, iters, rgbs.device, keep_train_data=is_train)
        state.add_queries(queries)
        traj = rgbs.new_zeros(B, T, queries.shape[1], 2)
        vis = rgbs.new_zeros(B, T, queries.shape[1])
        for win in window_schedule(T, S):
            new = _pad_frames(rgbs[:, win.new_from : win.stop], win.stop - win.new_from)
            out = state.run_window(new, win.real_frames(T))
            if out is not None:
                out.write_into(traj, vis)
        return traj, state.feat_init, torch.sigmoid(vis), state.train_data


def mask_vis_channels(track_mask: Tensor, vis_init: Tensor, counts: Optional[Tensor] = None) -> Tensor:
    """The last two token channels, laid out exactly as the official v1 code (and so its checkpoints) has them.

    The official code concatenates the ``(B, S, N, 1)`` track mask and visibility logits along the *track* axis and
    reshapes the ``(2N, S)`` result to ``(N, S, 2)``. So for tracks in the official (sorted) order, with ``z`` the
    row-major flattening of ``[mask rows of tracks 0..N-1; vis rows of tracks 0..N-1]``, token (n, s) holds
    ``z[2(nS + s)]`` and ``z[2(nS + s) + 1]``: the first half of the tracks see the masks of tracks 2n and 2n+1, the
    second half see visibility logits. (Fixed in CoTracker v2; v1 weights were trained with it.)

    Args:
        track_mask: ``(B, S, N)`` bool or float; vis_init: ``(B, S, N)`` logits.
        counts: optional ``(B,)``: only the first ``counts[b]`` tracks of sample b are real; the layout is then
            built per sample as the official code would for ``N = counts[b]``, and padding tracks get zeros.

    Returns:
        ``(B, S, N, 2)`` in the dtype of ``vis_init``.
    """
    B, S, N = vis_init.shape
    mask = track_mask.to(vis_init.dtype)

    def layout(m: Tensor, v: Tensor) -> Tensor:
        n = m.shape[2]
        z = torch.cat([m, v], dim=2).transpose(1, 2)  # (b, 2n, S)
        return z.reshape(z.shape[0], n, S, 2).transpose(1, 2)

    if counts is None:
        return layout(mask, vis_init)
    # The same layout per sample for N = counts[b], as pure indexing (no host sync, fixed shapes: compile-friendly):
    # entry j = 2(nS + s) + k of z is row r = j // S, frame j % S; rows < c are masks, the rest visibility.
    dev = vis_init.device
    j = (2 * (torch.arange(N, device=dev)[:, None] * S + torch.arange(S, device=dev)[None]))[..., None] + torch.arange(
        2, device=dev
    )  # (N, S, 2)
    r, col = j // S, j % S
    c = counts.to(dev)[:, None, None, None]  # (B, 1, 1, 1)
    b = torch.arange(B, device=dev)[:, None, None, None]
    from_mask = mask[b, col, r.clamp(max=N - 1)]  # (B, N, S, 2)
    from_vis = vis_init[b, col, (r - c).clamp(0, N - 1)]
    real = torch.arange(N, device=dev)[None, :, None, None] < c
    out = torch.where(r < c, from_mask, from_vis) * real
    return out.transpose(1, 2)


def _check_video(video: Tensor, name: str) -> None:
    if not torch.is_tensor(video) or video.dim() != 5 or video.shape[2] != 3:
        shape = tuple(video.shape) if torch.is_tensor(video) else type(video).__name__
        raise ValueError(f"{name} must be a (B, T, 3, H, W) tensor, got {shape}")
    if not video.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor with RGB values in 0..255, got {video.dtype}")
    if video.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(video.shape)}")


def _check_queries(queries: Tensor, B: int, T: Optional[int], name: str) -> None:
    if not torch.is_tensor(queries) or queries.dim() != 3 or queries.shape[-1] != 3 or queries.shape[0] != B:
        shape = tuple(queries.shape) if torch.is_tensor(queries) else type(queries).__name__
        raise ValueError(f"{name} must be a (B={B}, N, 3) tensor of (t, x, y) rows, got {shape}")
    if queries.shape[1] == 0:
        raise ValueError(f"{name} is empty: at least one query point is needed")
    if not bool(torch.isfinite(queries).all()):
        raise ValueError(f"{name} contains NaN or inf")
    t = queries[..., 0]
    if bool((t < 0).any()):
        raise ValueError(f"{name}[..., 0] (query frame) must be >= 0, got min {float(t.min())}")
    if T is not None and bool((t >= T).any()):
        raise ValueError(f"{name}[..., 0] (query frame) must be < T = {T}, got max {float(t.max())}")
    warn_fractional_frames(t, name)


def warn_fractional_frames(t: Tensor, name: str) -> None:
    """The official code truncates query frames to integers (``.long()``); so do we, but not silently."""
    if bool((t != t.trunc()).any()):
        warnings.warn(f"{name}: fractional query frames are truncated to integers (official behaviour)", UserWarning)


def _gather_tracks(x: Tensor, index: Tensor, dim: int) -> Tensor:
    """Gather along the track dimension ``dim`` of ``x`` with a ``(B, K)`` index."""
    shape = [1] * x.dim()
    shape[0], shape[dim] = index.shape
    idx = index.reshape(shape).expand(*x.shape[:dim], index.shape[1], *x.shape[dim + 1 :])
    return torch.gather(x, dim, idx)


def _scattered(x: Tensor, index: Tensor, values: Tensor, dim: int) -> Tensor:
    """Out of place: a copy of ``x`` whose tracks ``index`` ``(B, K)`` along ``dim`` take ``values``. Used for the
    tracker state that carries gradients across windows in training (an in-place write would invalidate them)."""
    shape = [1] * x.dim()
    shape[0], shape[dim] = index.shape
    return x.scatter(dim, index.reshape(shape).expand_as(values), values)


def _scatter_tracks(x: Tensor, index: Tensor, values: Tensor, dim: int) -> None:
    """In place: ``x`` along the track dimension ``dim`` at the ``(B, K)`` ``index`` takes ``values``."""
    shape = [1] * x.dim()
    shape[0], shape[dim] = index.shape
    idx = index.reshape(shape).expand_as(values)
    x.scatter_(dim, idx, values)


@dataclass
class WindowOutput:
    """Predictions of one window, for frames ``[start, start + length)``.

    ``tracks`` ``(B, length, K, 2)`` pixels and ``vis_logits`` ``(B, length, K)`` belong to the tracks
    ``index`` ``(B, K)``; only entries with ``valid`` ``(B, K)`` True are predictions.
    """

    start: int
    length: int
    index: Tensor
    valid: Tensor
    tracks: Tensor
    vis_logits: Tensor

    def write_into(self, traj: Tensor, vis: Tensor, offset: int = 0) -> None:
        """Write into ``traj`` ``(B, T, N, 2)`` / ``vis`` ``(B, T, N)`` whose frame 0 is frame ``offset``."""
        lo = self.start - offset
        t_sl, v_sl = traj[:, lo : lo + self.length], vis[:, lo : lo + self.length]
        # The window's values scattered onto the full track axis, then selected where this window predicted. The
        # old values are only read by `where` (whose backward keeps the condition, not them): gathering them from
        # the slice that is then overwritten would make autograd save that slice and close a reference cycle
        # (slice -> its base's graph -> the gather's saved slice) that keeps every step's graph alive in training.
        written = torch.zeros(traj.shape[0], traj.shape[2], dtype=torch.bool, device=traj.device)
        written = written.scatter(1, self.index, self.valid)[:, None]  # (B, 1, N)
        new_t = _scattered(torch.zeros_like(t_sl), self.index, self.tracks.to(traj.dtype), 2)
        new_v = _scattered(torch.zeros_like(v_sl), self.index, self.vis_logits.to(vis.dtype), 2)
        t_sl.copy_(torch.where(written[..., None], new_t, t_sl))
        v_sl.copy_(torch.where(written, new_v, v_sl))


@dataclass
class TrainData:
    """Per-window training outputs (lists indexed by window): all iterations' tracks ``(B, S_local, K, 2)``,
    visibility logits ``(B, S_local, K)``, and the track ``index`` / ``valid`` ``(B, K)`` of each window."""

    window_starts: List[int] = field(default_factory=list)
    coord_preds: List[List[Tensor]] = field(default_factory=list)
    vis_logits: List[Tensor] = field(default_factory=list)
    index: List[Tensor] = field(default_factory=list)
    valid: List[Tensor] = field(default_factory=list)


class SlidingWindowTracker:
    """The official sliding-window schedule as a state machine, one window at a time.

    Windows start at 0, S/2, S, ...; window ``k`` covers frames ``[k S/2, k S/2 + S)``. A point is active in a
    window once its query frame is ``< start + S``; in its first window its features are sampled from the
    feature map of its query frame and its positions and visibility logits start at the query / ``10``; after that,
    the first half of each window takes the second half of the previous window's last iteration and the second
    half repeats its last frame. The track mask is 1 on frames at or after the query frame that no earlier window
    estimated. The caller feeds frames (all S for the first window, the S/2 new ones after that) and writes the
    returned :class:`WindowOutput`. Memory: one window of feature maps, plus O(N) per-track state.

    Args:
        model: the :class:`CoTracker` network.
        batch_size: B.
        iters: refinement iterations per window.
        device: where the per-track state lives (the model's device).
        keep_train_data: also keep every window's per-iteration outputs in :attr:`train_data` (for training).
    """

    def __init__(self, model: CoTracker, batch_size: int, iters: int, device, keep_train_data: bool = False):
        if iters < 1:
            raise ValueError(f"iters must be >= 1, got {iters}")
        self.model = model
        self.B = batch_size
        self.iters = iters
        cfg = model.config
        self.S, self.step = cfg.window_len, cfg.window_step
        dtype = next(model.parameters()).dtype  # float32 normally (also under autocast); float64 in tests
        self.q_t = torch.zeros(batch_size, 0, dtype=torch.long, device=device)
        self.q_t_host = torch.zeros(batch_size, 0, dtype=torch.long)  # CPU copy: no device sync in the window loop
        self.q_xy = torch.zeros(batch_size, 0, 2, dtype=dtype, device=device)
        self.feat_init = torch.zeros(batch_size, 0, cfg.latent_dim, dtype=dtype, device=device)
        self.started = torch.zeros(batch_size, 0, dtype=torch.bool, device=device)
        self.coords = torch.zeros(batch_size, self.S, 0, 2, dtype=dtype, device=device)
        self.vis = torch.zeros(batch_size, self.S, 0, dtype=dtype, device=device)
        self.cleared_until = torch.zeros(batch_size, 0, dtype=torch.long, device=device)
        self.order = torch.zeros(batch_size, 0, dtype=torch.long, device=device)
        self.group = torch.zeros(0, dtype=torch.long, device=device)
        self.fmap_cache: Optional[Tensor] = None
        self.next_start = 0
        self.train_data = TrainData() if keep_train_data else None

    @property
    def num_tracks(self) -> int:
        """Points added so far (all samples have the same number)."""
        return self.q_t.shape[1]

    def add_queries(self, queries: Tensor, group: int = 0) -> None:
        """Append points ``(B, M, 3)`` rows ``(t, x, y)`` in input pixels. Each query frame must not precede the
        current window (``t >= next_start``): a window that already ran cannot take new points.

        ``group`` orders tracks before the sort by query frame: the official predictor lists user points before
        its support grid, so a streaming caller that adds user points after the support grid passes group 0 for
        them and 1 for the grid, and the sort sees the same array as the offline run."""
        _check_queries(queries, self.B, None, "queries")
        t = queries[..., 0].long().to(self.q_t.device)  # truncation, as the official code
        if bool((t < self.next_start).any()):
            raise ValueError(
                f"queries for frame {int(t.min())} arrived after the window starting at frame "
                f"{self.next_start - self.step} ran; queries must arrive before their frame"
            )
        M = queries.shape[1]
        dev = self.q_t.device
        self.q_t = torch.cat([self.q_t, t], 1)
        self.q_t_host = torch.cat([self.q_t_host, t.cpu()], 1)  # the one sync, when queries arrive
        self.q_xy = torch.cat([self.q_xy, queries[..., 1:].to(dev, self.q_xy.dtype)], 1)
        self.feat_init = torch.cat([self.feat_init, self.feat_init.new_zeros(self.B, M, self.feat_init.shape[-1])], 1)
        self.started = torch.cat([self.started, self.started.new_zeros(self.B, M)], 1)
        self.coords = torch.cat([self.coords, self.coords.new_zeros(self.B, self.S, M, 2)], 2)
        self.vis = torch.cat([self.vis, self.vis.new_zeros(self.B, self.S, M)], 2)
        self.cleared_until = torch.cat([self.cleared_until, self.cleared_until.new_zeros(self.B, M)], 1)
        self.group = torch.cat([self.group, torch.full((M,), group, dtype=torch.long, device=self.group.device)])
        # The official order: tracks sorted by query frame with torch.sort's default (not stable) algorithm, one
        # sample at a time as the official B = 1 code does. Tie order matters (see mask_vis_channels), so the
        # same call is used, on the same device, on the same array (tracks listed group by group).
        canon = torch.argsort(self.group, stable=True)
        self.order = torch.stack([canon[torch.sort(self.q_t[b, canon])[1]] for b in range(self.B)])

    def run_window(
        self, new_frames: Optional[Tensor], num_real: Union[int, Tensor], new_fmaps: Optional[Tensor] = None
    ) -> Optional[WindowOutput]:
        """Run the next window.

        Args:
            new_frames: ``(B, F, 3, H, W)`` RGB 0..255: all S frames for the first window, else the S/2 frames
                ``[start + S/2, start + S)``; frames past the end of the video are the last frame repeated.
            num_real: frames of this window that exist in the video (``min(S, T - start)``); or one count per
                sample, a CPU ``(B,)`` integer tensor, when the samples are videos of different lengths (the
                returned window then spans the largest count; entries past a sample's own count are padding).
            new_fmaps: instead of ``new_frames``, their feature maps ``(B, F, C, h, w)`` (``CoTracker.encode`` of
                those frames), e.g. computed once for a video and shared by many tracking problems.

        Returns:
            The window's predictions, or None when no point is active yet (the features are still cached).
        """
        start, S, step = self.next_start, self.S, self.step
        expected = S if self.fmap_cache is None else step
        given = new_fmaps if new_fmaps is not None else new_frames
        if given is None or given.shape[1] != expected:
            got = None if given is None else given.shape[1]
            raise ValueError(f"window at frame {start} needs {expected} new frames, got {got}")
        model = self.model
        if new_fmaps is None:
            new_fmaps = model.encode(new_frames)
        fmaps = new_fmaps if self.fmap_cache is None else torch.cat([self.fmap_cache, new_fmaps], 1)
        self.fmap_cache = fmaps[:, step:]
        self.next_start = start + step

        counts_host = (self.q_t_host < start + S).sum(1)  # (B,) on the host: no device sync
        K = int(counts_host.max()) if self.num_tracks else 0
        if K == 0:
            return None
        counts = counts_host.to(self.q_t.device, non_blocking=True)
        # In the official order the active tracks of each sample are a prefix; positions past its count are padding.
        index = self.order[:, :K]
        valid = torch.arange(K, device=index.device)[None] < counts[:, None]
        stride = model.stride

        # Points new in this window start at their query (the masked updates leave other points untouched).
        new = valid & ~_gather_tracks(self.started, index, 1)
        xy = _gather_tracks(self.q_xy, index, 1) / stride  # (B, K, 2) feature cells
        rel_t = (_gather_tracks(self.q_t, index, 1) - start).clamp(0, S - 1)
        B, _, C, h, w = fmaps.shape
        per_frame = ops.bilinear_sample_border(
            fmaps.reshape(B * S, C, h, w), xy[:, None].expand(B, S, K, 2).reshape(B * S, K, 2)
        ).reshape(B, S, K, C)
        feats = torch.gather(per_frame, 1, rel_t[:, None, :, None].expand(B, 1, K, C))[:, 0]
        old_f = _gather_tracks(self.feat_init, index, 1)
        self.feat_init = _scattered(self.feat_init, index, torch.where(new[..., None], feats.to(old_f.dtype), old_f), 1)
        old_c = _gather_tracks(self.coords, index, 2)
        new_c = torch.where(new[:, None, :, None], xy[:, None].expand_as(old_c), old_c)
        self.coords = _scattered(self.coords, index, new_c, 2)
        old_v = _gather_tracks(self.vis, index, 2)
        self.vis = _scattered(self.vis, index, torch.where(new[:, None], torch.full_like(old_v, VIS_INIT_LOGIT), old_v), 2)
        _scatter_tracks(self.started, index, _gather_tracks(self.started, index, 1) | new, 1)

        frames_abs = start + torch.arange(S, device=index.device)[None, :, None]  # (1, S, 1)
        if isinstance(num_real, Tensor):
            if num_real.shape != (self.B,):
                raise ValueError(f"num_real must be an int or a ({self.B},) tensor, got shape {tuple(num_real.shape)}")
            n = int(num_real.max())
            real_end = start + num_real.to(index.device, non_blocking=True)[:, None, None]
        else:
            n = num_real
            real_end = start + num_real
        track_mask = (
            (frames_abs >= _gather_tracks(self.q_t, index, 1)[:, None])
            & (frames_abs >= _gather_tracks(self.cleared_until, index, 1)[:, None])
            & (frames_abs < real_end)
        )
        preds, vis_logits = model.refine_window(
            fmaps,
            _gather_tracks(self.coords, index, 2),
            _gather_tracks(self.feat_init, index, 1),
            _gather_tracks(self.vis, index, 2),
            track_mask,
            self.iters,
            counts=None if int(counts_host.min()) == K else counts,
        )
        last = preds[-1]
        # Carry into the next window: its first half is this window's second half; its second half repeats the
        # last frame. Visibility carries the raw logits.
        carry_c = torch.cat([last[:, step:], last[:, -1:].expand(-1, S - step, -1, -1)], 1) / stride
        carry_v = torch.cat([vis_logits[:, step:], vis_logits[:, -1:].expand(-1, S - step, -1)], 1)
        keep = valid[:, None]
        self.coords = _scattered(self.coords, index, torch.where(keep[..., None], carry_c, _gather_tracks(self.coords, index, 2)), 2)
        self.vis = _scattered(self.vis, index, torch.where(keep, carry_v, _gather_tracks(self.vis, index, 2)), 2)
        cleared = torch.where(valid, torch.full_like(index, start + S), _gather_tracks(self.cleared_until, index, 1))
        _scatter_tracks(self.cleared_until, index, cleared, 1)

        if self.train_data is not None:
            td = self.train_data
            td.window_starts.append(start)
            td.coord_preds.append([p[:, :n] for p in preds])
            td.vis_logits.append(vis_logits[:, :n])
            td.index.append(index)
            td.valid.append(valid)
        return WindowOutput(start, n, index, valid, last[:, :n], vis_logits[:, :n])
