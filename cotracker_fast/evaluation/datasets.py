"""Readers for the point-tracking evaluation sets used with CoTracker v1.

Every reader is a function that checks its paths *immediately* (a missing root or file raises
``FileNotFoundError`` naming the path when the reader is called) and returns an iterator that loads and
yields one :class:`EvalSample` (one video) at a time, so a whole dataset is never held in memory.

Conventions (as in :mod:`cotracker_fast.io`): frames are ``uint8`` RGB ``(T, H, W, 3)``; positions are
``(x, y)`` pixels (``x`` = column, ``y`` = row) of the frames the sample holds (after any resize); a sample
has one *column* per query: ``tracks[:, j]`` / ``visible[:, j]`` are the ground truth of the point queried
by column ``j`` at frame ``query_frames[j]``, and the query position is ``tracks[query_frames[j], j]``.
With the "strided" protocol a point may be queried at several frames, so its ground truth appears in
several columns. ``extra["point_index"]`` gives each column's point index in the source annotation.

Security note: TAP-Vid (DAVIS, Kinetics) and Kubric annotations are distributed as Python pickles, and
reading them needs :func:`pickle.load` / ``np.load(allow_pickle=True)``, which can execute arbitrary code
embedded in the file. Only read dataset files from a trusted source. FastCapture ``.pth`` files are read
with ``torch.load(weights_only=True)``, which does not execute code.
"""
from __future__ import annotations

import glob
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "EvalSample",
    "QUERY_MODES",
    "DATASET_NAMES",
    "first_queries",
    "strided_queries",
    "sample_queries",
    "read_tapvid_davis",
    "read_tapvid_kinetics",
    "read_kubric",
    "read_badja",
    "read_fastcapture",
    "read_synthetic",
    "open_dataset",
]

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


def read_tapvid_davis(
    path: PathLike, query_mode: str = "first", *, resize_to: Optional[Tuple[int, int]] = (256, 256)
) -> Iterator[EvalSample]:
    """TAP-Vid-DAVIS: one pickle holding ``{video_name: {"video", "points", "occluded"}}``.

    Per video: ``"video"`` is a ``(T, H, W, 3) uint8`` array or a list of ``T`` JPEG-encoded ``bytes``
    (decoded with imageio); ``"points"`` ``(N, T, 2)`` float ``(x, y)`` normalised to ``[0, 1]``;
    ``"occluded"`` ``(N, T)`` bool. Frames are resized to ``resize_to = (H', W')`` (bilinear, see
    :func:`_resize_video`; the official code used ``mediapy.resize_video`` so pixel values may differ
    slightly) and points become ``x * W'``, ``y * H'`` pixels. Videos are yielded in sorted name order.

    The file is a pickle: only read a trusted copy (see the module docstring).

    Args:
        path: the ``.pkl`` file, or a folder containing ``tapvid_davis.pkl``.
        query_mode: ``"first"`` or ``"strided"`` (see :func:`sample_queries`).
        resize_to: ``(H', W')`` pixels, or ``None`` to keep the original size (points scaled by it).

    Returns:
        an iterator of :class:`EvalSample`.

    Raises:
        FileNotFoundError: the file is missing (at call time).
        ValueError: bad arguments; while iterating, a file that is not a valid pickle or a malformed entry.
    """
    _check_mode(query_mode)
    size = _check_size(resize_to)
    p = Path(os.fspath(path))
    if p.is_dir():
        p = p / "tapvid_davis.pkl"
    p = _require_file(p, "TAP-Vid-DAVIS pickle")

    def gen() -> Iterator[EvalSample]:
        data = _unpickle(p)
        if not isinstance(data, dict):
            raise ValueError(f"{str(p)!r}: expected a pickled dict video_name -> entry, got {type(data).__name__}")
        for name in sorted(data):
            yield _tapvid_sample(str(name), data[name], query_mode, size, f"{str(p)!r} video {name!r}")

    return gen()


