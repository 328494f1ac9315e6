"""Loading and saving CoTracker weights safely.

* Official v1 ``.pth`` files: a flat state dict, or one stored under ``"model"`` (training checkpoints). Read with
  ``torch.load(weights_only=True)``, so no arbitrary object is ever unpickled.
* Our own ``.safetensors`` files (optionally with the variant name in the metadata).

A file that is not a checkpoint, is truncated, or holds the wrong keys or shapes raises :class:`CheckpointError`
naming the file and listing what is missing, unexpected, or of the wrong shape.
"""
from __future__ import annotations

import os
from typing import Dict, Mapping, Optional

import torch
from torch import Tensor, nn


class CheckpointError(ValueError):
    """A checkpoint file cannot be read, or does not match the model."""


def read_state_dict(path: str) -> Dict[str, Tensor]:
    """Read a state dict (CPU tensors) from an official ``.pth`` or a ``.safetensors`` file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path!r}")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path!r} is not a readable safetensors file: {err}") from err
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle, zip and EOF errors all mean "not a (complete) torch checkpoint"
            raise CheckpointError(
                f"{path!r} could not be read as a PyTorch checkpoint with weights_only=True "
                f"(corrupt, truncated, or holding non-tensor objects): {type(err).__name__}: {err}"
            ) from err
        if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
            obj = obj["model"]
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{path!r} holds a {type(obj).__name__}, not a state dict")
        sd = dict(obj)
    bad = [k for k, v in sd.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{path!r}: entries that are not tensors: {bad[:10]}")
    if sd and all(k.startswith("module.") for k in sd):  # saved from a DistributedDataParallel wrapper
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str = "state dict") -> None:
    """Raise :class:`CheckpointError` unless ``state_dict`` has exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        lines = [f"{source} does not match {type(model).__name__} ({len(expected)} keys expected):"]
        if missing:
            lines.append(f"  missing ({len(missing)}): {missing[:20]}{' ...' if len(missing) > 20 else ''}")
        if unexpected:
            lines.append(f"  unexpected ({len(unexpected)}): {unexpected[:20]}{' ...' if len(unexpected) > 20 else ''}")
        if wrong:
            lines.append(f"  wrong shape ({len(wrong)}): {wrong[:20]}")
        raise CheckpointError("\n".join(lines))


def load_checkpoint(model: nn.Module, path: str) -> nn.Module:
    """Load weights from ``path`` into ``model`` (strict) and return the model."""
    sd = read_state_dict(path)
    check_state_dict(model, sd, source=repr(os.fspath(path)))
    model.load_state_dict(sd, strict=True)
    return model


def save_safetensors(model_or_state: nn.Module | Mapping[str, Tensor], path: str, *, metadata: Optional[dict] = None):
    """Write weights to ``path`` as safetensors, atomically (temporary file in the same folder, then rename)."""
    from safetensors.torch import save_file

    sd = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    sd = {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}
    from ..io import atomic_output

    with atomic_output(os.fspath(path)) as tmp:
        save_file(sd, tmp, metadata={str(k): str(v) for k, v in (metadata or {}).items()})
