"""Loading of the CPU kernels' extension ``cotracker_fast._cpu`` (``csrc/cpu/``).

``setup.py`` builds it with the machine's C++ compiler (pybind11, no torch headers); a checkout built before those
sources existed, or a machine where the build was skipped (``COTRACKER_FAST_NO_CPU_EXT=1``), has none, and the ops
keep to their PyTorch backends. Loading is lazy and happens once.
"""
from __future__ import annotations

import threading
from typing import Optional

_lock = threading.Lock()
_ext = None
_error: Optional[str] = None
_tried = False


def load_cpu_extension():
    """The ``_cpu`` module, or None when it is not built (:func:`cpu_extension_error` says why)."""
    global _ext, _error, _tried
    with _lock:
        if not _tried:
            _tried = True
            try:
                from .. import _cpu

                _ext = _cpu
            except ImportError as err:
                _error = f"the CPU extension cotracker_fast._cpu is not built ({err}); reinstall with `pip install -e .`"
        return _ext


def cpu_extension_error() -> Optional[str]:
    """None when the CPU extension loads, else the reason it does not (after the first call: a plain read, which
    torch.compile traces without a graph break)."""
    if not _tried:
        load_cpu_extension()
    return _error


_bf16_kernel: Optional[bool] = None


def cpu_bf16_attention_supported() -> bool:
    """True when the extension loads and this CPU executes AVX512-BF16 (the bf16 attention kernel's instructions)."""
    global _bf16_kernel
    if _bf16_kernel is None:
        ext = load_cpu_extension()
        _bf16_kernel = bool(ext is not None and ext.attention_bf16_supported())
    return _bf16_kernel