def read_tapvid_kinetics(
    root: PathLike, query_mode: str = "first", *, resize_to: Optional[Tuple[int, int]] = (256, 256)
) -> Iterator[EvalSample]:
    """TAP-Vid-Kinetics: the ``*_of_0010.pkl`` files directly in ``root`` (sorted), each a pickled *list* of
    per-video dicts in the TAP-Vid-DAVIS format (see :func:`read_tapvid_davis`; frames are usually JPEG
    bytes). Videos are named ``f"{file_stem}/{index}"``.

    Files are read one at a time: a file is unpickled only after every video of the previous one has been
    yielded, and is released before the next is opened. The files are pickles: only read trusted copies.

    Args:
        root: folder with the pickles.
        query_mode: ``"first"`` or ``"strided"``.
        resize_to: ``(H', W')`` pixels or ``None``.

    Raises:
        FileNotFoundError: ``root`` missing or holding no ``*_of_0010.pkl`` (at call time).
        ValueError: while iterating, a file that is not a valid pickle list or a malformed entry.
    """
    _check_mode(query_mode)
    size = _check_size(resize_to)
    r = _require_dir(root, "TAP-Vid-Kinetics root")
    files = sorted(Path(f) for f in glob.glob(os.path.join(glob.escape(str(r)), "*_of_0010.pkl")))
    if not files:
        raise FileNotFoundError(f"no '*_of_0010.pkl' files in TAP-Vid-Kinetics root {str(r)!r}")

    def gen() -> Iterator[EvalSample]:
        for f in files:
            data = _unpickle(f)
            if not isinstance(data, list):
                raise ValueError(f"{str(f)!r}: expected a pickled list of videos, got {type(data).__name__}")
            for i in range(len(data)):
                entry, data[i] = data[i], None  # drop each video once converted
                yield _tapvid_sample(f"{f.stem}/{i}", entry, query_mode, size, f"{str(f)!r} video {i}")
            del data

    return gen()


# ----------------------------------------------------------------------------------------------------------
# Kubric (CoTracker's synthetic MOVi-f evaluation set)
# ----------------------------------------------------------------------------------------------------------


