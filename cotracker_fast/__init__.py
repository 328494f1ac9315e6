"""cotracker_fast: a fast, faithful implementation of CoTracker v1.

Drop-in use (same checkpoints, same calls, same tracks as the official v1 predictor)::

    from cotracker_fast import CoTrackerPredictor
    predictor = CoTrackerPredictor(checkpoint="cotracker_stride_4_wind_8.pth")
    tracks, visibilities = predictor(video, queries=queries)      # video (B, T, 3, H, W) in 0..255

Streaming::

    from cotracker_fast import CoTrackerOnlinePredictor
"""


def _source_tree_kernels() -> None:
    """Make the repository's ``kernels/`` importable as ``cotracker_fast.kernels`` when the package runs from a source
    checkout on ``sys.path`` with nothing installed (the GPU machine of ``make gpu-check``: its python3 has torch and
    Triton, and nothing is installed there). ``setup.py`` maps the folder in the same way at install time; an install,
    editable or not, finds the subpackage itself and this does nothing. Only ``kernels/__init__.py`` (availability
    probes, no Triton import) is loaded here; the kernels still compile on first use."""
    import importlib.util
    import sys
    from pathlib import Path

    name = __name__ + ".kernels"
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return
    folder = Path(__file__).resolve().parent.parent / "kernels"
    if not (folder / "__init__.py").is_file():
        return  # an install without the kernels: the ops report Triton as unavailable
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    globals()["kernels"] = module  # the attribute a regular import of the subpackage would set


_source_tree_kernels()

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
