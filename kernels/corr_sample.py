"""Fused multi-scale bilinear correlation sampling in Triton (forward and backward).

Design. For a track at (x, y) and a pyramid level, every one of the (2r+1)^2 samples sits at an *integer* offset
from the centre, so all of them share the same bilinear weights ``(1-fx)(1-fy), fx(1-fy), (1-fx)fy, fx fy``, and
together they touch exactly the (2r+2)^2 integer cells around ``floor(x, y) - r``. One program handles a block of
tracks of one frame at one level:

1. gather those cells' feature vectors (channel chunk by channel chunk) and take their dot products with the track
   features: a ``[BLOCK_N, (2r+2)^2]`` tile of dot products, accumulated in fp32 (fp64 for fp64 inputs), zero for
   cells outside the map (the ``grid_sample`` zero padding);
2. combine neighbouring dot products into the ``(2r+1)^2`` outputs with four small matmuls against constant 0/1
   selection matrices, each scaled per track by its bilinear weight (``tl.dot`` in IEEE precision: exact
   selections), and divide by sqrt(C).

No H x W-sized tensor is ever formed: memory is linear in the number of tracks. The pyramid is precomputed once (the
model builds it once per window) and packed channels-last into one buffer per call, so that a cell's C channels are
contiguous. All levels run in one launch (grid axis 2). Pooling fused into the kernel has not been tried yet.

Backward: the same selection matrices, transposed, turn the output gradient into a per-cell gradient; the track
feature gradient is its contraction with the gathered cells (one buffer per level, summed afterwards: deterministic);
the feature-map gradient is scattered with atomic adds (fp32), so its summation order is not deterministic. No
gradient flows to the coordinates (the model detaches them); asking for one raises.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from cotracker_fast.ops.op_corr_sample import check_corr_inputs as _check_corr_inputs

BLOCK_N = 16  # tracks per program (tl.dot needs >= 16)
BLOCK_C = 8  # channels per gather step


@triton.jit
def _program_tracks(N, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """This program's frame (b*S + s), block of tracks (and its mask), pyramid level, and cell indices."""
    bs = tl.program_id(0).to(tl.int64)
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    return bs, n, tl.program_id(2), n < N, tl.arange(0, BLOCK_K)


@triton.jit
def _cells_and_weights(coords_ptr, lvl_ptr, bs, n, n_mask, lvl, N, k, RADIUS: tl.constexpr, ACC: tl.constexpr):
    """Per (track, cell): linear index of the cell's first channel in the packed buffer, whether it is inside the
    map; per track: the four bilinear weights."""
    E: tl.constexpr = 2 * RADIUS + 2
    off = tl.load(lvl_ptr + lvl * 4)
    C = tl.load(lvl_ptr + lvl * 4 + 1)
    H = tl.load(lvl_ptr + lvl * 4 + 2)
    W = tl.load(lvl_ptr + lvl * 4 + 3)
    div = (1 << lvl).to(ACC)  # coords / 2**lvl: exact, the same value the references floor
    cx = tl.load(coords_ptr + (bs * N + n) * 2, mask=n_mask, other=0.0).to(ACC) / div
    cy = tl.load(coords_ptr + (bs * N + n) * 2 + 1, mask=n_mask, other=0.0).to(ACC) / div
    x0 = tl.floor(cx)
    y0 = tl.floor(cy)
    fx = cx - x0
    fy = cy - y0
    kx = k % E
    ky = k // E
    xs = x0.to(tl.int64)[:, None] - RADIUS + kx[None, :]
    ys = y0.to(tl.int64)[:, None] - RADIUS + ky[None, :]
    inside = (xs >= 0) & (xs < W) & (ys >= 0) & (ys < H) & (k < E * E)[None, :] & n_mask[:, None]
    cell = off + ((bs * H + ys) * W + xs) * C
    return cell, inside, fx, fy


