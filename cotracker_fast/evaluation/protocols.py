"""The paper's evaluation protocols, batched.

* **multi-point**: all queries of a video plus a global 6x6 grid (queried at frame 0) tracked in one call.
* **single-point** (the paper's protocol, the official ``EvaluationPredictor(single_point=True)``): every
  ground-truth point is tracked on its own, on the video cropped to start at its query frame, together with a local
  6x6 grid around it (offsets -30..20 px) and the global 6x6 grid, all queried at the first frame of the crop; only
  the point's own track is kept, from its query frame on (earlier frames: (0, 0), not visible).

The official code runs the model once per ground-truth point and re-encodes the frames every time. Here a video's
CNN features are computed once (the encoder works frame by frame, so a cropped video's features are a slice of them)
and the single-point problems that share a query frame run as one batch (batches give the same tracks as single runs,
see the model's batch support). ``single_point_tracks_one_by_one`` keeps the official loop as the reference that the
tests compare against.

Inputs and outputs are at the model's working resolution (384x512 officially; :func:`evaluate_sample` does the
resizing). Strided query modes add the backward pass: the same protocol on the time-reversed video, filling the frames
the forward pass left at (0, 0).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ..models.cotracker import CoTracker, SlidingWindowTracker, _pad_frames
from ..predictor import get_points_on_a_grid

GRID_SIZE = 6
LOCAL_GRID_SIZE = 6
LOCAL_GRID_EXTENT = (50, 50)


@torch.no_grad()
def encode_video(model: CoTracker, video: Tensor, chunk: int = 8) -> Tensor:
    """Feature maps of every frame: ``(1, T, 3, H, W)`` RGB 0..255 -> ``(1, T, C, H/stride, W/stride)``."""
    return torch.cat([model.encode(video[:, i : i + chunk]) for i in range(0, video.shape[1], chunk)], dim=1)


@torch.no_grad()
def track_from_features(model: CoTracker, fmaps: Tensor, queries: Tensor, iters: int) -> Tuple[Tensor, Tensor]:
    """``CoTracker.forward`` on precomputed features: ``fmaps`` ``(1 or B, T, C, h, w)``, ``queries`` ``(B, n, 3)``
    (t, x, y) in working-resolution pixels. Returns tracks ``(B, T, n, 2)`` and visibility probabilities
    ``(B, T, n)``, as the model (frames before a point's first window: (0, 0) and 0.5)."""
    B, n = queries.shape[:2]
    T = fmaps.shape[1]
    S, step = model.window_len, model.config.window_step
    state = SlidingWindowTracker(model, B, iters, queries.device)
    state.add_queries(queries)
    traj = queries.new_zeros(B, T, n, 2)
    vis = queries.new_zeros(B, T, n)
    ind = 0
    while ind < T - step:
        lo = ind if ind == 0 else ind + step
        new = _pad_frames(fmaps[:, lo : ind + S], (ind + S) - lo)
        out = state.run_window(None, min(S, T - ind), new_fmaps=new.expand(B, *new.shape[1:]))
        if out is not None:
            out.write_into(traj, vis)
        ind += step
    return traj, torch.sigmoid(vis)


def _single_point_queries(points: Tensor, hw: Tuple[int, int], grid_size: int, local_grid_size: int) -> Tensor:
    """``points`` ``(P, 2)`` (x, y) -> ``(P, 1 + local^2 + grid^2, 3)`` queries at frame 0: the point, its local
    grid, the global grid (the official order)."""
    P = points.shape[0]
    parts = [torch.cat([points.new_zeros(P, 1, 1), points[:, None]], -1)]
    if local_grid_size > 0:
        local = torch.cat(
            [get_points_on_a_grid(local_grid_size, LOCAL_GRID_EXTENT, (float(y), float(x)), device=points.device)
             for x, y in points.tolist()]
        )
        parts.append(torch.cat([local.new_zeros(P, local.shape[1], 1), local], -1))
    if grid_size > 0:
        grid = get_points_on_a_grid(grid_size, hw, device=points.device).expand(P, -1, -1)
        parts.append(torch.cat([grid.new_zeros(P, grid.shape[1], 1), grid], -1))
    return torch.cat(parts, dim=1)


@torch.no_grad()
def single_point_tracks(
    model: CoTracker,
    video: Tensor,
    queries: Tensor,
    *,
    iters: int = 6,
    grid_size: int = GRID_SIZE,
    local_grid_size: int = LOCAL_GRID_SIZE,
    batch_size: int = 16,
    fmaps: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """The single-point protocol, batched.

    Args:
        video: ``(1, T, 3, H, W)`` RGB 0..255 at the working resolution.
        queries: ``(N, 3)`` rows (t, x, y) in working-resolution pixels.
        batch_size: single-point problems per batch (problems sharing a query frame are batched together).
        fmaps: the video's features if already computed (:func:`encode_video`).

    Returns:
        tracks ``(T, N, 2)`` and visibility probabilities ``(T, N)``; frames before each query frame are 0.
    """
    T, hw = video.shape[1], tuple(video.shape[-2:])
    fmaps = encode_video(model, video) if fmaps is None else fmaps
    N = queries.shape[0]
    tracks = video.new_zeros(T, N, 2)
    vis = video.new_zeros(T, N)
    t_all = queries[:, 0].long()
    for t in sorted(set(t_all.tolist())):
        idx = (t_all == t).nonzero()[:, 0]
        for chunk in idx.split(batch_size):
            q = _single_point_queries(queries[chunk, 1:], hw, grid_size, local_grid_size)
            tr, vi = track_from_features(model, fmaps[:, t:], q, iters)
            tracks[t:, chunk] = tr[:, :, 0].transpose(0, 1)
            vis[t:, chunk] = vi[:, :, 0].transpose(0, 1)
    return tracks, vis


@torch.no_grad()
def single_point_tracks_one_by_one(
    model: CoTracker, video: Tensor, queries: Tensor, *, iters: int = 6, grid_size: int = GRID_SIZE,
    local_grid_size: int = LOCAL_GRID_SIZE,
) -> Tuple[Tensor, Tensor]:
    """The official loop: one model call per point on the cropped video (frames re-encoded every time)."""
    T, hw = video.shape[1], tuple(video.shape[-2:])
    N = queries.shape[0]
    tracks = video.new_zeros(T, N, 2)
    vis = video.new_zeros(T, N)
    for i in range(N):
        t = int(queries[i, 0])
        q = _single_point_queries(queries[i : i + 1, 1:], hw, grid_size, local_grid_size)
        tr, _, vi, _ = model(video[:, t:], q, iters=iters)
        tracks[t:, i] = tr[0, :, 0]
        vis[t:, i] = vi[0, :, 0]
    return tracks, vis


@torch.no_grad()
def multi_point_tracks(
    model: CoTracker, video: Tensor, queries: Tensor, *, iters: int = 6, grid_size: int = GRID_SIZE,
    fmaps: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """All queries ``(N, 3)`` plus the global grid in one call. Returns ``(T, N, 2)``, ``(T, N)``."""
    hw = tuple(video.shape[-2:])
    fmaps = encode_video(model, video) if fmaps is None else fmaps
    q = queries[None]
    if grid_size > 0:
        grid = get_points_on_a_grid(grid_size, hw, device=video.device)
        q = torch.cat([q, torch.cat([grid.new_zeros(1, grid.shape[1], 1), grid], -1)], dim=1)
    tr, vi = track_from_features(model, fmaps, q, iters)
    N = queries.shape[0]
    return tr[0, :, :N], vi[0, :, :N]


@torch.no_grad()
def protocol_tracks(
    model: CoTracker, video: Tensor, queries: Tensor, *, single_point: bool = True, backward: bool = False,
    iters: int = 6, batch_size: int = 16,
) -> Tuple[Tensor, Tensor]:
    """Run a protocol, with the backward fill of strided evaluation when ``backward``: the same protocol on the
    reversed video (query frames ``T-1-t``) fills the entries the forward pass left at exactly 0."""
    fmaps = encode_video(model, video)

    def run(fm, vid, q):
        if single_point:
            return single_point_tracks(model, vid, q, iters=iters, batch_size=batch_size, fmaps=fm)
        return multi_point_tracks(model, vid, q, iters=iters, fmaps=fm)

    tracks, vis = run(fmaps, video, queries)
    if backward:
        T = video.shape[1]
        inv = queries.clone()
        inv[:, 0] = T - 1 - inv[:, 0]
        b_tracks, b_vis = run(fmaps.flip(1), video.flip(1), inv)
        b_tracks, b_vis = b_tracks.flip(0), b_vis.flip(0)
        missing = tracks == 0
        tracks = torch.where(missing, b_tracks, tracks)
        vis = torch.where(missing[..., 0], b_vis, vis)
    return tracks, vis
