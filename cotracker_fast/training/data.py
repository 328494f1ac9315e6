"""The training data of a :class:`~cotracker_fast.training.trainer.TrainConfig`: its dataset (one clip size, or a
mix drawn per step), the per-step index sampler, and the checks that keep evaluation photographs out of training and
validation.
"""
from __future__ import annotations

import bisect
import itertools
import os
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple

import numpy as np
from torch.utils.data import Dataset, Sampler

if TYPE_CHECKING:
    from .trainer import TrainConfig


def photo_files(folder: str) -> Tuple[str, ...]:
    """The ``.jpg``/``.jpeg``/``.png`` files of ``folder``, sorted (so a run's textures do not depend on the
    directory listing order); ``()`` when the folder does not exist."""
    if not os.path.isdir(folder):
        return ()
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    return tuple(os.path.join(folder, n) for n in names)


def _sha256(path: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _evaluation_photos() -> Dict[str, str]:
    """``{sha256: name}`` of the demo's photograph and the held-out evaluation photographs."""
    from ..demo_clip import ASSET_DIR, PHOTO_NAME
    from ..evaluation.datasets import heldout_photo_paths

    return {_sha256(p): os.path.basename(p) for p in (str(ASSET_DIR / PHOTO_NAME), *heldout_photo_paths())}


def check_training_photos(paths: Tuple[str, ...]) -> None:
    """Refuse (ValueError) training photographs that are the demo's photograph or a held-out evaluation photograph
    (same file content): those measure the tracker, so they never train it."""
    protected = _evaluation_photos()
    for p in paths:
        name = protected.get(_sha256(p))
        if name is not None:
            raise ValueError(f"training photo {p!r} is the evaluation photograph {name!r}: remove it from photo_dir")


def check_validation_photos(paths: Tuple[str, ...], training_paths: Tuple[str, ...]) -> None:
    """Refuse (ValueError) validation photographs that train the model (same content as one of ``training_paths``)
    or measure it (the demo's or a held-out photograph): validation must be neither."""
    protected = {**{_sha256(p): f"training photo {os.path.basename(p)!r}" for p in training_paths},
                 **{h: f"evaluation photograph {n!r}" for h, n in _evaluation_photos().items()}}
    for p in paths:
        what = protected.get(_sha256(p))
        if what is not None:
            raise ValueError(f"validation photo {p!r} is the {what}: validation photographs must be neither")


class MixedSizeTracks(Dataset):
    """Items of several same-index datasets of different clip sizes: item ``i`` is ``datasets[k][i]``, where ``k``
    is drawn with probabilities ``fractions`` from a generator seeded with ``(seed, i // group)``. With ``group``
    the clips of one optimiser step (``batch_size * world``), every clip of a step has the same size (so they
    batch), on every rank, and the draw depends only on the step, never on workers or the world size."""

    def __init__(self, datasets: List[Dataset], fractions: List[float], seed: int, group: int):
        if len(datasets) != len(fractions) or not datasets:
            raise ValueError(f"need one fraction per dataset, got {len(datasets)} datasets, {len(fractions)} fractions")
        if group < 1:
            raise ValueError(f"group must be >= 1, got {group}")
        self.datasets, self.seed, self.group = datasets, seed, group
        self.cumulative = list(itertools.accumulate(float(f) for f in fractions))

    def __len__(self) -> int:
        return min(len(d) for d in self.datasets)

    def size_index(self, i: int) -> int:
        """The dataset (size) of item ``i``."""
        u = np.random.default_rng((self.seed, 0x512E, i // self.group)).random() * self.cumulative[-1]
        return min(bisect.bisect_right(self.cumulative, u), len(self.datasets) - 1)

    def __getitem__(self, i: int):
        return self.datasets[self.size_index(i)][i]


def build_dataset(cfg: TrainConfig, *, seed: Optional[int] = None, augment: Optional[bool] = None,
                  group: int = 1) -> Dataset:
    """The training set of ``cfg`` (item ``i`` a :class:`~cotracker_fast.data.clip.TrackClip`). With a
    :attr:`TrainConfig.size_mix`, items are drawn from one dataset per size, ``group`` consecutive items (one
    step's clips) sharing a size (:class:`MixedSizeTracks`)."""
    seed = cfg.seed if seed is None else seed
    augment = cfg.augment if augment is None else augment
    if cfg.size_mix:
        if cfg.data != "synthetic":
            raise ValueError("size_mix needs data='synthetic' (the Kubric clips come at one size)")
        parts = [_synthetic_dataset(cfg, seed, k, augment) for k in [None, *range(len(cfg.size_mix))]]
        return MixedSizeTracks(parts, [f for _, f in cfg.sizes()], seed, group)
    if cfg.data == "synthetic":
        return _synthetic_dataset(cfg, seed, None, augment)
    from ..data.kubric import KubricMovifDataset

    aug = cfg.augmentations() if augment else None
    return KubricMovifDataset(cfg.data_root, num_frames=cfg.num_frames, num_points=cfg.num_points, augment=aug,
                              seed=seed)


def _synthetic_dataset(cfg: TrainConfig, seed: int, mix_index: Optional[int], augment: bool) -> Dataset:
    """The synthetic clips of ``cfg`` at ``size_hw`` (``mix_index`` None) or at ``size_mix[mix_index]``."""
    from ..data.synthetic import SyntheticConfig, SyntheticTracks

    aug = cfg.augmentations(mix_index) if augment else None
    out_hw = cfg.size_hw if mix_index is None else tuple(int(v) for v in cfg.size_mix[mix_index]["size_hw"])
    # rendered with a margin when augmenting, so that scale/crop has room (the Kubric clips are 512x512)
    size = out_hw if aug is None else tuple(s + s // 4 for s in out_hw)
    photos = photo_files(cfg.photo_dir) if cfg.photo_dir else ()
    check_training_photos(photos)
    textures = SyntheticConfig.textures + (("photo",) if photos else ())
    scfg = SyntheticConfig(**{**cfg.synthetic_overrides, "num_frames": cfg.num_frames, "size_hw": size,
                              "num_points": cfg.num_points, "textures": textures, "photo_paths": photos})
    return SyntheticTracks(length=2**62, seed=seed, config=scfg, augment=aug, pool_factor=cfg.pool_factor)


class StepSampler(Sampler):
    """Dataset indices of steps ``start_step ..`` for one rank (see the module docstring)."""

    def __init__(self, start_step: int, num_steps: int, batch_size: int, rank: int, world: int):
        self.start, self.stop, self.B, self.rank, self.world = start_step, num_steps, batch_size, rank, world

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.B

    def __iter__(self) -> Iterator[int]:
        for s in range(self.start, self.stop):
            base = (s * self.world + self.rank) * self.B
            yield from range(base, base + self.B)
