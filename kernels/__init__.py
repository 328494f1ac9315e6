"""Triton kernels of cotracker_fast, installed as ``cotracker_fast.kernels``.

One file per op (``corr_sample.py``: the fused multi-scale correlation, forward and backward). The kernels do not
register themselves: :mod:`cotracker_fast.ops` registers each op's backend ``triton`` with
:func:`cotracker_fast.ops.register_backend`, and its wrapper imports the kernel file on first use, so nothing here is
imported by ``import cotracker_fast``. The probes below tell whether Triton can run at all.
"""
from __future__ import annotations

import importlib.util
import os


def has_triton() -> bool:
    """True when the ``triton`` package is importable."""
    return importlib.util.find_spec("triton") is not None


def triton_can_run(device_type: str) -> bool:
    """Whether Triton kernels can run on tensors of ``device_type``: CUDA devices, or CPU tensors under
    ``TRITON_INTERPRET=1`` (the interpreter used for parity tests on machines without a GPU)."""
    if not has_triton():
        return False
    if device_type == "cuda":
        return True
    return device_type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") == "1"
