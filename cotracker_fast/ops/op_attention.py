"""The ``attention`` op: multi-head attention on a packed ``qkv`` projection (no causal mask, no bias).

Backends (:mod:`cotracker_fast.ops.backend`), all with the signature of :func:`attention_reference`:

* ``reference`` (:func:`attention_reference`): softmax(q k^T * scale) v written out;
* ``torch`` (:func:`attention_sdpa`, the automatic choice): ``F.scaled_dot_product_attention``;
* ``cpu`` (:func:`attention_cpu`, the automatic choice for bfloat16 on CPUs with AVX512-BF16 but no AMX): the
  flash-style kernel of ``csrc/cpu/attention_cpu.cpp`` in the extension ``cotracker_fast._cpu``. Forward only:
  with autograd, and for head dims other than 32 / 48 / 64, it runs SDPA instead.
* ``cpu_amx`` (:func:`attention_cpu_amx`, the automatic choice for bfloat16 on CPUs with AMX tiles; needs the
  same extension and AVX512-BF16): that kernel for sequences of length <= 32, SDPA (bf16 on the AMX tiles) for
  longer ones.
* ``cuda`` (:func:`attention_cuda`): the kernels of ``csrc/attention.cu`` in the extension ``cotracker_fast._C``.
  Loading is lazy and happens on first use, never at import: the prebuilt ``cotracker_fast._C`` (built by
  ``setup.py`` when nvcc was found), else a JIT build with ninja into ``~/.cache/cotracker_fast`` on a machine with a
  GPU and nvcc, else unavailable with one warning. ``COTRACKER_FAST_NO_JIT=1`` loads a JIT build already in the
  cache but never compiles one (``make gpu-check`` builds once, then runs many processes that must not all start the
  same build). Sequences of length <= 32 without a key mask (the time blocks) go to the time-attention kernel,
  everything else (the group blocks, masked or not) to the flash-style group kernel. Forward only in CUDA; the
  backward recomputes the reference attention in fp32 under autograd, so training works and gives the reference
  gradients.
"""
from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ._cpu_ext import cpu_bf16_attention_supported, cpu_extension_error, load_cpu_extension
from .backend import BackendSpec, register_backend, resolve

__all__ = ["attention", "attention_reference", "attention_sdpa", "attention_cuda", "attention_cpu", "attention_cpu_amx",
           "load_extension", "has_cuda_ext"]


def _check_qkv(qkv: Tensor, key_mask: Optional[Tensor]) -> None:
    if qkv.dim() != 5 or qkv.shape[2] != 3:
        raise ValueError(f"qkv must be (batch, L, 3, heads, head_dim), got shape {tuple(qkv.shape)}")
    if key_mask is not None:
        if key_mask.dtype != torch.bool or key_mask.shape != (qkv.shape[0], qkv.shape[1]):
            raise ValueError(
                f"key_mask must be a bool tensor of shape (batch, L) = {(qkv.shape[0], qkv.shape[1])}, "
                f"got {key_mask.dtype} {tuple(key_mask.shape)}"
            )


