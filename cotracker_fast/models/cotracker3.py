"""CoTracker3 (offline and online), loading the official ``scaled_*.pth`` / ``baseline_*.pth`` checkpoints unchanged.

Both models share one network (:class:`CoTracker3Base`): the v1 feature CNN, L2-normalised 4-level feature pyramid,
a 4D correlation between each track's query neighbourhood and the image neighbourhood around its current position
(:mod:`.v3_corr`), a sin/cos encoding of the track's motion to its neighbouring frames, and the virtual-track
transformer (:mod:`.v3_layers`). A track's token at frame ``t`` is ``[vis, conf, corr (4 x 256), motion (84)]``
plus the row ``t`` of a sin/cos time table; each iteration adds the transformer's ``(dx, dy, dvis, dconf)`` to the
coordinates (feature cells) and the visibility and confidence logits, which start at the query position and 0.

* :class:`CoTracker3Offline`: one window over the whole clip (the time table is resampled to its length), every
  frame predicted, before the query frame too.
* :class:`CoTracker3Online`: windows of ``S = 16`` frames advancing by 8, whole-video (``is_online=False``) or
  streamed chunk by chunk (``is_online=True``, the official protocol: call ``k`` carries frames
  ``[8k, 8k + 16)`` and the same queries).

Differences from the official code, all where it fails: batches of several clips work; the online model tracks
videos of 8 frames or fewer (the official sliding mode returns zeros for them) and encodes long videos in chunks
without failing on the padded tail.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .encoder import BasicEncoder
from .v3_corr import CorrMlp, correlation_features, feature_pyramid, l2_normalise_channels, sample_query_patches
from .v3_layers import CoTracker3Config, UpdateFormer3

#: Frames the feature CNN processes at once by default: the encoder's activations grow with the chunk, so this bounds
#: its memory on long clips (``benchmarks/v3_memory.py`` measures it). The official code uses 200 frames; other
#: chunkings change only the convolutions' float rounding (at most 8e-6 px on the golden cases).
ENCODER_CHUNK = 16


def time_table(length: int, dim: int) -> Tensor:
    """``(1, length, dim)``: row ``t`` = ``[sin(t w_k)]_k ++ [cos(t w_k)]_k`` with ``w_k = 10000^(-k / (dim/2))``,
    computed in float64, stored as float32 (the values of the official checkpoints' ``time_emb``)."""
    half = dim // 2
    w = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half)
    ang = torch.arange(length, dtype=torch.float64)[:, None] * w[None]
    return torch.cat([ang.sin(), ang.cos()], dim=1).float()[None]


def _check_inputs(video: Tensor, queries: Tensor, add_space_attn: bool = True) -> None:
    if not add_space_attn:
        raise ValueError("add_space_attn=False is not supported: CoTracker3 runs its space attention every round")
    if not torch.is_tensor(video) or video.dim() != 5 or video.shape[2] != 3:
        shape = tuple(video.shape) if torch.is_tensor(video) else type(video).__name__
        raise ValueError(f"video must be (B, T, 3, H, W) RGB in 0..255, got {shape}")
    if video.shape[-2] % 4 or video.shape[-1] % 4:
        raise ValueError(f"video height and width must be multiples of 4, got {tuple(video.shape[-2:])}")
    if not torch.is_tensor(queries) or queries.dim() != 3 or queries.shape[-1] != 3 or queries.shape[0] != video.shape[0]:
        shape = tuple(queries.shape) if torch.is_tensor(queries) else type(queries).__name__
        raise ValueError(f"queries must be (B={video.shape[0]}, N, 3) rows (t, x, y), got {shape}")


