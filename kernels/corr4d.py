"""CoTracker3's 4D correlation in Triton (forward and backward), one pyramid level per launch.

For one track at ``(x, y)`` (level cells) in one frame, the op compares the ``K x K`` image neighbourhood around
it (``K = 2r + 1``, bilinear, border padding) with the track's ``K x K`` query neighbourhood: ``K^2 x K^2`` dot
products over C channels. Design:

1. Every image-side sample sits at an integer offset from ``(x, y)``, so they share one set of bilinear weights and
   together touch the ``(K + 1)^2`` integer cells around ``floor(x, y) - r``. Clamping those cells' indices into
   the map gives exactly ``grid_sample``'s border padding. A program gathers the cells (channels-last: a cell's C
   channels are contiguous) and takes their dot products with the ``K^2`` query vectors in one ``tl.dot``:
   a ``[(K+1)^2, K^2]`` tile.
2. Four 0/1 selection matrices, each scaled by its bilinear weight, combine neighbouring cells into the ``K^2``
   image samples (``tl.dot`` in IEEE precision: the selections are exact).

So the ``(rows, K^2, C)`` image patches that the PyTorch reference builds are never formed: the kernel reads
``(K+1)^2 C`` values per row and writes the ``K^4`` correlations (2,401 for r = 3) that feed the correlation MLP.

Backward: the transposed selections give the gradient of each cell's dot products; their products with the query
vectors are scattered into the feature map, and with the cells into the query neighbourhoods (shared by every frame
of a track), both with fp32 atomic adds, so the summation order is not deterministic. No gradient flows to the
positions (the model detaches them); asking for one raises.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK_C = 32  # channels per gather step


@triton.jit
def _row_geometry(coords_ptr, row, T, N, H, W, RADIUS: tl.constexpr, BLOCK_K: tl.constexpr, ACC: tl.constexpr):
    """This row's frame index ``b*T + t``, query index ``b*N + n``, cell offsets (channels-last, first channel),
    cell mask, and fractional position."""
    E: tl.constexpr = 2 * RADIUS + 2
    bt = row // N
    bn = (bt // T) * N + row % N
    cx = tl.load(coords_ptr + row * 2).to(ACC)
    cy = tl.load(coords_ptr + row * 2 + 1).to(ACC)
    x0 = tl.floor(cx)
    y0 = tl.floor(cy)
    k = tl.arange(0, BLOCK_K)
    u = k // E  # x offset of the cell (slow), as the x-major sample order
    v = k % E
    xs = tl.minimum(tl.maximum(x0.to(tl.int64) - RADIUS + u, 0), W - 1)
    ys = tl.minimum(tl.maximum(y0.to(tl.int64) - RADIUS + v, 0), H - 1)
    cell = ((bt * H + ys) * W + xs)
    return bt, bn, cell, k < E * E, k, cx - x0, cy - y0


@triton.jit
def _selection(k, i, RADIUS: tl.constexpr, DX: tl.constexpr, DY: tl.constexpr, TRANSPOSED: tl.constexpr,
               ACC: tl.constexpr):
    """0/1 ``[samples, cells]`` (or ``[cells, samples]``): image sample ``i`` (x offset ``i // K``, y offset
    ``i % K``) reads the cell ``(i // K + DX, i % K + DY)`` of the ``(K+1)^2`` block."""
    D: tl.constexpr = 2 * RADIUS + 1
    E: tl.constexpr = 2 * RADIUS + 2
    if TRANSPOSED:
        kk = k[:, None]
        ii = i[None, :]
    else:
        kk = k[None, :]
        ii = i[:, None]
    hit = ((kk // E) == (ii // D) + DX) & ((kk % E) == (ii % D) + DY) & (ii < D * D) & (kk < E * E)
    return hit.to(ACC)


@triton.jit
def _combine(x, k, i, fx, fy, RADIUS: tl.constexpr, TRANSPOSED: tl.constexpr, ACC: tl.constexpr):
    """Forward: cell correlations ``[cells, P]`` -> sample correlations ``[samples, P]``; transposed (backward):
    sample gradients -> cell gradients. The four neighbour selections weighted by the bilinear weights."""
    return ((1 - fx) * (1 - fy) * tl.dot(_selection(k, i, RADIUS, 0, 0, TRANSPOSED, ACC), x, input_precision="ieee")
            + fx * (1 - fy) * tl.dot(_selection(k, i, RADIUS, 1, 0, TRANSPOSED, ACC), x, input_precision="ieee")
            + (1 - fx) * fy * tl.dot(_selection(k, i, RADIUS, 0, 1, TRANSPOSED, ACC), x, input_precision="ieee")
            + fx * fy * tl.dot(_selection(k, i, RADIUS, 1, 1, TRANSPOSED, ACC), x, input_precision="ieee"))


@triton.jit
def _corr4d_fwd_kernel(
    level_ptr, coords_ptr, query_ptr, out_ptr, T, N, H, W, C,
    RADIUS: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr,
):
    P: tl.constexpr = (2 * RADIUS + 1) * (2 * RADIUS + 1)
    row = tl.program_id(0).to(tl.int64)
    bt, bn, cell, k_mask, k, fx, fy = _row_geometry(coords_ptr, row, T, N, H, W, RADIUS, BLOCK_K, ACC)
    p = tl.arange(0, BLOCK_P)
    cc = tl.zeros((BLOCK_K, BLOCK_P), dtype=ACC)
    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)
        c_mask = c < C
        m = tl.load(level_ptr + cell[:, None] * C + c[None, :], mask=k_mask[:, None] & c_mask[None, :], other=0.0)
        q = tl.load(query_ptr + (bn * P + p)[:, None] * C + c[None, :], mask=(p < P)[:, None] & c_mask[None, :],
                    other=0.0)
        cc += tl.dot(m.to(ACC), tl.trans(q.to(ACC)), input_precision="ieee")
    i = tl.arange(0, BLOCK_P)
    out = _combine(cc, k, i, fx, fy, RADIUS, False, ACC)
    tl.store(out_ptr + row * (P * P) + i[:, None] * P + p[None, :], out, mask=(i < P)[:, None] & (p < P)[None, :])


@triton.jit
def _corr4d_bwd_kernel(
    level_ptr, coords_ptr, query_ptr, gout_ptr, glevel_ptr, gquery_ptr, T, N, H, W, C,
    RADIUS: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr,
):
    P: tl.constexpr = (2 * RADIUS + 1) * (2 * RADIUS + 1)
    row = tl.program_id(0).to(tl.int64)
    bt, bn, cell, k_mask, k, fx, fy = _row_geometry(coords_ptr, row, T, N, H, W, RADIUS, BLOCK_K, ACC)
    p = tl.arange(0, BLOCK_P)
    i = tl.arange(0, BLOCK_P)
    g = tl.load(gout_ptr + row * (P * P) + i[:, None] * P + p[None, :], mask=(i < P)[:, None] & (p < P)[None, :],
                other=0.0).to(ACC)
    gcc = _combine(g, k, i, fx, fy, RADIUS, True, ACC)  # [cells, P]
    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)
        c_mask = c < C
        m = tl.load(level_ptr + cell[:, None] * C + c[None, :], mask=k_mask[:, None] & c_mask[None, :],
                    other=0.0).to(ACC)
        q = tl.load(query_ptr + (bn * P + p)[:, None] * C + c[None, :], mask=(p < P)[:, None] & c_mask[None, :],
                    other=0.0).to(ACC)
        gm = tl.dot(gcc, q, input_precision="ieee")  # [cells, BLOCK_C]
        tl.atomic_add(glevel_ptr + cell[:, None] * C + c[None, :], gm, mask=k_mask[:, None] & c_mask[None, :])
        gq = tl.dot(tl.trans(gcc), m, input_precision="ieee")  # [P, BLOCK_C]
        tl.atomic_add(gquery_ptr + (bn * P + p)[:, None] * C + c[None, :], gq,
                      mask=(p < P)[:, None] & c_mask[None, :])


def _blocks(radius: int):
    E, D = 2 * radius + 2, 2 * radius + 1
    return max(16, triton.next_power_of_2(E * E)), max(16, triton.next_power_of_2(D * D))


def _acc_dtype(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


class _Corr4dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, level: Tensor, xy: Tensor, query: Tensor, radius: int) -> Tensor:
        B, T, C, H, W = level.shape
        N = xy.shape[2]
        P = (2 * radius + 1) ** 2
        acc = torch.float64 if level.dtype == torch.float64 else torch.float32
        packed = level.permute(0, 1, 3, 4, 2).contiguous()  # (B, T, H, W, C): a cell's channels contiguous
        coords = xy.detach().to(acc).contiguous()
        q = query.contiguous()
        out = torch.empty(B * T * N, P * P, device=level.device, dtype=acc)
        BK, BP = _blocks(radius)
        if out.numel():
            _corr4d_fwd_kernel[(B * T * N,)](packed, coords, q, out, T, N, H, W, C, RADIUS=radius, BLOCK_K=BK,
                                             BLOCK_P=BP, BLOCK_C=BLOCK_C, ACC=_acc_dtype(level.dtype))
        ctx.save_for_backward(packed, coords, q)
        ctx.radius, ctx.shape, ctx.dtypes = radius, (B, T, C, H, W, N), (level.dtype, query.dtype)
        return out

    @staticmethod
    def backward(ctx, gout: Tensor):
        if ctx.needs_input_grad[1]:
            raise RuntimeError("corr4d (triton) has no gradient with respect to the positions; detach them")
        packed, coords, q = ctx.saved_tensors
        B, T, C, H, W, N = ctx.shape
        acc = coords.dtype
        glevel = torch.zeros(B, T, H, W, C, device=packed.device, dtype=acc)
        gquery = torch.zeros(q.shape, device=q.device, dtype=acc)
        BK, BP = _blocks(ctx.radius)
        if gout.numel():
            _corr4d_bwd_kernel[(B * T * N,)](packed, coords, q, gout.contiguous().to(acc), glevel, gquery,
                                             T, N, H, W, C, RADIUS=ctx.radius, BLOCK_K=BK, BLOCK_P=BP,
                                             BLOCK_C=BLOCK_C, ACC=_acc_dtype(acc))
        glevel = glevel.permute(0, 1, 4, 2, 3).to(ctx.dtypes[0])
        return glevel, None, gquery.to(ctx.dtypes[1]), None


def corr4d_triton(level: Tensor, xy: Tensor, query_patches: Tensor, radius: int = 3) -> Tensor:
    """The Triton 4D correlation; signature and result as
    :func:`cotracker_fast.ops.op_corr4d.corr4d_reference` (float32, float64 for float64 inputs)."""
    return _Corr4dFunction.apply(level, xy, query_patches, radius)
