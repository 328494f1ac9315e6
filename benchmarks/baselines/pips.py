"""PIPs ("Particle Video Revisited", Harley et al., ECCV 2022) as the official code computes it.

Written from a description of the PIPs architecture and its paper; no code from
the official repository. What is reproduced, because it changes outputs or cost:

* the shared CNN encoder (identical to CoTracker v1's; reused from :mod:`cotracker_fast.models.encoder`, whose
  state-dict names are the PIPs ones: the instance norms hold no parameters), stride 4 as in the official demos;
* a 4-level feature pyramid (2x2 average pooling of the *features*), and at every iteration the dense correlation
  volume of each track feature against every cell, divided by sqrt(C), sampled bilinearly on a 7x7 square
  (radius 3, zero padding, x-major order) at ``coords / 2**level`` -- 196 values per (frame, point);
* the 12-layer MLP-Mixer over the S = 8 frames of a window (token mixing: 1x1 Conv1d 8 -> 32 -> 8 over time;
  channel mixing: 512 -> 2048 -> 512; pre-LayerNorm residuals, exact GELU), mean over time, one Linear to
  ``S * (128 + 2)`` deltas;
* the 519-wide mixer input ``[track feature (128), correlations (196), motion embedding (195)]``; the motion is
  ``(dx, dy, t)`` relative to the window's first frame with ``t = linspace(0, S, S)`` (0 .. 8 in 8 steps, an
  official quirk), embedded with 64 sin/cos features per component followed by the three raw values;
* the feature update ``f += GELU(Linear(GroupNorm(1, 128)(delta_f)))``, the visibility head ``Linear(128, 1)`` on
  the final features, the first frame re-locked to the query after every iteration (evaluation mode);
* the training-only full-resolution correlation maps (every level resized to the level-0 map and summed, a
  ``(B, S, N, H/4, W/4)`` tensor per iteration) behind ``full_res_corr=True``. The official forward computes them
  at inference too; they never change the tracks, so the default leaves them out.

Dropped: the official ``.cuda()`` calls (everything runs where the model is), the loss and visualisation code.

Long videos are chained in two ways, named apart: :func:`track_pips_per_point` is the official visibility-adaptive
loop, one point at a time, re-encoding each window's frames; :func:`track_pips_batched` tracks all points that share
a query frame together, with 8-frame windows advancing 7 frames and every frame encoded once.
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from cotracker_fast import ops
from cotracker_fast.models.encoder import BasicEncoder

WINDOW = 8  #: frames per window (fixed by the released weights)
LATENT_DIM = 128  #: feature channels C
CORR_LEVELS = 4
CORR_RADIUS = 3
MIXER_DIM = 512
MIXER_DEPTH = 12
MIXER_EXPANSION = 4
MOTION_EMBED_DIM = 64  #: sin/cos features per motion component
#: width of the mixer input per frame: correlations + track feature + 3 x 64 sin/cos + the 3 raw values
MIXER_INPUT_DIM = CORR_LEVELS * (2 * CORR_RADIUS + 1) ** 2 + LATENT_DIM + 3 * MOTION_EMBED_DIM + 3  # 519
#: parameters of the official model (encoder 2,632,288 + mixer 26,028,528 + norm/updater/visibility 16,897)
NUM_PARAMETERS = 28_677_713


def motion_embedding(motion: Tensor, dim: int = MOTION_EMBED_DIM) -> Tensor:
    """PIPs' 3-D sin/cos embedding.

    Args:
        motion: ``(..., 3)`` values ``(dx, dy, t)``: displacement from the window's first frame in feature cells,
            and the frame's time value.
        dim: features per component (even).

    Returns:
        ``(..., 3 * dim + 3)`` float32: for each component v in (dx, dy, t), ``dim`` interleaved values
        ``[sin(v f_0), cos(v f_0), sin(v f_1), cos(v f_1), ...]`` with ``f_k = 2 k * 1000 / dim`` (31.25 k for
        dim = 64), then the three raw values.
    """
    if motion.shape[-1] != 3:
        raise ValueError(f"motion must be (..., 3) rows (dx, dy, t), got shape {tuple(motion.shape)}")
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    motion = motion.float()
    freqs = torch.arange(0, dim, 2, device=motion.device, dtype=torch.float32) * (1000.0 / dim)
    parts = []
    for axis in range(3):
        arg = motion[..., axis : axis + 1] * freqs
        parts.append(torch.stack([torch.sin(arg), torch.cos(arg)], dim=-1).flatten(-2))
    parts.append(motion)
    return torch.cat(parts, dim=-1)


class _PreNormResidual(nn.Module):
    """``x + fn(LayerNorm(x))`` (LayerNorm over the last dim)."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fn(self.norm(x))


