"""What the offline and the online predictor share: building the model from a checkpoint, the constructor, the
compute dtype, the query grids and the checks of user input, and the mapping between the video's pixels and the
model's working resolution.
"""
from __future__ import annotations

import math
import os
import warnings
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import ops
from .models.cotracker import CoTracker, warn_fractional_frames
from .models.registry import (SHIPPED_MODEL, SHIPPED_WEIGHTS, create_model, model_name_from_checkpoint,
                              model_overrides_from_checkpoint)
from .precision import autocast_context, check_dtype, resolve_dtype

OFFICIAL_DEFAULT_CHECKPOINT = "cotracker/checkpoints/cotracker_stride_4_wind_8.pth"
VISIBILITY_THRESHOLD = 0.9
#: The official predictors track a ``6 x 6`` grid queried at frame 0 beside the user's points (and drop it from the
#: output): the points attend to each other, so the grid gives lone queries context.
SUPPORT_GRID_SIZE = 6


def get_points_on_a_grid(
    size: int, extent: Tuple[int, int], center: Optional[Tuple[float, float]] = None, device=None
) -> Tensor:
    """``size x size`` points spread over an image of ``extent = (H, W)`` pixels, as ``(1, size*size, 2)`` (x, y).

    Row-major (y outer, x inner) with a margin of ``W // 64`` pixels on every side; ``size = 1`` gives the centre.
    With ``center = (y, x)`` the grid indices are shifted by ``-size/2`` and the centre is added: the evaluation's
    local grid, ``(6, (50, 50), (y, x))``, gives offsets -30..20 px in steps of 10 around the point.
    Computed in float32 with the official operation order (``margin + i / (size-1) * (H - 2 margin)``): the support
    grid's exact positions change the tracks of the points tracked with it.
    """
    if size < 1:
        raise ValueError(f"grid size must be >= 1, got {size}")
    H, W = extent
    if size == 1:
        return torch.tensor([[[W / 2.0, H / 2.0]]], device=device)
    margin = W // 64
    idx = torch.arange(size, dtype=torch.float32, device=device)
    gy, gx = torch.meshgrid(idx, idx, indexing="ij")
    if center is not None:
        gy, gx = gy - size / 2.0, gx - size / 2.0
    ys = margin + gy.reshape(1, -1) / float(size - 1) * (H - margin * 2)
    xs = margin + gx.reshape(1, -1) / float(size - 1) * (W - margin * 2)
    if center is not None:
        ys, xs = ys + float(center[0]), xs + float(center[1])
    return torch.stack([xs, ys], dim=-1)


def grid_queries(
    grid_size: int,
    query_frame: float,
    interp_shape: Tuple[int, int],
    batch: int,
    segm_mask: Optional[Tensor] = None,
    device=None,
    points: Optional[Tensor] = None,
) -> Tensor:
    """``(batch, M, 3)`` queries ``(t, x, y)`` in working-resolution pixels for a ``grid_size``-square grid at
    ``query_frame``; with ``segm_mask`` ``(1 or B, 1, H, W)`` only the points where the mask (resized with nearest
    to ``interp_shape``) is non-zero at the rounded position, as the official predictor. ``points`` ``(1, M, 2)``
    replaces the v1 grid (:func:`get_points_on_a_grid`), e.g. by CoTracker3's."""
    if points is None:
        points = get_points_on_a_grid(grid_size, interp_shape, device=device)
    pts = points.expand(batch, -1, -1)
    if segm_mask is not None:
        mask = F.interpolate(segm_mask.float().to(pts.device), interp_shape, mode="nearest")[:, 0]
        pick = mask[:, pts[0, :, 1].round().long(), pts[0, :, 0].round().long()] != 0  # (1 or B, G*G)
        if pick.shape[0] > 1 and not bool((pick == pick[:1]).all()):
            raise ValueError("a per-sample segm_mask must select the same grid points in every sample")
        if not bool(pick[0].any()):
            raise ValueError("segm_mask selects no grid point: enlarge the mask or the grid")
        pts = pts[:, pick[0]]
    return torch.cat([torch.full_like(pts[..., :1], float(query_frame)), pts], dim=2)


def support_grid_queries(size: int, interp_shape: Tuple[int, int], batch: int, device=None) -> Tensor:
    """The official support grid: ``size x size`` points queried at frame 0, ``(batch, size*size, 3)``."""
    return grid_queries(size, 0.0, interp_shape, batch, device=device)


