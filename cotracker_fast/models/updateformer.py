"""UpdateFormer: alternating time and space (group) attention over the tokens of all tracks of a window."""
from __future__ import annotations

import functools
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .. import ops
from .config import CoTrackerConfig


class Attention(nn.Module):
    """Multi-head self-attention with one packed ``qkv`` projection (keys ``attn.qkv`` / ``attn.proj``)."""

    def __init__(self, dim: int, num_heads: int, backend: ops.BackendSpec = None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.backend = backend

    def forward(self, x: Tensor, key_mask: Optional[Tensor] = None) -> Tensor:
        Bt, L, _ = x.shape
        qkv = linear(self.qkv, x).view(Bt, L, 3, self.num_heads, self.head_dim)
        # the model never masks every track of a row (see CoTracker.forward_window): no check, no device sync
        return linear(self.proj, ops.attention(qkv, key_mask, backend=self.backend, check_mask=False))


def _cpu_bf16_inference(x: Tensor, layer: nn.Linear) -> bool:
    """True when ``layer(x)`` is eager CPU inference under bf16 autocast on float32/bf16 tensors with a bias, where
    oneDNN's fused linear can run it. Not when autograd records (the fused op has no autograd formula) and not while
    torch.compile traces (inductor has no lowering for its GELU epilogue; a compiled graph keeps ``aten.linear`` and
    inductor picks its own CPU kernels)."""
    low = (torch.float32, torch.bfloat16)
    return (
        x.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and layer.bias is not None
        and x.dtype in low
        and layer.weight.dtype in low
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in (x, layer.weight, layer.bias)))
        and _onednn_has_bf16()
    )


@functools.lru_cache(maxsize=None)
def _onednn_has_bf16() -> bool:
    """Whether oneDNN can build bf16 primitives on this CPU (it needs AVX-512 on x86; on an AVX2-only CPU creating
    the fused linear fails, and autocast's own emulated path runs instead)."""
    mkldnn = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(mkldnn, "_linear_pointwise")
            and (not hasattr(mkldnn, "_is_mkldnn_bf16_supported") or bool(mkldnn._is_mkldnn_bf16_supported())))


def linear(layer: nn.Linear, x: Tensor, gelu_tanh: bool = False) -> Tensor:
    """``layer(x)``, followed by ``gelu_tanh`` when asked; the Linears of the transformer blocks.

    For eager CPU inference under bf16 autocast it is one oneDNN bf16 matmul with the bias (and the GELU) applied to
    the fp32 accumulator in its epilogue, rounded once to bf16. Autocast's own path, ``aten::addmm``, spends a third
    of its time on the bias: on a 2-core Intel Xeon (family 6 model 167, AMX), 8,480 tokens of 384 -> 1,152 took
    17.8 ms through ``F.linear`` and 11.2 ms fused. A separate bf16 tanh-GELU is slower still (122 ms on the
    8,480 x 1,536 hidden activations against 10 ms in the epilogue). Elsewhere (GPU, float32, training,
    torch.compile) the module as written."""
    if _cpu_bf16_inference(x, layer):
        bf16 = torch.bfloat16
        return torch.ops.mkldnn._linear_pointwise(
            x.to(bf16), layer.weight.to(bf16), layer.bias.to(bf16), "gelu" if gelu_tanh else "none", [],
            "tanh" if gelu_tanh else "",
        )
    y = layer(x)
    return F.gelu(y, approximate="tanh") if gelu_tanh else y


class Mlp(nn.Module):
    """``fc2(gelu_tanh(fc1(x)))``: the transformer MLP (keys ``mlp.fc1`` / ``mlp.fc2``); see :func:`linear`."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return linear(self.fc2, linear(self.fc1, x, gelu_tanh=True))


class AttnBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))`` then ``x + mlp(LN(x))``; LayerNorms have no affine."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, backend: ops.BackendSpec = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, num_heads, backend)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, key_mask: Optional[Tensor] = None) -> Tensor:
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


def linear_full_precision(layer: nn.Linear, x: Tensor) -> Tensor:
    """``layer(x)`` in the layer's own dtype (float32, or float64 in tests), also inside an autocast region.

    Used at the two ends of the update network, where reduced precision costs accuracy and saves little: the input
    holds raw displacements in feature cells (tens of cells, which bf16 resolves only to ~0.25 cell) and the head
    writes the coordinate updates that are summed over iterations and windows. Together they are about 1% of the
    network's FLOPs at the official sizes (456 -> 384 and 384 -> 130 against the blocks' 12 * 384^2 per token)."""
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.to(layer.weight.dtype))


def block_order(time_depth: int, space_depth: int) -> List[Tuple[str, int]]:
    """The order in which :class:`UpdateFormer` runs its blocks, as ``("time" | "space", index)`` pairs: time block
    i, followed by space block ``i // every`` when ``i`` is a multiple of ``every = time_depth // space_depth``."""
    every = time_depth // space_depth
    order = []
    for i in range(time_depth):
        order.append(("time", i))
        if i % every == 0:
            order.append(("space", i // every))
    return order


class UpdateFormer(nn.Module):
    """Tokens ``(B, N, S, input_dim)`` -> updates ``(B, N, S, output_dim)``.

    Round i runs a time block (attention over the S frames of each track) and, every ``time_depth // space_depth``
    rounds, a space block (attention over the N tracks of each frame). ``track_valid`` ``(B, N)`` bool marks
    padding tracks that no valid track may attend to (used for batches whose samples have different active tracks).
    Under autocast the attention blocks run in the autocast dtype, the input projection and the output head in
    float32 (:func:`linear_full_precision`).
    """

    def __init__(self, cfg: CoTrackerConfig, backend: ops.BackendSpec = None):
        super().__init__()
        self.cfg = cfg
        dim = cfg.hidden_size
        self.input_transform = nn.Linear(cfg.input_dim, dim)
        self.flow_head = nn.Linear(dim, cfg.output_dim)
        self.time_blocks = nn.ModuleList(
            AttnBlock(dim, cfg.num_heads, cfg.mlp_ratio, backend) for _ in range(cfg.time_depth)
        )
        self.space_blocks = nn.ModuleList(
            AttnBlock(dim, cfg.num_heads, cfg.mlp_ratio, backend) for _ in range(cfg.space_depth)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases on every Linear (the official training init)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, tokens: Tensor, track_valid: Optional[Tensor] = None) -> Tensor:
        B, N, S, _ = tokens.shape
        x = linear_full_precision(self.input_transform, tokens)
        D = x.shape[-1]
        key_mask = None
        if track_valid is not None:
            key_mask = track_valid[:, None, :].expand(B, S, N).reshape(B * S, N)
        for kind, i in block_order(self.cfg.time_depth, self.cfg.space_depth):
            if kind == "time":
                x = self.time_blocks[i](x.reshape(B * N, S, D)).reshape(B, N, S, D)
            else:
                x = x.transpose(1, 2).reshape(B * S, N, D)
                x = self.space_blocks[i](x, key_mask).reshape(B, S, N, D).transpose(1, 2)
        return linear_full_precision(self.flow_head, x)
