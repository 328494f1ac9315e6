"""The training clip container, its batch collation, and the official track/query sampling rules.

Conventions (as everywhere in :mod:`cotracker_fast`): positions are ``(x, y)`` pixels, ``x`` the column and
``y`` the row, and the *centre* of pixel ``(row i, column j)`` is at ``(x=j, y=i)``; a query is a row
``(t, x, y)``. Videos are float32 RGB with values in 0..255, channels first, as the model takes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    "TrackClip",
    "collate_clips",
    "training_queries",
    "sample_track_indices",
    "inside_frame",
]

ArrayLike = Union[torch.Tensor, np.ndarray]


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise ValueError(f"TrackClip.{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")


def _float_field(name: str, value: Any) -> torch.Tensor:
    t = _as_tensor(name, value)
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"TrackClip.{name} must hold real numbers, got dtype {t.dtype}")
    return t if t.dtype == torch.float32 else t.to(torch.float32)


def _bool_field(name: str, value: Any) -> torch.Tensor:
    t = _as_tensor(name, value)
    if t.dtype == torch.bool:
        return t
    if t.is_floating_point() or t.is_complex():
        raise ValueError(f"TrackClip.{name} must be a bool tensor, got dtype {t.dtype}")
    if t.numel() and not bool(((t == 0) | (t == 1)).all()):
        raise ValueError(f"TrackClip.{name} must be bool (or integers 0/1), got other integer values")
    return t.to(torch.bool)


@dataclass
class TrackClip:
    """One training clip (or a batch of them, see :func:`collate_clips`) with its ground truth.

    Single clip (``T`` frames of ``H x W`` pixels, ``N`` tracks):

    * ``video``: ``(T, 3, H, W) float32`` RGB, values 0..255;
    * ``tracks``: ``(T, N, 2) float32`` true ``(x, y)`` in pixels of ``video`` in every frame (also where the
      point is occluded or outside the frame);
    * ``visible``: ``(T, N) bool``: the point is in the frame and not occluded;
    * ``queries``: ``(N, 3) float32`` rows ``(t, x, y)``: query frame and the track's position there
      (``queries[n, 1:] == tracks[int(queries[n, 0]), n]``);
    * ``name``: optional identifier (``str``);
    * ``valid``: ``() bool`` tensor, False for a placeholder returned in place of a sample that could not
      be made (e.g. a Kubric sequence with too few visible tracks, with ``too_few="flag"``).

    Batch (``B`` clips): every array gains a leading ``B`` dimension (``video (B, T, 3, H, W)``,
    ``tracks (B, T, N, 2)``, ``visible (B, T, N)``, ``queries (B, N, 3)``, ``valid (B,)``) and ``name`` is a
    list of ``B`` names (or ``None``).

    numpy arrays are accepted and converted to tensors (float fields to float32, ``visible`` from bool or 0/1
    integers). Shapes are checked on construction; a mismatch raises ``ValueError`` naming the field and the
    expected shape.
    """

    video: torch.Tensor
    tracks: torch.Tensor
    visible: torch.Tensor
    queries: torch.Tensor
    name: Optional[Union[str, List[Optional[str]]]] = None
    valid: Optional[torch.Tensor] = field(default=None)

    def __post_init__(self) -> None:
        self.video = _float_field("video", self.video)
        self.tracks = _float_field("tracks", self.tracks)
        self.visible = _bool_field("visible", self.visible)
        self.queries = _float_field("queries", self.queries)
        v = self.video
        if v.ndim not in (4, 5) or v.shape[-3] != 3:
            raise ValueError(f"TrackClip.video must have shape (T, 3, H, W) or (B, T, 3, H, W), got {tuple(v.shape)}")
        batched = v.ndim == 5
        lead = tuple(v.shape[:1]) if batched else ()
        t_len = v.shape[-4]
        b_txt = "B, " if batched else ""
        tr = self.tracks
        if (
            tr.ndim != len(lead) + 3
            or tuple(tr.shape[: len(lead)]) != lead
            or tr.shape[-3] != t_len
            or tr.shape[-1] != 2
        ):
            raise ValueError(
                f"TrackClip.tracks must have shape ({b_txt}T, N, 2) with T = {t_len} (from video"
                f"{', B = %d' % lead[0] if batched else ''}), got {tuple(tr.shape)}"
            )
        n = tr.shape[-2]
        exp_vis = lead + (t_len, n)
        if tuple(self.visible.shape) != exp_vis:
            raise ValueError(
                f"TrackClip.visible must have shape ({b_txt}T, N) = {exp_vis}, got {tuple(self.visible.shape)}"
            )
        exp_q = lead + (n, 3)
        if tuple(self.queries.shape) != exp_q:
            raise ValueError(
                f"TrackClip.queries must have shape ({b_txt}N, 3) = {exp_q}, got {tuple(self.queries.shape)}"
            )
        if self.valid is None:
            self.valid = torch.ones(lead, dtype=torch.bool)
        else:
            self.valid = _bool_field("valid", self.valid)
            if tuple(self.valid.shape) != lead:
                raise ValueError(f"TrackClip.valid must have shape {lead}, got {tuple(self.valid.shape)}")
        if batched:
            if self.name is not None and (not isinstance(self.name, (list, tuple)) or len(self.name) != lead[0]):
                raise ValueError(
                    f"TrackClip.name of a batch must be None or a list of {lead[0]} names, got {self.name!r}"
                )
            if self.name is not None:
                self.name = list(self.name)
        elif self.name is not None and not isinstance(self.name, str):
            raise ValueError(f"TrackClip.name must be a str or None, got {type(self.name).__name__}")

    # -- shape helpers -------------------------------------------------------------------------------------
    @property
    def batched(self) -> bool:
        """True for a batch (``video`` is 5-D)."""
        return self.video.ndim == 5

    @property
    def num_frames(self) -> int:
        """``T``."""
        return int(self.video.shape[-4])

    @property
    def num_points(self) -> int:
        """``N``."""
        return int(self.tracks.shape[-2])

    @property
    def size_hw(self) -> Tuple[int, int]:
        """``(H, W)`` of the frames, in pixels."""
        return int(self.video.shape[-2]), int(self.video.shape[-1])

    def to(self, *args: Any, **kw: Any) -> "TrackClip":
        """A copy with every tensor moved/cast by ``Tensor.to(*args, **kw)`` (dtypes of ``visible``/``valid``
        are kept: pass a device, not a dtype)."""
        return TrackClip(
            video=self.video.to(*args, **kw),
            tracks=self.tracks.to(*args, **kw),
            visible=self.visible.to(*args, **kw),
            queries=self.queries.to(*args, **kw),
            name=self.name,
            valid=self.valid.to(*args, **kw),
        )

    def pin_memory(self) -> "TrackClip":
        """A copy in pinned memory (called by ``DataLoader(pin_memory=True)``)."""
        return TrackClip(
            self.video.pin_memory(),
            self.tracks.pin_memory(),
            self.visible.pin_memory(),
            self.queries.pin_memory(),
            self.name,
            self.valid.pin_memory(),
        )


def collate_clips(clips: Sequence[TrackClip]) -> TrackClip:
    """Stack single clips into a batch (use as ``DataLoader(collate_fn=collate_clips)``).

    Args:
        clips: ``B >= 1`` unbatched :class:`TrackClip` with equal ``T``, ``N`` and ``(H, W)``.

    Returns:
        a batched :class:`TrackClip`: ``video (B, T, 3, H, W)``, ``tracks (B, T, N, 2)``, ``visible (B, T, N)``,
        ``queries (B, N, 3)``, ``valid (B,)``, ``name`` the list of names (``None`` if all are ``None``).

    Raises:
        ValueError: empty list, a non-clip or batched element, or mismatched shapes (naming the clip).
    """
    clips = list(clips)
    if not clips:
        raise ValueError("collate_clips needs at least one clip")
    for i, c in enumerate(clips):
        if not isinstance(c, TrackClip):
            raise ValueError(f"collate_clips: element {i} is a {type(c).__name__}, not a TrackClip")
        if c.batched:
            raise ValueError(f"collate_clips: element {i} is already a batch")
    ref = clips[0]
    for i, c in enumerate(clips[1:], 1):
        for f in ("video", "tracks", "visible", "queries"):
            a, b = getattr(ref, f), getattr(c, f)
            if a.shape != b.shape:
                raise ValueError(
                    f"collate_clips: clip {i} ({c.name!r}) has {f} of shape {tuple(b.shape)}, clip 0 ({ref.name!r}) "
                    f"{tuple(a.shape)}; all clips of a batch need the same T, N and (H, W)"
                )
    names = [c.name for c in clips]
    return TrackClip(
        video=torch.stack([c.video for c in clips]),
        tracks=torch.stack([c.tracks for c in clips]),
        visible=torch.stack([c.visible for c in clips]),
        queries=torch.stack([c.queries for c in clips]),
        name=None if all(n is None for n in names) else names,
        valid=torch.stack([c.valid for c in clips]),
    )


# ----------------------------------------------------------------------------------------------------------
# official sampling rules
# ----------------------------------------------------------------------------------------------------------


def inside_frame(tracks: np.ndarray, size_hw: Tuple[int, int]) -> np.ndarray:
    """Whether positions lie in the frame, ``0 <= x <= W - 1`` and ``0 <= y <= H - 1`` (pixel centres).

    Args:
        tracks: ``(..., 2)`` ``(x, y)`` pixels.
        size_hw: ``(H, W)``.

    Returns:
        ``(...)`` bool.
    """
    h, w = size_hw
    x, y = tracks[..., 0], tracks[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def training_queries(
    tracks: ArrayLike, visible: ArrayLike, rng: np.random.Generator, random_fraction: float = 0.25
) -> np.ndarray:
    """The official training query rule: a track's query frame is its first visible frame, except for the first
    ``int(N * random_fraction)`` tracks (``N // 4`` by default), which use a uniformly random visible frame; the
    query position is the track's position at that frame. A track that is never visible gets frame 0.

    Args:
        tracks: ``(T, N, 2)`` ``(x, y)`` pixels.
        visible: ``(T, N)`` bool.
        rng: draws the random frames (one draw of ``N_random`` uniforms, so the result is deterministic).
        random_fraction: in ``[0, 1]``; 0 gives TAP-Vid's "query first" rule.

    Returns:
        ``(N, 3) float32`` rows ``(t, x, y)``.

    Raises:
        ValueError: bad shapes or fraction.
    """
    tr = tracks.numpy() if isinstance(tracks, torch.Tensor) else np.asarray(tracks)
    vis = visible.numpy() if isinstance(visible, torch.Tensor) else np.asarray(visible)
    if tr.ndim != 3 or tr.shape[2] != 2:
        raise ValueError(f"tracks must have shape (T, N, 2), got {tr.shape}")
    if vis.shape != tr.shape[:2]:
        raise ValueError(f"visible must have shape (T, N) = {tr.shape[:2]}, got {vis.shape}")
    if not 0.0 <= float(random_fraction) <= 1.0:
        raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction!r}")
    vis = vis.astype(bool)
    t_len, n = vis.shape
    frames = np.argmax(vis, axis=0).astype(np.int64)  # first visible (0 when never visible)
    n_rand = int(n * float(random_fraction))
    u = rng.random(n_rand)
    if n_rand:
        v = vis[:, :n_rand]
        count = v.sum(0)
        k = np.minimum(np.floor(u * count).astype(np.int64), np.maximum(count - 1, 0))  # k-th visible frame
        csum = np.cumsum(v, axis=0)  # (T, n_rand)
        pick = np.argmax((csum == (k + 1)[None]) & v, axis=0)
        frames[:n_rand] = np.where(count > 0, pick, frames[:n_rand])
    xy = tr[frames, np.arange(n)] if n else np.zeros((0, 2), np.float32)
    return np.concatenate([frames[:, None].astype(np.float32), xy.astype(np.float32)], 1)


def sample_track_indices(
    visible: ArrayLike,
    num_points: int,
    rng: np.random.Generator,
    *,
    mid_frame: bool = True,
) -> Optional[np.ndarray]:
    """The official track sampling: the indices of tracks visible in frame 0 and (with ``mid_frame``) of tracks
    visible in frame ``T // 2`` are *concatenated* (so a track visible in both frames is listed twice and can
    be drawn twice, a quirk of the official loader kept here), shuffled, and the first ``num_points`` taken.

    Args:
        visible: ``(T, N)`` bool.
        num_points: how many tracks to draw (>= 1).
        rng: draws the permutation.
        mid_frame: also use frame ``T // 2`` (official default); False samples from frame 0 only.

    Returns:
        ``(num_points,) int64`` track indices, or ``None`` when fewer than ``num_points`` are listed (the
        official loader then flags the sample as failed).
    """
    vis = visible.numpy() if isinstance(visible, torch.Tensor) else np.asarray(visible)
    if vis.ndim != 2:
        raise ValueError(f"visible must have shape (T, N), got {vis.shape}")
    if isinstance(num_points, bool) or not isinstance(num_points, (int, np.integer)) or num_points < 1:
        raise ValueError(f"num_points must be a positive integer, got {num_points!r}")
    vis = vis.astype(bool)
    lists = [np.flatnonzero(vis[0])]
    if mid_frame:
        lists.append(np.flatnonzero(vis[vis.shape[0] // 2]))
    cand = np.concatenate(lists).astype(np.int64)
    perm = rng.permutation(len(cand))[: int(num_points)]
    if len(perm) < num_points:
        return None
    return cand[perm]
