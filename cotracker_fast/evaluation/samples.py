"""Evaluation samples (:class:`EvalSample`), query sampling ("first" and "strided") and the helpers the dataset
readers share: path checks, unpickling, frame decoding and resizing."""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

#: Query protocols understood by the TAP-Vid and Kubric readers.
QUERY_MODES = ("first", "strided")

_IMAGE_EXTS = (".png", ".jpg", ".jpeg")


@dataclass
class EvalSample:
    """One evaluation video with its ground truth, one column per query.

    Attributes:
        name: identifier of the video (unique within its dataset).
        video: ``(T, H, W, 3) uint8`` RGB frames.
        tracks: ``(T, N, 2) float32`` true ``(x, y)`` in pixels of ``video``'s frames, one column per query
            (values of frames where the point is not visible are whatever the annotation holds, often 0).
        visible: ``(T, N) bool`` the point is visible (annotated and not occluded) in that frame.
        query_frames: ``(N,) int64`` the frame each column's point is queried at; the query position is
            ``tracks[query_frames[j], j]``.
        extra: per-dataset additions, always with ``"point_index"``: ``(N,) int64`` the column's point in
            the source annotation; BADJA adds ``"seg_area"`` ``(T,) float32`` (mask area in pixels) and
            ``"annotated"`` ``(T,) bool``; the synthetic set adds ``"queries"`` ``(N, 3) float32`` and
            ``"description"``.
    """

    name: str
    video: np.ndarray
    tracks: np.ndarray
    visible: np.ndarray
    query_frames: np.ndarray
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def queries(self) -> np.ndarray:
        """``(N, 3) float32`` rows ``(t, x, y)``: the query of each column, as the predictor takes them."""
        n = self.query_frames.shape[0]
        xy = self.tracks[self.query_frames, np.arange(n)] if n else np.zeros((0, 2), np.float32)
        return np.concatenate([self.query_frames[:, None].astype(np.float32), xy.astype(np.float32)], 1)


# ----------------------------------------------------------------------------------------------------------
# query sampling
# ----------------------------------------------------------------------------------------------------------


def _check_visible(visible: Any) -> np.ndarray:
    v = np.asarray(visible)
    if v.ndim != 2:
        raise ValueError(f"visible must have shape (T, N), got {v.shape}")
    return v.astype(bool, copy=False)


def first_queries(visible: Any) -> Tuple[np.ndarray, np.ndarray]:
    """TAP-Vid "query first" sampling: each point is queried once, at its first visible frame.

    Args:
        visible: ``(T, N)`` bool.

    Returns:
        ``(point_index, frame)``, both ``(M,) int64``, in increasing point order; points never visible are
        dropped (``M <= N``).
    """
    v = _check_visible(visible)
    keep = np.flatnonzero(v.any(axis=0)).astype(np.int64)
    frames = np.argmax(v[:, keep], axis=0).astype(np.int64) if keep.size else np.zeros(0, np.int64)
    return keep, frames


