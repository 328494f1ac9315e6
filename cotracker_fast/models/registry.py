"""Named model variants and the factory.

The official v1 checkpoints are named ``cotracker_stride_{stride}_wind_{window}.pth``; the official builder picks
the configuration from the file's base name (the text before the first ``.``). We do the same, and also accept the
variant name directly.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

from .config import CoTrackerConfig

MODEL_CONFIGS: Dict[str, CoTrackerConfig] = {
    # "the model used to produce the results in the paper"; the torch.hub default
    "cotracker_stride_4_wind_8": CoTrackerConfig(stride=4, window_len=8),
    "cotracker_stride_4_wind_12": CoTrackerConfig(stride=4, window_len=12),
    # the fastest official variant
    "cotracker_stride_8_wind_16": CoTrackerConfig(stride=8, window_len=16),
    # Ours: the v1 architecture with a 2+2-block, 128-wide transformer and no absolute position embedding. It is
    # trained on small crops (it sees only relative quantities, so crops and full frames look alike to it); its
    # weights ship inside the package (docs/ACCURACY.md) and are what CoTrackerPredictor() uses when no official
    # checkpoint is given. The shipped file's transformer is deeper (4 time and 4 space blocks): the file records
    # that as model_overrides, from which the predictors build the model. Its working resolution, to which the
    # predictors resize every video, is 576x768, 1.5x the official 384x512: it tracks to a fraction of a feature
    # cell (4 pixels of the resized video), so a larger working size makes a cell fewer pixels of the video; 576x768
    # was chosen on validation clips (about 2x the compute of 384x512). It reads the raw window-relative flow only
    # (flow_embed_dim=0): the official sin/cos flow features run at up to ~970 radians per feature cell, so they
    # change unpredictably with a hundredth of a cell, and a briefly trained network amplifies them from one
    # iteration to the next (train/drop_flow_sinusoids.py).
    "cotracker_fast_small": CoTrackerConfig(
        stride=4, window_len=8, hidden_size=128, num_heads=4, time_depth=2, space_depth=2,
        model_resolution=(576, 768), pos_embed=False, flow_embed_dim=0,
    ),
}
DEFAULT_MODEL = "cotracker_stride_4_wind_8"
#: The variant whose trained weights ship with the package, and their file.
SHIPPED_MODEL = "cotracker_fast_small"
SHIPPED_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets",
                               "cotracker_fast_small.safetensors")


def list_models() -> List[str]:
    """Names accepted by :func:`create_model` and ``CoTrackerPredictor(model_name=...)``."""
    return sorted(MODEL_CONFIGS)


def get_config(name: str) -> CoTrackerConfig:
    """The :class:`CoTrackerConfig` of a registered variant (ValueError listing the names otherwise)."""
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model name {name!r}; expected one of {list_models()}") from None


def model_name_from_checkpoint(path: Optional[str]) -> str:
    """The variant a checkpoint implies: the ``model_name`` in a ``.safetensors`` file's metadata (our exports), else
    the file's base name, as the official builder does (``None`` gives the default, stride 4 / window 8).

    Raises ValueError for a name that is not one of the registered variants.
    """
    if path is None:
        return DEFAULT_MODEL
    base = os.path.basename(str(path)).split(".")[0]
    if base not in MODEL_CONFIGS and str(path).endswith(".safetensors") and os.path.isfile(path):
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                named = (f.metadata() or {}).get("model_name")
        except Exception:  # not a readable safetensors file: the loader reports that
            named = None
        if named in MODEL_CONFIGS:
            return named
    if base not in MODEL_CONFIGS:
        raise ValueError(
            f"cannot infer the model variant from checkpoint file name {os.path.basename(str(path))!r}: its base "
            f"name must be one of {list_models()}; pass model_name=... explicitly for other file names"
        )
    return base


def config_with_overrides(name: str, overrides: Optional[Dict[str, object]] = None) -> CoTrackerConfig:
    """The registered variant's config with some :class:`CoTrackerConfig` fields replaced (a deeper update
    transformer, say); ValueError for a field that does not exist."""
    over = dict(overrides or {})
    if "model_resolution" in over:
        over["model_resolution"] = tuple(over["model_resolution"])
    bad = set(over) - {f.name for f in dataclasses.fields(CoTrackerConfig)}
    if bad:
        raise ValueError(f"model_overrides has unknown CoTrackerConfig fields {sorted(bad)}")
    return dataclasses.replace(get_config(name), **over)


def model_overrides_from_checkpoint(path: Optional[str]) -> Dict[str, object]:
    """The ``model_overrides`` that a ``.safetensors`` file of ours records in its metadata (weights trained with a
    changed architecture, see ``train/export_weights.py``); ``{}`` for any other file."""
    if path is None or not str(path).endswith(".safetensors") or not os.path.isfile(path):
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception:  # not a readable safetensors file: the loader reports that
        return {}
    return model_overrides_from_metadata(metadata, os.path.basename(str(path)))


def model_overrides_from_metadata(metadata: Dict[str, str], source: str) -> Dict[str, object]:
    """The ``model_overrides`` recorded in a weights file's metadata (a JSON object; ``{}`` when absent). ValueError
    naming ``source`` for a record that is not a JSON object."""
    recorded = metadata.get("model_overrides")
    if not recorded:
        return {}
    try:
        over = json.loads(recorded)
    except ValueError:
        over = None
    if not isinstance(over, dict):
        raise ValueError(f"{source!r}: its metadata's model_overrides must be a JSON object of CoTrackerConfig "
                         f"fields, got {recorded!r}")
    return over


def create_model(name: str = DEFAULT_MODEL, *, overrides: Optional[Dict[str, object]] = None, **kwargs):
    """Build an (untrained) :class:`~cotracker_fast.models.cotracker.CoTracker` of the named variant, with
    ``overrides`` (:func:`config_with_overrides`) when given."""
    from .cotracker import CoTracker

    return CoTracker(config_with_overrides(name, overrides), **kwargs)


def build_cotracker(checkpoint: Optional[str] = None, *, model_name: Optional[str] = None, **kwargs):
    """Counterpart of the official ``build_cotracker(checkpoint)``: the variant comes from the checkpoint's file
    name (stride 4 / window 8 when ``checkpoint`` is None, which gives random weights) and the weights are loaded
    strictly and safely. Returns the model in train mode, as the official builder does."""
    from .checkpoint import load_checkpoint

    model = create_model(model_name or model_name_from_checkpoint(checkpoint),
                         overrides=model_overrides_from_checkpoint(checkpoint), **kwargs)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


# ------------------------------------------------------------------------------------------------ CoTracker3

#: CoTracker3 variants: the official offline model (time table of 60 rows, ``scaled_offline.pth`` /
#: ``baseline_offline.pth``) and online model (16-frame windows, ``scaled_online.pth`` / ``baseline_online.pth``).
V3_MODELS: Dict[str, Dict[str, object]] = {
    "cotracker3_offline": {"offline": True, "window_len": 60},
    "cotracker3_online": {"offline": False, "window_len": 16},
}


def checkpoint_family(state_dict) -> str:
    """``"v3"`` (CoTracker3: has ``corr_mlp``), ``"v2"`` (CoTracker2: virtual tracks without ``corr_mlp``) or
    ``"v1"``, from a state dict's keys."""
    if "corr_mlp.fc1.weight" in state_dict:
        return "v3"
    if "updateformer.virual_tracks" in state_dict:
        return "v2"
    return "v1"