def check_video_values(video: Tensor, name: str = "video") -> None:
    """One pass over the frames: finite, and RGB in 0..255 (a few levels of overshoot, e.g. from bicubic
    resizing, are fine; other conventions raise or, for 0..1 / -1..1, warn)."""
    lo, hi = (float(v) for v in torch.aminmax(video.detach().float()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf values")
    if lo < -8.0 or hi > 263.0:
        raise ValueError(f"{name} values must be RGB in 0..255, got range [{lo:.4g}, {hi:.4g}]")
    if 0 < hi <= 1.0 and lo >= -1.0:
        warnings.warn(
            f"{name} values lie in [{lo:.3g}, {hi:.3g}]: CoTracker expects RGB in 0..255, not 0..1 or -1..1",
            UserWarning,
        )


def untrained_model_warning(model_name: str) -> None:
    """Warn that ``model_name`` runs with random weights."""
    warnings.warn(
        f"no checkpoint given: {model_name} has RANDOM (untrained) weights and its tracks are meaningless",
        UserWarning,
        stacklevel=3,
    )


def check_bucket(bucket) -> int:
    if isinstance(bucket, bool) or not isinstance(bucket, int) or bucket < 1:
        raise ValueError(f"compile_bucket must be an int >= 1 (tracks per bucket), got {bucket!r}")
    return bucket


def compile_model_once(model: CoTracker, bucket: int) -> None:
    """Compile ``model``'s window step if not done yet (CUDA graphs via ``reduce-overhead`` on a GPU)."""
    if getattr(model, "_compiled_window", None) is None:
        on_gpu = next(model.parameters()).is_cuda
        model.compile_window(bucket=bucket, mode="reduce-overhead" if on_gpu else "default", dynamic=False)


def is_untrained(checkpoint: Optional[str], model_name: Optional[str]) -> bool:
    """Whether :func:`build_model` gives random weights for these arguments."""
    return checkpoint is None and model_name not in (None, SHIPPED_MODEL)


def build_model(
    checkpoint: Optional[str],
    model_name: Optional[str],
    backend,
    *,
    offline: Optional[bool] = None,
    v2: bool = False,
    window_len: Optional[int] = None,
    online: bool = False,
) -> Tuple[nn.Module, str]:
    """Build the model a checkpoint implies (or ``model_name``) and load its weights (strictly and safely).

    The family comes from the file's keys: CoTracker3 files (``scaled_offline.pth``, ``scaled_online.pth``,
    ``baseline_*.pth``) give :class:`~cotracker_fast.models.cotracker3.CoTracker3Offline` or ``...Online``
    (``offline`` and ``window_len`` default to what the file's time table says: 60 rows offline, 16 online); v1
    files give :class:`~cotracker_fast.models.cotracker.CoTracker` (the variant from the file name, or
    ``model_name``). Arguments that contradict the file raise ValueError, and so does ``v2=True`` (CoTracker2 is
    not supported). ``online=True`` (the online predictor) builds a CoTracker3 file as the online model.

    * ``checkpoint=None`` with no ``model_name`` and no CoTracker3 argument (or the shipped variant's name): the
      weights shipped in the package (:data:`~cotracker_fast.models.registry.SHIPPED_MODEL`, trained on procedural
      clips; see docs/ACCURACY.md).
    * the official v1 default path ``cotracker/checkpoints/cotracker_stride_4_wind_8.pth`` when that file does not
      exist (and no ``model_name``): the shipped weights, with a warning that says so.
    * ``checkpoint=None`` with another ``model_name`` (``cotracker3_offline`` / ``cotracker3_online`` included) or
      with ``offline`` / ``window_len``: random weights, with a warning.
    """
    from .models.checkpoint import check_state_dict, read_state_dict
    from .models.registry import V3_MODELS, checkpoint_family, create_v3_model, resolve_v3_arguments

    if v2:
        raise ValueError("v2=True: CoTracker2 checkpoints are not supported; use a CoTracker v1 or CoTracker3 one")
    v3_args = offline is not None or window_len is not None
    if checkpoint == OFFICIAL_DEFAULT_CHECKPOINT and model_name is None and not v3_args and not os.path.isfile(
        checkpoint
    ):
        warnings.warn(
            f"the official checkpoint {checkpoint!r} does not exist here: using the weights shipped with "
            f"cotracker_fast ({SHIPPED_MODEL}, trained on synthetic clips; see docs/ACCURACY.md). Pass checkpoint=... "
            "to use the official weights.",
            UserWarning,
            stacklevel=3,
        )
        checkpoint = None
    if checkpoint is None and (model_name in V3_MODELS or (model_name is None and v3_args)):
        preset = V3_MODELS.get(model_name or "", {})
        if online and preset.get("offline"):
            raise ValueError(f"the online predictor runs the online model: model_name='cotracker3_online', not {model_name!r}")
        off = False if online else preset.get("offline", True) if offline is None else bool(offline)
        window = int(window_len or preset.get("window_len") or (60 if off else 16))
        if preset and (off != preset["offline"] or window != preset["window_len"]):
            raise ValueError(f"model_name={model_name!r} contradicts offline={offline!r}, window_len={window_len!r}")
        model = create_v3_model(off, window)
        name = "cotracker3_offline" if off else "cotracker3_online"
        untrained_model_warning(name)
        return _v3_backend(model.eval(), backend), name
    if checkpoint is None and model_name in (None, SHIPPED_MODEL):
        if not os.path.isfile(SHIPPED_WEIGHTS):
            raise FileNotFoundError(f"the shipped weights {SHIPPED_WEIGHTS!r} are missing (a broken installation)")
        checkpoint, model_name = SHIPPED_WEIGHTS, SHIPPED_MODEL
    if checkpoint is None:
        model = create_model(model_name, backend=backend)
        untrained_model_warning(model_name)
        return model.eval(), model_name
    source = repr(os.fspath(checkpoint))
    sd = read_state_dict(checkpoint)
    family = checkpoint_family(sd)
    if family == "v2":
        raise ValueError(f"{source} is a CoTracker2 checkpoint: CoTracker2 is not supported (use v1 or CoTracker3)")
    if family == "v3":
        if model_name is not None and model_name not in V3_MODELS:
            raise ValueError(
                f"{source} is a CoTracker3 checkpoint, but model_name={model_name!r} is a CoTracker v1 variant: "
                f"drop model_name or use one of {sorted(V3_MODELS)}"
            )
        if online:
            offline = False
        elif offline is None and model_name is not None:
            offline = bool(V3_MODELS[model_name]["offline"])
        offline, window = resolve_v3_arguments(source, sd, offline, window_len)
        model = create_v3_model(offline, window)
        name = "cotracker3_offline" if offline else "cotracker3_online"
    else:
        if v3_args or (model_name is not None and model_name in V3_MODELS):
            raise ValueError(
                f"{source} is a CoTracker v1 checkpoint, but CoTracker3 arguments were given (offline={offline!r}, "
                f"window_len={window_len!r}, model_name={model_name!r}): drop them, or pass a CoTracker3 checkpoint"
            )
        name = model_name or model_name_from_checkpoint(checkpoint)
        model = create_model(name, overrides=model_overrides_from_checkpoint(checkpoint), backend=backend)
    check_state_dict(model, sd, source=source)
    model.load_state_dict(sd, strict=True)
    if family == "v3":
        _v3_backend(model, backend)
    return model.eval(), name


def _v3_backend(model: nn.Module, backend) -> nn.Module:
    """``backend="reference"`` writes CoTracker3's attention out in the official operation order; a backend of the
    ``attention`` or ``corr4d`` op (by name, or in a per-op dict) runs that op there."""
    if backend == "reference":
        model.set_reference_attention(True)
    elif isinstance(backend, dict) or backend in ops.available_backends("attention"):
        model.updateformer.set_attention_backend(backend)
    if isinstance(backend, dict) or backend in ops.available_backends("corr4d"):
        model.corr4d_backend = backend
    return model


def _check_user_queries(queries: Tensor, B: int, T: Optional[int], H: int, W: int) -> Tensor:
    if not torch.is_tensor(queries) or queries.dim() != 3 or queries.shape[-1] != 3 or queries.shape[0] != B:
        shape = tuple(queries.shape) if torch.is_tensor(queries) else type(queries).__name__
        raise ValueError(f"queries must be a (B={B}, N, 3) tensor of (t, x, y) rows, got {shape}")
    if queries.shape[1] == 0:
        raise ValueError("queries is empty: pass at least one (t, x, y) row, or use grid_size")
    if not queries.is_floating_point():
        queries = queries.float()
    if not bool(torch.isfinite(queries).all()):
        raise ValueError("queries contains NaN or inf")
    t, x, y = queries[..., 0], queries[..., 1], queries[..., 2]
    bad_t = (t < 0) if T is None else (t < 0) | (t >= T)
    if bool(bad_t.any()):
        b, n = [int(i) for i in bad_t.nonzero()[0]]
        span = "[0, inf)" if T is None else f"[0, T={T})"
        raise ValueError(f"queries[{b}, {n}, 0] = {float(t[b, n])}: the query frame must be in {span}")
    warn_fractional_frames(t, "queries")
    outside = (x < 0) | (x > W) | (y < 0) | (y > H)
    if bool(outside.any()):
        b, n = [int(i) for i in outside.nonzero()[0]]
        raise ValueError(
            f"queries[{b}, {n}] = (x={float(x[b, n])}, y={float(y[b, n])}) lies outside the {W}x{H} frame "
            f"(x must be in [0, {W}], y in [0, {H}])"
        )
    return queries


def check_segm_mask(segm_mask: Tensor, B: int, H: int, W: int) -> None:
    """``segm_mask`` must be ``(1 or B, 1, H, W)``; ValueError naming it otherwise."""
    if not torch.is_tensor(segm_mask) or segm_mask.dim() != 4 or segm_mask.shape[1] != 1 or (
        tuple(segm_mask.shape[-2:]) != (H, W) or segm_mask.shape[0] not in (1, B)
    ):
        shape = tuple(segm_mask.shape) if torch.is_tensor(segm_mask) else type(segm_mask).__name__
        raise ValueError(f"segm_mask must be (1 or B={B}, 1, H={H}, W={W}), got {shape}")


def place_at_queries(tracks: Tensor, vis: Tensor, queries: Tensor, first: int = 0) -> None:
    """The official query-point correction, in place: each point sits exactly at its query position, visible, at
    its query frame.

    Args:
        tracks: ``(B, F, N, 2)`` positions of frames ``first .. first + F - 1``; vis: ``(B, F, N)`` bool.
        queries: ``(B, N, 3)`` rows ``(t, x, y)`` in the same pixels as ``tracks``; queries whose frame lies outside
            the frames held are left alone.
    """
    B, F_, N = vis.shape
    if F_ == 0 or N == 0:
        return
    t = queries[..., 0].long() - first
    hit = (t >= 0) & (t < F_)  # (B, N)
    tc = t.clamp(0, max(F_ - 1, 0))
    b_idx = torch.arange(B, device=t.device)[:, None].expand(B, N)
    n_idx = torch.arange(N, device=t.device)[None].expand(B, N)
    # every (b, n) is written once, at its query frame or (unchanged) at a clamped one: no host sync, no nonzero()
    tracks[b_idx, tc, n_idx] = torch.where(hit[..., None], queries[..., 1:].to(tracks.dtype), tracks[b_idx, tc, n_idx])
    vis[b_idx, tc, n_idx] = vis[b_idx, tc, n_idx] | hit


class PredictorBase(nn.Module):
    """The constructor and the plumbing of :class:`~cotracker_fast.predictor.CoTrackerPredictor` and
    :class:`~cotracker_fast.online.CoTrackerOnlinePredictor` (see there for the arguments)."""

    def __init__(
        self,
        checkpoint: Optional[str] = OFFICIAL_DEFAULT_CHECKPOINT,
        offline: Optional[bool] = None,
        v2: bool = False,
        window_len: Optional[int] = None,
        *,
        model_name: Optional[str] = None,
        device=None,
        backend: ops.BackendSpec = None,
        dtype: Optional[torch.dtype] = None,
        iters: int = 6,
        compile: bool = False,
        compile_bucket: int = 64,
        online: bool = False,
    ):
        super().__init__()
        self.support_grid_size = SUPPORT_GRID_SIZE
        self.dtype = check_dtype(dtype)
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
            raise ValueError(f"iters must be an int >= 1 (refinement iterations per window), got {iters!r}")
        self.iters = iters
        #: the ops backend the model was built with; with the environment it decides, at each call, whether every op
        #: is the reference (the encoder then keeps the official layout on a CPU, :meth:`autocast`)
        self.backend = backend
        #: None: follow :attr:`backend` and the environment at each call; True / False: treat every op as the
        #: reference or not, whatever they say (the encoder's layout only; the ops themselves follow the backend)
        self.reference_ops: Optional[bool] = None
        self.model, self.model_name = build_model(
            checkpoint, model_name, backend, offline=offline, v2=v2, window_len=window_len, online=online
        )
        #: ``"v1"`` (CoTracker) or ``"v3"`` (CoTracker3): which official predictor's semantics apply
        self.family = "v3" if self.model_name in ("cotracker3_offline", "cotracker3_online") else "v1"
        self.interp_shape = tuple(self.model.config.model_resolution)  # (384, 512) for the official variants
        self.compile = bool(compile)
        self.compile_bucket = check_bucket(compile_bucket)
        if device is not None:
            self.to(device)
        self.eval()

    @property
    def device(self) -> torch.device:
        """Device of the model's weights."""
        return next(self.model.parameters()).device

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype this predictor runs in on its current device (:func:`~cotracker_fast.precision.resolve_dtype`:
        bf16 falls back to float32 on CPUs without native bf16; float16 on a CPU raises)."""
        return resolve_dtype(self.dtype, self.device)

    def autocast(self):
        """The autocast region of a model call. On a CPU the feature CNN's weights are kept channels-last (the
        layout of oneDNN's fast convolutions; the values are unchanged), so the encoder runs in that layout: in bf16
        always, in float32 unless every op was asked for its reference (``backend="reference"``), whose tracks keep
        the official arithmetic to the bit. Channels-last float32 differs from it by rounding only (the instance
        norm's sums are taken in another order, :func:`~cotracker_fast.models.encoder.norm_act`). Anywhere else the
        weights are put back in the official contiguous layout."""
        dtype = self.compute_dtype
        reference = ops.requests_reference(self.backend) if self.reference_ops is None else self.reference_ops
        channels_last = self.device.type == "cpu" and (dtype == torch.bfloat16 or not reference)
        if self.model.fnet.conv1.weight.is_contiguous(memory_format=torch.channels_last) != channels_last:
            self.model.fnet.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        return autocast_context(self.device, dtype)

    def to_working(self, queries: Tensor, hw: Tuple[int, int]) -> Tensor:
        """Queries ``(..., 3)`` rows ``(t, x, y)`` in pixels of an ``hw = (H, W)`` video -> the model's working
        resolution (a new tensor). v1 scales by ``w / W``; CoTracker3 by ``(w - 1) / (W - 1)``."""
        if self.family == "v3":
            from .predictor_v3 import v3_to_working

            return v3_to_working(queries, hw, self.interp_shape)
        q = queries.clone()
        q[..., 1] *= self.interp_shape[1] / float(hw[1])
        q[..., 2] *= self.interp_shape[0] / float(hw[0])
        return q

    def to_video(self, points: Tensor, hw: Tuple[int, int], xy_at: int = 0) -> Tensor:
        """Inverse of :meth:`to_working`, in place: ``points[..., xy_at]`` and ``points[..., xy_at + 1]`` (x, y) from
        working pixels to pixels of an ``hw = (H, W)`` video. Returns ``points``."""
        if self.family == "v3":
            from .predictor_v3 import v3_to_video

            v3_to_video(points[..., xy_at : xy_at + 2], hw, self.interp_shape)
            return points
        points[..., xy_at] *= hw[1] / float(self.interp_shape[1])
        points[..., xy_at + 1] *= hw[0] / float(self.interp_shape[0])
        return points

    def resize_frames(self, frames: Tensor) -> Tensor:
        """``(B, F, 3, H, W)`` -> ``(B, F, 3, ih, iw)`` at the working resolution, bilinear as the official
        predictor of the model's family (``align_corners=False`` for v1, ``True`` for CoTracker3)."""
        B, F_, C, H, W = frames.shape
        out = F.interpolate(frames.reshape(B * F_, C, H, W), self.interp_shape, mode="bilinear",
                            align_corners=self.family == "v3")
        return out.reshape(B, F_, C, *self.interp_shape)

    def grid_queries(self, grid_size: int, query_frame: float, batch: int, segm_mask: Optional[Tensor] = None):
        """:func:`grid_queries` on the working resolution with the grid of the model's family."""
        points = None
        if self.family == "v3":
            from .predictor_v3 import v3_grid_points

            points = v3_grid_points(grid_size, self.interp_shape, device=self.device)
        return grid_queries(grid_size, query_frame, self.interp_shape, batch, segm_mask, self.device, points=points)

    def support_grid(self, batch: int) -> Tensor:
        """The support grid of the official predictors: ``6 x 6`` points at frame 0, ``(batch, 36, 3)``."""
        return self.grid_queries(self.support_grid_size, 0.0, batch)
