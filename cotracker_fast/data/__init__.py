"""Training data for CoTracker: the clip container, procedural synthetic clips with exact ground truth,
the Kubric MOVi-f reader, and the paper's augmentations.

Typical use::

    from torch.utils.data import DataLoader
    from cotracker_fast.data import Augmentations, SyntheticTracks, collate_clips

    ds = SyntheticTracks(length=100_000, seed=0, augment=Augmentations())
    loader = DataLoader(ds, batch_size=1, num_workers=4, collate_fn=collate_clips)
    for batch in loader:   # batch.video (B, T, 3, H, W), batch.tracks (B, T, N, 2), batch.visible (B, T, N),
        ...                # batch.queries (B, N, 3), batch.valid (B,)
"""

from .augment import Augmentations
from .clip import TrackClip, collate_clips, sample_track_indices, training_queries
from .kubric import KubricMovifDataset
from .synthetic import (
    EVAL_CONFIG,
    SyntheticConfig,
    SyntheticScene,
    SyntheticTracks,
    render_clip,
    render_scene,
    synthetic_eval_clips,
    synthetic_eval_samples,
)

__all__ = [
    "TrackClip",
    "collate_clips",
    "training_queries",
    "sample_track_indices",
    "SyntheticConfig",
    "SyntheticScene",
    "SyntheticTracks",
    "render_clip",
    "render_scene",
    "synthetic_eval_clips",
    "synthetic_eval_samples",
    "EVAL_CONFIG",
    "KubricMovifDataset",
    "Augmentations",
]
