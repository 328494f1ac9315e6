"""Pure-PyTorch references for the fast ops.

Every fast backend of an op has the same signature as the reference here; tests and benchmarks import these
functions, nobody re-implements them.

* ``_corr_sample_dense``: the official-equivalent baseline. Builds the dense correlation volume between every
  track feature and every feature-map cell, then bilinearly samples the square neighbourhood with
  ``grid_sample(align_corners=True, padding_mode="zeros")``. Memory O(N * H * W) per frame.
* ``_corr_sample``: the local form. Bilinear sampling is linear, so sampling the correlation volume equals taking dot
  products of the track feature with the bilinearly sampled *features*. All (2r+1)^2 offsets are integers, so the
  bilinear weights are the same for the whole neighbourhood: gather the (2r+2)^2 integer cells around the point,
  take dot products, and combine neighbouring dot products with the shared weights. Memory O(N).
* ``_attention_math`` / ``_attention_sdpa``: multi-head attention on a packed ``qkv`` projection.
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_corr_inputs(fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int) -> None:
    if not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be a non-negative int, got {radius!r}")
    if feats.dim() != 4:
        raise ValueError(f"feats must be (B, S, N, C), got shape {tuple(feats.shape)}")
    B, S, N, C = feats.shape
    if coords.shape != (B, S, N, 2):
        raise ValueError(f"coords must be (B, S, N, 2) = {(B, S, N, 2)}, got {tuple(coords.shape)}")
    if len(fmaps) == 0:
        raise ValueError("fmaps must hold at least one pyramid level")
    for lvl, fmap in enumerate(fmaps):
        if fmap.dim() != 5 or fmap.shape[:3] != (B, S, C):
            raise ValueError(f"fmaps[{lvl}] must be (B, S, C, H, W) with (B, S, C) = {(B, S, C)}, got {tuple(fmap.shape)}")
        if fmap.shape[-1] < 1 or fmap.shape[-2] < 1:
            raise ValueError(f"fmaps[{lvl}] has an empty spatial size {tuple(fmap.shape[-2:])}")


def _acc(t: Tensor) -> Tensor:
    """Accumulation precision: float32, or float64 for float64 inputs (gradcheck)."""
    return t if t.dtype == torch.float64 else t.float()


def _neighbourhood_offsets(radius: int, device) -> Tensor:
    """(d*d, 2) integer (dx, dy) offsets in the official x-major order: k = i*d + j -> dx = i - r, dy = j - r."""
    offs = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    dx, dy = torch.meshgrid(offs, offs, indexing="ij")
    return torch.stack([dx, dy], dim=-1).reshape(-1, 2)


def _no_autocast(fn):
    """Run a reference in the precision it states (float32 accumulation), also inside an autocast region."""

    @functools.wraps(fn)
    def wrapper(fmaps, feats, coords, radius=3):
        with torch.autocast(feats.device.type, enabled=False):
            return fn(fmaps, feats, coords, radius)

    return wrapper


@_no_autocast
def _corr_sample_dense(fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int = 3) -> Tensor:
    """Official-equivalent correlation sampling through a dense correlation volume. See :func:`corr_sample`."""
    _check_corr_inputs(fmaps, feats, coords, radius)
    B, S, N, C = feats.shape
    d = 2 * radius + 1
    feats32 = _acc(feats)
    delta = _neighbourhood_offsets(radius, feats.device).to(feats32.dtype)  # (d*d, 2)
    out = []
    for lvl, fmap in enumerate(fmaps):
        H, W = fmap.shape[-2:]
        if H < 2 or W < 2:
            # align_corners=True normalisation divides by (size - 1), as in the official code.
            raise ValueError(f"the dense baseline needs pyramid levels of at least 2x2, level {lvl} is {H}x{W}")
        vol = torch.matmul(feats32, _acc(fmap).reshape(B, S, C, H * W)) / math.sqrt(C)
        vol = vol.reshape(B * S * N, 1, H, W)
        pts = coords.to(feats32.dtype).reshape(B * S * N, 1, 2) / 2**lvl + delta  # (BSN, d*d, 2) pixels
        # the official normalisation, in its operation order: 2x / (W-1) - 1
        gx = 2 * pts[..., 0] / (W - 1) - 1
        gy = 2 * pts[..., 1] / (H - 1) - 1
        grid = torch.stack([gx, gy], dim=-1).reshape(B * S * N, 1, d * d, 2)
        sampled = F.grid_sample(vol, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        out.append(sampled.reshape(B, S, N, d * d))
    return torch.cat(out, dim=-1)


@_no_autocast
def _corr_sample(fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int = 3) -> Tensor:
    """Local-form correlation sampling (same numbers as the dense volume, O(N) memory). See :func:`corr_sample`.

    The (2r+2)^2 integer cells around each point are visited one row at a time: gather the row's feature vectors
    from the flattened map, dot them with the track feature (a batched matmul), and finally combine neighbouring
    dot products with the shared bilinear weights. Transient memory is one row, ``B*S*N*(2r+2)*C`` values (33 MB
    at N = 1024, S = 8, C = 128, against 535 MB for the dense volume at 384x512 / stride 4). Measured on a 2-core CPU
    (benchmarks/results/cpu-2core-2026-11-25.json): faster than the dense volume on the official 96x128 maps
    (74 vs 92 ms, N = 256), 3x slower on small 48x64 maps where the dense volume is tiny.
    """
    _check_corr_inputs(fmaps, feats, coords, radius)
    B, S, N, C = feats.shape
    d = 2 * radius + 1
    e = d + 1  # integer cells spanned by the bilinear footprint of d consecutive samples
    steps = torch.arange(-radius, radius + 2, device=feats.device)
    feats_col = _acc(feats).reshape(B * S * N, C, 1)
    sqrt_c = math.sqrt(C)
    out = []
    for lvl, fmap in enumerate(fmaps):
        H, W = fmap.shape[-2:]
        c = coords.to(feats_col.dtype) / 2**lvl
        x0f, y0f = torch.floor(c[..., 0]), torch.floor(c[..., 1])
        fx, fy = (c[..., 0] - x0f)[..., None, None], (c[..., 1] - y0f)[..., None, None]
        xs = x0f.long()[..., None] + steps  # (B, S, N, e)
        ys = y0f.long()[..., None] + steps
        inside = ((ys >= 0) & (ys < H))[..., :, None] & ((xs >= 0) & (xs < W))[..., None, :]  # (B,S,N,e_y,e_x)
        frame_base = (torch.arange(B * S, device=xs.device) * (H * W)).reshape(B, S, 1, 1)
        cols = xs.clamp(0, W - 1) + frame_base
        table = _acc(fmap).reshape(B * S, C, H * W).transpose(1, 2).reshape(B * S * H * W, C)
        row_dots = []
        for j in range(e):
            idx = ys[..., j : j + 1].clamp(0, H - 1) * W + cols  # (B, S, N, e_x) rows of `table`
            cells = table.index_select(0, idx.reshape(-1)).reshape(B * S * N, e, C)
            row_dots.append(torch.bmm(cells, feats_col).reshape(B, S, N, e))
        dots = torch.stack(row_dots, dim=-2) * inside / sqrt_c  # (B,S,N,e_y,e_x); zero outside the map
        rows = (1 - fy) * dots[..., :-1, :] + fy * dots[..., 1:, :]  # (B,S,N,d_y,e_x)
        vals = (1 - fx) * rows[..., :-1] + fx * rows[..., 1:]  # (B,S,N,d_y,d_x)
        out.append(vals.transpose(-1, -2).reshape(B, S, N, d * d))  # x-major
    return torch.cat(out, dim=-1)


def _check_qkv(qkv: Tensor, key_mask: Optional[Tensor]) -> None:
    if qkv.dim() != 5 or qkv.shape[2] != 3:
        raise ValueError(f"qkv must be (batch, L, 3, heads, head_dim), got shape {tuple(qkv.shape)}")
    if key_mask is not None:
        if key_mask.dtype != torch.bool or key_mask.shape != (qkv.shape[0], qkv.shape[1]):
            raise ValueError(
                f"key_mask must be a bool tensor of shape (batch, L) = {(qkv.shape[0], qkv.shape[1])}, "
                f"got {key_mask.dtype} {tuple(key_mask.shape)}"
            )


def _attention_math(qkv: Tensor, key_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """Multi-head attention written out: softmax(q k^T * scale) v. See :func:`attention`."""
    _check_qkv(qkv, key_mask)
    Bt, L, _, H, D = qkv.shape
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (Bt, H, L, D)
    scale = D**-0.5 if scale is None else scale
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    out = torch.matmul(scores.softmax(dim=-1), v)
    return out.transpose(1, 2).reshape(Bt, L, H * D)


def _attention_sdpa(qkv: Tensor, key_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """Multi-head attention through ``F.scaled_dot_product_attention``. See :func:`attention`."""
    _check_qkv(qkv, key_mask)
    Bt, L, _, H, D = qkv.shape
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out.transpose(1, 2).reshape(Bt, L, H * D)
