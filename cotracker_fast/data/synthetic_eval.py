"""The synthetic evaluation set: clips rendered from seeds that training never draws (a tag of their own), queried
at their first visible frame (TAP-Vid's "query first")."""
from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np

from .clip import TrackClip
from .synthetic import _EVAL_TAG, SyntheticConfig, SyntheticScene, render_scene

__all__ = ["EVAL_CONFIG", "synthetic_eval_clips", "synthetic_eval_samples"]

# ----------------------------------------------------------------------------------------------------------
# evaluation set
# ----------------------------------------------------------------------------------------------------------

#: Default look of the evaluation clips: 24 frames of 256x256, 64 tracks queried at their first visible frame.
EVAL_CONFIG = SyntheticConfig(num_frames=24, size_hw=(256, 256), num_points=64, random_query_fraction=0.0)


def _eval_seed(seed: int, index: int) -> Tuple[int, int, int]:
    return (int(seed), int(index), _EVAL_TAG, _EVAL_TAG)


def synthetic_eval_clips(
    num_videos: int = 3, seed: int = 0, config: Optional[SyntheticConfig] = None
) -> Iterator[TrackClip]:
    """The synthetic evaluation set as :class:`TrackClip` s: clip ``i`` is
    ``render_clip((seed, i, 0xE7A15E7, 0xE7A15E7), config)`` (a seed stream disjoint from the training items'),
    named ``f"synthetic_{i:03d}"``.

    Args:
        num_videos: number of clips (>= 0).
        seed: non-negative integer.
        config: default :data:`EVAL_CONFIG` (24 frames, 256x256, 64 tracks, "query first": the query of each
            track is its first visible frame).

    Returns:
        an iterator rendering one clip at a time.

    Raises:
        ValueError: bad arguments (at call time).
    """
    scenes = _eval_scenes(num_videos, seed, config)
    return (scene.clip for scene in scenes)


def _eval_scenes(num_videos: int, seed: int, config: Optional[SyntheticConfig]) -> Iterator[SyntheticScene]:
    if isinstance(num_videos, bool) or not isinstance(num_videos, (int, np.integer)) or num_videos < 0:
        raise ValueError(f"num_videos must be a non-negative integer, got {num_videos!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    cfg = EVAL_CONFIG if config is None else config
    if not isinstance(cfg, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, got {type(cfg).__name__}")
    return (render_scene(_eval_seed(seed, i), cfg, name=f"synthetic_{i:03d}") for i in range(int(num_videos)))


def synthetic_eval_samples(
    num_videos: int = 3, seed: int = 0, config: Optional[SyntheticConfig] = None
) -> Iterator[Dict[str, Any]]:
    """The clips of :func:`synthetic_eval_clips` as plain numpy fields in the evaluation readers' layout (one
    column per track), ready for ``EvalSample``.

    Yields:
        dicts with ``"name"`` (str), ``"video"`` ``(T, H, W, 3) uint8``, ``"tracks"`` ``(T, N, 2) float32``
        pixels, ``"visible"`` ``(T, N) bool``, ``"query_frames"`` ``(N,) int64``, ``"queries"`` ``(N, 3)
        float32`` ``(t, x, y)`` and ``"description"`` (str).

    Raises:
        ValueError: bad arguments (at call time).
    """
    scenes = _eval_scenes(num_videos, seed, config)
    return (_eval_fields(scene) for scene in scenes)


def _eval_fields(scene: SyntheticScene) -> Dict[str, Any]:
    c = scene.clip
    video = c.video.permute(0, 2, 3, 1).numpy()
    return {
        "name": c.name,
        "video": np.clip(np.rint(video), 0, 255).astype(np.uint8),
        "tracks": c.tracks.numpy().copy(),
        "visible": c.visible.numpy().copy(),
        "query_frames": np.rint(c.queries[:, 0].numpy()).astype(np.int64),
        "queries": c.queries.numpy().copy(),
        "description": scene.description,
    }
