"""Public functional ops of cotracker_fast, each dispatched through one backend resolver.

``corr_sample`` and ``attention`` are what the model calls; see :mod:`cotracker_fast.ops.backend` for how the
implementation is chosen and :mod:`cotracker_fast.ops._torch_impl` for the references.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _torch_impl
from .backend import (
    BackendSpec,
    BackendUnavailableError,
    available_backends,
    register_backend,
    resolve,
)

__all__ = [
    "corr_sample",
    "attention",
    "build_pyramid",
    "bilinear_sample_border",
    "resolve",
    "register_backend",
    "available_backends",
    "BackendUnavailableError",
]

register_backend("corr_sample", "reference", _torch_impl._corr_sample_dense)
register_backend("corr_sample", "torch", _torch_impl._corr_sample, auto_priority=100)


def _triton_check(device: torch.device, dtype: torch.dtype):
    from ..kernels import has_triton, triton_can_run

    if not has_triton():
        return "the triton package is not installed"
    if not triton_can_run(device.type):
        return f"triton runs on CUDA tensors (or on CPU tensors with TRITON_INTERPRET=1), not on {device.type}"
    if dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        return f"unsupported dtype {dtype}"
    return None


def _corr_sample_triton(fmaps, feats, coords, radius=3):
    from ..kernels.corr_sample import corr_sample_triton  # imported (and compiled) on first use only

    return corr_sample_triton(fmaps, feats, coords, radius)


# Explicit only for now: the kernel has been checked in the Triton interpreter, not yet measured on a GPU; it joins
# the automatic choice once it has been.
register_backend("corr_sample", "triton", _corr_sample_triton, check=_triton_check)
register_backend("attention", "reference", _torch_impl._attention_math)
register_backend("attention", "torch", _torch_impl._attention_sdpa, auto_priority=100)


def _cuda_check(device: torch.device, dtype: torch.dtype):
    from .cuda_attention import check

    return check(device, dtype)


def _attention_cuda(qkv, key_mask=None, scale=None):
    from .cuda_attention import attention_cuda  # the extension loads (or builds) on first use only

    return attention_cuda(qkv, key_mask, scale)


# Explicit only for now: the kernels compile and validate their inputs, but have not yet run on a GPU; they join the
# automatic choice once measured (benchmarks/test_bench_attention_cuda.py).
register_backend("attention", "cuda", _attention_cuda, check=_cuda_check)


def corr_sample(
    fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int = 3, *, backend: BackendSpec = None
) -> Tensor:
    """Multi-scale correlation samples of track features around track positions.

    For every (batch b, frame s, track n) and pyramid level l, the correlation between the track feature and the
    level-l feature map, scaled by 1/sqrt(C), is bilinearly sampled (align_corners=True semantics: integer
    coordinates are cell centres; zero outside the map) on the square grid ``coords / 2**l + (dx, dy)``,
    ``dx, dy in -radius..radius`` (in level-l cells).

    Args:
        fmaps: L tensors ``(B, S, C, H_l, W_l)``, the feature pyramid (level 0 first; see :func:`build_pyramid`).
        feats: ``(B, S, N, C)`` track features.
        coords: ``(B, S, N, 2)`` track positions (x, y) in level-0 feature-map cells.
        radius: neighbourhood radius r; (2r+1)^2 values per level.
        backend: see :mod:`cotracker_fast.ops.backend`.

    Returns:
        ``(B, S, N, L * (2r+1)^2)`` float32: levels in order; within a level the official x-major order,
        flat index ``k = (dx + r) * (2r+1) + (dy + r)``. Computed and returned in float32 whatever the input
        dtype (float64 inputs stay float64).
        No gradient flows to ``coords`` in the model (it detaches them); the references are differentiable in all
        inputs.
    """
    _, fn = resolve("corr_sample", backend, feats.device, feats.dtype)
    return fn(fmaps, feats, coords, radius)


def attention(
    qkv: Tensor,
    key_mask: Optional[Tensor] = None,
    scale: Optional[float] = None,
    *,
    backend: BackendSpec = None,
    check_mask: bool = True,
) -> Tensor:
    """Multi-head attention on a packed projection, no causal mask, no bias.

    Args:
        qkv: ``(batch, L, 3, heads, head_dim)``: the output of the ``qkv`` Linear viewed as q, k, v per head.
        key_mask: optional bool ``(batch, L)``; False keys are ignored. Every batch row needs a valid key:
            ``check_mask`` verifies it (one device sync); callers that guarantee it pass False.
        scale: softmax scale, default ``head_dim ** -0.5``.
        backend: see :mod:`cotracker_fast.ops.backend`.

    Returns:
        ``(batch, L, heads * head_dim)`` in the dtype of ``qkv``, ready for the output projection.
    """
    if check_mask and key_mask is not None and not bool(key_mask.any(dim=1).all()):
        raise ValueError("key_mask leaves a batch row with no valid key (its softmax would be undefined)")
    _, fn = resolve("attention", backend, qkv.device, qkv.dtype)
    return fn(qkv, key_mask, scale)


def build_pyramid(fmaps: Tensor, levels: int) -> List[Tensor]:
    """Feature pyramid: level 0 is ``fmaps`` ``(B, S, C, H, W)``; each next level is a 2x2 average pool (odd sizes
    round down). Returns ``levels`` tensors ``(B, S, C, H_l, W_l)``."""
    if fmaps.dim() != 5:
        raise ValueError(f"fmaps must be (B, S, C, H, W), got shape {tuple(fmaps.shape)}")
    B, S, C, H, W = fmaps.shape
    pyramid = [fmaps]
    cur = fmaps.reshape(B * S, C, H, W)
    for lvl in range(1, levels):
        if min(cur.shape[-2:]) < 2:
            raise ValueError(f"feature map {H}x{W} is too small for {levels} pyramid levels")
        cur = F.avg_pool2d(cur, 2, stride=2)
        pyramid.append(cur.reshape(B, S, C, *cur.shape[-2:]))
    return pyramid


def bilinear_sample_border(img: Tensor, xy: Tensor) -> Tensor:
    """Bilinear sample ``img`` ``(B, C, H, W)`` at ``xy`` ``(B, N, 2)`` pixel positions (x, y).

    Integer coordinates are pixel centres; positions outside the image take the border value (edge replicate),
    the convention the official model uses for query features and the position embedding.
    Returns ``(B, N, C)`` in float32 (float64 for float64 images), whatever the image dtype.
    """
    B, C, H, W = img.shape
    # positions, weights and the mix in (at least) float32: under autocast the feature maps are bf16/fp16, and
    # positions in that precision would move a query by up to a quarter of a cell
    dt = torch.promote_types(img.dtype, torch.float32)
    img = img.to(dt)
    x, y = xy[..., 0].to(dt), xy[..., 1].to(dt)
    x0, y0 = torch.floor(x), torch.floor(y)
    wx1, wy1 = x - x0, y - y0
    wx0, wy0 = 1 - wx1, 1 - wy1
    x0i, y0i = x0.long(), y0.long()
    flat = img.reshape(B, C, H * W)

    def tap(yi, xi):
        idx = yi.clamp(0, H - 1) * W + xi.clamp(0, W - 1)  # (B, N)
        return torch.gather(flat, 2, idx[:, None, :].expand(-1, C, -1))  # (B, C, N)

    out = (
        tap(y0i, x0i) * (wx0 * wy0)[:, None]
        + tap(y0i, x0i + 1) * (wx1 * wy0)[:, None]
        + tap(y0i + 1, x0i) * (wx0 * wy1)[:, None]
        + tap(y0i + 1, x0i + 1) * (wx1 * wy1)[:, None]
    )
    return out.transpose(1, 2)
