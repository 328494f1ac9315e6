"""Compute dtypes of the predictors: what they accept, what a device runs natively, and the autocast region.

* ``torch.float32`` is the official maths and the Python API's default (an exact drop-in).
* ``torch.bfloat16`` runs the network under autocast: the feature CNN and the transformer blocks in bf16, while the
  coordinates, the correlation sampling, the transformer's input projection and output head, softmax statistics
  and the visibility logits stay in float32. On a CPU, bf16 pays only where the CPU has bf16 arithmetic
  (AVX512-BF16 or AMX on x86, the BF16 extension on Arm); elsewhere it is emulated and several times *slower* than
  float32, so the predictors say so once and run float32 instead.
* ``torch.float16`` runs under autocast on CUDA only: PyTorch's CPU float16 kernels are emulated (an 8-frame 48x64
  clip takes minutes instead of under a second), so a CPU run refuses it and names bf16.
"""
from __future__ import annotations

import contextlib
import functools
import platform
import warnings
from typing import Optional, Union

import torch

__all__ = [
    "autocast_context",
    "check_dtype",
    "cpu_has_native_bf16",
    "parse_dtype_name",
    "resolve_dtype",
]

DTYPE_NAMES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
               "fp16": torch.float16, "float16": torch.float16}


def check_dtype(dtype: Optional[torch.dtype]) -> torch.dtype:
    """The compute dtype a predictor accepts (None means float32); ValueError otherwise."""
    if dtype not in (None, torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16, got {dtype!r}")
    return dtype or torch.float32


def cpu_capabilities() -> dict:
    """PyTorch's report of this CPU's instruction sets (``avx512_bf16``, ``amx_bf16``, ...); empty where unknown."""
    return torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (x86: AVX512-BF16 or AMX-BF16; Arm: the BF16 extension).

    ``torch.backends.cpu.get_cpu_capability()`` is no answer: it says "AVX512" with and without AVX512-BF16."""
    caps = cpu_capabilities()
    if caps.get("avx512_bf16") or caps.get("amx_bf16"):
        return True
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        if platform.system() == "Darwin":
            import subprocess

            try:
                out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                     timeout=5).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                return False
            return out == "1"
        try:
            with open("/proc/cpuinfo") as f:
                return any(line.startswith("Features") and " bf16" in line for line in f)
        except OSError:
            return False
    return False


_WARNED_EMULATED = False


def resolve_dtype(dtype: torch.dtype, device: Union[str, torch.device]) -> torch.dtype:
    """The dtype a run on ``device`` uses for the requested ``dtype``.

    * float16 on a CPU: ``ValueError`` naming bf16 (see the module docstring).
    * bfloat16 on a CPU without native bf16: float32, with a ``UserWarning`` the first time in the process.
    * anything else: ``dtype`` itself.
    """
    device = torch.device(device)
    if device.type != "cpu":
        return dtype
    if dtype == torch.float16:
        raise ValueError(
            "dtype=torch.float16 is not supported on the CPU: PyTorch's CPU float16 kernels are emulated and run "
            "orders of magnitude slower than float32. Use dtype=torch.bfloat16 (fast on CPUs with AVX512-BF16/AMX) "
            "or torch.float32"
        )
    if dtype == torch.bfloat16 and not cpu_has_native_bf16():
        global _WARNED_EMULATED
        if not _WARNED_EMULATED:
            _WARNED_EMULATED = True
            warnings.warn(
                "this CPU has no native bf16 arithmetic (AVX512-BF16 / AMX-BF16 / Arm BF16), where bf16 is emulated "
                "and slower than float32: running float32 instead",
                UserWarning,
                stacklevel=3,
            )
        return torch.float32
    return dtype


def parse_dtype_name(name: str, device: Union[str, torch.device]) -> torch.dtype:
    """A command-line dtype: ``fp32``/``float32``, ``bf16``/``bfloat16``, ``fp16``/``float16`` or ``auto``.

    ``auto`` is bf16 on a CPU with native bf16 and float32 everywhere else (CUDA included)."""
    if name == "auto":
        return torch.bfloat16 if torch.device(device).type == "cpu" and cpu_has_native_bf16() else torch.float32
    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype must be one of auto, {', '.join(DTYPE_NAMES)}; got {name!r}")
    return DTYPE_NAMES[name]


def autocast_context(device: Union[str, torch.device], dtype: torch.dtype):
    """Autocast to ``dtype`` on ``device`` for bf16/fp16; nothing for float32 (the official maths)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
