"""The ``corr4d`` op: CoTracker3's 4D correlation between the image neighbourhood around each track and its query
neighbourhood, at one pyramid level.

Backends (:mod:`cotracker_fast.ops.backend`), all with the signature of :func:`corr4d_reference`:

* ``reference`` (:func:`corr4d_reference`, the automatic choice): the official layout. The image-side ``K x K``
  patches (``K = 2r + 1``) are sampled with one 5-D ``grid_sample`` (bilinear, ``align_corners=True``, border
  padding), then multiplied with the query patches into a contiguous ``(rows, K^4)`` matrix. Bit-identical to the
  official code; memory ``rows * K^2 * C`` for the patches.
* ``torch`` (:func:`corr4d_torch`): the local form in PyTorch (the shared bilinear cells, gathered channels-last,
  no ``grid_sample``); same maths, other rounding.
* ``triton``: the fused kernel of ``kernels/corr4d.py`` (installed as ``cotracker_fast.kernels``): gathers the
  ``(K+1)^2`` cells each track's samples share and never forms the patches. Explicit only until a GPU run has
  measured it.

Tests and benchmarks import the reference from here.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .backend import BackendSpec, register_backend, resolve
from .op_corr_sample import _triton_check  # the same Triton availability rule for every Triton kernel

__all__ = ["corr4d", "corr4d_reference", "corr4d_torch", "channels_last_level", "check_corr4d_inputs"]


def check_corr4d_inputs(level: Tensor, xy: Tensor, query_patches: Tensor, radius: int) -> None:
    """ValueError naming the argument unless ``level`` ``(B, T, C, H, W)``, ``xy`` ``(B, T, N, 2)`` and
    ``query_patches`` ``(B, N, (2r+1)^2, C)`` agree."""
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be a non-negative int, got {radius!r}")
    if level.dim() != 5 or min(level.shape[-2:]) < 1:
        raise ValueError(f"level must be (B, T, C, H, W) with H, W >= 1, got {tuple(level.shape)}")
    B, T, C = level.shape[:3]
    if xy.dim() != 4 or tuple(xy.shape[:2]) != (B, T) or xy.shape[-1] != 2:
        raise ValueError(f"xy must be (B={B}, T={T}, N, 2) positions in level cells, got {tuple(xy.shape)}")
    P = (2 * radius + 1) ** 2
    N = xy.shape[2]
    if tuple(query_patches.shape) != (B, N, P, C):
        raise ValueError(f"query_patches must be (B, N, (2r+1)^2, C) = {(B, N, P, C)}, got {tuple(query_patches.shape)}")


def corr4d_reference(level: Tensor, xy: Tensor, query_patches: Tensor, radius: int = 3) -> Tensor:
    """The official computation. See :func:`corr4d`."""
    from ..models.v3_corr import correlation_volume, sample_track_patches

    check_corr4d_inputs(level, xy, query_patches, radius)
    if level.dtype != xy.dtype or query_patches.dtype != xy.dtype:  # reduced-precision maps: sample in (>=) fp32
        dt = torch.promote_types(torch.promote_types(level.dtype, xy.dtype), torch.float32)
        level, xy, query_patches = level.to(dt), xy.to(dt), query_patches.to(dt)
    return correlation_volume(sample_track_patches(level, xy, radius), query_patches)


def channels_last_level(level: Tensor) -> Tensor:
    """``level`` ``(B, T, C, H, W)`` as a view of ``(B, T, H, W, C)`` memory: a cell's C channels contiguous, the
    layout the local backends gather from (made once per window, used by every iteration)."""
    return level.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def corr4d_torch(level: Tensor, xy: Tensor, query_patches: Tensor, radius: int = 3) -> Tensor:
    """The local form in PyTorch: every image-side sample sits at an integer offset from the track, so all share one
    set of bilinear weights and read the ``(K+1)^2`` integer cells around ``floor(x, y) - r`` (indices clamped into
    the map: border padding). Gather those cells (channels-last), take their dot products with the query vectors,
    and combine neighbouring cells with the shared weights. Same maths as :func:`corr4d_reference` in another order
    (float rounding differs); no ``grid_sample``. A ``level`` stored channels-last (a ``(B, T, C, H, W)`` view of
    ``(B, T, H, W, C)`` memory, as :func:`channels_last_level` makes) is used without a copy. See :func:`corr4d`."""
    check_corr4d_inputs(level, xy, query_patches, radius)
    B, T, C, H, W = level.shape
    N = xy.shape[2]
    K, E = 2 * radius + 1, 2 * radius + 2
    dt = torch.promote_types(level.dtype, torch.float32)
    pos = xy.to(dt)
    base = torch.floor(pos)
    frac = pos - base  # (B, T, N, 2)
    steps = torch.arange(E, device=level.device) - radius
    xs = (base[..., 0].long()[..., None] + steps).clamp_(0, W - 1)  # (B, T, N, E)
    ys = (base[..., 1].long()[..., None] + steps).clamp_(0, H - 1)
    frame = torch.arange(B * T, device=level.device).view(B, T, 1, 1, 1) * (H * W)
    cell = frame + ys[..., None, :] * W + xs[..., :, None]  # (B, T, N, E, E): cell (u, v), x index u slow
    # rows of C contiguous channels, gathered straight into per-track order (B, N, T, E, E): one matrix product per
    # track over all its frames (its query vectors are the same in every frame), (T E^2) x C by C x P, is far better
    # shaped for a CPU GEMM than T N products of E^2 x C by C x P
    flat = level.to(dt).permute(0, 1, 3, 4, 2).reshape(B * T * H * W, C)
    cells = flat.index_select(0, cell.permute(0, 2, 1, 3, 4).reshape(-1)).view(B, N, T * E * E, C)
    dots = torch.matmul(cells, query_patches.to(dt).transpose(-1, -2)).view(B, N, T, E, E, -1)
    frac = frac.permute(0, 2, 1, 3)  # (B, N, T, 2)
    fx, fy = frac[..., 0, None, None, None], frac[..., 1, None, None, None]
    corr = dots[:, :, :, :K, :K] * ((1 - fx) * (1 - fy))
    corr.addcmul_(dots[:, :, :, 1:, :K], fx * (1 - fy))
    corr.addcmul_(dots[:, :, :, :K, 1:], (1 - fx) * fy)
    corr.addcmul_(dots[:, :, :, 1:, 1:], fx * fy)
    return corr.permute(0, 2, 1, 3, 4, 5).reshape(B * T * N, -1)


def _corr4d_triton(level, xy, query_patches, radius=3):
    from ..kernels.corr4d import corr4d_triton  # imported (and compiled) on first use only

    check_corr4d_inputs(level, xy, query_patches, radius)
    return corr4d_triton(level, xy, query_patches, radius)


register_backend("corr4d", "reference", corr4d_reference, auto_priority=100)
register_backend("corr4d", "torch", corr4d_torch)
register_backend("corr4d", "triton", _corr4d_triton, check=_triton_check)


def corr4d(level: Tensor, xy: Tensor, query_patches: Tensor, radius: int = 3, *, backend: BackendSpec = None) -> Tensor:
    """CoTracker3's 4D correlation at one pyramid level.

    For every (batch b, frame t, track n): the ``K x K`` image samples around ``xy[b, t, n]`` (``K = 2r + 1``,
    integer offsets, bilinear with ``align_corners=True``, positions outside the map take the edge value) against
    the track's ``K x K`` query vectors: ``out[row, i * K^2 + j] = <image sample i, query vector j>``, both
    neighbourhoods flattened x-major (index ``a * K + b`` holds offset ``(a - r, b - r)``).

    Args:
        level: ``(B, T, C, H, W)`` feature map of one pyramid level.
        xy: ``(B, T, N, 2)`` track positions (x, y) in this level's cells.
        query_patches: ``(B, N, K^2, C)`` each track's query neighbourhood (sampled once per clip).
        radius: ``r``.
        backend: see :mod:`cotracker_fast.ops.backend`.
    Returns:
        ``(B * T * N, K^4)`` contiguous, rows ordered (batch, frame, track), float32 (float64 for float64
        inputs): reduced-precision maps are sampled and multiplied in float32.
    """
    _, fn = resolve("corr4d", backend, level.device, level.dtype)
    return fn(level, xy, query_patches, radius)
