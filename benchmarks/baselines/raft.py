"""RAFT baseline: torchvision's RAFT flows between consecutive frames, chained into point tracks.

torchvision is imported lazily (:func:`raft_status`, :func:`load_raft`): with the CPU torch of this project's venv
``import torchvision`` fails (its wheel is built against another torch), and the RAFT benchmarks are then skipped
with that reason. The padding, flow and chaining logic below needs only torch and is tested on its own.

Conventions: torchvision's ``raft_large`` / ``raft_small``
take two ``(B, 3, H, W)`` images in [-1, 1] with H and W multiples of 8 and return one ``(B, 2, H, W)`` flow per
update (the last is used); ``num_flow_updates`` 12 is torchvision's default, 32 the setting of PIPs' RAFT baseline.
Below 128 pixels RAFT is reported to give NaNs (pytorch/vision#7338), so frames are also padded up to 128.
Each pair is run through the full model: torchvision offers no way to reuse a frame's encoder output, so interior
frames are encoded twice (once as image 2, once as image 1), as with the official API.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from cotracker_fast import ops

RAFT_MULTIPLE = 8
RAFT_MIN_SIZE = 128

#: (left, right, top, bottom) padding in pixels, the order of ``F.pad`` on the last two dims
Pads = Tuple[int, int, int, int]


def raft_status() -> Tuple[bool, str]:
    """Whether torchvision's RAFT can be imported here, and why not (the skip reason of the benchmarks)."""
    try:
        from torchvision.models.optical_flow import raft_large, raft_small  # noqa: F401
    except Exception as exc:  # ImportError, or RuntimeError from a torchvision built against another torch
        return False, f"torchvision RAFT does not import with torch {torch.__version__}: {type(exc).__name__}: {exc}"
    return True, ""


def load_raft(variant: str = "large", weights: Optional[str] = None, device=None) -> torch.nn.Module:
    """torchvision ``raft_large`` or ``raft_small`` in eval mode.

    Args:
        variant: ``"large"`` (5,257,536 parameters) or ``"small"`` (990,162).
        weights: path to a state-dict file (e.g. torchvision's released weights, saved with ``torch.save``);
            None builds randomly initialised weights (``weights=None``: nothing is downloaded).
        device: where to put the model.

    Raises:
        ImportError: torchvision does not import here (the message says why).
    """
    if variant not in ("large", "small"):
        raise ValueError(f"variant must be 'large' or 'small', got {variant!r}")
    ok, reason = raft_status()
    if not ok:
        raise ImportError(reason)
    from torchvision.models.optical_flow import raft_large, raft_small

    model = (raft_large if variant == "large" else raft_small)(weights=None, progress=False)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    return model.eval().to(device) if device is not None else model.eval()


def padding_for(H: int, W: int, multiple: int = RAFT_MULTIPLE, min_size: int = RAFT_MIN_SIZE) -> Pads:
    """Symmetric padding (left, right, top, bottom) that makes ``H x W`` a multiple of ``multiple`` and at least
    ``min_size`` on each side; the extra pixel of an odd total goes to the right / bottom."""
    if H < 1 or W < 1:
        raise ValueError(f"image size must be positive, got {H}x{W}")

    def target(n: int) -> int:
        return max(math.ceil(n / multiple) * multiple, math.ceil(min_size / multiple) * multiple)

    ph, pw = target(H) - H, target(W) - W
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def pad_images(images: Tensor, multiple: int = RAFT_MULTIPLE, min_size: int = RAFT_MIN_SIZE) -> Tuple[Tensor, Pads]:
    """Pad ``(..., H, W)`` images by edge replication (see :func:`padding_for`). Returns ``(padded, pads)``."""
    if images.dim() < 3:
        raise ValueError(f"images must be (..., C, H, W), got shape {tuple(images.shape)}")
    pads = padding_for(images.shape[-2], images.shape[-1], multiple, min_size)
    if not any(pads):
        return images, pads
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    out = F.pad(flat, pads, mode="replicate")
    return out.reshape(*lead, *out.shape[-3:]), pads


def unpad(x: Tensor, pads: Pads) -> Tensor:
    """Crop ``(..., H + top + bottom, W + left + right)`` back to ``(..., H, W)``."""
    left, right, top, bottom = pads
    return x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]


FlowModel = Callable[..., List[Tensor]]


@torch.no_grad()
def forward_flows(
    model: FlowModel, video: Tensor, num_flow_updates: int = 12, pair_batch: int = 4, reverse: bool = False
) -> Tensor:
    """Flow from each frame to the next one.

    Args:
        model: torchvision RAFT, or any callable ``model(image1, image2, num_flow_updates=k)`` returning a list of
            ``(B, 2, H', W')`` flows on the padded images (the last entry is used).
        video: ``(T, 3, H, W)`` float RGB in 0..255 (T >= 2), on the device the model runs on.
        num_flow_updates: RAFT iterations (12 torchvision's default, 32 PIPs' baseline).
        pair_batch: frame pairs per model call.
        reverse: flows from frame t+1 to frame t instead (for tracking backwards).

    Returns:
        ``(T - 1, 2, H, W)`` float32 flows in pixels: entry t maps frame t to t+1 (``reverse``: t+1 to t), as
        (dx, dy) at every pixel of the source frame.
    """
    if video.dim() != 4 or video.shape[1] != 3 or video.shape[0] < 2:
        raise ValueError(f"video must be (T >= 2, 3, H, W) RGB in 0..255, got shape {tuple(video.shape)}")
    if pair_batch < 1:
        raise ValueError(f"pair_batch must be >= 1, got {pair_batch}")
    images, pads = pad_images(video.float() / 127.5 - 1.0)  # torchvision's RAFT transform: [0, 255] -> [-1, 1]
    flows = []
    for i in range(0, video.shape[0] - 1, pair_batch):
        j = min(i + pair_batch, video.shape[0] - 1)
        src, dst = images[i:j], images[i + 1 : j + 1]
        if reverse:
            src, dst = dst, src
        out = model(src, dst, num_flow_updates=num_flow_updates)[-1]
        flows.append(unpad(out.float(), pads))
    return torch.cat(flows)


