"""Readers of the keypoint evaluation sets: BADJA (animal joints on DAVIS-style videos) and FastCapture (see
:mod:`cotracker_fast.evaluation.datasets` for the conventions every reader follows)."""
from __future__ import annotations

import json
from typing import Iterator

import numpy as np

from .samples import (EvalSample, PathLike, _image_files, _make_sample, _read_images, _require_dir,
                      _require_file)

__all__ = ["read_badja", "read_fastcapture"]


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
