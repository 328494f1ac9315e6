"""cotracker_fast: a fast, faithful implementation of CoTracker v1.

Drop-in use (same checkpoints, same calls, same tracks as the official v1 predictor)::

    from cotracker_fast import CoTrackerPredictor
    predictor = CoTrackerPredictor(checkpoint="cotracker_stride_4_wind_8.pth")
    tracks, visibilities = predictor(video, queries=queries)      # video (B, T, 3, H, W) in 0..255

Streaming::

    from cotracker_fast import CoTrackerOnlinePredictor
"""
from .models.checkpoint import CheckpointError, load_checkpoint, read_state_dict, save_safetensors
from .models.config import CoTrackerConfig
from .models.cotracker import CoTracker
from .models.registry import build_cotracker, create_model, list_models
from .online import CoTrackerOnlinePredictor
from .ops import BackendUnavailableError, attention, corr_sample
from .predictor import CoTrackerPredictor

__version__ = "0.1.0"

__all__ = [
    "CoTrackerPredictor",
    "CoTrackerOnlinePredictor",
    "CoTracker",
    "CoTrackerConfig",
    "create_model",
    "build_cotracker",
    "list_models",
    "load_checkpoint",
    "read_state_dict",
    "save_safetensors",
    "CheckpointError",
    "corr_sample",
    "attention",
    "BackendUnavailableError",
]