@triton.jit
def _selection(k, o, RADIUS: tl.constexpr, DX: tl.constexpr, DY: tl.constexpr, TRANSPOSED: tl.constexpr, ACC: tl.constexpr):
    """0/1 matrix [cells, outputs] (or its transpose): output (i, j) (x-major, o = i * D + j) reads the cell at
    x index i + DX and y index j + DY of the (2r+2)^2 block."""
    D: tl.constexpr = 2 * RADIUS + 1
    E: tl.constexpr = 2 * RADIUS + 2
    if TRANSPOSED:
        kk = k[None, :]
        oo = o[:, None]
    else:
        kk = k[:, None]
        oo = o[None, :]
    hit = ((kk % E) == (oo // D) + DX) & ((kk // E) == (oo % D) + DY) & (oo < D * D) & (kk < E * E)
    return hit.to(ACC)


@triton.jit
def _bilinear_combine(x, k, o, fx, fy, RADIUS: tl.constexpr, TRANSPOSED: tl.constexpr, ACC: tl.constexpr):
    """Forward (``x`` = cell dot products ``[n, cells]`` -> outputs ``[n, outputs]``) or, transposed, backward
    (output gradients -> cell gradients): the four neighbour selections weighted by each track's bilinear weights."""
    return (((1 - fx) * (1 - fy))[:, None] * tl.dot(x, _selection(k, o, RADIUS, 0, 0, TRANSPOSED, ACC), input_precision="ieee")
            + (fx * (1 - fy))[:, None] * tl.dot(x, _selection(k, o, RADIUS, 1, 0, TRANSPOSED, ACC), input_precision="ieee")
            + ((1 - fx) * fy)[:, None] * tl.dot(x, _selection(k, o, RADIUS, 0, 1, TRANSPOSED, ACC), input_precision="ieee")
            + (fx * fy)[:, None] * tl.dot(x, _selection(k, o, RADIUS, 1, 1, TRANSPOSED, ACC), input_precision="ieee"))


@triton.jit
def _corr_sample_fwd_kernel(
    fmap_ptr, lvl_ptr, feats_ptr, coords_ptr, out_ptr,
    N, C, L, sqrt_c,
    RADIUS: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_O: tl.constexpr,
    BLOCK_C: tl.constexpr, ACC: tl.constexpr,
):
    D: tl.constexpr = 2 * RADIUS + 1
    bs, n, lvl, n_mask, k = _program_tracks(N, BLOCK_N, BLOCK_K)
    cell, inside, fx, fy = _cells_and_weights(coords_ptr, lvl_ptr, bs, n, n_mask, lvl, N, k, RADIUS, ACC)

    dots = tl.zeros((BLOCK_N, BLOCK_K), dtype=ACC)
    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)
        c_mask = c < C
        f = tl.load(feats_ptr + (bs * N + n)[:, None] * C + c[None, :],
                    mask=n_mask[:, None] & c_mask[None, :], other=0.0).to(ACC)
        m = tl.load(fmap_ptr + cell[:, :, None] + c[None, None, :],
                    mask=inside[:, :, None] & c_mask[None, None, :], other=0.0).to(ACC)
        dots += tl.sum(m * f[:, None, :], axis=2)

    o = tl.arange(0, BLOCK_O)
    out = _bilinear_combine(dots, k, o, fx, fy, RADIUS, False, ACC) / sqrt_c
    dst = out_ptr + (bs * N + n)[:, None] * (L * D * D) + lvl * (D * D) + o[None, :]
    tl.store(dst, out, mask=n_mask[:, None] & (o < D * D)[None, :])


@triton.jit
def _corr_sample_bwd_kernel(
    fmap_ptr, lvl_ptr, feats_ptr, coords_ptr, gout_ptr, gfeat_ptr, gfmap_ptr,
    N, C, L, BSNC, sqrt_c,
    RADIUS: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_O: tl.constexpr,
    BLOCK_C: tl.constexpr, ACC: tl.constexpr,
):
    D: tl.constexpr = 2 * RADIUS + 1
    bs, n, lvl, n_mask, k = _program_tracks(N, BLOCK_N, BLOCK_K)
    o = tl.arange(0, BLOCK_O)
    cell, inside, fx, fy = _cells_and_weights(coords_ptr, lvl_ptr, bs, n, n_mask, lvl, N, k, RADIUS, ACC)

    g = tl.load(gout_ptr + (bs * N + n)[:, None] * (L * D * D) + lvl * (D * D) + o[None, :],
                mask=n_mask[:, None] & (o < D * D)[None, :], other=0.0).to(ACC)
    # d loss / d dots[n, cell]: the forward combine, transposed
    gd = tl.where(inside, _bilinear_combine(g, k, o, fx, fy, RADIUS, True, ACC) / sqrt_c, 0.0)

    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)
        c_mask = c < C
        fmask = n_mask[:, None] & c_mask[None, :]
        f = tl.load(feats_ptr + (bs * N + n)[:, None] * C + c[None, :], mask=fmask, other=0.0).to(ACC)
        m_mask = inside[:, :, None] & c_mask[None, None, :]
        m = tl.load(fmap_ptr + cell[:, :, None] + c[None, None, :], mask=m_mask, other=0.0).to(ACC)
        gf = tl.sum(m * gd[:, :, None], axis=1)  # (BLOCK_N, BLOCK_C)
        tl.store(gfeat_ptr + lvl * BSNC + (bs * N + n)[:, None] * C + c[None, :], gf, mask=fmask)
        tl.atomic_add(gfmap_ptr + cell[:, :, None] + c[None, None, :], gd[:, :, None] * f[:, None, :], mask=m_mask)


