"""Helpers shared by the PyTorch references of the ops."""
from __future__ import annotations

import functools

import torch
from torch import Tensor


def _acc(t: Tensor) -> Tensor:
    """Accumulation precision: float32, or float64 for float64 inputs (gradcheck)."""
    return t if t.dtype == torch.float64 else t.float()


def _no_autocast(fn):
    """Run a reference in the precision it states (float32 accumulation), also inside an autocast region."""

    @functools.wraps(fn)
    def wrapper(fmaps, feats, coords, radius=3):
        with torch.autocast(feats.device.type, enabled=False):
            return fn(fmaps, feats, coords, radius)

    return wrapper