class CoTracker3Base(nn.Module):
    """The network both CoTracker3 models share (state-dict keys as the official ones: ``time_emb``, ``fnet.*``,
    ``updateformer.*``, ``corr_mlp.*``)."""

    def __init__(self, config: Optional[CoTracker3Config] = None):
        super().__init__()
        cfg = config or CoTracker3Config()
        self.config = cfg
        self.stride = cfg.stride
        self.window_len = cfg.window_len
        self.model_resolution = tuple(cfg.model_resolution)
        self.register_buffer("time_emb", time_table(cfg.window_len, cfg.input_dim))
        self.fnet = BasicEncoder(output_dim=cfg.latent_dim, stride=cfg.stride)
        self.updateformer = UpdateFormer3(cfg)
        self.corr_mlp = CorrMlp(cfg.patch_size**4, cfg.corr_hidden, cfg.corr_out)

    # ------------------------------------------------------------------ building blocks
    def set_reference_attention(self, reference: bool = True) -> "CoTracker3Base":
        """Run the attention in the official operation order (for bit-level parity tests) instead of SDPA."""
        self.updateformer.set_reference_attention(reference)
        return self

    #: backend of the ``corr4d`` op (:func:`cotracker_fast.ops.corr4d`). None: ``"torch"`` (the local form) on the
    #: CPU, where it measured faster, else the op's automatic choice (the official layout); ``"reference"`` gives
    #: the official layout everywhere (bit-identical outputs).
    corr4d_backend = None

    def encode(self, video: Tensor, chunk: Optional[int] = None) -> List[Tensor]:
        """``(B, T, 3, H, W)`` RGB 0..255 -> the feature pyramid, ``corr_levels`` maps ``(B, T, C, H_l, W_l)``
        (level 0 at ``1 / stride`` of the input), normalised per pixel. The CNN runs ``chunk`` (default
        :data:`ENCODER_CHUNK`) frames at a time."""
        B, T, _, H, W = video.shape
        chunk = int(chunk or ENCODER_CHUNK)
        if chunk < 1:
            raise ValueError(f"fmaps_chunk_size must be >= 1, got {chunk}")
        x = 2 * (video / 255.0) - 1.0
        feats = []
        for lo in range(0, T, chunk):
            part = x[:, lo : lo + chunk]
            with torch.profiler.record_function("cotracker3.encoder"):
                f = self.fnet(part.reshape(-1, 3, H, W))
            feats.append(f.reshape(B, part.shape[1], *f.shape[1:]))
        fmaps = torch.cat(feats, dim=1) if len(feats) > 1 else feats[0]
        fmaps = l2_normalise_channels(fmaps)
        return feature_pyramid(fmaps, self.config.corr_levels)

    def query_patches(self, pyramid: List[Tensor], frames: Tensor, xy: Tensor) -> List[Tensor]:
        """Per level, the ``(B, N, K*K, C)`` neighbourhoods of the queries at ``frames`` ``(B, N)`` (frame indices
        of the pyramid) and ``xy`` ``(B, N, 2)`` level-0 cells."""
        r = self.config.corr_radius
        return [sample_query_patches(level, frames, xy / 2**lvl, r) for lvl, level in enumerate(pyramid)]

    def time_embedding(self, length: int) -> Tensor:
        """``(1, length, input_dim)``: the stored table, resampled linearly (align_corners=False) when ``length``
        differs from its ``window_len`` rows."""
        table = self.time_emb
        if length == table.shape[1]:
            return table
        res = F.interpolate(table.float().permute(0, 2, 1), size=length, mode="linear", align_corners=False)
        return res.permute(0, 2, 1).to(table.dtype)

    def motion_encoding(self, coords: Tensor) -> Tensor:
        """``(B, S, N, 2)`` cells -> ``(B, S, N, motion_dim)``: the displacement to the next frame and from the
        previous one (0 at the ends), divided by the model resolution in cells, then ``[v, sin(2^o v), cos(2^o v)]``
        with the component index fast and the octave slow (cos evaluated as ``sin(z + pi/2)``)."""
        fwd = torch.zeros_like(coords)
        bwd = torch.zeros_like(coords)
        fwd[:, :-1] = coords[:, :-1] - coords[:, 1:]
        bwd[:, 1:] = coords[:, 1:] - coords[:, :-1]
        Hm, Wm = self.model_resolution
        scale = coords.new_tensor([Wm / self.stride, Hm / self.stride])
        v = torch.cat([fwd / scale, bwd / scale], dim=-1)  # (B, S, N, 4)
        octaves = 2.0 ** torch.arange(self.config.motion_octaves, device=coords.device, dtype=coords.dtype)
        z = (v[..., None, :] * octaves[:, None]).flatten(-2)  # index 4 o + d
        return torch.cat([v, torch.sin(z), torch.sin(z + math.pi / 2)], dim=-1)

    def compile_window(self, bucket: int = 64, **compile_kwargs) -> None:
        """Run every window's iterations through ``torch.compile`` from now on (``compile_kwargs`` go to
        ``torch.compile``; e.g. ``mode="reduce-overhead"`` adds CUDA graph capture on GPUs).

        The number of tracks is padded up to a multiple of ``bucket``; the padding tracks are hidden from the
        virtual tracks (:meth:`UpdateFormer3.forward`) and dropped from the outputs, so new points recompile only
        when they cross a bucket. The compiled step gives the eager step's tracks up to float summation order."""
        if isinstance(bucket, bool) or not isinstance(bucket, int) or bucket < 1:
            raise ValueError(f"bucket must be an int >= 1, got {bucket!r}")
        self._bucket = bucket
        self._compiled_window = torch.compile(self._refine_window, **compile_kwargs)

    def uncompile_window(self) -> None:
        """Back to the eager window step."""
        self._compiled_window = None
        self._bucket = None

    def refine(
        self,
        pyramid: List[Tensor],
        query_patches: List[Tensor],
        coords: Tensor,
        vis: Tensor,
        conf: Tensor,
        iters: int,
    ) -> Tuple[Tensor, Tensor, Tensor, List[Tuple[Tensor, Tensor, Tensor]]]:
        """Iterate on one window (compiled and bucketed after :meth:`compile_window`).

        Args:
            pyramid: the window's levels ``(B, S, C, H_l, W_l)``; query_patches: per level ``(B, N, K*K, C)``.
            coords: ``(B, S, N, 2)`` cells; vis / conf: ``(B, S, N)`` logits.
        Returns:
            the final coords, vis and conf logits, and each iteration's ``(coords, vis, conf)``.
        """
        fn = getattr(self, "_compiled_window", None)
        if fn is None:
            return self._refine_window(pyramid, query_patches, coords, vis, conf, iters)
        B, _, N, _ = coords.shape
        pad = -N % self._bucket
        track_mask = torch.ones(B, N + pad, dtype=torch.bool, device=coords.device)
        if pad:
            track_mask[:, N:] = False
            # padding tracks sit at cell (0, 0) with zero logits and zero query neighbourhoods
            query_patches = [F.pad(p, (0, 0, 0, 0, 0, pad)) for p in query_patches]
            coords = F.pad(coords, (0, 0, 0, pad))
            vis, conf = F.pad(vis, (0, pad)), F.pad(conf, (0, pad))
        coords, vis, conf, history = fn(pyramid, query_patches, coords, vis, conf, iters, track_mask)
        if pad:
            coords, vis, conf = coords[:, :, :N], vis[:, :, :N], conf[:, :, :N]
            history = [(c[:, :, :N], v[:, :, :N], f[:, :, :N]) for c, v, f in history]
        return coords, vis, conf, history

    def _refine_window(
        self,
        pyramid: List[Tensor],
        query_patches: List[Tensor],
        coords: Tensor,
        vis: Tensor,
        conf: Tensor,
        iters: int,
        track_mask: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tensor, Tensor, List[Tuple[Tensor, Tensor, Tensor]]]:
        """:meth:`refine`'s maths; ``track_mask`` ``(B, N)`` bool marks the real tracks (None: all are)."""
        S = coords.shape[1]
        t_emb = self.time_embedding(S)[:, None]  # (1, 1, S, D), broadcast over tracks
        corr_backend = self.corr4d_backend
        if corr_backend is None and coords.device.type == "cpu":
            corr_backend = "torch"  # faster on the CPU than the grid_sample layout (benchmarks/profile_v3_cpu.py)
        if corr_backend in ("torch", "triton"):  # the local backends gather channels-last cells
            from ..ops.op_corr4d import channels_last_level

            pyramid = [channels_last_level(level) for level in pyramid]
        history = []
        for _ in range(iters):
            coords = coords.detach()
            corr = correlation_features(pyramid, coords, query_patches, self.corr_mlp, self.config.corr_radius,
                                        corr_backend)
            tokens = torch.cat([vis[..., None], conf[..., None], corr, self.motion_encoding(coords)], dim=-1)
            tokens = tokens.permute(0, 2, 1, 3) + t_emb.to(tokens.dtype)  # (B, N, S, D)
            with torch.profiler.record_function("cotracker3.updateformer"):
                delta = self.updateformer(tokens, track_mask).permute(0, 2, 1, 3).float()  # (B, S, N, 4)
            coords = coords + delta[..., :2]
            vis = vis + delta[..., 2]
            conf = conf + delta[..., 3]
            history.append((coords, vis, conf))
        return coords, vis, conf, history

    def _split_queries(self, queries: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, N, 3)`` pixel queries -> integer frames ``(B, N)`` (truncated) and positions in cells."""
        return queries[..., 0].long(), queries[..., 1:].float() / self.stride


class CoTracker3Offline(CoTracker3Base):
    """CoTracker3 offline: one window over the whole clip (memory grows with ``T * N``)."""

    def __init__(self, config: Optional[CoTracker3Config] = None):
        super().__init__(config or CoTracker3Config(window_len=60))

    def forward(
        self,
        video: Tensor,
        queries: Tensor,
        iters: int = 4,
        is_train: bool = False,
        add_space_attn: bool = True,
        fmaps_chunk_size: Optional[int] = None,
    ) -> Tuple[Tensor, Tensor, Tensor, Optional[Dict[str, Any]]]:
        """Track ``queries`` through ``video``.

        Args:
            video: ``(B, T, 3, H, W)`` RGB in 0..255, H and W multiples of 4 (the predictors resize to 384x512).
            queries: ``(B, N, 3)`` rows ``(t, x, y)``: frame (truncated to an integer) and position in pixels.
            iters: refinement iterations.
            is_train: also return every iteration's outputs.
            add_space_attn: only ``True`` (the official default) is supported.
            fmaps_chunk_size: frames per encoder call (default :data:`ENCODER_CHUNK`; the official default is 200).
        Returns:
            ``coords`` ``(B, T, N, 2)`` pixels, ``vis`` and ``conf`` ``(B, T, N)`` probabilities, and ``None`` or
            (``is_train``) ``{"coords", "vis", "conf"}``: lists over iterations (pixels, probabilities).
        """
        _check_inputs(video, queries, add_space_attn)
        B, T = video.shape[:2]
        pyramid = self.encode(video, fmaps_chunk_size)
        frames, q = self._split_queries(queries)
        patches = self.query_patches(pyramid, frames, q)
        N = q.shape[1]
        coords = q[:, None].expand(B, T, N, 2).clone()
        vis = video.new_zeros(B, T, N, dtype=torch.float32)
        conf = torch.zeros_like(vis)
        coords, vis, conf, history = self.refine(pyramid, patches, coords, vis, conf, iters)
        train = None
        if is_train:
            train = {
                "coords": [c * self.stride for c, _, _ in history],
                "vis": [torch.sigmoid(v) for _, v, _ in history],
                "conf": [torch.sigmoid(c) for _, _, c in history],
            }
        return coords * self.stride, torch.sigmoid(vis), torch.sigmoid(conf), train


class CoTracker3Online(CoTracker3Base):
    """CoTracker3 online: windows of ``window_len`` (16) frames advancing by half a window.

    ``forward(..., is_online=False)`` tracks a whole video; ``is_online=True`` takes one chunk per call after
    :meth:`init_video_online_processing` (the official streaming protocol: call ``k`` carries frames
    ``[8k, min(8k + 16, T))`` and the same queries; it returns the tracks of every frame seen so far).
    """

    def __init__(self, config: Optional[CoTracker3Config] = None):
        super().__init__(config or CoTracker3Config(window_len=16))
        self.init_video_online_processing()

    def init_video_online_processing(self) -> None:
        """Forget the streamed video: the next ``is_online=True`` call is frame 0."""
        self.online_ind = 0
        self._online_patches: Optional[List[Tensor]] = None
        self._online_buffers: Optional[Tuple[Tensor, Tensor, Tensor]] = None

    def _window_state(self, q: Tensor, frames: Tensor, ind: int, buffers: Tuple[Tensor, Tensor, Tensor]):
        """The start state of the window at frame ``ind``: tracks already queried before ``ind + step`` continue
        from the previous window's outputs (its overlap frames, then its last overlap frame repeated); the others
        start at their query position with zero logits."""
        B, N = frames.shape
        S, step = self.window_len, self.config.window_step
        coords = q[:, None].expand(B, S, N, 2).clone()
        vis = q.new_zeros(B, S, N)
        conf = torch.zeros_like(vis)
        if ind > 0:
            C, Lv, Lc = buffers
            overlap = S - step
            prev = torch.cat([C[:, ind : ind + overlap], C[:, ind + overlap - 1 : ind + overlap].expand(
                B, S - overlap, N, 2)], dim=1) / self.stride
            pv = torch.cat([Lv[:, ind : ind + overlap], Lv[:, ind + overlap - 1 : ind + overlap].expand(
                B, S - overlap, N)], dim=1)
            pc = torch.cat([Lc[:, ind : ind + overlap], Lc[:, ind + overlap - 1 : ind + overlap].expand(
                B, S - overlap, N)], dim=1)
            cont = (frames < ind + step)[:, None]  # (B, 1, N)
            coords = torch.where(cont[..., None], prev, coords)
            vis = torch.where(cont, pv, vis)
            conf = torch.where(cont, pc, conf)
        return coords, vis, conf

    def _run_window(self, pyramid, patches, frames, q, ind, buffers, iters, keep: int):
        """Run the window starting at frame ``ind`` and write its first ``keep`` frames into ``buffers``."""
        coords, vis, conf = self._window_state(q, frames, ind, buffers)
        active = (frames < ind + self.window_len).to(patches[0].dtype)[:, :, None, None]  # queried by window end
        gated = [p * active for p in patches]
        coords, vis, conf, history = self.refine(pyramid, gated, coords, vis, conf, iters)
        C, Lv, Lc = buffers
        C[:, ind : ind + keep] = coords[:, :keep] * self.stride
        Lv[:, ind : ind + keep] = vis[:, :keep]
        Lc[:, ind : ind + keep] = conf[:, :keep]
        return history

    def forward(
        self,
        video: Tensor,
        queries: Tensor,
        iters: int = 4,
        is_train: bool = False,
        add_space_attn: bool = True,
        fmaps_chunk_size: Optional[int] = None,
        is_online: bool = False,
    ) -> Tuple[Tensor, Tensor, Tensor, Optional[Dict[str, Any]]]:
        """Track ``queries`` through ``video`` (whole video) or through one streamed chunk (``is_online``).

        Args:
            video: ``(B, T, 3, H, W)`` RGB 0..255 (H, W multiples of 4); with ``is_online`` a chunk of at most
                ``window_len`` frames starting at frame ``8k`` on call ``k``.
            queries: ``(B, N, 3)`` rows ``(t, x, y)`` in pixels, frames counted from the start of the video.
            iters: refinement iterations per window.
            is_train: also return every window's per-iteration outputs (whole-video mode only).
            add_space_attn / fmaps_chunk_size: accepted for the official signature (see
                :meth:`CoTracker3Offline.forward`).
        Returns:
            ``coords`` ``(B, T, N, 2)`` pixels and ``vis``, ``conf`` ``(B, T, N)`` probabilities (streaming: every
            frame received so far), and ``None`` or (``is_train``) the per-window lists.
        """
        _check_inputs(video, queries, add_space_attn)
        if is_online:
            if is_train:
                raise ValueError("training in streaming mode (is_online=True) is not supported")
            return self._forward_chunk(video, queries, iters)
        B, T = video.shape[:2]
        S, step = self.window_len, self.config.window_step
        pad = (S - T % S) % S
        padded = torch.cat([video, video[:, -1:].expand(B, pad, *video.shape[2:])], dim=1) if pad else video
        pyramid = self.encode(padded, fmaps_chunk_size)
        frames, q = self._split_queries(queries)
        patches = self.query_patches(pyramid, frames, q)
        N = q.shape[1]
        buffers = (video.new_zeros(B, T, N, 2, dtype=torch.float32), video.new_zeros(B, T, N, dtype=torch.float32),
                   video.new_zeros(B, T, N, dtype=torch.float32))
        num_windows = max(1, (T - S + step - 1) // step + 1)
        train: Optional[Dict[str, Any]] = {"coords": [], "vis": [], "conf": []} if is_train else None
        for w in range(num_windows):
            ind = w * step
            keep = min(T - ind, S)
            window = [level[:, ind : ind + S] for level in pyramid]
            history = self._run_window(window, patches, frames, q, ind, buffers, iters, keep)
            if train is not None:
                train["coords"].append([c[:, :keep] * self.stride for c, _, _ in history])
                train["vis"].append([torch.sigmoid(v[:, :keep]) for _, v, _ in history])
                train["conf"].append([torch.sigmoid(c[:, :keep]) for _, _, c in history])
        if train is not None:
            t = torch.arange(T, device=video.device)
            train["valid"] = (frames[:, None, :] <= t[None, :, None])  # (B, T, N)
        C, Lv, Lc = buffers
        return C, torch.sigmoid(Lv), torch.sigmoid(Lc), train

    def _forward_chunk(self, chunk: Tensor, queries: Tensor, iters: int):
        B, T = chunk.shape[:2]
        S, step = self.window_len, self.config.window_step
        if T > S:
            raise ValueError(f"a streamed chunk holds at most window_len={S} frames, got {T}")
        ind = self.online_ind
        frames, q = self._split_queries(queries)
        N = q.shape[1]
        if ind > 0 and T <= S - step:
            raise ValueError(
                f"after the first call every chunk must hold more than {S - step} frames (the previous "
                f"{S - step} again plus new ones), got {T}"
            )
        padded = torch.cat([chunk, chunk[:, -1:].expand(B, S - T, *chunk.shape[2:])], dim=1) if T < S else chunk
        pyramid = self.encode(padded)
        # each query's neighbourhood is sampled once, from the first call whose new frames hold its frame
        left, right = (0 if ind == 0 else ind + S - step), ind + S
        new = self.query_patches(pyramid, frames - ind, q)
        take = ((frames >= left) & (frames < right)).to(new[0].dtype)[:, :, None, None]
        if self._online_patches is None:
            self._online_patches = [p * take for p in new]
        else:
            self._online_patches = [acc + p * take for acc, p in zip(self._online_patches, new)]
        zeros = lambda n, *tail: chunk.new_zeros(B, n, N, *tail, dtype=torch.float32)  # noqa: E731
        if self._online_buffers is None:
            buffers = (zeros(T, 2), zeros(T), zeros(T))
        else:
            grow = T - (S - step)
            buffers = tuple(torch.cat([b, zeros(grow, *b.shape[3:])], dim=1) for b in self._online_buffers)
            if buffers[0].shape[1] != ind + T:
                raise ValueError(
                    f"streamed chunks must start every {step} frames: call {ind // step} expected frames "
                    f"[{ind}, {ind + T}) but the tracks so far end at frame {self._online_buffers[0].shape[1]}"
                )
        self._run_window(pyramid, self._online_patches, frames, q, ind, buffers, iters, T)
        self._online_buffers = buffers
        self.online_ind += step
        C, Lv, Lc = buffers
        return C, torch.sigmoid(Lv), torch.sigmoid(Lc), None