# ---------------------------------------------------------------------------------------------------------- host
def _pack(fmaps: Sequence[Tensor], dtype: torch.dtype):
    """Levels -> one flat channels-last buffer and an int64 table of (offset, C, H, W) per level."""
    flat, meta, off = [], [], 0
    for f in fmaps:
        B, S, C, H, W = f.shape
        flat.append(f.to(dtype).permute(0, 1, 3, 4, 2).reshape(-1))
        meta.append([off, C, H, W])
        off += B * S * H * W * C
    return torch.cat(flat), torch.tensor(meta, dtype=torch.int64, device=fmaps[0].device)


def _unpack(buf: Tensor, fmaps: Sequence[Tensor]) -> List[Tensor]:
    out, off = [], 0
    for f in fmaps:
        B, S, C, H, W = f.shape
        size = B * S * H * W * C
        out.append(buf[off : off + size].reshape(B, S, H, W, C).permute(0, 1, 4, 2, 3).to(f.dtype, copy=True))
        off += size
    return out


def _launch_params(radius: int, N: int, B: int, S: int, L: int, acc: torch.dtype):
    d, e = 2 * radius + 1, 2 * radius + 2
    block_k = max(16, triton.next_power_of_2(e * e))
    block_o = max(16, triton.next_power_of_2(d * d))
    grid = (B * S, triton.cdiv(N, BLOCK_N), L)
    acc_tl = tl.float64 if acc == torch.float64 else tl.float32
    return grid, dict(RADIUS=radius, BLOCK_N=BLOCK_N, BLOCK_K=block_k, BLOCK_O=block_o, BLOCK_C=BLOCK_C, ACC=acc_tl)


def _acc_dtype(feats: Tensor) -> torch.dtype:
    return torch.float64 if feats.dtype == torch.float64 else torch.float32


def corr_sample_fwd(fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int) -> Tensor:
    """Launch the forward kernel; see :func:`cotracker_fast.ops.corr_sample` for shapes. Returns float32
    (float64 for float64 inputs)."""
    B, S, N, C = feats.shape
    L = len(fmaps)
    acc = _acc_dtype(feats)
    store = feats.dtype if feats.dtype in (torch.float16, torch.bfloat16) else acc
    packed, meta = _pack(fmaps, store)
    out = torch.empty(B, S, N, L * (2 * radius + 1) ** 2, device=feats.device, dtype=acc)
    grid, params = _launch_params(radius, N, B, S, L, acc)
    _corr_sample_fwd_kernel[grid](
        packed, meta, feats.to(store).contiguous(), coords.to(acc).contiguous(), out,
        N, C, L, math.sqrt(C), **params,
    )
    return out


