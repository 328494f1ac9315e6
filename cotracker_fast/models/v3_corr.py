"""CoTracker3's feature pyramid and 4D correlation, in PyTorch.

Conventions (all positions ``(x, y)``):

* feature maps are L2-normalised over channels, then average-pooled into ``levels`` levels; pooled levels are not
  re-normalised;
* a level-0 position ``p`` (feature cells) is ``p / 2^l`` at level ``l``, without a half-cell shift;
* sampling is bilinear with ``align_corners=True`` (cell ``u`` is at grid value ``u * 2 / (n - 1) - 1``) and
  **border** padding: positions outside the map take the edge value;
* a ``(2r+1) x (2r+1)`` neighbourhood is flattened x-major: index ``k = (2r+1) a + b`` holds offset
  ``(a - r, b - r)``.

The sampling calls are laid out as 5-D ``grid_sample`` calls (frames as the depth axis for the query-side patches,
a depth of one for the image side) and the correlation volume is a contiguous ``(rows, (2r+1)^4)`` matrix: other
layouts give the same maths with different float rounding.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def l2_normalise_channels(fmaps: Tensor) -> Tensor:
    """``(B, T, C, H, W)`` -> each pixel's C-vector divided by ``sqrt(max(|f|^2, 1e-12))``."""
    sq = fmaps.square().sum(dim=2, keepdim=True)
    return fmaps / torch.sqrt(torch.clamp(sq, min=1e-12))


def feature_pyramid(fmaps: Tensor, levels: int) -> List[Tensor]:
    """``(B, T, C, H, W)`` normalised features -> ``levels`` maps, level ``l + 1`` the 2x2 average of level ``l``
    (odd sizes rounded down)."""
    B, T, C = fmaps.shape[:3]
    pyr = [fmaps]
    cur = fmaps.reshape(B * T, C, *fmaps.shape[-2:])
    for _ in range(levels - 1):
        cur = F.avg_pool2d(cur, 2, stride=2)
        pyr.append(cur.reshape(B, T, C, *cur.shape[-2:]))
    return pyr


def _grid_value(u: Tensor, n: int) -> Tensor:
    """Pixel coordinate ``u`` along an axis of ``n`` samples -> ``grid_sample``'s ``[-1, 1]`` (align_corners=True);
    the factor is computed in double and applied as a float32 constant."""
    return u * float(torch.tensor(2.0 / max(n - 1, 1), dtype=torch.float32)) - 1


def _offsets(radius: int, device, dtype) -> Tensor:
    """``(K, K, 2)``: entry ``[a, b]`` = ``(a - r, b - r)`` (x offset on the slow axis)."""
    d = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    dx, dy = torch.meshgrid(d, d, indexing="ij")
    return torch.stack([dx, dy], dim=-1)


def sample_query_patches(level: Tensor, frames: Tensor, xy: Tensor, radius: int) -> Tensor:
    """The query-side neighbourhoods: for each track, the ``K x K`` patch of ``level`` at its query frame.

    Args:
        level: ``(B, T, C, H, W)`` one pyramid level.
        frames: ``(B, N)`` integer query frames (a frame outside ``[0, T)`` takes the nearest, by border padding).
        xy: ``(B, N, 2)`` centres in this level's cells.
    Returns:
        ``(B, N, K*K, C)``, neighbourhood index x-major.
    """
    B, T, C, H, W = level.shape
    N = xy.shape[1]
    K = 2 * radius + 1
    off = _offsets(radius, xy.device, xy.dtype).reshape(K * K, 2)  # (K*K, 2)
    pts = xy[:, None, :, :] + off[None, :, None, :]  # (B, K*K, N, 2)
    t = frames.to(xy.dtype)[:, None, :, None].expand(B, K * K, N, 1)
    grid = torch.cat([_grid_value(pts[..., :1], W), _grid_value(pts[..., 1:], H), _grid_value(t, T)], dim=-1)
    vol = level.permute(0, 2, 1, 3, 4)  # (B, C, T, H, W)
    out = F.grid_sample(vol, grid[:, :, :, None, :], mode="bilinear", padding_mode="border", align_corners=True)
    return out[..., 0].permute(0, 3, 2, 1)  # (B, C, K*K, N, 1) -> (B, N, K*K, C)


def sample_track_patches(level: Tensor, xy: Tensor, radius: int) -> Tensor:
    """The image-side neighbourhoods: for each frame and track, the ``K x K`` patch of ``level`` around its
    position in that frame.

    Args:
        level: ``(B, T, C, H, W)``; xy: ``(B, T, N, 2)`` in this level's cells.
    Returns:
        ``(B, T, N, K*K, C)``, neighbourhood index x-major.
    """
    B, T, C, H, W = level.shape
    N = xy.shape[2]
    K = 2 * radius + 1
    off = _offsets(radius, xy.device, xy.dtype)  # (K, K, 2)
    pts = xy.reshape(B * T, N, 1, 1, 2) + off  # (B*T, N, K, K, 2)
    gx = _grid_value(pts[..., :1], W)
    gy = _grid_value(pts[..., 1:], H)
    grid = torch.cat([gx, gy, torch.full_like(gx, -1.0)], dim=-1)  # depth 1: frame 0 of a one-frame volume
    vol = level.reshape(B * T, C, 1, H, W)
    out = F.grid_sample(vol, grid, mode="bilinear", padding_mode="border", align_corners=True)  # (B*T, C, N, K, K)
    return out.permute(0, 2, 3, 4, 1).reshape(B, T, N, K * K, C)


def correlation_volume(track_patches: Tensor, query_patches: Tensor) -> Tensor:
    """4D correlation: ``(B, T, N, P, C)`` image-side and ``(B, N, P, C)`` query-side patches -> the contiguous
    ``(B*T*N, P*P)`` matrix of dot products, image-side offset on the slow axis (rows ordered batch, frame,
    track)."""
    B, T, N, P, C = track_patches.shape
    corr = torch.matmul(track_patches, query_patches[:, None].transpose(-1, -2))  # (B, T, N, P, P)
    return corr.reshape(B * T * N, P * P).contiguous()


class CorrMlp(nn.Module):
    """``fc2(gelu(fc1(x)))`` with the exact (erf) GELU: the correlation MLP, shared by every pyramid level (keys
    ``corr_mlp.fc1`` / ``corr_mlp.fc2``)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def correlation_features(
    pyramid: List[Tensor], coords: Tensor, query_patches: List[Tensor], mlp: CorrMlp, radius: int, backend=None
) -> Tensor:
    """The correlation part of every token: for each level, the 4D correlation of the image neighbourhood around
    each track's current position with its query neighbourhood, through the shared MLP.

    Args:
        pyramid: levels ``(B, T, C, H_l, W_l)``; coords: ``(B, T, N, 2)`` level-0 cells;
        query_patches: per level ``(B, N, K*K, C)`` (:func:`sample_query_patches`).
        backend: of the ``corr4d`` op (:func:`cotracker_fast.ops.corr4d`; default automatic: the reference).
    Returns:
        ``(B, T, N, levels * out_dim)``, levels in order.
    """
    B, T, N = coords.shape[:3]
    out = []
    from .. import ops

    for lvl, (level, qp) in enumerate(zip(pyramid, query_patches)):
        with torch.profiler.record_function("cotracker3.corr4d"):
            corr = ops.corr4d(level, coords / 2**lvl, qp, radius, backend=backend)
        with torch.profiler.record_function("cotracker3.corr_mlp"):
            out.append(mlp(corr.to(qp.dtype)).reshape(B, T, N, -1))
    return torch.cat(out, dim=-1)
