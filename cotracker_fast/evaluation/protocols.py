"""The paper's evaluation protocols, batched.

* **multi-point**: all queries of a video plus a global 6x6 grid (queried at frame 0) tracked in one call.
* **single-point** (the paper's protocol, the official ``EvaluationPredictor(single_point=True)``): every
  ground-truth point is tracked on its own, on the video cropped to start at its query frame, together with a local
  6x6 grid around it (offsets -30..20 px) and the global 6x6 grid, all queried at the first frame of the crop; only
  the point's own track is kept, from its query frame on (earlier frames: (0, 0), not visible).

The official code runs the model once per ground-truth point and re-encodes the frames every time. Here a video's
CNN features are computed once (the encoder works frame by frame, so a cropped video's features are a slice of them)
and the single-point problems run as batches, whatever their query frames: each sample of a batch follows its own
crop's window schedule (:func:`track_from_features`), and batches give the same tracks as single runs. ``single_point_tracks_one_by_one`` keeps the official loop as the reference that the
tests compare against.

Inputs and outputs are at the model's working resolution (384x512 officially; :func:`evaluate_sample` does the
resizing). Strided query modes add the backward pass: the same protocol on the time-reversed video, filling the frames
the forward pass left at (0, 0).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ..models.cotracker import CoTracker, SlidingWindowTracker, window_schedule
from ..predictor import get_points_on_a_grid

GRID_SIZE = 6
LOCAL_GRID_SIZE = 6
LOCAL_GRID_EXTENT = (50, 50)


@torch.no_grad()
def encode_video(model: CoTracker, video: Tensor, chunk: int = 8) -> Tensor:
    """Feature maps of every frame: ``(1, T, 3, H, W)`` RGB 0..255 -> ``(1, T, C, H/stride, W/stride)``."""
    return torch.cat([model.encode(video[:, i : i + chunk]) for i in range(0, video.shape[1], chunk)], dim=1)


@torch.no_grad()
def track_from_features(
    model: CoTracker, fmaps: Tensor, queries: Tensor, iters: int, starts: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    """``CoTracker.forward`` on precomputed features, each sample on its own crop of the video.

    Args:
        fmaps: ``(1 or B, T, C, h, w)`` features of the whole video (:func:`encode_video`).
        queries: ``(B, n, 3)`` rows (t, x, y), working-resolution pixels, ``t`` relative to the sample's crop.
        starts: ``(B,)`` first frame of each sample's crop (default 0): sample ``b`` is tracked on frames
            ``starts[b] .. T-1`` exactly as ``CoTracker.forward`` would track that cropped video alone.

    Returns:
        tracks ``(B, L, n, 2)`` and visibility probabilities ``(B, L, n)`` in crop frames, ``L = T - min(starts)``;
        sample ``b``'s entries past its crop length ``T - starts[b]`` are 0 (tracks and visibility); frames before a
        point's first window are (0, 0) with visibility 0.5, as the model's.

    Samples of different crop lengths share one batch: window ``k`` of sample ``b`` reads crop frames
    ``[k S/2, k S/2 + S)``, i.e. video frames ``starts[b] + ...`` with frames past the end replaced by the last
    frame (the model's padding); a sample whose own schedule has ended keeps running with the batch, and those
    extra windows are not written.
    """
    B, n = queries.shape[:2]
    T = fmaps.shape[1]
    if fmaps.shape[0] not in (1, B):
        raise ValueError(f"fmaps must have batch 1 or {B} (queries' batch), got {fmaps.shape[0]}")
    starts_h = torch.zeros(B, dtype=torch.long) if starts is None else starts.detach().to("cpu", torch.long)
    if starts_h.shape != (B,) or bool((starts_h < 0).any()) or bool((starts_h >= T).any()):
        raise ValueError(f"starts must be a ({B},) tensor of frames in [0, {T - 1}], got {starts_h.tolist()}")
    lengths = T - starts_h  # (B,) crop lengths, on the host
    S, step = model.window_len, model.config.window_step
    dev = fmaps.device
    rows = torch.arange(B, device=dev)[:, None] if fmaps.shape[0] == B else torch.zeros(B, 1, dtype=torch.long, device=dev)
    first = starts_h.to(dev)[:, None]
    state = SlidingWindowTracker(model, B, iters, queries.device)
    state.add_queries(queries)
    L = int(lengths.max())
    traj = queries.new_zeros(B, L, n, 2)
    vis = queries.new_zeros(B, L, n)
    for win in window_schedule(L, S):
        ind = win.start
        frames = (first + torch.arange(win.new_from, win.stop, device=dev)[None]).clamp(max=T - 1)  # (B, F) frames
        out = state.run_window(None, (lengths - ind).clamp(1, S), new_fmaps=fmaps[rows, frames])
        if out is not None:
            # the sample's own schedule ran it (window_runs, per sample)
            running = ((ind < lengths - step) | (ind == 0)).to(out.valid.device, non_blocking=True)
            out.valid &= running[:, None]
            out.write_into(traj, vis)
    vis = torch.sigmoid(vis)
    past = torch.arange(L, device=traj.device)[None] >= lengths.to(traj.device, non_blocking=True)[:, None]  # (B, L)
    traj = traj.masked_fill(past[..., None, None], 0.0)  # frames past a sample's crop: windows' padding frames
    vis = vis.masked_fill(past[..., None], 0.0)
    return traj, vis


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
        batch_size: single-point problems per batch (any query frames: each problem runs on its own crop).
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
    # Problems sorted by query frame, so a batch holds crops of similar length (few wasted windows).
    for chunk in torch.argsort(t_all, stable=True).split(batch_size):
        q = _single_point_queries(queries[chunk, 1:], hw, grid_size, local_grid_size)
        tr, vi = track_from_features(model, fmaps, q, iters, starts=t_all[chunk])
        for b, (i, t) in enumerate(zip(chunk.tolist(), t_all[chunk].tolist())):
            tracks[t:, i] = tr[b, : T - t, 0]
            vis[t:, i] = vi[b, : T - t, 0]
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
