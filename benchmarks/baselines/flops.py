"""FLOP estimates for the speed suite (ESTIMATES by arithmetic, not measurements).

A FLOP is one multiply or one add: a multiply-accumulate counts 2. Only the matrix products are counted (convs,
Linear layers, attention matmuls, correlation volumes); norms, activations, resizes and grid sampling are left out.
The layer sizes are those of the published architectures; at 384x512 and stride 4 the functions give: encoder
51.8 GFLOP per frame; CoTracker v1 with 6 iterations ~729 GFLOP per frame at N = 1,000; PIPs ~0.38 GFLOP per point
per frame. RAFT is a linear fit to two per-pair estimates, scaled with the pixel count.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from cotracker_fast.models.cotracker import window_schedule

__all__ = [
    "encoder_flops",
    "cotracker_flops",
    "cotracker3_breakdown",
    "pips_window_flops",
    "pips_flops",
    "raft_flops",
]


def _half(n: int) -> int:
    """Output size of a stride-2 conv with 'same' padding (3x3/p1, 7x7/p3, 1x1/p0): ceil(n / 2)."""
    return (n + 1) // 2


def _conv(cin: int, cout: int, k: int, h: int, w: int) -> float:
    return 2.0 * cin * cout * k * k * h * w


def encoder_flops(H: int, W: int, stride: int = 4) -> float:
    """FLOPs of the shared CNN encoder (CoTracker v1 / PIPs BasicEncoder) for one ``H x W`` frame.

    conv 7x7/2 (3 -> 64); four stages of two residual blocks (64 @ /2, 96 @ /4, 128 @ /8, 128 @ /16), the first
    block of the strided stages with a 1x1 strided shortcut; conv 3x3 (416 -> 256) and conv 1x1 (256 -> 128) at
    ``(H // stride, W // stride)``. 51.8 GFLOP at 384x512, stride 4.
    """
    total = 0.0
    h, w = _half(H), _half(W)
    total += _conv(3, 64, 7, h, w)
    cin = 64
    for cout, strided in ((64, False), (96, True), (128, True), (128, True)):
        if strided:
            h, w = _half(h), _half(w)
            total += _conv(cin, cout, 3, h, w) + _conv(cin, cout, 1, h, w)  # first conv + shortcut
        else:
            total += _conv(cin, cout, 3, h, w)
        total += 3 * _conv(cout, cout, 3, h, w)  # the other three 3x3 convs of the stage
        cin = cout
    hs, ws = H // stride, W // stride
    total += _conv(64 + 96 + 128 + 128, 256, 3, hs, ws) + _conv(256, 128, 1, hs, ws)
    return total


def _pyramid_cells(H: int, W: int, stride: int, levels: int = 4) -> int:
    """Sum over pyramid levels of the feature-map cells (16,320 at 384x512, stride 4)."""
    h, w, total = H // stride, W // stride, 0
    for _ in range(levels):
        total += h * w
        h, w = h // 2, w // 2
    return total


def _corr_per_token(H: int, W: int, stride: int, dense: bool, C: int = 128, levels: int = 4, radius: int = 3) -> float:
    """Correlation FLOPs for one (frame, track): the dense volume against every cell of every level, or the
    local form's (2r+2)^2 dot products per level."""
    if dense:
        return 2.0 * C * _pyramid_cells(H, W, stride, levels)
    return 2.0 * C * levels * (2 * radius + 2) ** 2


def cotracker_window_starts(T: int, S: int = 8) -> list:
    """Window starts of the v1 sliding-window schedule (the model's :func:`window_schedule`)."""
    return [w.start for w in window_schedule(T, S)]


def cotracker_flops(
    query_frames: Sequence[int],
    T: int,
    H: int,
    W: int,
    *,
    iters: int = 6,
    stride: int = 4,
    S: int = 8,
    dense_corr: bool = True,
) -> float:
    """FLOPs of CoTracker v1 on a whole video.

    Args:
        query_frames: the query frame of every tracked point (include the predictor's 6x6 support grid, queried at
            frame 0). A point is active in window ``[s, s + S)`` when ``t_q < s + S`` (the official schedule).
        T, H, W: frames and working resolution in pixels.
        iters: refinement iterations per window.
        dense_corr: True for the official dense correlation volume (the ``reference`` backend), False for the
            local form.

    Per token (one frame of one track) and iteration: input projection 456 -> 384; 12 transformer blocks of
    qkv (384 -> 1152), output projection and MLP 384 -> 1536 -> 384; time attention over the S frames in the 6 time
    blocks, space attention over the window's active tracks in the 6 space blocks; flow head 384 -> 130; feature
    updater 128 -> 128; correlation. Plus the encoder once per frame.
    """
    hidden, mlp, blocks = 384, 1536, 12
    linear = 2.0 * (456 * hidden + blocks * (hidden * 3 * hidden + hidden * hidden + 2 * hidden * mlp))
    linear += 2.0 * (hidden * 130 + 128 * 128)
    corr = _corr_per_token(H, W, stride, dense_corr)
    total = T * encoder_flops(H, W, stride)
    for start in cotracker_window_starts(T, S):
        n = sum(1 for t in query_frames if t < start + S)
        time_attn = 6 * 2 * (2.0 * S * hidden)  # QK^T and AV over S frames, per token
        space_attn = 6 * 2 * (2.0 * n * hidden)  # the same over the n tracks
        total += iters * S * n * (linear + corr + time_attn + space_attn)
    return total


def pips_window_flops(
    H: int, W: int, *, iters: int = 6, stride: int = 4, S: int = 8, dense_corr: bool = True
) -> float:
    """FLOPs of one point in one PIPs window, without the encoder (~2.6 GFLOP at 384x512, 6 iterations).

    Per iteration: S tokens through the input Linear (519 -> 512), 12 mixer layers (token mixing S -> 4S -> S over
    512 channels, channel mixing 512 -> 2048 -> 512), the output Linear (512 -> S * 130) once per point, the feature
    updater (128 -> 128) per token, and the correlation of each token against the pyramid.
    """
    dim, e = 512, 4
    per_token = 2.0 * 519 * dim + 12 * (2.0 * 2 * dim * dim * e) + 2.0 * 128 * 128
    per_token += _corr_per_token(H, W, stride, dense_corr)
    token_mix = 12 * (2.0 * 2 * S * (S * e) * dim)
    head = 2.0 * dim * S * 130
    return iters * (S * per_token + token_mix + head)


def pips_flops(
    point_windows: int,
    encoded_frames: int,
    H: int,
    W: int,
    *,
    iters: int = 6,
    stride: int = 4,
    S: int = 8,
    dense_corr: bool = True,
) -> float:
    """FLOPs of a PIPs chaining run from its counts (see ``ChainResult``): every encoded frame plus every
    (point, window) pair."""
    return encoded_frames * encoder_flops(H, W, stride) + point_windows * pips_window_flops(
        H, W, iters=iters, stride=stride, S=S, dense_corr=dense_corr
    )


#: RAFT-large per frame pair at 384x512 (estimates: 315 GFLOP at 12 updates, 698 at 32): a linear fit
#: ``RAFT_LARGE_FIXED + updates * RAFT_LARGE_PER_UPDATE`` (encoders + correlation volume, and one GRU update with
#: its upsampling).
RAFT_LARGE_PER_UPDATE = (698e9 - 315e9) / 20
RAFT_LARGE_FIXED = 315e9 - 12 * RAFT_LARGE_PER_UPDATE
#: raft_small / raft_large cost ratio, from torchvision's listed operation counts (47.7 / 211.0).
RAFT_SMALL_RATIO = 47.7 / 211.0


def raft_flops(T: int, H: int, W: int, updates: int, variant: str = "large", pad_hw: Optional[tuple] = None) -> float:
    """FLOPs of RAFT on the ``T - 1`` consecutive pairs of a video, flat in the number of points.

    Scaled from the 384x512 estimate by the (padded) pixel count; the all-pairs correlation volume grows with the
    square of the pixel count, which this linear scaling ignores (about 5 GFLOP of the 315 at 384x512).
    """
    if variant not in ("large", "small"):
        raise ValueError(f"variant must be 'large' or 'small', got {variant!r}")
    h, w = pad_hw if pad_hw is not None else (math.ceil(H / 8) * 8, math.ceil(W / 8) * 8)
    per_pair = (RAFT_LARGE_FIXED + updates * RAFT_LARGE_PER_UPDATE) * (h * w) / (384 * 512)
    if variant == "small":
        per_pair *= RAFT_SMALL_RATIO
    return max(T - 1, 0) * per_pair


def cotracker3_breakdown(
    T: int, N: int, H: int = 384, W: int = 512, *, iters: int = 6, window: Optional[int] = None,
    virtual: int = 64, levels: int = 4, radius: int = 3, C: int = 128, hidden: int = 384, corr_hidden: int = 384,
    corr_out: int = 256, depth: int = 3, bytes_per_value: int = 4,
) -> dict:
    """FLOPs (and the 4D correlation's bytes) of CoTracker3 per component, for T frames and N tracks (support grid
    included), ESTIMATES by arithmetic. ``window=None``: the offline model (one window over the T frames); else
    the online model's windows of ``window`` frames every ``window // 2`` (each window's frames counted once per
    window that holds them; the encoder once per frame).

    Components, per iteration and summed over iterations:
      * ``corr_volume``: the K^2 x K^2 dot products over C channels (K = 2r + 1), per track, frame and level;
      * ``corr_mlp``: K^4 -> corr_hidden -> corr_out, per track, frame and level;
      * ``transformer``: the input projection, the time blocks over N + virtual tracks, the virtual self-attention
        blocks, and the point<->virtual cross-attention blocks (attention matmuls included), and the heads;
      * ``encoder``: once per frame.
    ``corr_bytes``: per iteration, the image-side values the reference samples (4 taps x K^2 x C per track, frame,
    level, read) and writes (K^2 x C), and the K^4 correlations written and read by the MLP; the fused kernel reads
    ((K+1)^2 C) and writes K^4.
    """
    K2 = (2 * radius + 1) ** 2
    if window is None:
        frames_run = T
        attn_len = [T]
    else:
        step = window // 2
        n_win = max(1, (T - window + step - 1) // step + 1)
        frames_run = n_win * window
        attn_len = [window] * n_win
    rows = frames_run * N * levels
    corr_volume = 2.0 * rows * K2 * K2 * C
    corr_mlp = 2.0 * rows * (K2 * K2 * corr_hidden + corr_hidden * corr_out)
    token_in = 2 + levels * corr_out + 84
    mlp = 2 * 2.0 * hidden * 4 * hidden  # fc1 + fc2 per token
    proj = 2.0 * hidden * hidden  # one hidden x hidden projection per token
    tr = 2.0 * frames_run * N * token_in * hidden + 2 * 2.0 * frames_run * N * hidden * 2  # input + heads
    for S in attn_len:
        M = N + virtual
        per_frame = (
            depth * (M * (4 * proj + mlp) + 2 * 2.0 * M * S * hidden)  # time blocks (q, k, v, out; scores, mix)
            + depth * (virtual * (4 * proj + mlp) + 2 * 2.0 * virtual * virtual * hidden)  # virtual self-attention
            # virtual <- points: q and out on the virtual tokens, k and v on the points, then the virtual MLP
            + depth * (virtual * (2 * proj + mlp) + N * 2 * proj + 2 * 2.0 * virtual * N * hidden)
            # points <- virtual: q and out on the points, k and v on the virtual tokens, then the point MLP
            + depth * (N * (2 * proj + mlp) + virtual * 2 * proj + 2 * 2.0 * N * virtual * hidden)
        )
        tr += S * per_frame
    patches = rows * K2 * C
    corr_bytes_reference = bytes_per_value * (4 * patches + patches + 2 * rows * K2 * K2)
    corr_bytes_fused = bytes_per_value * (rows * (2 * radius + 2) ** 2 * C + rows * K2 * K2)
    out = {
        "encoder": encoder_flops(H, W) * T,
        "corr_volume": corr_volume * iters,
        "corr_mlp": corr_mlp * iters,
        "transformer": tr * iters,
        "corr_bytes_reference_per_iter": float(corr_bytes_reference),
        "corr_bytes_fused_per_iter": float(corr_bytes_fused),
    }
    out["total"] = out["encoder"] + out["corr_volume"] + out["corr_mlp"] + out["transformer"]
    return out
