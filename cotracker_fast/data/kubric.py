"""Reader of the official Kubric MOVi-f training set (spec section 4.4) producing :class:`TrackClip` s.

On-disk format, one folder per sequence: ``root/<seq>/frames/*.png`` (the frames, in file-name order) and
``root/<seq>/<seq>.npy``, a *pickled* dict read with ``np.load(path, allow_pickle=True).item()`` holding
``"coords"`` ``(N, T, 2)`` ``(x, y)`` pixels and ``"visibility"`` ``(N, T)`` bool, which despite its name stores
**occlusion** (True = occluded) and is inverted here. ``root`` may also be the parent of a ``kubric_movi_f``
folder (the official layout ``root/kubric_movi_f/<seq>/...``).

Security: unpickling runs code stored in the file. This is the official format and there is no safe way to read
it, so only read Kubric files from a trusted source.

Sampling per item (the official training loader, as the spec describes it):

1. a random ``seq_len``-frame slice (24) of the sequence;
2. with ``augment``: the augmentations (photometric, then spatial to ``augment.crop_size``); without: a random
   ``crop_size`` crop (no crop when ``crop_size`` is ``None`` or equals the frame size); in both cases
   visibility is set False outside the output frame;
3. ``num_points`` (256) tracks drawn from the tracks visible in frame 0 and those visible in frame
   ``seq_len // 2``, the two index lists *concatenated* (a track visible in both can be drawn twice: the official
   quirk, kept);
4. queries by the official rule (first visible frame; random visible frame for the first ``N // 4``).

When fewer than ``num_points`` tracks are listed, the official loader flags the sample and the training loop
skips it. Here ``too_few`` chooses: ``"retry"`` (default) tries the next sequences (``index + 1``, ``index + 2``,
..., up to ``max_retries``) with their own random draws; ``"flag"`` returns a zero placeholder of the right shapes
with ``valid == False`` (batches then carry ``valid (B,)``; drop the invalid samples from the loss); ``"raise"``
raises ``ValueError``.

All randomness of item ``i`` comes from ``numpy.random.default_rng([seed, epoch, i, attempt])`` (``attempt`` counts
the ``"retry"`` tries from 0; ``epoch`` is 0 unless :meth:`KubricMovifDataset.set_epoch` changed it): the same item
is the same in any process or DataLoader worker.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from .clip import TrackClip, inside_frame, sample_track_indices, training_queries

__all__ = ["KubricMovifDataset", "read_kubric_sequence", "TOO_FEW_MODES"]

PathLike = Union[str, "os.PathLike[str]"]

#: What :class:`KubricMovifDataset` does with a sample that has too few visible tracks.
TOO_FEW_MODES = ("retry", "flag", "raise")


def _natural_key(name: str) -> List[Any]:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _frame_files(seq_dir: Path) -> List[Path]:
    frames = seq_dir / "frames"
    if not frames.is_dir():
        raise FileNotFoundError(f"Kubric frames folder not found: {str(frames)!r}")
    files = sorted(
        (p for p in frames.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise FileNotFoundError(f"no .png frames in Kubric frames folder {str(frames)!r}")
    return files


def read_kubric_sequence(seq_dir: PathLike) -> Tuple[List[Path], np.ndarray, np.ndarray]:
    """Read one sequence's annotation (trusted files only: the ``.npy`` is unpickled).

    Args:
        seq_dir: ``root/<seq>`` holding ``frames/*.png`` and ``<seq>.npy``.

    Returns:
        ``(frame_files, tracks, visible)``: the ``T`` frame paths in order, ``tracks (T, N, 2) float32`` ``(x, y)``
        pixels and ``visible (T, N) bool`` (the file's occlusion flags inverted).

    Raises:
        FileNotFoundError: missing folder, frames or annotation (the message names the path).
        ValueError: unreadable or malformed annotation, or a frame count that does not match it.
    """
    seq = Path(os.fspath(seq_dir))
    if not seq.is_dir():
        raise FileNotFoundError(f"Kubric sequence folder not found: {str(seq)!r}")
    npy = seq / f"{seq.name}.npy"
    if not npy.is_file():
        raise FileNotFoundError(f"Kubric annotation not found: {str(npy)!r}")
    files = _frame_files(seq)
    try:
        ann = np.load(npy, allow_pickle=True).item()
        coords = np.asarray(ann["coords"], dtype=np.float32)
        occluded = np.asarray(ann["visibility"]).astype(bool)
    except Exception as err:
        raise ValueError(f"{str(npy)!r}: could not read Kubric annotation ({type(err).__name__}: {err})") from None
    t_len = len(files)
    if coords.ndim != 3 or coords.shape[1:] != (t_len, 2) or occluded.shape != coords.shape[:2]:
        raise ValueError(
            f"{str(npy)!r}: expected coords (N, {t_len}, 2) and visibility (N, {t_len}) for the {t_len} frames in "
            f"{str(seq / 'frames')!r}, got {coords.shape} and {occluded.shape}"
        )
    return files, np.ascontiguousarray(coords.transpose(1, 0, 2)), np.ascontiguousarray(~occluded.T)


def _read_png(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        img = np.asarray(iio.imread(path))
    except Exception as err:
        raise ValueError(f"{str(path)!r}: could not read frame ({type(err).__name__}: {err})") from None
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"{str(path)!r}: expected an RGB(A) image, got shape {img.shape}")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    return img[:, :, :3]


class KubricMovifDataset(Dataset):
    """The Kubric MOVi-f training set as a ``torch.utils.data.Dataset`` of :class:`TrackClip` (see the module
    notes for the format, the sampling and the trust warning). Batch with ``collate_fn=collate_clips``.

    Args:
        root: folder of sequence folders (or the parent of ``kubric_movi_f/``).
        seq_len: frames per clip (24); sequences shorter than that raise ``ValueError`` when read.
        num_points: tracks per clip (256).
        crop_size: ``(H, W)`` output size without ``augment`` (official 384x512: a random crop; ``None`` keeps
            the frame size). With ``augment``, ``augment.crop_size`` decides.
        augment: optional :class:`~cotracker_fast.data.augment.Augmentations`.
        seed: non-negative integer; item ``i`` draws from ``default_rng([seed, epoch, i, attempt])``.
        mid_frame: sample from frame 0 and frame ``seq_len // 2`` (official); False: frame 0 only.
        random_query_fraction: fraction of tracks with a random visible query frame (official 0.25).
        too_few: ``"retry"``, ``"flag"`` or ``"raise"`` (module notes).
        max_retries: sequences tried per item with ``"retry"`` (>= 1).

    Raises:
        FileNotFoundError: ``root`` missing, without sequence folders, or a sequence without ``frames/`` or
            ``<seq>.npy`` (checked when the dataset is made).
        ValueError: bad arguments.
    """

    def __init__(
        self,
        root: PathLike,
        *,
        seq_len: int = 24,
        num_points: int = 256,
        crop_size: Optional[Tuple[int, int]] = (384, 512),
        augment: Any = None,
        seed: int = 0,
        mid_frame: bool = True,
        random_query_fraction: float = 0.25,
        too_few: str = "retry",
        max_retries: int = 10,
    ):
        def pos_int(name: str, v: Any, lo: int = 1) -> int:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
            return int(v)

        self.seq_len = pos_int("seq_len", seq_len)
        self.num_points = pos_int("num_points", num_points)
        self.seed = pos_int("seed", seed, 0)
        self.max_retries = pos_int("max_retries", max_retries)
        if crop_size is not None:
            if not isinstance(crop_size, (tuple, list)) or len(crop_size) != 2:
                raise ValueError(f"crop_size must be None or (H, W), got {crop_size!r}")
            crop_size = (pos_int("crop_size[0]", crop_size[0]), pos_int("crop_size[1]", crop_size[1]))
        self.crop_size = crop_size
        if augment is not None and not callable(getattr(augment, "apply", None)):
            raise ValueError(f"augment must be an Augmentations (with .apply), got {type(augment).__name__}")
        self.augment = augment
        if not isinstance(mid_frame, bool):
            raise ValueError(f"mid_frame must be a bool, got {mid_frame!r}")
        self.mid_frame = mid_frame
        if isinstance(random_query_fraction, bool) or not 0.0 <= float(random_query_fraction) <= 1.0:
            raise ValueError(f"random_query_fraction must be in [0, 1], got {random_query_fraction!r}")
        self.random_query_fraction = float(random_query_fraction)
        if too_few not in TOO_FEW_MODES:
            raise ValueError(f"too_few must be one of {TOO_FEW_MODES}, got {too_few!r}")
        self.too_few = too_few
        self.epoch = 0

        r = Path(os.fspath(root))
        if not r.is_dir():
            raise FileNotFoundError(f"Kubric root not found (not a directory): {str(r)!r}")
        if (r / "kubric_movi_f").is_dir():
            r = r / "kubric_movi_f"
        self.root = r
        seqs = sorted(
            (p for p in r.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: _natural_key(p.name)
        )
        if not seqs:
            raise FileNotFoundError(f"no sequence folders in Kubric root {str(r)!r}")
        for s in seqs:
            if not (s / "frames").is_dir():
                raise FileNotFoundError(f"Kubric frames folder not found: {str(s / 'frames')!r}")
            if not (s / f"{s.name}.npy").is_file():
                raise FileNotFoundError(f"Kubric annotation not found: {str(s / (s.name + '.npy'))!r}")
        # names only (strings), so the dataset pickles cheaply into DataLoader workers
        self.sequences: List[str] = [s.name for s in seqs]

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s slices, crops and augmentations (call before creating the DataLoader
        iterator)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def output_hw(self) -> Optional[Tuple[int, int]]:
        """``(H, W)`` of the clips, or ``None`` when it is the frames' own size."""
        if self.augment is not None:
            return self.augment.crop_size
        return self.crop_size

    def load(self, index: int, rng: np.random.Generator) -> Optional[TrackClip]:
        """Make the clip of sequence ``index`` with the given generator: slice, augment or crop, sample, query.

        Returns:
            the :class:`TrackClip` (``video (seq_len, 3, H, W)``, ``tracks (seq_len, num_points, 2)``, ...), or
            ``None`` when fewer than ``num_points`` tracks are visible in the sampled frames.
        """
        name = self.sequences[index]
        files, tracks, visible = read_kubric_sequence(self.root / name)
        t_len = len(files)
        if t_len < self.seq_len:
            raise ValueError(f"Kubric sequence {name!r} has {t_len} frames, fewer than seq_len={self.seq_len}")
        start = int(rng.integers(0, t_len - self.seq_len + 1))
        sl = slice(start, start + self.seq_len)
        frames = np.stack([_read_png(f) for f in files[sl]])
        if len({f.shape for f in frames}) != 1:
            raise ValueError(f"Kubric sequence {name!r}: frames of different sizes")
        video = torch.from_numpy(frames).permute(0, 3, 1, 2).to(torch.float32)
        tr, vis = torch.from_numpy(tracks[sl].copy()), torch.from_numpy(visible[sl].copy())
        q0 = torch.zeros((tr.shape[1], 3), dtype=torch.float32)
        clip = TrackClip(video, tr, vis, q0, name=name)
        if self.augment is not None:
            clip = self.augment.apply(clip, rng)
        else:
            clip = self._crop(clip, rng)
        idx = sample_track_indices(clip.visible, self.num_points, rng, mid_frame=self.mid_frame)
        if idx is None:
            return None
        sel = torch.from_numpy(idx)
        tr, vis = clip.tracks[:, sel], clip.visible[:, sel]
        q = training_queries(tr, vis, rng, self.random_query_fraction)
        return TrackClip(clip.video, tr, vis, torch.from_numpy(q), name=name)

    def _crop(self, clip: TrackClip, rng: np.random.Generator) -> TrackClip:
        h, w = clip.size_hw
        ch, cw = self.crop_size if self.crop_size is not None else (h, w)
        if ch > h or cw > w:
            raise ValueError(
                f"Kubric frames of {h}x{w} are smaller than crop_size {(ch, cw)}; use augment or a smaller crop"
            )
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        video = clip.video[:, :, y0 : y0 + ch, x0 : x0 + cw].contiguous()
        tracks = clip.tracks - torch.tensor([x0, y0], dtype=torch.float32)
        visible = clip.visible & torch.from_numpy(inside_frame(tracks.numpy(), (ch, cw)))
        return TrackClip(video, tracks, visible, clip.queries, name=clip.name)

    def _placeholder(self, name: str) -> TrackClip:
        hw = self.output_hw
        if hw is None:  # the frames' own size: read one frame of the sequence
            hw = _read_png(_frame_files(self.root / name)[0]).shape[:2]
        s, n = self.seq_len, self.num_points
        return TrackClip(
            torch.zeros((s, 3) + tuple(hw)),
            torch.zeros((s, n, 2)),
            torch.zeros((s, n), dtype=torch.bool),
            torch.zeros((n, 3)),
            name=name,
            valid=torch.tensor(False),
        )

    def __getitem__(self, index: int) -> TrackClip:
        """Item ``index`` as a :class:`TrackClip` (see ``too_few`` for samples with too few tracks)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        n = len(self.sequences)
        i = int(index) + (n if index < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for a Kubric dataset of {n} sequences")
        tries = self.max_retries if self.too_few == "retry" else 1
        for k in range(tries):
            j = (i + k) % n
            rng = np.random.default_rng([self.seed, self.epoch, i, k])
            clip = self.load(j, rng)
            if clip is not None:
                return clip
        if self.too_few == "flag":
            return self._placeholder(self.sequences[i])
        raise ValueError(
            f"Kubric item {i} ({self.sequences[i]!r}): fewer than {self.num_points} tracks visible in frame 0"
            f"{' or ' + str(self.seq_len // 2) if self.mid_frame else ''}"
            f"{' in %d consecutive sequences' % tries if tries > 1 else ''}"
        )
