"""Public functional ops of cotracker_fast, each dispatched through one backend resolver.

One module per op holds its public function, its PyTorch references, the Python bindings of its fast kernels and
their backend registration: :mod:`~cotracker_fast.ops.op_corr_sample` (Triton kernel source in ``kernels/``) and
:mod:`~cotracker_fast.ops.op_attention` (CUDA kernel source in ``csrc/``). :mod:`cotracker_fast.ops.backend` says how
an implementation is chosen.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .backend import (
    BackendSpec,
    BackendUnavailableError,
    available_backends,
    register_backend,
    requests_reference,
    resolve,
)
from . import _cpu_ext
from .op_attention import attention, attention_cpu, attention_cpu_amx, attention_reference, attention_sdpa
from .op_corr4d import corr4d, corr4d_reference
from .op_corr_sample import build_pyramid, corr_sample, corr_sample_cpu, corr_sample_reference, corr_sample_torch

__all__ = [
    "corr_sample",
    "corr_sample_reference",
    "corr_sample_torch",
    "corr_sample_cpu",
    "corr4d",
    "corr4d_reference",
    "attention",
    "attention_reference",
    "attention_sdpa",
    "attention_cpu",
    "attention_cpu_amx",
    "build_pyramid",
    "bilinear_sample_border",
    "resolve",
    "register_backend",
    "available_backends",
    "requests_reference",
    "BackendSpec",
    "BackendUnavailableError",
]


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
