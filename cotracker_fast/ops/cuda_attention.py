"""CUDA backend of :func:`cotracker_fast.ops.attention` (kernels in ``csrc/attention.cu``).

Loading is lazy and happens on first use, never at import: the prebuilt ``cotracker_fast._C`` (built by
``setup.py`` when nvcc was found), else a JIT build with ninja into ``~/.cache/cotracker_fast`` on a machine with a
GPU and nvcc, else unavailable with one warning. ``COTRACKER_FAST_NO_JIT=1`` loads a JIT build already in the cache but
never compiles one (``make gpu-check`` builds once, then runs many processes that must not all start the same build).

Dispatch: sequences of length <= 32 without a key mask (the time blocks) go to the time-attention kernel, everything
else (the group blocks, masked or not) to the flash-style group kernel. Forward only in CUDA; the backward is a
documented fallback that recomputes the reference attention in fp32 under autograd (``_attention_math``), so training
works and gives the reference gradients.
"""
from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from ._torch_impl import _attention_math, _check_qkv

_DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
HEAD_DIMS = (32, 48, 64)
MAX_TIME_LEN = 32
MAX_LEN = 65536

_lock = threading.Lock()
_ext = None
_tried = False


def jit_extension_path() -> Path:
    """Where the JIT build of the current sources and build parameters (architectures, debug) lives:
    ``$COTRACKER_FAST_CACHE`` (default ``~/.cache/cotracker_fast``) ``/jit-<digest of the parameters>/_C<suffix>``.
    Processes with the same sources and environment share one build (``make gpu-check`` builds it once, its tests
    and benchmarks load it)."""
    from .. import _cuda_build

    digest = hashlib.sha256(repr(_cuda_build.build_params()).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("COTRACKER_FAST_CACHE", Path.home() / ".cache" / "cotracker_fast")) / f"jit-{digest}"
    return cache / _cuda_build.extension_filename()


def _jit_build():
    from .. import _cuda_build

    if _cuda_build.nvcc_path() is None:
        raise RuntimeError("nvcc not found")
    dest = jit_extension_path()
    if not dest.exists():
        if os.environ.get("COTRACKER_FAST_NO_JIT", "0") not in ("", "0"):
            raise RuntimeError(f"no build of the current sources at {dest}, and COTRACKER_FAST_NO_JIT is set")
        _cuda_build.build(str(dest))
    import importlib.util

    spec = importlib.util.spec_from_file_location("cotracker_fast._C", dest)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_extension():
    """The ``_C`` module, or None (with one warning) when it can neither be imported nor built."""
    global _ext, _tried
    with _lock:
        if _tried:
            return _ext
        _tried = True
        try:
            from .. import _C

            _ext = _C
        except ImportError as err:
            reason = f"no prebuilt module ({err})"
            if torch.cuda.is_available():
                try:
                    _ext = _jit_build()
                except Exception as build_err:  # reported once, below
                    reason += f"; JIT build failed: {build_err}"
            if _ext is None:
                warnings.warn(f"cotracker_fast CUDA attention is unavailable: {reason}", RuntimeWarning)
        return _ext


def has_cuda_ext() -> bool:
    """True when the CUDA extension can be loaded (may build it on a GPU machine)."""
    return load_extension() is not None


def check(device: torch.device, dtype: torch.dtype) -> Optional[str]:
    """Resolver check: None when the CUDA backend can run on ``device`` / ``dtype``, else the reason."""
    if device.type != "cuda":
        return f"needs CUDA tensors, got {device.type}"
    if dtype not in _DTYPE_CODES:
        return f"supports float32, float16 and bfloat16, got {dtype}"
    if not has_cuda_ext():
        return "the CUDA extension could not be loaded or built"
    return None


def _validate(qkv: Tensor, key_mask: Optional[Tensor]) -> None:
    _check_qkv(qkv, key_mask)
    if qkv.device.type != "cuda":
        raise ValueError(f"qkv must be a CUDA tensor, got device {qkv.device}")
    if qkv.dtype not in _DTYPE_CODES:
        raise ValueError(f"qkv dtype must be float32, float16 or bfloat16, got {qkv.dtype}")
    if qkv.shape[-1] not in HEAD_DIMS:
        raise ValueError(f"head_dim (qkv.shape[-1]) must be one of {HEAD_DIMS}, got {qkv.shape[-1]}")
    if qkv.stride(-1) != 1:
        raise ValueError("qkv must be contiguous in its last (head_dim) dimension")
    if qkv.shape[1] > MAX_LEN:
        raise ValueError(f"sequence length must be <= {MAX_LEN}, got {qkv.shape[1]}")
    if key_mask is not None and key_mask.device != qkv.device:
        raise ValueError(f"key_mask must be on {qkv.device}, got {key_mask.device}")


@torch.library.custom_op("cotracker_fast::attention", mutates_args=(), device_types="cuda")
def _attention_op(qkv: Tensor, key_mask: Optional[Tensor], scale: float) -> Tensor:
    ext = load_extension()
    if ext is None:
        raise RuntimeError("the cotracker_fast CUDA extension is unavailable (see the earlier warning)")
    Bt, L, _, H, D = qkv.shape
    out = torch.empty(Bt, L, H * D, device=qkv.device, dtype=qkv.dtype)
    sb, sl, s3, sh, _ = qkv.stride()
    stream = torch.cuda.current_stream(qkv.device).cuda_stream
    code = _DTYPE_CODES[qkv.dtype]
    with torch.cuda.device(qkv.device):
        if key_mask is None and L <= MAX_TIME_LEN:
            ext.time_attention_fwd_cuda(qkv.data_ptr(), out.data_ptr(), Bt, L, H, D, sb, sl, s3, sh, scale, code, stream)
        else:
            mask = None if key_mask is None else key_mask.to(torch.uint8).contiguous()
            ext.group_attention_fwd_cuda(
                qkv.data_ptr(), 0 if mask is None else mask.data_ptr(), out.data_ptr(), Bt, L, H, D,
                sb, sl, s3, sh, 0 if mask is None else mask.stride(0), scale, code, stream,
            )
    return out


@_attention_op.register_fake
def _(qkv, key_mask, scale):
    Bt, L, _, H, D = qkv.shape
    return qkv.new_empty(Bt, L, H * D)


def _setup_context(ctx, inputs, output):
    qkv, key_mask, scale = inputs
    ctx.scale = scale
    ctx.save_for_backward(qkv, key_mask)


def _backward(ctx, grad):
    """Fallback backward: the reference attention recomputed in fp32 under autograd."""
    qkv, key_mask = ctx.saved_tensors
    with torch.enable_grad():
        q32 = qkv.detach().float().requires_grad_(True)
        out = _attention_math(q32, key_mask, ctx.scale)
        (g,) = torch.autograd.grad(out, q32, grad.float())
    return g.to(qkv.dtype), None, None


torch.library.register_autograd("cotracker_fast::attention", _backward, setup_context=_setup_context)


def attention_cuda(qkv: Tensor, key_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """CUDA backend of :func:`cotracker_fast.ops.attention` (same signature and maths as the references).

    ``qkv`` ``(batch, L, 3, heads, head_dim)`` on CUDA, float32 / float16 / bfloat16, head_dim in {32, 48, 64},
    L <= 65,536, last dimension contiguous (other strides are free: the packed ``qkv`` Linear output is read as is).
    Returns ``(batch, L, heads * head_dim)`` in the input dtype; softmax and accumulation in fp32.
    """
    _validate(qkv, key_mask)
    scale = qkv.shape[-1] ** -0.5 if scale is None else float(scale)
    return _attention_op(qkv, key_mask, scale)
