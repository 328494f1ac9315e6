"""CoTracker3's evaluation protocol (the official evaluator's v3 path).

* Offline models, multi-point: the video at 384x512 (bilinear, ``align_corners=True``), queries scaled by
  ``(511 / (W - 1), 383 / (H - 1))``, a 5x5 grid at frame 0 tracked with them and dropped, 6 iterations.
* Offline models, single-point (``single_point=True``): one call per ground-truth point on the whole video, with an
  8x8 local grid 50 px wide around the point and the 5x5 global grid, both at frame 0; only the point's track kept.
* Online models: the official streaming protocol on the ground-truth queries (no grid): chunks of 16 frames every 8.
* Strided query modes add a pass over the time-reversed video (multi-point, sliding windows for online models)
  that fills the frames where the forward track is exactly (0, 0).

The predicted visibility is ``sigmoid(vis) * sigmoid(conf)``; the evaluator counts a point visible above 0.6.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from ..models.cotracker3 import CoTracker3Base, CoTracker3Online
from ..predictor_v3 import V3_ONLINE_THRESHOLD, v3_grid_points, v3_resize, v3_to_video, v3_to_working

GLOBAL_GRID = 5
LOCAL_GRID = 8
LOCAL_EXTENT = (50, 50)
#: Visibility threshold of the v3 evaluation: ``vis * conf > 0.6``.
V3_EVAL_THRESHOLD = V3_ONLINE_THRESHOLD


def _grid_at_frame0(size, extent, center=None, device=None) -> Tensor:
    pts = v3_grid_points(size, extent, center, device=device)  # (1, M, 2)
    return torch.cat([torch.zeros_like(pts[..., :1]), pts], dim=-1)


def _call(model: CoTracker3Base, video: Tensor, queries: Tensor, iters: int) -> Tuple[Tensor, Tensor]:
    tracks, vis, conf, _ = model(video, queries, iters=iters)
    return tracks, vis * conf


def _multi_point(model, video, queries, iters):
    n = queries.shape[1]
    grid = _grid_at_frame0(GLOBAL_GRID, tuple(video.shape[-2:]), device=video.device)
    tracks, score = _call(model, video, torch.cat([queries, grid], dim=1), iters)
    return tracks[:, :, :n], score[:, :, :n]


def _single_point(model, video, queries, iters):
    hw = tuple(video.shape[-2:])
    glob = _grid_at_frame0(GLOBAL_GRID, hw, device=video.device)
    out_t, out_s = [], []
    for n in range(queries.shape[1]):
        q = queries[:, n : n + 1]
        local = _grid_at_frame0(LOCAL_GRID, LOCAL_EXTENT, (float(q[0, 0, 2]), float(q[0, 0, 1])), video.device)
        tracks, score = _call(model, video, torch.cat([q, local, glob], dim=1), iters)
        out_t.append(tracks[:, :, :1])
        out_s.append(score[:, :, :1])
    return torch.cat(out_t, 2), torch.cat(out_s, 2)


def _streaming(model: CoTracker3Online, video, queries, iters):
    model.init_video_online_processing()
    S, step = model.window_len, model.config.window_step
    T = video.shape[1]
    for ind in range(0, max(T - step, 1), step):
        tracks, vis, conf, _ = model(video[:, ind : ind + S], queries, iters=iters, is_online=True)
    return tracks, vis * conf


@torch.no_grad()
def v3_protocol_tracks(
    model: CoTracker3Base,
    video: Tensor,
    queries: Tensor,
    *,
    single_point: bool = False,
    backward: bool = False,
    iters: int = 6,
    resolution: Tuple[int, int] = (384, 512),
) -> Tuple[Tensor, Tensor]:
    """Tracks of one video under the v3 protocol.

    Args:
        video: ``(1, T, 3, H, W)`` RGB 0..255 at its own size; queries: ``(1, N, 3)`` rows ``(t, x, y)`` in its
            pixels.
        single_point: one call per point (offline models; online models always stream).
        backward: add the time-reversed pass (strided query modes).
    Returns:
        tracks ``(T, N, 2)`` in the video's pixels and the visibility score ``vis * conf`` ``(T, N)``.
    """
    H, W = video.shape[-2:]
    small = v3_resize(video, resolution)
    q = v3_to_working(queries, (H, W), resolution)
    if isinstance(model, CoTracker3Online):
        tracks, score = _streaming(model, small, q, iters)
    elif single_point:
        tracks, score = _single_point(model, small, q, iters)
    else:
        tracks, score = _multi_point(model, small, q, iters)
    if backward:
        T = small.shape[1]
        rq = q.clone()
        rq[..., 0] = T - 1 - rq[..., 0]
        b_tracks, b_score = _multi_point(model, small.flip(1), rq, iters)
        b_tracks, b_score = b_tracks.flip(1), b_score.flip(1)
        missing = tracks == 0
        tracks = torch.where(missing, b_tracks, tracks)
        score = torch.where(missing[..., 0], b_score, score)
    tracks = v3_to_video(tracks.float().clone(), (H, W), resolution)
    return tracks[0], score[0].float()