def strided_queries(visible: Any, stride: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """TAP-Vid "query strided" sampling: a query at every ``stride``-th frame (0, stride, 2*stride, ...)
    where the point is visible, one per (point, frame), so a point may be queried several times.

    Args:
        visible: ``(T, N)`` bool.
        stride: frame step, a positive integer.

    Returns:
        ``(point_index, frame)``, both ``(M,) int64``, ordered by frame then point (the order in which
        TAP-Vid concatenates its strided queries).
    """
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    v = _check_visible(visible)
    frames = np.arange(0, v.shape[0], int(stride))
    f_idx, p_idx = np.nonzero(v[frames])  # row-major: frame-major, then point
    return p_idx.astype(np.int64), frames[f_idx].astype(np.int64)


def sample_queries(visible: Any, query_mode: str) -> Tuple[np.ndarray, np.ndarray]:
    """Dispatch ``query_mode`` ("first" or "strided", stride 5) to :func:`first_queries` /
    :func:`strided_queries`."""
    if query_mode == "first":
        return first_queries(visible)
    if query_mode == "strided":
        return strided_queries(visible, 5)
    raise ValueError(f"query_mode must be one of {QUERY_MODES}, got {query_mode!r}")


def _make_sample(
    name: str,
    video: np.ndarray,
    tracks: np.ndarray,
    visible: np.ndarray,
    point_index: np.ndarray,
    frames: np.ndarray,
    extra: Optional[Dict[str, Any]] = None,
) -> EvalSample:
    """Build a sample with one column per query ``(point_index[j], frames[j])``."""
    ex = dict(extra or {})
    ex["point_index"] = np.asarray(point_index, dtype=np.int64)
    return EvalSample(
        name=name,
        video=np.ascontiguousarray(video, dtype=np.uint8),
        tracks=np.ascontiguousarray(tracks[:, point_index], dtype=np.float32),
        visible=np.ascontiguousarray(visible[:, point_index], dtype=bool),
        query_frames=np.asarray(frames, dtype=np.int64),
        extra=ex,
    )


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def _require_dir(path: PathLike, what: str) -> Path:
    p = Path(os.fspath(path))
    if not p.is_dir():
        raise FileNotFoundError(f"{what} not found (not a directory): {str(p)!r}")
    return p


def _require_file(path: PathLike, what: str) -> Path:
    p = Path(os.fspath(path))
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {str(p)!r}")
    return p


def _unpickle(path: Path) -> Any:
    """``pickle.load`` a trusted dataset file; errors name the file."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as err:
        raise ValueError(f"{str(path)!r}: could not unpickle ({type(err).__name__}: {err})") from None


def _decode_frames(video: Any, where: str) -> np.ndarray:
    """A TAP-Vid ``video`` entry -> ``(T, H, W, 3) uint8``: an array, or a list of JPEG-encoded bytes."""
    if isinstance(video, np.ndarray) and video.dtype != object:
        v = video
    else:
        import imageio.v3 as iio

        frames = []
        for i, item in enumerate(video):
            if isinstance(item, (bytes, bytearray, memoryview)):
                try:
                    img = np.asarray(iio.imread(bytes(item), extension=".jpg"))
                except Exception as err:
                    msg = f"{where}: frame {i}: could not decode JPEG ({type(err).__name__}: {err})"
                    raise ValueError(msg) from None
            else:
                img = np.asarray(item)
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            frames.append(img[:, :, :3])
        if not frames:
            raise ValueError(f"{where}: video has no frames")
        try:
            v = np.stack(frames, 0)
        except ValueError:
            raise ValueError(f"{where}: frames have different sizes") from None
    if v.ndim != 4 or v.shape[-1] != 3 or v.shape[0] < 1:
        raise ValueError(f"{where}: video must have shape (T, H, W, 3), got {v.shape}")
    if v.dtype != np.uint8:
        v = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    return v


def _resize_video(video: np.ndarray, size_hw: Tuple[int, int], chunk: int = 16) -> np.ndarray:
    """Bilinear resize of ``(T, H, W, 3) uint8`` frames to ``size_hw = (H', W')``.

    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)`` on float
    frames, rounded to uint8. The official TAP-Vid / CoTracker code used ``mediapy.resize_video``, so
    resized pixel values may differ slightly from theirs (positions do not: both map pixel edges to edges).
    """
    import torch
    import torch.nn.functional as F

    h, w = int(size_hw[0]), int(size_hw[1])
    if video.shape[1:3] == (h, w):
        return video
    out = np.empty((video.shape[0], h, w, 3), np.uint8)
    for s in range(0, video.shape[0], chunk):
        x = torch.from_numpy(np.ascontiguousarray(video[s : s + chunk])).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
        out[s : s + chunk] = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def _check_size(resize_to: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
    if resize_to is None:
        return None
    if len(resize_to) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in resize_to
    ):
        raise ValueError(f"resize_to must be (H, W) positive integers or None, got {resize_to!r}")
    return int(resize_to[0]), int(resize_to[1])


def _tapvid_sample(
    name: str, entry: Any, query_mode: str, resize_to: Optional[Tuple[int, int]], where: str
) -> EvalSample:
    """One TAP-Vid per-video dict -> :class:`EvalSample` (frames resized, normalised points scaled)."""
    if not isinstance(entry, dict) or not {"video", "points", "occluded"} <= set(entry):
        keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"{where}: expected a dict with keys 'video', 'points', 'occluded', got {keys}")
    video = _decode_frames(entry["video"], where)
    points = np.asarray(entry["points"], dtype=np.float64)
    occluded = np.asarray(entry["occluded"]).astype(bool)
    t_len = video.shape[0]
    if points.ndim != 3 or points.shape[1:] != (t_len, 2) or occluded.shape != points.shape[:2]:
        raise ValueError(
            f"{where}: expected points (N, {t_len}, 2) and occluded (N, {t_len}), "
            f"got {points.shape} and {occluded.shape}"
        )
    if resize_to is not None:
        video = _resize_video(video, resize_to)
    h, w = video.shape[1:3]
    tracks = (points * np.array([w, h], dtype=np.float64)).transpose(1, 0, 2)  # (T, N, 2) pixels
    visible = ~occluded.T
    p_idx, frames = sample_queries(visible, query_mode)
    return _make_sample(name, video, tracks, visible, p_idx, frames)


def _check_mode(query_mode: str) -> None:
    if query_mode not in QUERY_MODES:
        raise ValueError(f"query_mode must be one of {QUERY_MODES}, got {query_mode!r}")


def _image_files(folder: Path) -> List[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_EXTS and not p.name.startswith(".")
    )


def _read_images(files: Sequence[Path]) -> np.ndarray:
    from cotracker_fast.io import read_video

    return read_video([os.fspath(f) for f in files])


# ----------------------------------------------------------------------------------------------------------
# TAP-Vid
# ----------------------------------------------------------------------------------------------------------