def create_v3_model(offline: bool, window_len: int):
    """An (untrained) CoTracker3 model: offline (one window over the clip) or online (``window_len``-frame
    windows)."""
    from .cotracker3 import CoTracker3Offline, CoTracker3Online
    from .v3_layers import CoTracker3Config

    cls = CoTracker3Offline if offline else CoTracker3Online
    return cls(CoTracker3Config(window_len=int(window_len)))


def resolve_v3_arguments(
    source: str, state_dict, offline: Optional[bool], window_len: Optional[int]
) -> Tuple[bool, int]:
    """The (offline, window_len) a CoTracker3 checkpoint is built with. Unset arguments come from the file: the
    length of its ``time_emb`` table (60: offline, 16: online). Raises ValueError when ``window_len`` contradicts
    the table (the official strict load fails there too) or when the family cannot be told."""
    rows = int(state_dict["time_emb"].shape[1]) if "time_emb" in state_dict else None
    if window_len is not None and rows is not None and int(window_len) != rows:
        raise ValueError(
            f"{source} is a CoTracker3 checkpoint with a {rows}-frame time table, but window_len={window_len} was "
            f"given: use window_len={rows} (60 for the offline files, 16 for the online files)"
        )
    window = int(window_len) if window_len is not None else rows
    if window is None:
        raise ValueError(f"{source} has no time_emb table: pass window_len")
    if offline is None:
        if window not in (60, 16):
            raise ValueError(f"{source}: cannot tell offline from online for a {window}-frame table: pass offline=")
        offline = window == 60
    return bool(offline), window
