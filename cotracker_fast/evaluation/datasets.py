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
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from .keypoint_datasets import read_badja, read_fastcapture
from .samples import (  # noqa: F401  (re-exported: the samples and query protocols of every reader)
    QUERY_MODES,
    EvalSample,
    PathLike,
    _check_mode,
    _check_size,
    _image_files,
    _make_sample,
    _read_images,
    _require_dir,
    _require_file,
    _tapvid_sample,
    _unpickle,
    first_queries,
    sample_queries,
    strided_queries,
)

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


def heldout_photo_config(photo_paths: Optional[Sequence[str]] = None):
    """The look of the held-out photo clips (of ``photo_paths`` instead of :data:`HELDOUT_PHOTOS` when given, e.g.
    validation photographs): a real photograph as background under a camera homography (always
    moving: translation up to 10% of the frame, rotation up to 5 degrees, zoom up to 10%, mild perspective), and 1 to
    3 occluders textured with crops of the photographs, crossing the frame (up to 60% of its size over the clip).
    80% of the points lie on the background, so occlusion by the occluders is what tells trackers apart; 64 points
    per clip, queried at their first visible frame."""
    from cotracker_fast.data.synthetic import EVAL_CONFIG

    import dataclasses

    return dataclasses.replace(
        EVAL_CONFIG, textures=("photo",),
        photo_paths=heldout_photo_paths() if photo_paths is None else tuple(photo_paths), num_objects=(1, 3),
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


def read_photo_clips(
    photo_paths: Sequence[str], num_videos: int = 6, *, num_frames: int = 24, size_hw: Tuple[int, int] = (256, 320),
    seed: int = 0,
) -> Iterator[EvalSample]:
    """Clips of :func:`read_heldout_photos`' look made from other photographs (``photo_paths``, at least one): for
    validation sets that resemble the held-out one without sharing its images. ``seed`` picks the clips' draws."""
    if not photo_paths:
        raise ValueError("photo_paths must name at least one photograph")
    return read_synthetic(num_videos, num_frames=num_frames, size_hw=size_hw, seed=seed,
                          config=heldout_photo_config(photo_paths))


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