def _check_queries(queries: Tensor, T: int) -> Tensor:
    if not torch.is_tensor(queries):
        queries = torch.as_tensor(queries)
    if queries.dim() != 2 or queries.shape[1] != 3 or queries.shape[0] == 0:
        raise ValueError(f"queries must be (N >= 1, 3) rows (t, x, y) in pixels, got shape {tuple(queries.shape)}")
    t = queries[:, 0]
    if bool(((t < 0) | (t > T - 1) | (t != t.round())).any()):
        raise ValueError(f"queries[:, 0] must be integer frame indices in [0, T-1 = {T - 1}]")
    return queries.float()


def _lookup(flow: Tensor, xy: Tensor) -> Tensor:
    """Flow ``(2, H, W)`` at ``xy`` ``(N, 2)``: bilinear, border-clamped (positions outside take the edge flow)."""
    return ops.bilinear_sample_border(flow[None], xy[None])[0]


def chain_flows(
    flows: Tensor, queries: Tensor, backward_flows: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    """Compose per-frame flows into tracks: ``x_{t+1} = x_t + flow_t(x_t)``, starting at each query.

    The flow is looked up bilinearly and clamped at the image border (a point that has left the frame keeps
    moving with the flow of the nearest border pixel), as in PIPs' RAFT baseline.

    Args:
        flows: ``(T - 1, 2, H, W)`` forward flows (entry t: frame t -> t+1), pixels.
        queries: ``(N, 3)`` rows ``(t, x, y)``: integer query frame and pixel position.
        backward_flows: optional ``(T - 1, 2, H, W)`` flows frame t+1 -> t: frames before each query frame are then
            tracked backwards; without them they hold the query position.

    Returns:
        ``tracks`` ``(T, N, 2)`` float32 pixels, and ``visible`` ``(T, N)`` bool: True where the frame was tracked
        and the position lies inside the image (``0 <= x <= W-1``, ``0 <= y <= H-1``). Flow chaining has no other
        occlusion cue (PIPs' baseline marks every frame visible).
    """
    if flows.dim() != 4 or flows.shape[1] != 2:
        raise ValueError(f"flows must be (T - 1, 2, H, W), got shape {tuple(flows.shape)}")
    if backward_flows is not None and backward_flows.shape != flows.shape:
        raise ValueError(
            f"backward_flows must have the shape of flows {tuple(flows.shape)}, got {tuple(backward_flows.shape)}"
        )
    T, H, W = flows.shape[0] + 1, flows.shape[2], flows.shape[3]
    q = _check_queries(queries, T).to(flows.device)
    N = q.shape[0]
    q_t = q[:, 0].long()
    tracks = q[None, :, 1:].repeat(T, 1, 1)
    tracked = torch.zeros(T, N, dtype=torch.bool, device=flows.device)
    cur = q[:, 1:].clone()
    for t in range(T):  # forward: from each point's query frame on
        started = q_t <= t
        if t > 0:
            moved = cur + _lookup(flows[t - 1].float(), cur)
            cur = torch.where((q_t < t)[:, None], moved, cur)
        tracks[t] = torch.where(started[:, None], cur, tracks[t])
        tracked[t] = started
    if backward_flows is not None:
        cur = q[:, 1:].clone()
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                moved = cur + _lookup(backward_flows[t].float(), cur)
                cur = torch.where((q_t > t)[:, None], moved, cur)
            before = q_t > t
            tracks[t] = torch.where(before[:, None], cur, tracks[t])
            tracked[t] |= before
    x, y = tracks[..., 0], tracks[..., 1]
    inside = (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)
    return tracks, tracked & inside


@torch.no_grad()
def track_raft(
    model: FlowModel,
    video: Tensor,
    queries: Tensor,
    *,
    num_flow_updates: int = 12,
    pair_batch: int = 4,
    backward: bool = False,
) -> Tuple[Tensor, Tensor]:
    """Track points by chaining RAFT flows (see :func:`forward_flows` and :func:`chain_flows`).

    Args:
        model: torchvision RAFT (:func:`load_raft`) or a compatible callable.
        video: ``(T, 3, H, W)`` (or ``(1, T, 3, H, W)``) float RGB in 0..255, on the model's device.
        queries: ``(N, 3)`` rows ``(t, x, y)`` in pixels.
        num_flow_updates: RAFT iterations per pair.
        pair_batch: frame pairs per model call.
        backward: also compute backward flows and track frames before each query frame (twice the cost).

    Returns:
        ``(tracks (T, N, 2) float32 px, visible (T, N) bool)``.
    """
    if video.dim() == 5 and video.shape[0] == 1:
        video = video[0]
    fwd = forward_flows(model, video, num_flow_updates, pair_batch)
    bwd = forward_flows(model, video, num_flow_updates, pair_batch, reverse=True) if backward else None
    return chain_flows(fwd, torch.as_tensor(queries).to(video.device), bwd)
