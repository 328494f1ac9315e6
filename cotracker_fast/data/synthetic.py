"""Procedural training clips with exact point-track ground truth.

A clip is a stack of textured layers composited back to front: a background and 2-6 (configurable) foreground
objects. Each object is a shape (ellipse, convex polygon or smooth blob) with an anti-aliased alpha mask, filled
with a procedural texture (multi-scale noise, stripes, checkers, gradients, all with a noise overlay so that
every patch is trackable) or, when photographs are given (``SyntheticConfig.photo_paths``), with a crop of one. The
demo's photograph is never a default texture: the demo measures the tracker on it.
Every layer moves by its own smooth homography (affine, or perspective with some probability), a smooth
function of time; objects can travel out of the frame; with some probability a camera homography moves every
layer, the background included.

Rendering is inverse warping: frame pixel ``p`` of layer ``k`` at frame ``t`` takes the layer's bilinear value
(``torch.nn.functional.grid_sample``) at ``M[t, k]^-1 p``, where ``M[t, k]`` maps layer texture pixels to frame
pixels (pixel centres at integer coordinates in both). Layers are blended with their alpha, nearest last.

Ground truth is exact: a track is a texture point ``uv`` of one layer and ``tracks[t] = M[t, k] uv``. It is
*visible* at ``t`` when it lies in the frame (``0 <= x <= W-1``, ``0 <= y <= H-1``) and the nearer layers cover
it with alpha ``1 - prod_j (1 - alpha_j) < 0.5`` there (alpha of each nearer layer bilinearly sampled at the
point, the same function the renderer samples at pixel centres).

Tracks follow the official Kubric sampling: candidate points are drawn in frame 0 and in frame ``T // 2`` (so
every track is visible at least once), on the layer seen there (points within an anti-aliased edge are
rejected so each point belongs to one layer), with ``object_point_fraction`` of them drawn on objects, and the
``N`` tracks are a random subset of the two candidate lists together. Queries follow the official training rule
(:func:`cotracker_fast.data.clip.training_queries`).

Everything random is drawn from one ``numpy.random.Generator`` seeded by the clip seed, and rendering uses only
operations whose results do not depend on the number of threads (grid sampling and element-wise arithmetic; no
multi-threaded reductions), so a seed gives a bit-identical clip in any process or DataLoader worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .clip import TrackClip, inside_frame, sample_track_indices, training_queries
from .render import _apply_h, _build_layers, _Layer, _render
from .synthetic_config import SHAPES, TEXTURES, SyntheticConfig

__all__ = [
    "SyntheticConfig",
    "SyntheticScene",
    "render_scene",
    "render_clip",
    "SyntheticTracks",
    "item_seed",
    "synthetic_eval_clips",
    "synthetic_eval_samples",
    "SHAPES",
    "TEXTURES",
    "SEED_STRIDE",
    "EVAL_CONFIG",
]

#: Item ``i`` of ``SyntheticTracks(seed=s)`` is rendered from seed ``s * SEED_STRIDE + i``.
SEED_STRIDE = 1_000_003
# Tags that keep the seed streams apart. numpy's SeedSequence ignores trailing zero words ((s, 0) seeds like s),
# so every derived seed ends in a non-zero tag or attempt number.
_RETRY_TAG = 0x5EED0001  # re-renders of an augmented training item
_AUG_TAG = 0x5EED0002  # the augmentation of a training item
_EVAL_TAG = 0xE7A15E7  # evaluation clips
# a candidate point belongs to a layer when that layer's alpha is >= 1 - _EDGE_EPS there and every nearer
# layer's alpha is <= _EDGE_EPS (points on anti-aliased edges are ambiguous and rejected)
_EDGE_EPS = 1e-3

Seed = Union[int, Sequence[int]]


def _alpha_at(layer: _Layer, maps_inv: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Alpha of ``layer`` (1 for the background) at frame points ``x, y`` (F, M) under inverse maps ``(F, 3, 3)``:
    the same bilinear function the renderer samples at pixel centres. Returns ``(F, M)`` float64."""
    if layer.alpha is None:
        return np.ones(np.shape(x))
    lh, lw = layer.hw
    u, v = _apply_h(maps_inv[:, None], x, y)
    gx = (2.0 * u + 1.0) / lw - 1.0
    gy = (2.0 * v + 1.0) / lh - 1.0
    grid = torch.from_numpy(np.stack([gx, gy], -1).astype(np.float32))[None]  # (1, F, M, 2)
    a = F.grid_sample(layer.alpha[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return a[0, 0].double().numpy()


def _candidates(
    rng: np.random.Generator, layers: List[_Layer], inv: List[np.ndarray], frame: int, count: int, cfg: SyntheticConfig
) -> Tuple[np.ndarray, np.ndarray]:
    """``count`` points ``(count, 2)`` on layers seen at ``frame`` and their layer index ``(count,)``."""
    h, w = cfg.size_hw
    n_obj_pts = int(round(count * cfg.object_point_fraction)) if len(layers) > 1 else 0
    wanted = {"any": count - n_obj_pts, "object": n_obj_pts}
    got_xy: Dict[str, List[np.ndarray]] = {"any": [], "object": []}
    got_k: Dict[str, List[np.ndarray]] = {"any": [], "object": []}
    # objects' frame bounding boxes at this frame (clipped to the frame), for object-biased draws
    boxes = []
    for layer in layers[1:]:
        lh, lw = layer.hw
        cx = np.array([-0.5, lw - 0.5, -0.5, lw - 0.5])
        cy = np.array([-0.5, -0.5, lh - 0.5, lh - 0.5])
        fx, fy = _apply_h(layer.maps[frame], cx, cy)
        bx0, bx1 = max(0.0, fx.min()), min(w - 1.0, fx.max())
        by0, by1 = max(0.0, fy.min()), min(h - 1.0, fy.max())
        if bx1 > bx0 and by1 > by0:
            boxes.append((bx0, bx1, by0, by1))
    if not boxes:
        wanted = {"any": count, "object": 0}
    for _ in range(64):
        todo = {kd: wanted[kd] - sum(len(a) for a in got_k[kd]) for kd in wanted}
        if all(v <= 0 for v in todo.values()):
            break
        for kd, need in todo.items():
            if need <= 0:
                continue
            m = 2 * need + 8
            if kd == "any":
                px = rng.uniform(0.0, w - 1.0, m)
                py = rng.uniform(0.0, h - 1.0, m)
            else:
                b = np.asarray(boxes)[rng.integers(0, len(boxes), m)]
                px = b[:, 0] + (b[:, 1] - b[:, 0]) * rng.random(m)
                py = b[:, 2] + (b[:, 3] - b[:, 2]) * rng.random(m)
            owner = np.full(m, -1, dtype=np.int64)
            blocked = np.zeros(m, dtype=bool)
            for k in range(len(layers) - 1, -1, -1):  # nearest first
                a = _alpha_at(layers[k], inv[k][frame : frame + 1], px[None], py[None])[0]
                free = (owner < 0) & ~blocked
                owner = np.where(free & (a >= 1.0 - _EDGE_EPS), k, owner)
                blocked |= free & (a > _EDGE_EPS) & (a < 1.0 - _EDGE_EPS)
            ok = (owner >= 0) & ~blocked
            if kd == "object":
                ok &= owner >= 1
            idx = np.flatnonzero(ok)[:need]
            got_xy[kd].append(np.stack([px[idx], py[idx]], -1))
            got_k[kd].append(owner[idx])
    xy = np.concatenate([np.zeros((0, 2))] + got_xy["any"] + got_xy["object"], 0)
    ks = np.concatenate([np.zeros(0, np.int64)] + got_k["any"] + got_k["object"], 0)
    if len(ks) < count:  # objects too small to hit: fill with points anywhere
        if wanted["object"] > 0:
            extra = _candidates(rng, layers, inv, frame, count - len(ks), replace(cfg, object_point_fraction=0.0))
            return np.concatenate([xy, extra[0]], 0), np.concatenate([ks, extra[1]], 0)
        raise RuntimeError(f"could not place {count} track points in frame {frame} (only {len(ks)} found)")
    return xy, ks


@dataclass
class SyntheticScene:
    """A rendered clip with what it was made from (for tests and inspection).

    Attributes:
        clip: the :class:`TrackClip` (``video (T, 3, H, W)``, ``tracks (T, N, 2)``, ``visible (T, N)``,
            ``queries (N, 3)``).
        point_layer: ``(N,) int64`` layer of each track (0 = background, ``k >= 1`` the k-th object; higher is
            nearer).
        coverage: ``(T, N) float32`` how much the nearer layers cover each track point, ``1 - prod(1 - alpha)``
            (a track is visible where it is in the frame and ``coverage < 0.5``).
        layer_maps: ``(T, L, 3, 3) float64`` texture pixel -> frame pixel homographies of the ``L`` layers.
        front_layer: ``(T, H, W) int8`` nearest layer with alpha >= 0.5 at each pixel centre.
        layers: per layer ``{"texture", "shape", ...}``.
        camera_moves: whether a camera motion was applied.
        description: one line describing the clip.
    """

    clip: TrackClip
    point_layer: np.ndarray
    coverage: np.ndarray
    layer_maps: np.ndarray
    front_layer: torch.Tensor
    layers: List[Dict[str, Any]] = field(default_factory=list)
    camera_moves: bool = False
    description: str = ""
    _layers: List[_Layer] = field(default_factory=list, repr=False)

    def layer_weight(self, layer: int, t: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """How much of the rendered colour at frame points ``(x, y)`` of frame ``t`` comes from ``layer``:
        ``alpha_layer * prod_{nearer j} (1 - alpha_j)`` there (1: the layer alone is seen; 0: none of it).

        Args:
            layer: layer index (0 = background).
            t: frame index.
            x, y: ``(M,)`` frame positions in pixels.

        Returns:
            ``(M,) float64`` in ``[0, 1]``.
        """
        x = np.asarray(x, dtype=np.float64)[None]
        y = np.asarray(y, dtype=np.float64)[None]
        out = _alpha_at(self._layers[layer], np.linalg.inv(self._layers[layer].maps[t : t + 1]), x, y)[0]
        for j in range(layer + 1, len(self._layers)):
            out = out * (1.0 - _alpha_at(self._layers[j], np.linalg.inv(self._layers[j].maps[t : t + 1]), x, y)[0])
        return out


def _make_rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, bool):
        raise ValueError(f"seed must be a non-negative integer or a sequence of them, got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        return np.random.default_rng(int(seed))
    if (
        isinstance(seed, (tuple, list))
        and seed
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in seed)
    ):
        return np.random.default_rng([int(s) for s in seed])
    raise ValueError(f"seed must be a non-negative integer or a sequence of them, got {seed!r}")


def render_scene(seed: Seed, config: Optional[SyntheticConfig] = None, *, name: Optional[str] = None) -> SyntheticScene:
    """Render one synthetic clip with its ground truth and the scene it came from.

    Args:
        seed: a non-negative integer (or a non-empty sequence of them): equal seeds and configs give
            bit-identical results, in any process.
        config: :class:`SyntheticConfig` (default: ``SyntheticConfig()``, 24 frames of 384x512, 256 tracks).
        name: the clip's name (default ``f"synthetic_{seed}"``).

    Returns:
        :class:`SyntheticScene`; its ``clip`` has ``video (T, 3, H, W) float32`` 0..255,
        ``tracks (T, N, 2) float32`` pixels, ``visible (T, N) bool``, ``queries (N, 3) float32`` ``(t, x, y)``.

    Raises:
        ValueError: bad seed or config.
    """
    cfg = SyntheticConfig() if config is None else config
    if not isinstance(cfg, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, got {type(cfg).__name__}")
    rng = _make_rng(seed)
    h, w = cfg.size_hw
    t_len, n = cfg.num_frames, cfg.num_points
    layers, cam = _build_layers(rng, cfg)
    video, front = _render(layers, (h, w))
    if cfg.quantize:
        video.round_()
    video.clamp_(0.0, 255.0)

    inv = [np.linalg.inv(layer.maps) for layer in layers]
    pools = [_candidates(rng, layers, inv, 0, n, cfg)]
    if cfg.mid_frame_sampling and t_len // 2 != 0:
        pools.append(_candidates(rng, layers, inv, t_len // 2, n, cfg))
    frames_of = np.concatenate([np.full(len(p[1]), f, np.int64) for p, f in zip(pools, [0, t_len // 2])])
    xy = np.concatenate([p[0] for p in pools], 0)
    ks = np.concatenate([p[1] for p in pools], 0)
    pick = rng.permutation(len(ks))[:n]
    xy, ks, frames_of = xy[pick], ks[pick], frames_of[pick]

    maps = np.stack([layer.maps for layer in layers], 1)  # (T, L, 3, 3)
    inv_all = np.stack(inv, 1)
    u, v = _apply_h(inv_all[frames_of, ks], xy[:, 0], xy[:, 1])  # texture points (N,)
    tx, ty = _apply_h(maps[:, ks], u[None], v[None])  # (T, N)
    tracks = np.stack([tx, ty], -1)
    keep = np.ones((t_len, n))
    for j in range(1, len(layers)):
        nearer = ks < j
        if not nearer.any():
            continue
        a = _alpha_at(layers[j], inv[j], tx, ty)
        keep = keep * np.where(nearer[None], 1.0 - a, 1.0)
    coverage = 1.0 - keep
    visible = inside_frame(tracks, (h, w)) & (coverage < 0.5)
    queries = training_queries(tracks, visible, rng, cfg.random_query_fraction)
    clip = TrackClip(
        video=video,
        tracks=torch.from_numpy(tracks.astype(np.float32)),
        visible=torch.from_numpy(visible),
        queries=torch.from_numpy(queries),
        name=name
        if name is not None
        else f"synthetic_{seed if isinstance(seed, (int, np.integer)) else '_'.join(map(str, seed))}",
    )
    info = [layer.info for layer in layers]
    objs = ", ".join(f"{i['shape']}/{i['texture']}" for i in info[1:]) or "none"
    desc = (
        f"synthetic clip: {t_len} frames of {h}x{w}, {n} tracks; background ({info[0]['texture']}) + "
        f"{len(layers) - 1} objects ({objs}); camera {'moving' if cam else 'still'}"
    )
    return SyntheticScene(
        clip=clip,
        point_layer=ks.astype(np.int64),
        coverage=coverage.astype(np.float32),
        layer_maps=maps,
        front_layer=front,
        layers=info,
        camera_moves=cam,
        description=desc,
        _layers=layers,
    )


def render_clip(seed: Seed, config: Optional[SyntheticConfig] = None, *, name: Optional[str] = None) -> TrackClip:
    """Render one synthetic clip: ``render_scene(seed, config, name=name).clip``.

    Args:
        seed: non-negative integer (or sequence of them); same seed and config -> bit-identical clip.
        config: :class:`SyntheticConfig` (default 24 frames, 384x512, 256 tracks).
        name: clip name (default ``f"synthetic_{seed}"``).

    Returns:
        :class:`TrackClip` with ``video (T, 3, H, W) float32`` 0..255, ``tracks (T, N, 2) float32`` ``(x, y)``
        pixels, ``visible (T, N) bool``, ``queries (N, 3) float32`` ``(t, x, y)``.
    """
    return render_scene(seed, config, name=name).clip


# ----------------------------------------------------------------------------------------------------------
# dataset
# ----------------------------------------------------------------------------------------------------------


def item_seed(seed: int, index: int, epoch: int = 0) -> Seed:
    """Seed of item ``index`` of ``SyntheticTracks(seed=seed)``: ``seed * SEED_STRIDE + index`` in epoch 0, and
    ``(seed * SEED_STRIDE + index, epoch)`` in a later epoch (see :meth:`SyntheticTracks.set_epoch`)."""
    base = int(seed) * SEED_STRIDE + int(index)
    return base if epoch == 0 else (base, int(epoch))


class SyntheticTracks(Dataset):
    """An endless-looking training set of synthetic clips (``torch.utils.data.Dataset`` of :class:`TrackClip`).

    Item ``i`` is ``render_clip(item_seed(seed, i, epoch), config)`` (so ``seed * 1_000_003 + i`` in epoch 0),
    named ``f"synthetic_{seed}_{i}"``. With ``augment`` (an :class:`~cotracker_fast.data.augment.Augmentations`),
    the item is rendered with ``pool_factor * N`` tracks, augmented with a ``numpy`` generator seeded from the
    item seed, and then ``N`` tracks are drawn by the official rule (visible in frame 0 or ``T // 2`` after
    augmentation, :func:`~cotracker_fast.data.clip.sample_track_indices`) and queried by the official rule; if
    too few tracks survive, the item is rendered again from seed ``(item seed, 0x5EED0001, attempt)`` (up to
    ``max_retries`` renders; the augmentation of attempt ``a`` draws from ``default_rng((item seed, 0x5EED0002,
    a))``).
    Everything depends only on ``(seed, epoch, i)``, never on the worker, so a ``DataLoader`` with any number of
    workers yields the same items. Batch with ``DataLoader(..., collate_fn=collate_clips)``.

    Args:
        length: number of items (>= 0).
        seed: non-negative integer.
        config: :class:`SyntheticConfig` (default ``SyntheticConfig()``).
        augment: optional augmentations; their ``crop_size`` sets the output size (``config.size_hw`` is then the
            size rendered before cropping).
        pool_factor: tracks rendered per output track when augmenting (>= 1).
        max_retries: renders tried per item when augmenting (>= 1).
    """

    def __init__(
        self,
        length: int,
        seed: int = 0,
        config: Optional[SyntheticConfig] = None,
        augment: Any = None,
        *,
        pool_factor: int = 2,
        max_retries: int = 8,
    ):
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.config = SyntheticConfig() if config is None else config
        if not isinstance(self.config, SyntheticConfig):
            raise ValueError(f"config must be a SyntheticConfig, got {type(self.config).__name__}")
        if augment is not None and not callable(getattr(augment, "apply", None)):
            raise ValueError(f"augment must be an Augmentations (with .apply), got {type(augment).__name__}")
        if isinstance(pool_factor, bool) or not isinstance(pool_factor, (int, np.integer)) or pool_factor < 1:
            raise ValueError(f"pool_factor must be an integer >= 1, got {pool_factor!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, (int, np.integer)) or max_retries < 1:
            raise ValueError(f"max_retries must be an integer >= 1, got {max_retries!r}")
        self.length = int(length)
        self.seed = int(seed)
        self.augment = augment
        self.pool_factor = int(pool_factor)
        self.max_retries = int(max_retries)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch`` (>= 0) seeds from now on (call before creating the DataLoader iterator, as workers
        copy the dataset when the iterator starts)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> TrackClip:
        """Item ``index`` (``0 <= index < len``; negative indices count from the end) as a :class:`TrackClip`."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        i = int(index) + (self.length if index < 0 else 0)
        if not 0 <= i < self.length:
            raise IndexError(f"index {index} out of range for SyntheticTracks of length {self.length}")
        s = item_seed(self.seed, i, self.epoch)
        name = f"synthetic_{self.seed}_{i}"
        cfg = self.config
        if self.augment is None:
            return render_clip(s, cfg, name=name)
        base = list(s) if isinstance(s, tuple) else [s]
        pool_cfg = replace(cfg, num_points=cfg.num_points * self.pool_factor)
        for attempt in range(self.max_retries):
            render_seed = s if attempt == 0 else tuple(base + [_RETRY_TAG, attempt])
            clip = render_clip(render_seed, pool_cfg, name=name)
            rng = np.random.default_rng(base + [_AUG_TAG, attempt])  # the augmentation's own stream
            aug = self.augment.apply(clip, rng)
            idx = (
                sample_track_indices(aug.visible, cfg.num_points, rng, mid_frame=cfg.mid_frame_sampling)
                if cfg.num_points
                else np.zeros(0, np.int64)
            )
            if idx is None:
                continue
            sel = torch.from_numpy(idx)
            tracks, visible = aug.tracks[:, sel], aug.visible[:, sel]
            queries = training_queries(tracks, visible, rng, cfg.random_query_fraction)
            return TrackClip(aug.video, tracks, visible, torch.from_numpy(queries), name=name)
        raise RuntimeError(
            f"SyntheticTracks item {i}: fewer than {cfg.num_points} tracks visible in frame 0 or "
            f"{cfg.num_frames // 2} after augmentation in {self.max_retries} renders; raise pool_factor"
        )


# the evaluation set lives in its own module; its names are re-exported here, where they have always been found
from .synthetic_eval import EVAL_CONFIG, synthetic_eval_clips, synthetic_eval_samples  # noqa: E402,F401
