"""One resolver that picks the implementation of each op.

Precedence: the explicit ``backend=`` argument, then the environment (``COTRACKER_FAST_BACKEND_<OP>`` for one op,
``COTRACKER_FAST_BACKEND`` for all), then an automatic choice by device, dtype and availability.

* A backend asked for by name (argument or environment) that is unknown or cannot run on these inputs raises
  :class:`BackendUnavailableError`, naming the reason.
* The automatic choice walks the op's preference list and silently falls back to the PyTorch implementation.

Backends per op (all registered by :mod:`cotracker_fast.ops` with :func:`register_backend`; the Triton and CUDA
ones import their kernels on first use):

=============  ==============================================  =========================================
op             name                                            what
=============  ==============================================  =========================================
corr_sample    ``reference``                                   dense correlation volume (official maths)
corr_sample    ``cpu``                                         fused C++ kernel (``cotracker_fast._cpu``), CPU
corr_sample    ``torch``                                       local gather + dot products, O(N) memory
corr_sample    ``triton``                                      fused Triton kernel, explicit only (for now)
attention      ``reference``                                   explicit softmax(q k^T) v
attention      ``cpu``                                         AVX512-BF16 kernel (``cotracker_fast._cpu``),
                                                               bfloat16 on CPUs that have the instructions
attention      ``cpu_amx``                                     that kernel for sequences <= 32, SDPA for
                                                               longer ones: bfloat16 on CPUs with AMX
attention      ``torch``                                       ``F.scaled_dot_product_attention``
attention      ``cuda``                                        CUDA kernels of ``cotracker_fast._C``,
                                                               explicit only (for now)
=============  ==============================================  =========================================

``backend`` may be a string (applied to every op) or a dict ``{"corr_sample": ..., "attention": ...}``;
``"auto"`` or ``None`` means the automatic choice. The preset ``"fast"`` names the GPU kernels of every op
(``{"corr_sample": "triton", "attention": "cuda"}``); it raises where they cannot run.

On the CPU the automatic choice takes the C++ kernels of ``cotracker_fast._cpu`` where they are built and can run
(fused correlation; bf16 attention with AVX512-BF16, shared by sequence length with SDPA on CPUs with AMX), else
the PyTorch implementations. On GPUs it keeps to the PyTorch implementations (local correlation, SDPA) until the
Triton and CUDA kernels have been validated and measured on a GPU (their GPU tests and benchmarks are written; no
GPU has run them yet).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Union

import torch

ENV_ALL = "COTRACKER_FAST_BACKEND"
BackendSpec = Union[None, str, Mapping[str, str]]


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend does not exist or cannot run on the given inputs."""


@dataclass
class _Impl:
    fn: Callable
    # returns None when the backend can run on (device, dtype), else a human-readable reason
    check: Callable[[torch.device, torch.dtype], Optional[str]]


@dataclass
class _OpEntry:
    impls: Dict[str, _Impl] = field(default_factory=dict)
    auto_order: List[str] = field(default_factory=list)


_REGISTRY: Dict[str, _OpEntry] = {}


def _always(device, dtype) -> Optional[str]:
    return None


def register_backend(op: str, name: str, fn: Callable, *, check=None, auto_priority: Optional[int] = None) -> None:
    """Register ``fn`` as backend ``name`` of ``op``.

    ``check(device, dtype)`` returns None when the backend can run, else the reason it cannot. ``auto_priority``:
    position in the automatic preference list (lower first; a backend registered later at the same priority goes
    before the earlier one); None keeps it out of the automatic choice.
    """
    entry = _REGISTRY.setdefault(op, _OpEntry())
    entry.impls[name] = _Impl(fn, check or _always)
    if name in entry.auto_order:
        entry.auto_order.remove(name)
    if auto_priority is not None:
        entry.auto_order.insert(min(auto_priority, len(entry.auto_order)), name)


def available_backends(op: str) -> List[str]:
    """Names registered for ``op`` (whether or not they can run on the current machine)."""
    return sorted(_REGISTRY[op].impls)


#: Named sets of backends (a string ``backend`` equal to a key means that dict).
PRESETS: Dict[str, Dict[str, str]] = {"fast": {"corr_sample": "triton", "attention": "cuda"}}


def _requested(op: str, backend: BackendSpec) -> Optional[str]:
    if isinstance(backend, str) and backend in PRESETS:
        backend = PRESETS[backend]
    if isinstance(backend, Mapping):
        unknown = set(backend) - set(_REGISTRY)
        if unknown:
            raise ValueError(f"backend dict names unknown ops {sorted(unknown)}; ops are {sorted(_REGISTRY)}")
        backend = backend.get(op)
    if backend is None:
        backend = os.environ.get(f"{ENV_ALL}_{op.upper()}") or os.environ.get(ENV_ALL) or None
        if backend in PRESETS:
            backend = PRESETS[backend].get(op)
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend must be None, a str or a dict of str, got {type(backend).__name__}")
    return None if backend in (None, "", "auto") else backend


def requests_reference(backend: BackendSpec) -> bool:
    """Whether ``backend`` (with the environment, as :func:`resolve` reads it) names ``reference`` for every op: the
    official arithmetic throughout, which the predictors then keep for the encoder's memory layout as well (its
    channels-last CPU form differs from the official one by float32 rounding)."""
    return all(_requested(op, backend) == "reference" for op in _REGISTRY)


def resolve(op: str, backend: BackendSpec, device: torch.device, dtype: torch.dtype) -> tuple:
    """Return ``(name, fn)`` of the implementation of ``op`` to run on tensors of ``device`` / ``dtype``."""
    entry = _REGISTRY[op]
    name = _requested(op, backend)
    if name is not None:
        impl = entry.impls.get(name)
        if impl is None:
            raise BackendUnavailableError(
                f"{op} has no backend {name!r}; registered: {available_backends(op)} (or 'auto')"
            )
        reason = impl.check(device, dtype)
        if reason is not None:
            raise BackendUnavailableError(f"{op} backend {name!r} cannot run here: {reason}")
        return name, impl.fn
    for cand in entry.auto_order:
        impl = entry.impls[cand]
        if impl.check(device, dtype) is None:
            return cand, impl.fn
    raise BackendUnavailableError(f"no backend of {op} can run on {device} / {dtype}")