def corr_sample_bwd(grad: Tensor, fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int) -> List[Tensor]:
    """Launch the backward kernel: returns ``[grad_feats, grad_fmaps[0], grad_fmaps[1], ...]`` in the input dtypes."""
    B, S, N, C = feats.shape
    L = len(fmaps)
    acc = _acc_dtype(feats)
    store = feats.dtype if feats.dtype in (torch.float16, torch.bfloat16) else acc
    packed, meta = _pack(fmaps, store)
    gfeat = torch.empty(L, B, S, N, C, device=feats.device, dtype=acc)
    gfmap = torch.zeros(packed.numel(), device=feats.device, dtype=acc)
    grid, params = _launch_params(radius, N, B, S, L, acc)
    _corr_sample_bwd_kernel[grid](
        packed, meta, feats.to(store).contiguous(), coords.to(acc).contiguous(), grad.to(acc).contiguous(),
        gfeat, gfmap, N, C, L, B * S * N * C, math.sqrt(C), **params,
    )
    return [gfeat.sum(0).to(feats.dtype)] + _unpack(gfmap, fmaps)


# ------------------------------------------------------------------------------------------- torch.library op
@torch.library.custom_op("cotracker_fast::corr_sample", mutates_args=())
def _corr_sample_op(fmaps: List[Tensor], feats: Tensor, coords: Tensor, radius: int) -> Tensor:
    return corr_sample_fwd(fmaps, feats, coords, radius)


@_corr_sample_op.register_fake
def _(fmaps, feats, coords, radius):
    B, S, N, _ = feats.shape
    dtype = torch.float64 if feats.dtype == torch.float64 else torch.float32
    return feats.new_empty(B, S, N, len(fmaps) * (2 * radius + 1) ** 2, dtype=dtype)


@torch.library.custom_op("cotracker_fast::corr_sample_backward", mutates_args=())
def _corr_sample_backward_op(
    grad: Tensor, fmaps: List[Tensor], feats: Tensor, coords: Tensor, radius: int
) -> List[Tensor]:
    return corr_sample_bwd(grad, fmaps, feats, coords, radius)


@_corr_sample_backward_op.register_fake
def _(grad, fmaps, feats, coords, radius):
    return [torch.empty_like(feats)] + [torch.empty_like(f) for f in fmaps]


def _setup_context(ctx, inputs, output):
    fmaps, feats, coords, radius = inputs
    ctx.radius = radius
    ctx.num_levels = len(fmaps)
    ctx.save_for_backward(feats, coords, *fmaps)


def _backward(ctx, grad):
    feats, coords, *fmaps = ctx.saved_tensors
    grads = _corr_sample_backward_op(grad, list(fmaps), feats, coords, ctx.radius)
    return list(grads[1:]), grads[0], None, None


torch.library.register_autograd("cotracker_fast::corr_sample", _backward, setup_context=_setup_context)


def corr_sample_triton(fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int = 3) -> Tensor:
    """Triton backend of :func:`cotracker_fast.ops.corr_sample` (same signature and numbers as the references).

    Inputs fp32 / fp16 / bf16 (fp64 too, for gradcheck); accumulation in fp32 (fp64); output float32 (float64).
    Differentiable in ``fmaps`` and ``feats``. **No gradient for ``coords``**: a call that would need one (``coords``
    requires grad while grad mode is on) raises ValueError; detach the coordinates, as the model does.
    """
    _check_corr_inputs(fmaps, feats, coords, radius)
    if coords.requires_grad and torch.is_grad_enabled():
        raise ValueError("the triton corr_sample gives no gradient for coords: pass coords.detach()")
    devices = {t.device for t in (feats, coords, *fmaps)}
    if len(devices) != 1:
        raise ValueError(f"fmaps, feats and coords must be on one device, got {sorted(map(str, devices))}")
    return _corr_sample_op(list(fmaps), feats, coords, radius)
