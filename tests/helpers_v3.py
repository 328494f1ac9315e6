"""Weights and inputs for CoTracker3 tests that do not depend on our model code.

:func:`official_v3_key_shapes` writes the official CoTracker3 state dict out by hand (188 entries, the same for the
offline and the online model except the length of ``time_emb``); :func:`synthetic_v3_state_dict` fills it with
deterministic random numbers. The golden outputs of the official code (tests/data/README.md) were produced with these
weights, so the generator must never change: the parity tests check a checksum.
"""
import math

import torch

from helpers import official_key_shapes

#: Width of a CoTracker3 token: vis, conf, 4 levels x 256 correlation features, 84 motion-encoding channels.
V3_TOKEN_DIM = 1110


def v3_time_table(length: int) -> torch.Tensor:
    """``(1, length, 1110)``: row t holds sin(t w_k) for k < 555, then cos(t w_k), w_k = 10000^(-k/555), computed in
    float64 and stored as float32 (what the official checkpoints hold)."""
    half = V3_TOKEN_DIM // 2
    w = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half)
    ang = torch.arange(length, dtype=torch.float64)[:, None] * w[None]
    return torch.cat([ang.sin(), ang.cos()], 1).float()[None]


def official_v3_key_shapes(window_len: int):
    """Names and shapes of the official CoTracker3 state dict (offline: ``window_len=60``; online: 16)."""
    t = {k: v for k, v in official_key_shapes().items() if k.startswith("fnet.")}
    t["time_emb"] = (1, window_len, V3_TOKEN_DIM)
    u = "updateformer."
    t[u + "virual_tracks"] = (1, 64, 1, 384)
    t[u + "input_transform.weight"] = (384, V3_TOKEN_DIM)
    t[u + "input_transform.bias"] = (384,)
    for head in ("flow_head", "vis_conf_head"):
        t[f"{u}{head}.weight"] = (2, 384)
        t[f"{u}{head}.bias"] = (2,)

    def attn(prefix):
        t[prefix + "to_q.weight"], t[prefix + "to_q.bias"] = (384, 384), (384,)
        t[prefix + "to_kv.weight"], t[prefix + "to_kv.bias"] = (768, 384), (768,)
        t[prefix + "to_out.weight"], t[prefix + "to_out.bias"] = (384, 384), (384,)

    for r in range(3):
        for group in ("time_blocks", "space_virtual_blocks"):
            p = f"{u}{group}.{r}."
            attn(p + "attn.")
            t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"] = (1536, 384), (1536,)
            t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"] = (384, 1536), (384,)
        for group in ("space_point2virtual_blocks", "space_virtual2point_blocks"):
            p = f"{u}{group}.{r}."
            t[p + "norm_context.weight"], t[p + "norm_context.bias"] = (384,), (384,)
            attn(p + "cross_attn.")
            t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"] = (1536, 384), (1536,)
            t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"] = (384, 1536), (384,)
    t["corr_mlp.fc1.weight"], t["corr_mlp.fc1.bias"] = (384, 2401), (384,)
    t["corr_mlp.fc2.weight"], t["corr_mlp.fc2.bias"] = (256, 384), (256,)
    return t


def synthetic_v3_state_dict(seed: int = 0, window_len: int = 16, tame: bool = False):
    """Deterministic random CoTracker3 weights: for each key in sorted order (``time_emb`` excluded),
    ``randn * sqrt(2 / fan_in)`` (weights), ``0.02 * randn`` (biases), ``1 + 0.1 * randn`` (``norm_context``
    weights), ``randn`` (``virual_tracks``); ``time_emb`` is :func:`v3_time_table`. The output heads are scaled
    so that one iteration moves tracks by a few feature cells and the vis/conf logits by about one.

    ``tame`` zeroes the input columns of the 80 sin/cos motion features (the 4 raw displacements stay) and scales
    the flow head by 0.2, which keeps the network from amplifying float32 round-off over many iterations while every
    op still runs."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in sorted(official_v3_key_shapes(window_len).items()):
        if key == "time_emb":
            sd[key] = v3_time_table(window_len)
            continue
        noise = torch.randn(shape, generator=g, dtype=torch.float32)
        if key.endswith("norm_context.weight"):
            sd[key] = 1.0 + 0.1 * noise
        elif key.endswith(".bias"):
            sd[key] = 0.02 * noise
        elif key.endswith("virual_tracks"):
            sd[key] = noise
        else:
            fan_in = math.prod(shape[1:])
            sd[key] = noise * (2.0 / fan_in) ** 0.5
    sd["updateformer.flow_head.weight"].mul_(0.05)
    sd["updateformer.vis_conf_head.weight"].mul_(0.1)
    if tame:
        sd["updateformer.input_transform.weight"][:, 1030:1110] = 0
        sd["updateformer.flow_head.weight"].mul_(0.2)
    return sd
