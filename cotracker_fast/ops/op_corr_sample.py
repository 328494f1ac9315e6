"""The ``corr_sample`` op: multi-scale correlation samples of track features around track positions.

Backends (:mod:`cotracker_fast.ops.backend`), all with the signature of :func:`corr_sample_reference`:

* ``reference`` (:func:`corr_sample_reference`): the official-equivalent baseline. Builds the dense correlation
  volume between every track feature and every feature-map cell, then bilinearly samples the square neighbourhood
  with ``grid_sample(align_corners=True, padding_mode="zeros")``. Memory O(N * H * W) per frame.
* ``torch`` (:func:`corr_sample_torch`, the automatic choice): the local form. Bilinear sampling is linear, so
  sampling the correlation volume equals taking dot products of the track feature with the bilinearly sampled
  *features*. All (2r+1)^2 offsets are integers, so the bilinear weights are the same for the whole neighbourhood:
  gather the (2r+2)^2 integer cells around the point, take dot products, and combine neighbouring dot products with
  the shared weights. Memory O(N).
* ``cpu`` (:func:`corr_sample_cpu`, the automatic choice on the CPU): the same local form fused in C++
  (``csrc/cpu/corr_sample_cpu.cpp`` in the extension ``cotracker_fast._cpu``): each point's (2r+2)^2 dot products
  and their blend, with nothing materialised; fastest on channels-last maps. Forward only: when autograd records,
  it runs :func:`corr_sample_torch`.
* ``triton``: the fused kernel of ``kernels/corr_sample.py`` (installed as ``cotracker_fast.kernels``), imported and
  compiled on first use.

Tests and benchmarks import the references from here; nobody re-implements them.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import _acc, _no_autocast
from ._cpu_ext import cpu_extension_error, load_cpu_extension
from .backend import BackendSpec, register_backend, resolve

__all__ = ["corr_sample", "corr_sample_reference", "corr_sample_torch", "corr_sample_cpu", "check_corr_inputs", "build_pyramid"]


def check_corr_inputs(fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int) -> None:
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


def _neighbourhood_offsets(radius: int, device) -> Tensor:
    """(d*d, 2) integer (dx, dy) offsets in the official x-major order: k = i*d + j -> dx = i - r, dy = j - r."""
    offs = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    dx, dy = torch.meshgrid(offs, offs, indexing="ij")
    return torch.stack([dx, dy], dim=-1).reshape(-1, 2)


@_no_autocast
def corr_sample_reference(fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int = 3) -> Tensor:
    """Official-equivalent correlation sampling through a dense correlation volume. See :func:`corr_sample`."""
    check_corr_inputs(fmaps, feats, coords, radius)
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
def corr_sample_torch(fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int = 3) -> Tensor:
    """Local-form correlation sampling (same numbers as the dense volume, O(N) memory). See :func:`corr_sample`.

    The (2r+2)^2 integer cells around each point are visited one row at a time: gather the row's feature vectors
    from the flattened map, dot them with the track feature (a batched matmul), and finally combine neighbouring
    dot products with the shared bilinear weights. Transient memory is one row, ``B*S*N*(2r+2)*C`` values (33 MB
    at N = 1024, S = 8, C = 128, against 535 MB for the dense volume at 384x512 / stride 4). Measured on a 2-core CPU
    (benchmarks/results/cpu-2core-2026-11-25.json): faster than the dense volume on the official 96x128 maps
    (74 vs 92 ms, N = 256), 3x slower on small 48x64 maps where the dense volume is tiny.
    """
    check_corr_inputs(fmaps, feats, coords, radius)
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


def _cpu_check(device: torch.device, dtype: torch.dtype):
    if device.type != "cpu":
        return f"needs CPU tensors, got {device.type}"
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return f"computes in float32 (float16/bfloat16 inputs are converted), got {dtype}"
    return cpu_extension_error()


@torch.library.custom_op("cotracker_fast::corr_sample_cpu", mutates_args=(), device_types="cpu")
def _corr_sample_cpu_op(fmaps: List[Tensor], feats: Tensor, coords: Tensor, radius: int) -> Tensor:
    ext = load_cpu_extension()
    B, S, N, C = feats.shape
    d = 2 * radius + 1
    out = torch.empty(B, S, N, len(fmaps) * d * d, dtype=torch.float32)
    feats = feats.contiguous()
    coords = coords.contiguous()
    threads = torch.get_num_threads()
    for lvl, fmap in enumerate(fmaps):
        H, W = fmap.shape[-2:]
        frames = fmap.reshape(B * S, C, H, W)  # a view for the pyramids built here, NCHW or channels-last
        ext.corr_sample_level_fwd_cpu(
            frames.data_ptr(), B * S, C, H, W, *frames.stride(), feats.data_ptr(), coords.data_ptr(), N,
            1.0 / 2**lvl, radius, out.data_ptr(), out.shape[-1], lvl * d * d, threads,
        )
    return out


@_corr_sample_cpu_op.register_fake
def _(fmaps, feats, coords, radius):
    B, S, N, _ = feats.shape
    return feats.new_empty(B, S, N, len(fmaps) * (2 * radius + 1) ** 2, dtype=torch.float32)


def corr_sample_cpu(fmaps: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int = 3) -> Tensor:
    """Fused CPU kernel of :func:`corr_sample` (same signature and numbers as :func:`corr_sample_torch`, up to
    float32 summation order). Inputs in float32 (float16 / bfloat16 are converted first); any strides, channels-last
    maps being the fastest. Forward only: when autograd records, it returns :func:`corr_sample_torch`. Coordinates
    that are not finite give NaN values."""
    check_corr_inputs(fmaps, feats, coords, radius)
    reason = _cpu_check(feats.device, feats.dtype)
    if reason is not None:
        raise ValueError(f"corr_sample_cpu cannot run on these inputs: {reason}")
    if radius > 15:
        raise ValueError(f"corr_sample_cpu supports radius <= 15, got {radius}")
    if torch.is_grad_enabled() and (feats.requires_grad or coords.requires_grad or any(f.requires_grad for f in fmaps)):
        return corr_sample_torch(fmaps, feats, coords, radius)
    if any(f.device != feats.device for f in fmaps) or coords.device != feats.device:
        raise ValueError("fmaps, feats and coords must be on the same device")
    return _corr_sample_cpu_op([f.float() for f in fmaps], feats.float(), coords.float(), radius)


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


register_backend("corr_sample", "reference", corr_sample_reference)
register_backend("corr_sample", "cpu", corr_sample_cpu, check=_cpu_check, auto_priority=0)
register_backend("corr_sample", "torch", corr_sample_torch, auto_priority=100)
# Explicit only for now: the kernel has been checked in the Triton interpreter, not yet measured on a GPU; it joins
# the automatic choice once it has been.
register_backend("corr_sample", "triton", _corr_sample_triton, check=_triton_check)


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