def attention_reference(qkv: Tensor, key_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """Multi-head attention written out: softmax(q k^T * scale) v. See :func:`attention`."""
    _check_qkv(qkv, key_mask)
    Bt, L, _, H, D = qkv.shape
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (Bt, H, L, D)
    scale = D**-0.5 if scale is None else scale
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    out = torch.matmul(scores.softmax(dim=-1), v)
    return out.transpose(1, 2).reshape(Bt, L, H * D)


def attention_sdpa(qkv: Tensor, key_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """Multi-head attention through ``F.scaled_dot_product_attention``. See :func:`attention`."""
    _check_qkv(qkv, key_mask)
    Bt, L, _, H, D = qkv.shape
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out.transpose(1, 2).reshape(Bt, L, H * D)


# ------------------------------------------------------------------------------------------------ CUDA backend

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
        out = attention_reference(q32, key_mask, ctx.scale)
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


def _cuda_check(device: torch.device, dtype: torch.dtype):
    return check(device, dtype)


# ------------------------------------------------------------------------------------------------ CPU backend

CPU_HEAD_DIMS = (32, 48, 64)


def _cpu_check(device: torch.device, dtype: torch.dtype) -> Optional[str]:
    if device.type != "cpu":
        return f"needs CPU tensors, got {device.type}"
    if dtype != torch.bfloat16:
        return f"runs bfloat16 only (float32 is at the matrix roof through SDPA), got {dtype}"
    err = cpu_extension_error()
    if err is not None:
        return err
    if not cpu_bf16_attention_supported():
        return "this CPU lacks AVX512-BF16"
    return None


def cpu_has_amx_bf16() -> bool:
    """Whether this CPU has AMX-BF16 tiles (PyTorch's capability report)."""
    from ..precision import cpu_capabilities

    return bool(cpu_capabilities().get("amx_bf16"))


def _cpu_amx_check(device: torch.device, dtype: torch.dtype) -> Optional[str]:
    reason = _cpu_check(device, dtype)
    if reason is None and not cpu_has_amx_bf16():
        return "this CPU has no AMX-BF16 tiles"
    return reason


@torch.library.custom_op("cotracker_fast::attention_cpu", mutates_args=(), device_types="cpu")
def _attention_cpu_op(qkv: Tensor, key_mask: Optional[Tensor], scale: float) -> Tensor:
    ext = load_cpu_extension()
    Bt, L, _, H, D = qkv.shape
    out = torch.empty(Bt, L, H * D, dtype=qkv.dtype)
    mask = None if key_mask is None else key_mask.to(torch.uint8).contiguous()
    sb, sl, s3, sh, _ = qkv.stride()
    ext.attention_bf16_fwd_cpu(
        qkv.data_ptr(), 0 if mask is None else mask.data_ptr(), out.data_ptr(), Bt, L, H, D, sb, sl, s3, sh,
        0 if mask is None else mask.stride(0), scale, torch.get_num_threads(),
    )
    return out


@_attention_cpu_op.register_fake
def _(qkv, key_mask, scale):
    Bt, L, _, H, D = qkv.shape
    return qkv.new_empty(Bt, L, H * D)


def attention_cpu(qkv: Tensor, key_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """CPU bfloat16 backend of :func:`cotracker_fast.ops.attention` (same signature and maths as the references).

    ``qkv`` ``(batch, L, 3, heads, head_dim)`` bfloat16 on the CPU, last dimension contiguous (the packed ``qkv``
    Linear output is read in place). Returns ``(batch, L, heads * head_dim)`` bfloat16. Scores, softmax statistics
    and accumulation in fp32; the probabilities are rounded to bf16 before they weight ``v``, as in SDPA's CPU
    flash kernel. Needs the extension ``cotracker_fast._cpu`` and a CPU with AVX512-BF16. Forward only: when
    autograd records, or for head dims outside (32, 48, 64), it returns :func:`attention_sdpa` (the same maths).
    """
    _check_qkv(qkv, key_mask)
    reason = _cpu_check(qkv.device, qkv.dtype)
    if reason is not None:
        raise ValueError(f"attention_cpu cannot run on these inputs: {reason}")
    if (torch.is_grad_enabled() and qkv.requires_grad) or qkv.shape[-1] not in CPU_HEAD_DIMS or qkv.stride(-1) != 1:
        return attention_sdpa(qkv, key_mask, scale)
    if key_mask is not None and key_mask.device != qkv.device:
        raise ValueError(f"key_mask must be on {qkv.device}, got {key_mask.device}")
    scale = qkv.shape[-1] ** -0.5 if scale is None else float(scale)
    return _attention_cpu_op(qkv, key_mask, scale)


#: Longest sequence :func:`attention_cpu_amx` gives to the AVX512-BF16 kernel; longer ones go to SDPA.
CPU_AMX_KERNEL_MAX_LEN = 32


def attention_cpu_amx(qkv: Tensor, key_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """CPU bfloat16 backend for CPUs with AMX tiles (same signature and maths as the references).

    Sequences of length <= :data:`CPU_AMX_KERNEL_MAX_LEN` (the time blocks: one track's frames) run
    :func:`attention_cpu`, whose per-row work has no setup cost; longer ones (the group blocks: all tracks of a
    frame) run SDPA, whose bf16 flash kernel multiplies on the AMX tiles through oneDNN. On a 2-core Intel Xeon
    (family 6 model 167), 8,480 tokens, 8 heads of 48: L = 8 took 6.7 ms in the kernel and 20.9 ms in SDPA, L = 32
    9.7 against 11.4 ms, L = 64 12.5 against 12.1 ms, L = 256 48.5 against 24.6 ms.
    """
    if qkv.dim() == 5 and qkv.shape[1] <= CPU_AMX_KERNEL_MAX_LEN:
        return attention_cpu(qkv, key_mask, scale)
    return attention_sdpa(qkv, key_mask, scale)


register_backend("attention", "reference", attention_reference)
register_backend("attention", "cpu", attention_cpu, check=_cpu_check, auto_priority=0)
# ahead of ``cpu`` in the automatic choice: where its check passes (AMX), the split beats the kernel alone
register_backend("attention", "cpu_amx", attention_cpu_amx, check=_cpu_amx_check, auto_priority=0)
register_backend("attention", "torch", attention_sdpa, auto_priority=100)
# Explicit only for now: the kernels compile and validate their inputs, but have not yet run on a GPU; they join the
# automatic choice once measured (benchmarks/test_bench_attention_cuda.py).
register_backend("attention", "cuda", attention_cuda, check=_cuda_check)


def attention(
    qkv: Tensor,
    key_mask: Optional[Tensor] = None,
    scale: Optional[float] = None,
    *,
    backend: BackendSpec = None,
    check_mask: bool = True,
) -> Tensor:
    """Multi-head attention on a packed projection, no causal mask, no bias.

    Args:
        qkv: ``(batch, L, 3, heads, head_dim)``: the output of the ``qkv`` Linear viewed as q, k, v per head.
        key_mask: optional bool ``(batch, L)``; False keys are ignored. Every batch row needs a valid key:
            ``check_mask`` verifies it (one device sync); callers that guarantee it pass False.
        scale: softmax scale, default ``head_dim ** -0.5``.
        backend: see :mod:`cotracker_fast.ops.backend`.

    Returns:
        ``(batch, L, heads * head_dim)`` in the dtype of ``qkv``, ready for the output projection.
    """
    if check_mask and key_mask is not None and not bool(key_mask.any(dim=1).all()):
        raise ValueError("key_mask leaves a batch row with no valid key (its softmax would be undefined)")
    _, fn = resolve("attention", backend, qkv.device, qkv.dtype)
    return fn(qkv, key_mask, scale)