def _mlp(layer_in: nn.Module, layer_out: nn.Module) -> nn.Sequential:
    """``layer_in -> GELU -> (dropout 0) -> layer_out -> (dropout 0)``; the two no-op dropouts keep the official
    indices (``fn.0`` and ``fn.3`` hold the weights)."""
    return nn.Sequential(layer_in, nn.GELU(), nn.Dropout(0.0), layer_out, nn.Dropout(0.0))


class _MeanOverTime(nn.Module):
    """``(B, S, D) -> (B, D)``: mean over the frames of the window."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=1)


class DeltaBlock(nn.Module):
    """The MLP-Mixer update: ``(B*N, S, 519)`` per-frame inputs -> ``(B*N, S * 130)`` deltas.

    ``to_delta`` is a Sequential: 0 the input Linear (519 -> 512); 1..12 the mixer layers, each a pair (token mixing
    across the S frames with 1x1 Conv1d S -> 4S -> S, then channel mixing 512 -> 2048 -> 512); 13 LayerNorm;
    14 mean over time; 15 the output Linear (512 -> S * 130).
    """

    def __init__(self, S: int = WINDOW):
        super().__init__()
        self.S = S
        e = MIXER_EXPANSION
        layers: List[nn.Module] = [nn.Linear(MIXER_INPUT_DIM, MIXER_DIM)]
        for _ in range(MIXER_DEPTH):
            token_mix = _mlp(nn.Conv1d(S, S * e, kernel_size=1), nn.Conv1d(S * e, S, kernel_size=1))
            channel_mix = _mlp(nn.Linear(MIXER_DIM, MIXER_DIM * e), nn.Linear(MIXER_DIM * e, MIXER_DIM))
            layers.append(
                nn.Sequential(_PreNormResidual(MIXER_DIM, token_mix), _PreNormResidual(MIXER_DIM, channel_mix))
            )
        layers += [nn.LayerNorm(MIXER_DIM), _MeanOverTime(), nn.Linear(MIXER_DIM, S * (LATENT_DIM + 2))]
        self.to_delta = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.to_delta(x)


class PipsOutput(NamedTuple):
    """Outputs of one PIPs window.

    Attributes:
        tracks: ``(B, S, N, 2)`` float32 (x, y) in input pixels after the last iteration.
        vis_logits: ``(B, S, N)`` visibility logits (sigmoid -> probability).
        feat_init: ``(B, N, C)`` the template features the window started from (sampled at the query in frame 0,
            or the ``feat_init`` passed in); chaining passes it to the next window.
        all_tracks: the ``iters`` intermediate ``(B, S, N, 2)`` tracks in pixels, when ``return_all=True``.
        full_corr: per iteration, the ``(B, S, N, H/s, W/s)`` full-resolution correlation maps, when the model
            was built with ``full_res_corr=True`` (else None).
    """

    tracks: Tensor
    vis_logits: Tensor
    feat_init: Tensor
    all_tracks: Optional[List[Tensor]] = None
    full_corr: Optional[List[Tensor]] = None


def _sample_square(volume: Tensor, centre: Tensor, radius: int) -> Tensor:
    """Bilinear samples of ``volume`` ``(M, 1, h, w)`` on the (2r+1)^2 square around ``centre`` ``(M, 2)`` (x, y)
    in cells; align_corners=True, zero outside. Returns ``(M, (2r+1)^2)`` in x-major order
    (``k = (dx + r) * (2r+1) + (dy + r)``)."""
    M, _, h, w = volume.shape
    offs = torch.arange(-radius, radius + 1, device=volume.device, dtype=volume.dtype)
    dx, dy = torch.meshgrid(offs, offs, indexing="ij")
    pts = centre[:, None, :] + torch.stack([dx, dy], dim=-1).reshape(1, -1, 2)  # (M, d*d, 2)
    grid = torch.stack([2 * pts[..., 0] / (w - 1) - 1, 2 * pts[..., 1] / (h - 1) - 1], dim=-1)
    out = F.grid_sample(volume, grid[:, None], mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(M, -1)


def dense_corr_with_maps(
    pyramid: Sequence[Tensor], feats: Tensor, coords: Tensor, radius: int = CORR_RADIUS
) -> Tuple[Tensor, Tensor]:
    """The official correlation step with its training-only by-product.

    Args:
        pyramid: L tensors ``(B, S, C, h_l, w_l)`` (level 0 first).
        feats: ``(B, S, N, C)`` track features.
        coords: ``(B, S, N, 2)`` positions (x, y) in level-0 cells.
        radius: square radius r.

    Returns:
        ``(samples, maps)``: ``(B, S, N, L (2r+1)^2)`` correlation samples (the numbers of
        ``ops.corr_sample(..., backend="reference")``) and ``(B, S, N, h_0, w_0)``, the sum over levels of each
        level's correlation volume resized bilinearly (align_corners=True) to the level-0 size. One dense volume
        per level serves both, as in the official forward.
    """
    B, S, N, C = feats.shape
    h0, w0 = pyramid[0].shape[-2:]
    feats = feats.float()
    samples, maps = [], None
    for lvl, fmap in enumerate(pyramid):
        h, w = fmap.shape[-2:]
        vol = torch.matmul(feats, fmap.float().reshape(B, S, C, h * w)) / math.sqrt(C)  # (B, S, N, h*w)
        up = F.interpolate(vol.reshape(B * S, N, h, w), (h0, w0), mode="bilinear", align_corners=True)
        maps = up if maps is None else maps + up
        centre = coords.float().reshape(B * S * N, 2) / 2**lvl
        samples.append(_sample_square(vol.reshape(B * S * N, 1, h, w), centre, radius).reshape(B, S, N, -1))
    return torch.cat(samples, dim=-1), maps.reshape(B, S, N, h0, w0)


class Pips(nn.Module):
    """PIPs with the official module names (the released checkpoint loads with ``strict=True``).

    Args:
        S: frames per window (8 for the released weights).
        stride: encoder stride (official demos and BADJA/CroHD tests: 4; class default in the official code: 8).
        full_res_corr: also compute the training-only full-resolution correlation maps at every iteration (the
            official forward always does; they do not change the tracks). Returned in ``PipsOutput.full_corr``.
        corr_backend: backend of :func:`cotracker_fast.ops.corr_sample` when ``full_res_corr`` is off:
            ``"reference"`` (default) is the official dense volume + grid_sample; ``"torch"`` the local form
            (same numbers up to float rounding, O(N) memory).
    """

    def __init__(self, S: int = WINDOW, stride: int = 4, *, full_res_corr: bool = False, corr_backend="reference"):
        super().__init__()
        if S < 2:
            raise ValueError(f"S must be >= 2, got {S}")
        self.S = S
        self.stride = stride
        self.full_res_corr = full_res_corr
        self.corr_backend = corr_backend
        self.fnet = BasicEncoder(output_dim=LATENT_DIM, stride=stride)
        self.delta_block = DeltaBlock(S)
        self.norm = nn.GroupNorm(1, LATENT_DIM)
        self.ffeat_updater = nn.Sequential(nn.Linear(LATENT_DIM, LATENT_DIM), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(LATENT_DIM, 1))

    def encode(self, rgbs: Tensor) -> Tensor:
        """``(B, F, 3, H, W)`` RGB in 0..255 -> ``(B, F, 128, H // stride, W // stride)`` feature maps."""
        if rgbs.dim() != 5 or rgbs.shape[2] != 3:
            raise ValueError(f"rgbs must be (B, F, 3, H, W) RGB in 0..255, got shape {tuple(rgbs.shape)}")
        B, F_ = rgbs.shape[:2]
        x = 2 * (rgbs.float() / 255.0) - 1.0
        fmaps = self.fnet(x.reshape(B * F_, *x.shape[2:]))
        return fmaps.reshape(B, F_, *fmaps.shape[1:])

    def forward(
        self,
        xys: Tensor,
        rgbs: Optional[Tensor] = None,
        *,
        fmaps: Optional[Tensor] = None,
        iters: int = 6,
        feat_init: Optional[Tensor] = None,
        coords_init: Optional[Tensor] = None,
        lock_first: bool = True,
        return_all: bool = False,
    ) -> PipsOutput:
        """Track points through one window of S frames.

        Args:
            xys: ``(B, N, 2)`` start positions (x, y) in pixels, in the window's first frame.
            rgbs: ``(B, S, 3, H, W)`` RGB in 0..255; or give ``fmaps`` instead.
            fmaps: ``(B, S, 128, H/stride, W/stride)`` precomputed :meth:`encode` output (batched chaining).
            iters: refinement iterations (the official evaluation and demos use 6).
            feat_init: ``(B, N, 128)`` template features from an earlier window (chaining); None samples them at
                ``xys`` in frame 0 (bilinear, border-clamped).
            coords_init: ``(B, S, N, 2)`` initial positions in pixels; None starts every frame at ``xys`` (zero
                velocity, the official choice).
            lock_first: after every iteration put frame 0 back at ``xys`` (official evaluation behaviour).
            return_all: also return every iteration's tracks.
        """
        if fmaps is None:
            if rgbs is None:
                raise ValueError("give rgbs (B, S, 3, H, W) or fmaps (B, S, 128, h, w)")
            fmaps = self.encode(rgbs)
        if fmaps.dim() != 5 or fmaps.shape[1] != self.S or fmaps.shape[2] != LATENT_DIM:
            raise ValueError(
                f"fmaps must be (B, S={self.S}, {LATENT_DIM}, h, w) (rgbs (B, S={self.S}, 3, H, W)), "
                f"got shape {tuple(fmaps.shape)}"
            )
        B, S, C, h, w = fmaps.shape
        if xys.dim() != 3 or xys.shape[0] != B or xys.shape[2] != 2:
            raise ValueError(f"xys must be (B={B}, N, 2) pixel positions (x, y), got shape {tuple(xys.shape)}")
        N = xys.shape[1]
        if feat_init is not None and feat_init.shape != (B, N, C):
            raise ValueError(f"feat_init must be (B={B}, N={N}, {C}), got shape {tuple(feat_init.shape)}")
        stride = float(self.stride)
        start = xys.float() / stride  # (B, N, 2) cells
        if coords_init is None:
            coords = start[:, None].repeat(1, S, 1, 1)
        else:
            if coords_init.shape != (B, S, N, 2):
                raise ValueError(f"coords_init must be (B={B}, S={S}, N={N}, 2), got {tuple(coords_init.shape)}")
            coords = coords_init.float() / stride
        first = coords[:, 0].clone()
        pyramid = ops.build_pyramid(fmaps, CORR_LEVELS)
        if feat_init is None:
            feat_init = ops.bilinear_sample_border(fmaps[:, 0], coords[:, 0])  # (B, N, C)
        ffeats = feat_init[:, None].expand(B, S, N, C)
        times = torch.linspace(0, S, S, device=fmaps.device).reshape(1, S, 1, 1).expand(B, S, N, 1)
        all_tracks: List[Tensor] = []
        full_corr: Optional[List[Tensor]] = [] if self.full_res_corr else None
        for _ in range(iters):
            coords = coords.detach()
            if self.full_res_corr:
                corr, maps = dense_corr_with_maps(pyramid, ffeats, coords, CORR_RADIUS)
                full_corr.append(maps)
            else:
                corr = ops.corr_sample(pyramid, ffeats, coords, CORR_RADIUS, backend=self.corr_backend)
            motion = torch.cat([coords - coords[:, :1], times], dim=-1)  # (B, S, N, 3)
            x = torch.cat([ffeats, corr, motion_embedding(motion)], dim=-1)  # (B, S, N, 519)
            x = x.permute(0, 2, 1, 3).reshape(B * N, S, MIXER_INPUT_DIM)
            delta = self.delta_block(x).reshape(B, N, S, C + 2).permute(0, 2, 1, 3)  # (B, S, N, 130)
            dfeat = self.norm(delta[..., 2:].reshape(-1, C))
            ffeats = ffeats + self.ffeat_updater(dfeat).reshape(B, S, N, C)
            coords = coords + delta[..., :2]
            if lock_first:
                coords = torch.cat([first[:, None], coords[:, 1:]], dim=1)
            if return_all:
                all_tracks.append(coords * stride)
        vis_logits = self.vis_predictor(ffeats.reshape(-1, C)).reshape(B, S, N)
        return PipsOutput(coords * stride, vis_logits, feat_init, all_tracks if return_all else None, full_corr)


def load_pips_checkpoint(model: Pips, path: str) -> Pips:
    """Load a PIPs checkpoint into ``model`` with ``strict=True``.

    The official training code saves ``{"model_state_dict": ..., "optimizer_state_dict": ...}`` (``model-<step>.pth``,
    the layout its loader reads); a flat state dict, or one under ``"model"``, works too.
    Read with ``weights_only=True``. Raises ``RuntimeError`` listing missing / unexpected / mis-shaped keys.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(ckpt, dict):
        for key in ("model_state_dict", "model"):
            if key in ckpt and isinstance(ckpt[key], dict):
                ckpt = ckpt[key]
                break
    model.load_state_dict(ckpt, strict=True)
    return model


# ---------------------------------------------------------------------------------------------------- chaining
class ChainResult(NamedTuple):
    """Tracks of a whole video from a chaining mode.

    Attributes:
        tracks: ``(T, N, 2)`` float32 (x, y) in pixels. Frames before a point's query frame hold the query position.
        visible: ``(T, N)`` bool: visibility probability > ``vis_out_threshold`` from the last window that wrote
            the frame; False before the query frame.
        calls: model calls (windows) run.
        point_windows: sum over calls of the points in the call (the per-point cost unit of the FLOP model).
        encoded_frames: frames that went through the CNN (a window's 8 frames count each time they are encoded).
    """

    tracks: Tensor
    visible: Tensor
    calls: int
    point_windows: int
    encoded_frames: int


def _check_inputs(video: Tensor, queries: Tensor) -> Tuple[Tensor, Tensor]:
    """Accept ``(T, 3, H, W)`` or ``(1, T, 3, H, W)`` video and ``(N, 3)`` or ``(1, N, 3)`` queries."""
    if not torch.is_tensor(video):
        raise TypeError(f"video must be a torch tensor (T, 3, H, W) RGB in 0..255, got {type(video).__name__}")
    if video.dim() == 5 and video.shape[0] == 1:
        video = video[0]
    if video.dim() != 4 or video.shape[1] != 3:
        raise ValueError(f"video must be (T, 3, H, W) (or (1, T, 3, H, W)) RGB in 0..255, got {tuple(video.shape)}")
    if not torch.is_tensor(queries):
        queries = torch.as_tensor(queries)
    if queries.dim() == 3 and queries.shape[0] == 1:
        queries = queries[0]
    if queries.dim() != 2 or queries.shape[1] != 3 or queries.shape[0] == 0:
        raise ValueError(f"queries must be (N >= 1, 3) rows (t, x, y) in pixels, got shape {tuple(queries.shape)}")
    T = video.shape[0]
    t = queries[:, 0]
    if bool(((t < 0) | (t > T - 1) | (t != t.round())).any()):
        raise ValueError(f"queries[:, 0] must be integer frame indices in [0, T-1 = {T - 1}]")
    return video, queries.float()


def _init_outputs(queries: Tensor, T: int, device) -> Tuple[Tensor, Tensor]:
    N = queries.shape[0]
    tracks = queries[None, :, 1:].to(device).repeat(T, 1, 1).float()
    return tracks, torch.zeros(T, N, dtype=torch.bool, device=device)


def _window_indices(start: int, S: int, T: int, device) -> Tensor:
    """Frame indices of the window starting at ``start``; past the end the last frame repeats (official padding)."""
    return torch.arange(start, start + S, device=device).clamp(max=T - 1)


def next_window_offset(
    vis_prob: Sequence[float], threshold: float = 0.9, threshold_step: float = 0.02
) -> int:
    """The official per-point advance: the latest frame of the window whose visibility beats the threshold.

    Frames ``S-1, S-2, ..., 2`` are tested in that order; when none beats ``threshold`` it drops by
    ``threshold_step`` and the sweep restarts. Frame 1 is never tested (the official loop resets just before
    reaching it), so the advance is 2 .. S-1 frames.

    Args:
        vis_prob: the S visibility probabilities of one point in the window.
    """
    vis = [float(v) for v in vis_prob]
    if len(vis) < 3 or any(not (0.0 <= v <= 1.0) for v in vis):
        raise ValueError(f"vis_prob must hold >= 3 probabilities in [0, 1], got {vis}")
    thr = threshold
    while True:
        for si in range(len(vis) - 1, 1, -1):
            if vis[si] > thr:
                return si
        thr -= threshold_step
        if thr < -threshold_step:  # unreachable for probabilities in [0, 1]: every value beats a negative threshold
            raise RuntimeError("no frame passed a negative threshold")


@torch.no_grad()
def track_pips_per_point(
    model: Pips,
    video: Tensor,
    queries: Tensor,
    *,
    iters: int = 6,
    vis_threshold: float = 0.9,
    threshold_step: float = 0.02,
    vis_out_threshold: float = 0.5,
) -> ChainResult:
    """The official long-video chaining: one point at a time, visibility-adaptive advance.

    For each point: run a window of S frames from its query frame (frames past the end repeat the last one), write
    the window's positions, then restart at the frame :func:`next_window_offset` picks, from that frame's estimate,
    with the template feature of the point's first window; stop once the start passes the last frame. Each window
    re-encodes its S frames, as the official scripts do, so the cost is about ``N * windows * S`` encoder passes.

    Args:
        model: a :class:`Pips` (its device is used).
        video: ``(T, 3, H, W)`` float RGB in 0..255.
        queries: ``(N, 3)`` rows ``(t, x, y)``: integer query frame and pixel position.
        iters: refinement iterations per window.
        vis_threshold, threshold_step: the advance rule of :func:`next_window_offset`.
        vis_out_threshold: probability above which an output frame counts as visible.

    Returns:
        :class:`ChainResult` on the model's device.
    """
    video, queries = _check_inputs(video, queries)
    device = next(model.parameters()).device
    video = video.to(device, torch.float32)
    T, S = video.shape[0], model.S
    tracks, visible = _init_outputs(queries, T, device)
    calls = 0
    for n in range(queries.shape[0]):
        cur = int(queries[n, 0])
        xy = queries[n, 1:].to(device).reshape(1, 1, 2)
        feat = None
        while cur < T:
            rgbs = video.index_select(0, _window_indices(cur, S, T, device))[None]
            out = model(xy, rgbs, iters=iters, feat_init=feat)
            calls += 1
            feat = out.feat_init
            prob = torch.sigmoid(out.vis_logits[0, :, 0])
            real = min(S, T - cur)
            tracks[cur : cur + real, n] = out.tracks[0, :real, 0]
            visible[cur : cur + real, n] = prob[:real] > vis_out_threshold
            si = next_window_offset(prob.tolist(), vis_threshold, threshold_step)
            xy = out.tracks[:, si : si + 1, 0]  # (1, 1, 2)
            cur += si
    return ChainResult(tracks, visible, calls, calls, calls * S)


@torch.no_grad()
def track_pips_batched(
    model: Pips,
    video: Tensor,
    queries: Tensor,
    *,
    iters: int = 6,
    advance: int = 7,
    encode_chunk: int = 8,
    vis_out_threshold: float = 0.5,
) -> ChainResult:
    """Scalable chaining: all points with the same query frame share windows that advance ``advance`` frames.

    Every frame is encoded once (chunks of ``encode_chunk`` frames; the features of a frame do not depend on the
    window, the encoder normalises each frame on its own). Points are grouped by query frame (PIPs locks each
    window's first frame, so only points queried on the same frame can share a window). Each group runs windows at
    ``t_q, t_q + advance, ...`` until one reaches the last frame; each window starts from the previous window's
    estimate at its first frame (zero velocity) with the template features of the group's first window. With
    ``advance = S - 1 = 7`` consecutive windows overlap by one frame.

    Args:
        model: a :class:`Pips`.
        video: ``(T, 3, H, W)`` float RGB in 0..255.
        queries: ``(N, 3)`` rows ``(t, x, y)``: integer query frame and pixel position.
        iters: refinement iterations per window.
        advance: frames between window starts, 1 .. S-1.
        encode_chunk: frames per encoder call.
        vis_out_threshold: probability above which an output frame counts as visible.

    Returns:
        :class:`ChainResult` on the model's device.
    """
    video, queries = _check_inputs(video, queries)
    S = model.S
    if not 1 <= advance <= S - 1:
        raise ValueError(f"advance must be in [1, S-1 = {S - 1}] so that windows chain, got {advance}")
    device = next(model.parameters()).device
    video = video.to(device, torch.float32)
    T = video.shape[0]
    feats = torch.cat([model.encode(video[i : i + encode_chunk][None])[0] for i in range(0, T, encode_chunk)])
    tracks, visible = _init_outputs(queries, T, device)
    q_t = queries[:, 0].long()
    calls = point_windows = 0
    for t0 in sorted(set(q_t.tolist())):
        idx = (q_t == t0).nonzero()[:, 0].to(device)
        xy = queries[q_t == t0, 1:].to(device)[None]  # (1, n, 2)
        feat, cur = None, t0
        while True:
            fm = feats.index_select(0, _window_indices(cur, S, T, device))[None]
            out = model(xy, fmaps=fm, iters=iters, feat_init=feat)
            calls += 1
            point_windows += idx.numel()
            feat = out.feat_init
            real = min(S, T - cur)
            tracks[cur : cur + real, idx] = out.tracks[0, :real]
            visible[cur : cur + real, idx] = torch.sigmoid(out.vis_logits[0, :real]) > vis_out_threshold
            if cur + S >= T:
                break
            xy = out.tracks[:, advance]
            cur += advance
    return ChainResult(tracks, visible, calls, point_windows, T)