def read_kubric(root: PathLike, query_mode: str = "first") -> Iterator[EvalSample]:
    """Kubric sequences: every subfolder ``root/<seq>/`` (sorted) holding ``frames/*.png`` (sorted by name)
    and ``<seq>.npy``, a pickled dict (``np.load(allow_pickle=True).item()``; trusted files only) with
    ``"coords"`` ``(N, T, 2)`` ``(x, y)`` pixels and ``"visibility"`` ``(N, T)`` bool, which despite its
    name stores *occlusion* (True = occluded) and is inverted here.

    Args:
        root: dataset folder.
        query_mode: ``"first"`` (default) or ``"strided"``.

    Raises:
        FileNotFoundError: ``root`` missing or without sequences (at call time); a sequence's ``.npy`` or
            ``frames/`` missing (while iterating).
        ValueError: malformed annotation.
    """
    _check_mode(query_mode)
    r = _require_dir(root, "Kubric root")
    seqs = sorted(p for p in r.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not seqs:
        raise FileNotFoundError(f"no sequence folders in Kubric root {str(r)!r}")

    def gen() -> Iterator[EvalSample]:
        for seq in seqs:
            npy = _require_file(seq / f"{seq.name}.npy", "Kubric annotation")
            frames_dir = _require_dir(seq / "frames", "Kubric frames folder")
            files = [f for f in _image_files(frames_dir) if f.suffix.lower() == ".png"]
            if not files:
                raise FileNotFoundError(f"no .png frames in {str(frames_dir)!r}")
            try:
                ann = np.load(npy, allow_pickle=True).item()
                coords = np.asarray(ann["coords"], dtype=np.float64)
                occluded = np.asarray(ann["visibility"]).astype(bool)
            except Exception as err:
                msg = f"{str(npy)!r}: could not read Kubric annotation ({type(err).__name__}: {err})"
                raise ValueError(msg) from None
            video = _read_images(files)
            t_len = video.shape[0]
            if coords.ndim != 3 or coords.shape[1:] != (t_len, 2) or occluded.shape != coords.shape[:2]:
                raise ValueError(
                    f"{str(npy)!r}: expected coords (N, {t_len}, 2) and visibility (N, {t_len}) for {t_len} frames, "
                    f"got {coords.shape} and {occluded.shape}"
                )
            tracks = coords.transpose(1, 0, 2)
            visible = np.logical_not(occluded).T
            p_idx, fr = sample_queries(visible, query_mode)
            yield _make_sample(seq.name, video, tracks, visible, p_idx, fr)

    return gen()


# ----------------------------------------------------------------------------------------------------------
# BADJA
# ----------------------------------------------------------------------------------------------------------


def read_badja(root: PathLike) -> Iterator[EvalSample]:
    """BADJA animal joints on DAVIS videos.

    Layout (one annotation file per video, ``root/joint_annotations/*.json`` in sorted order)::

        {"animal": "<animal>",
         "frames": [{"frame_name": "00000.jpg",          # in root/DAVIS/JPEGImages/Full-Resolution/<animal>/
                     "segmentation": "00000.png",         # in root/DAVIS/Annotations/Full-Resolution/<animal>/
                     "joints": [[y, x], ...],             # 20 joints, (y, x) pixel order
                     "visibility": [0 or 1, ...]}, ...]}

    The video is every image in the animal's ``JPEGImages`` folder (sorted by name); only the frames listed
    under ``"frames"`` are annotated. A joint is visible when its visibility flag is 1 and it is not
    ``[0, 0]``; a missing joint (shorter list) or missing flag counts as not visible. ``N`` is the longest
    ``"joints"`` list. Frames without annotation have zero positions and nothing visible. Joints are flipped
    to ``(x, y)``. Queries: every joint visible at frame 0, queried at frame 0. Annotation files whose
    name or ``"animal"`` contains ``"extra_videos"`` are skipped.

    ``extra``: ``"seg_area"`` ``(T,) float32`` the segmentation mask's area in pixels (nonzero pixels, see
    :func:`cotracker_fast.io.load_mask`), 0 for frames without annotation; ``"annotated"`` ``(T,) bool``.

    Raises:
        FileNotFoundError: ``root`` or ``joint_annotations/`` missing or empty (at call time); a listed frame,
            mask or the animal's frame folder missing (while iterating).
        ValueError: a malformed json.
    """
    r = _require_dir(root, "BADJA root")
    ann_dir = _require_dir(r / "joint_annotations", "BADJA annotation folder")
    files = sorted(f for f in ann_dir.glob("*.json") if "extra_videos" not in f.name)
    if not files:
        raise FileNotFoundError(f"no .json files in BADJA annotation folder {str(ann_dir)!r}")
    img_root = r / "DAVIS" / "JPEGImages" / "Full-Resolution"
    seg_root = r / "DAVIS" / "Annotations" / "Full-Resolution"

    def gen() -> Iterator[EvalSample]:
        from cotracker_fast.io import load_mask

        for f in files:
            try:
                ann = json.loads(f.read_text())
                animal = str(ann["animal"])
                entries = list(ann["frames"])
            except Exception as err:
                raise ValueError(f"{str(f)!r}: not a BADJA annotation ({type(err).__name__}: {err})") from None
            if "extra_videos" in animal:
                continue
            frame_dir = _require_dir(img_root / animal, "BADJA frame folder")
            frame_files = _image_files(frame_dir)
            if not frame_files:
                raise FileNotFoundError(f"no frames in BADJA frame folder {str(frame_dir)!r}")
            index = {p.name: i for i, p in enumerate(frame_files)}
            t_len = len(frame_files)
            n = max((len(e.get("joints", [])) for e in entries), default=0)
            tracks = np.zeros((t_len, n, 2), np.float64)
            visible = np.zeros((t_len, n), bool)
            seg_area = np.zeros(t_len, np.float32)
            annotated = np.zeros(t_len, bool)
            for k, e in enumerate(entries):
                try:
                    name = str(e["frame_name"])
                    joints = np.asarray(e.get("joints", []), dtype=np.float64).reshape(-1, 2)
                    flags = np.asarray(e.get("visibility", []), dtype=np.float64).reshape(-1)
                except Exception as err:
                    raise ValueError(f"{str(f)!r}: frame entry {k} malformed ({type(err).__name__}: {err})") from None
                if name not in index:
                    raise FileNotFoundError(f"{str(f)!r}: frame {str(frame_dir / name)!r} not found")
                t = index[name]
                annotated[t] = True
                m = joints.shape[0]
                tracks[t, :m] = joints[:, ::-1]  # (y, x) -> (x, y)
                vis = np.zeros(m, bool)
                nf = min(m, flags.shape[0])
                vis[:nf] = flags[:nf] > 0
                vis &= np.any(joints != 0, axis=1)
                visible[t, :m] = vis
                if e.get("segmentation"):
                    seg_area[t] = float(load_mask(seg_root / animal / str(e["segmentation"])).sum())
            video = _read_images(frame_files)
            p_idx = np.flatnonzero(visible[0]).astype(np.int64)
            yield _make_sample(
                f.stem,
                video,
                tracks,
                visible,
                p_idx,
                np.zeros_like(p_idx),
                {"seg_area": seg_area, "annotated": annotated, "animal": animal},
            )

    return gen()


# ----------------------------------------------------------------------------------------------------------
# FastCapture
# ----------------------------------------------------------------------------------------------------------


def read_fastcapture(
    root: PathLike, *, max_frames: int = 100, num_points: int = 20, seed: int = 0
) -> Iterator[EvalSample]:
    """FastCapture: ``root/renders_local_rm/<seq>/`` frames (``*.png`` / ``*.jpg``, sorted by name; every
    subfolder, sorted, is a sequence) with ``root/zju_tracking/<seq>.pth`` holding ``"traj_2d"``
    ``(N, 2, T)`` ``(x, y)`` pixels and ``"visibility"`` ``(N, T)`` (nonzero = visible), read with
    ``torch.load(weights_only=True)``.

    The first ``min(max_frames, frames, T)`` frames are used. Of the points visible in frame 0,
    ``num_points`` (or all, if fewer) are drawn with ``torch.randperm`` from a generator seeded with
    ``seed`` for every video (the same draw as ``torch.manual_seed(seed); torch.randperm(n)``, without
    touching the global RNG), in the permutation's order, and queried at frame 0.

    Raises:
        FileNotFoundError: ``root`` / ``renders_local_rm`` missing or without sequences (at call time); a
            sequence's ``.pth`` or frames missing (while iterating).
        ValueError: bad arguments or a malformed ``.pth``.
    """
    for nm, v in (("max_frames", max_frames), ("num_points", num_points)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{nm} must be a positive integer, got {v!r}")
    r = _require_dir(root, "FastCapture root")
    frames_root = _require_dir(r / "renders_local_rm", "FastCapture frame folder")
    seqs = sorted(p for p in frames_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not seqs:
        raise FileNotFoundError(f"no sequence folders in {str(frames_root)!r}")

    def gen() -> Iterator[EvalSample]:
        import torch

        for seq in seqs:
            pth = _require_file(r / "zju_tracking" / f"{seq.name}.pth", "FastCapture annotation")
            try:
                ann = torch.load(pth, map_location="cpu", weights_only=True)
                traj, vis = (
                    v if torch.is_tensor(v) else torch.as_tensor(np.asarray(v))
                    for v in (ann["traj_2d"], ann["visibility"])
                )
            except Exception as err:
                msg = f"{str(pth)!r}: could not read FastCapture annotation ({type(err).__name__}: {err})"
                raise ValueError(msg) from None
            if traj.ndim != 3 or traj.shape[1] != 2 or vis.shape != (traj.shape[0], traj.shape[2]):
                raise ValueError(
                    f"{str(pth)!r}: expected traj_2d (N, 2, T) and visibility (N, T), "
                    f"got {tuple(traj.shape)} and {tuple(vis.shape)}"
                )
            files = _image_files(seq)
            if not files:
                raise FileNotFoundError(f"no .png/.jpg frames in {str(seq)!r}")
            t_len = min(int(max_frames), len(files), int(traj.shape[2]))
            video = _read_images(files[:t_len])
            tracks = traj[:, :, :t_len].permute(2, 0, 1).double().numpy()  # (T, N, 2)
            visible = (vis[:, :t_len] != 0).T.numpy()
            cand = torch.from_numpy(np.flatnonzero(visible[0]))
            g = torch.Generator().manual_seed(int(seed))
            chosen = cand[torch.randperm(len(cand), generator=g)[: int(num_points)]].numpy().astype(np.int64)
            yield _make_sample(seq.name, video, tracks, visible, chosen, np.zeros_like(chosen))

    return gen()


# ----------------------------------------------------------------------------------------------------------
# synthetic
# ----------------------------------------------------------------------------------------------------------


def read_synthetic(
    num_videos: int = 3, *, num_frames: int = 24, size_hw: Tuple[int, int] = (256, 256), seed: int = 0,
    config=None,
) -> Iterator[EvalSample]:
    """An evaluation set with exact ground truth from the project's procedural generator
    (:func:`cotracker_fast.data.synthetic.synthetic_eval_clips`: textured layers moving with occlusions, seeds
    disjoint from the training clips'), clip ``i`` named ``f"synthetic_{i:03d}"``; 64 tracks per clip queried at
    their first visible frame ("query first").

    Columns are the clip's tracks (``query_frames`` = their first visible frame); ``visible`` is False where a
    nearer layer covers the point or it is outside the frame. ``extra`` holds ``"queries"`` ``(N, 3)`` and
    ``"description"``. ``config`` (a :class:`~cotracker_fast.data.synthetic.SyntheticConfig`, default
    ``EVAL_CONFIG``) sets the look of the clips; ``num_frames`` and ``size_hw`` override its own.
    """
    import dataclasses

    from cotracker_fast.data.synthetic import EVAL_CONFIG, synthetic_eval_samples

    if isinstance(num_videos, bool) or not isinstance(num_videos, (int, np.integer)) or num_videos < 0:
        raise ValueError(f"num_videos must be a non-negative integer, got {num_videos!r}")
    base = EVAL_CONFIG if config is None else config
    cfg = dataclasses.replace(base, num_frames=int(num_frames), size_hw=tuple(int(v) for v in size_hw))
    samples = synthetic_eval_samples(int(num_videos), seed, cfg)  # validates the arguments now

    def gen() -> Iterator[EvalSample]:
        for s in samples:
            n = s["tracks"].shape[1]
            yield _make_sample(s["name"], s["video"], s["tracks"], s["visible"], np.arange(n, dtype=np.int64),
                               s["query_frames"], {"queries": s["queries"], "description": s["description"]})

    return gen()


#: The held-out photographs (``cotracker_fast/assets/heldout``): never training textures.
HELDOUT_PHOTOS = ("raccoon.jpg", "ascent.jpg", "aero.jpg")


def heldout_photo_paths() -> Tuple[str, ...]:
    """Paths of :data:`HELDOUT_PHOTOS` (FileNotFoundError when the package data is missing)."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "heldout")
    paths = tuple(os.path.join(folder, n) for n in HELDOUT_PHOTOS)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"held-out photographs missing: {missing} (package data 'assets/heldout' installed?)")
    return paths


def heldout_photo_config():
    """The look of the held-out photo clips: a real photograph as background under a camera homography (always
    moving: translation up to 10% of the frame, rotation up to 5 degrees, zoom up to 10%, mild perspective), and 1 to
    3 occluders textured with crops of the photographs, crossing the frame (up to 60% of its size over the clip).
    80% of the points lie on the background, so occlusion by the occluders is what tells trackers apart; 64 points
    per clip, queried at their first visible frame."""
    from cotracker_fast.data.synthetic import EVAL_CONFIG

    import dataclasses

    return dataclasses.replace(
        EVAL_CONFIG, textures=("photo",), photo_paths=heldout_photo_paths(), num_objects=(1, 3),
        object_size=(0.25, 0.45), object_travel=0.6, object_rotation=30.0, object_zoom=0.2,
        camera_motion_probability=1.0, camera_translation=0.10, camera_rotation=5.0, camera_zoom=0.10,
        camera_perspective=0.04, object_point_fraction=0.2,
    )


def read_heldout_photos(
    num_videos: int = 6, *, num_frames: int = 24, size_hw: Tuple[int, int] = (256, 320), seed: int = 0
) -> Iterator[EvalSample]:
    """Real photographs under known camera motion with moving occluders (:func:`heldout_photo_config`), with exact
    ground truth; the clips of :func:`read_synthetic` otherwise (names ``synthetic_{i:03d}``, "query first", the
    same disjoint evaluation seeds). The photographs are :data:`HELDOUT_PHOTOS`, which no training run uses."""
    return read_synthetic(num_videos, num_frames=num_frames, size_hw=size_hw, seed=seed, config=heldout_photo_config())


# ----------------------------------------------------------------------------------------------------------
# dispatch
# ----------------------------------------------------------------------------------------------------------

_DISPATCH: Dict[str, Callable[..., Iterator[EvalSample]]] = {
    "tapvid_davis_first": lambda root, **kw: read_tapvid_davis(root, "first", **kw),
    "tapvid_davis_strided": lambda root, **kw: read_tapvid_davis(root, "strided", **kw),
    "tapvid_kinetics_first": lambda root, **kw: read_tapvid_kinetics(root, "first", **kw),
    "badja": lambda root, **kw: read_badja(root, **kw),
    "fastcapture": lambda root, **kw: read_fastcapture(root, **kw),
    "kubric": lambda root, **kw: read_kubric(root, **kw),
    "synthetic": lambda root, **kw: read_synthetic(**kw),
}
#: Names accepted by :func:`open_dataset`.
DATASET_NAMES = tuple(_DISPATCH)


def open_dataset(name: str, root: Optional[PathLike] = None, **kw: Any) -> Iterator[EvalSample]:
    """Open an evaluation set by name.

    Args:
        name: one of :data:`DATASET_NAMES`: ``"tapvid_davis_first"``, ``"tapvid_davis_strided"`` (root: the
            pickle, or a folder with ``tapvid_davis.pkl``), ``"tapvid_kinetics_first"``, ``"badja"``,
            ``"fastcapture"``, ``"kubric"``, ``"synthetic"`` (root ignored).
        root: dataset location (required except for ``"synthetic"``).
        **kw: passed to the reader (e.g. ``resize_to``, ``max_frames``, ``num_videos``).

    Returns:
        an iterator of :class:`EvalSample`.

    Raises:
        ValueError: unknown name (the message lists the known ones) or missing ``root``.
        FileNotFoundError: as the reader.
    """
    if name not in _DISPATCH:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_NAMES)}")
    if name != "synthetic" and root is None:
        raise ValueError(f"dataset {name!r} needs a root path")
    return _DISPATCH[name](root, **kw)
