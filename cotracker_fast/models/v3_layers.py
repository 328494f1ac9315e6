"""The update transformer of CoTracker3: time attention per track, and space attention that routes through a small
set of learned virtual tracks (points read from and write to the virtual tracks only, so the cost is linear in the
number of points).

Module and parameter names follow the official state-dict keys (``updateformer.time_blocks.0.attn.to_kv.weight``,
``updateformer.space_virtual2point_blocks.1.norm_context.weight``, ``updateformer.virual_tracks`` (sic), ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .updateformer import Mlp, linear, linear_full_precision


@dataclass(frozen=True)
class CoTracker3Config:
    """Hyper-parameters of a CoTracker3 model (the official offline and online models share all but
    ``window_len``).

    Attributes:
        window_len: rows of the time-embedding table; the online model's window length (16), the offline model's
            reference length (60: the table is resampled to the clip's length).
        stride: down-sampling factor of the feature CNN.
        latent_dim: feature channels ``C``.
        corr_levels / corr_radius: pyramid levels and the neighbourhood radius ``r`` (``(2r+1)^2`` samples a side
            of the 4D correlation).
        corr_hidden / corr_out: widths of the correlation MLP (``(2r+1)^4 -> corr_hidden -> corr_out``).
        hidden_size / num_heads / mlp_ratio: transformer width, heads, MLP width ratio.
        depth: time blocks; each is followed by one space step (virtual <- points, virtual self-attention,
            points <- virtual).
        num_virtual_tracks: learned tracks appended after the points.
        model_resolution: ``(H, W)`` pixels the predictors resize to; the motion encoding divides displacements by
            ``(W, H) / stride`` whatever the input size.
        motion_octaves: scales ``2^0 .. 2^(octaves-1)`` of the sin/cos motion encoding.
    """

    window_len: int = 16
    stride: int = 4
    latent_dim: int = 128
    corr_levels: int = 4
    corr_radius: int = 3
    corr_hidden: int = 384
    corr_out: int = 256
    hidden_size: int = 384
    num_heads: int = 8
    mlp_ratio: float = 4.0
    depth: int = 3
    num_virtual_tracks: int = 64
    model_resolution: Tuple[int, int] = (384, 512)
    motion_octaves: int = 10

    def __post_init__(self):
        if self.window_len < 2 or self.window_len % 2:
            raise ValueError(f"window_len must be an even integer >= 2, got {self.window_len}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")

    @property
    def window_step(self) -> int:
        """Frames between consecutive windows of the online model (half a window)."""
        return self.window_len // 2

    @property
    def patch_size(self) -> int:
        """Samples per side of a correlation neighbourhood, ``2r + 1`` (7)."""
        return 2 * self.corr_radius + 1

    @property
    def motion_dim(self) -> int:
        """Motion-encoding channels: 4 raw displacements + sin and cos of each at every octave (84)."""
        return 4 + 2 * 4 * self.motion_octaves

    @property
    def input_dim(self) -> int:
        """Token width: vis, conf, ``corr_levels * corr_out`` correlation features, the motion encoding (1110)."""
        return 2 + self.corr_levels * self.corr_out + self.motion_dim


def multihead_attention(
    q: Tensor, k: Tensor, v: Tensor, num_heads: int, reference: bool = False, key_mask: Optional[Tensor] = None
) -> Tensor:
    """Attention of queries ``(B, Lq, D)`` over keys/values ``(B, Lk, D)``; heads are contiguous ``D / num_heads``
    channel slices. Returns ``(B, Lq, D)``, heads concatenated in order.

    ``reference=True`` writes it out in the official order (``softmax((q k^T) * d^-0.5) v``, the scale after the
    product, in the inputs' dtype); otherwise ``F.scaled_dot_product_attention`` (same maths, other rounding).
    ``key_mask`` ``(B, Lk)`` bool: only the ``True`` keys are attended to (each row needs at least one)."""
    B, Lq, D = q.shape
    d = D // num_heads
    qh = q.view(B, Lq, num_heads, d).transpose(1, 2)
    kh = k.view(B, k.shape[1], num_heads, d).transpose(1, 2)
    vh = v.view(B, v.shape[1], num_heads, d).transpose(1, 2)
    mask = None if key_mask is None else key_mask[:, None, None, :]
    if reference:
        scores = torch.matmul(qh, kh.transpose(-2, -1)) * d**-0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        out = torch.matmul(scores.softmax(dim=-1), vh)
    else:
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)
    return out.transpose(1, 2).reshape(B, Lq, D)


class Attention3(nn.Module):
    """``to_out(attention(to_q(x), to_kv(context)))``; ``to_kv``'s first ``D`` outputs are the keys, the rest the
    values (keys ``to_q`` / ``to_kv`` / ``to_out``).

    ``backend``: ``"reference"`` writes the attention out in the official operation order; otherwise
    self-attention (``context is x``) goes through :func:`cotracker_fast.ops.attention` with this backend spec
    (its automatic choice: SDPA, or the CPU bf16 kernels), and cross-attention through SDPA. The three Linears go
    through :func:`~cotracker_fast.models.updateformer.linear` (one oneDNN call each under CPU bf16 inference)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.to_out = nn.Linear(dim, dim)
        self.backend = None

    def forward(self, x: Tensor, context: Tensor, key_mask: Optional[Tensor] = None) -> Tensor:
        """``key_mask`` ``(B, L_context)`` bool: the context tokens that may be attended to (None: all)."""
        q = linear(self.to_q, x)
        k, v = linear(self.to_kv, context).chunk(2, dim=-1)
        if self.backend == "reference" or context is not x or key_mask is not None:
            out = multihead_attention(q, k, v, self.num_heads, self.backend == "reference", key_mask)
        else:
            from .. import ops

            B, L, D = q.shape
            qkv = torch.stack([q, k, v], dim=2).view(B, L, 3, self.num_heads, D // self.num_heads)
            out = ops.attention(qkv, backend=self.backend)
        return linear(self.to_out, out)


class SelfAttnBlock3(nn.Module):
    """``y = x + attn(LN(x), LN(x))``, ``y + mlp(LN(y))``; the LayerNorms have no parameters (eps 1e-6)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention3(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h)
        return x + self.mlp(self.norm2(x))


class CrossAttnBlock3(nn.Module):
    """``y = x + attn(LN(x), norm_context(ctx))``, ``y + mlp(LN(y))``. ``norm_context`` is an affine LayerNorm
    (eps 1e-5, keys ``norm_context.weight/bias``); the other norms have no parameters (eps 1e-6)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.norm_context = nn.LayerNorm(dim)
        self.cross_attn = Attention3(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, context: Tensor, key_mask: Optional[Tensor] = None) -> Tensor:
        x = x + self.cross_attn(self.norm1(x), self.norm_context(context), key_mask)
        return x + self.mlp(self.norm2(x))


class UpdateFormer3(nn.Module):
    """Tokens ``(B, N, S, input_dim)`` -> updates ``(B, N, S, 4)`` = (dx, dy) in feature cells and the vis and conf
    logit increments.

    The points are projected to ``hidden_size`` and the ``num_virtual_tracks`` learned tracks are appended after
    them (the same vector at every frame). Each of the ``depth`` rounds runs a time block over the S frames of every
    track (virtual ones included), then, per frame: virtual <- points (cross-attention), virtual self-attention,
    points <- virtual. Points never attend to points, so a round costs O(N) per frame. No attention mask.
    """

    def __init__(self, cfg: CoTracker3Config):
        super().__init__()
        dim, heads, r = cfg.hidden_size, cfg.num_heads, cfg.mlp_ratio
        self.num_virtual = cfg.num_virtual_tracks
        self.virual_tracks = nn.Parameter(torch.randn(1, cfg.num_virtual_tracks, 1, dim))
        self.input_transform = nn.Linear(cfg.input_dim, dim)
        self.flow_head = nn.Linear(dim, 2)
        self.vis_conf_head = nn.Linear(dim, 2)
        # registration order = the official state-dict order (point2virtual before virtual2point)
        self.time_blocks = nn.ModuleList(SelfAttnBlock3(dim, heads, r) for _ in range(cfg.depth))
        self.space_virtual_blocks = nn.ModuleList(SelfAttnBlock3(dim, heads, r) for _ in range(cfg.depth))
        self.space_point2virtual_blocks = nn.ModuleList(CrossAttnBlock3(dim, heads, r) for _ in range(cfg.depth))
        self.space_virtual2point_blocks = nn.ModuleList(CrossAttnBlock3(dim, heads, r) for _ in range(cfg.depth))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official training init: Xavier-uniform Linear weights and zero biases, the two heads
        trunc-normal(std 0.001), the virtual tracks standard normal, ``norm_context`` ones/zeros."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for head in (self.flow_head, self.vis_conf_head):
            nn.init.trunc_normal_(head.weight, std=0.001)
        with torch.no_grad():
            self.virual_tracks.normal_()

    def set_attention_backend(self, backend) -> None:
        """The attention backend of every block (see :class:`Attention3`)."""
        for m in self.modules():
            if isinstance(m, Attention3):
                m.backend = backend

    def set_reference_attention(self, reference: bool) -> None:
        """Write attention out in the official operation order (``True``) or use the automatic backends."""
        self.set_attention_backend("reference" if reference else None)

    def forward(self, tokens: Tensor, track_mask: Optional[Tensor] = None) -> Tensor:
        """``tokens`` ``(B, N, S, input_dim)`` -> ``(B, N, S, 4)``. ``track_mask`` ``(B, N)`` bool marks real tracks:
        padding tracks (``False``) are hidden from the virtual tracks, the only place where tracks meet (time
        attention stays within a track, and tracks attend only to the virtual tracks), so the real tracks' outputs
        do not depend on them."""
        B, N, S, _ = tokens.shape
        point_mask = None
        if track_mask is not None:
            point_mask = track_mask[:, None, :].expand(B, S, N).reshape(B * S, N)
        x = linear_full_precision(self.input_transform, tokens)
        D = x.shape[-1]
        virtual = self.virual_tracks.to(x.dtype).expand(B, -1, S, -1)
        x = torch.cat([x, virtual], dim=1)  # (B, N + V, S, D)
        M = x.shape[1]
        for r in range(len(self.time_blocks)):
            x = self.time_blocks[r](x.reshape(B * M, S, D)).reshape(B, M, S, D)
            x = x.permute(0, 2, 1, 3).reshape(B * S, M, D)
            points, virt = x[:, :N], x[:, N:]
            virt = self.space_virtual2point_blocks[r](virt, points, point_mask)
            virt = self.space_virtual_blocks[r](virt)
            points = self.space_point2virtual_blocks[r](points, virt)
            x = torch.cat([points, virt], dim=1).reshape(B, S, M, D).permute(0, 2, 1, 3)
        x = x[:, :N]
        flow = linear_full_precision(self.flow_head, x)
        vis_conf = linear_full_precision(self.vis_conf_head, x)
        return torch.cat([flow, vis_conf], dim=-1)
