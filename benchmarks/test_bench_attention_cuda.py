"""CUDA attention kernels vs every SDPA backend and the reference, at the UpdateFormer's shapes (GPU only).

Time attention: batch B*N in {1024, 8192, 65536}, 8 heads, L = 8, head dim 48. Group attention: batch B*S = 8,
8 heads, L = N in {256, 1024, 4096, 16384}. fp16 and bf16. Providers: ``cuda`` (csrc/attention.cu), ``reference``
(explicit softmax), and ``sdpa-<backend>`` for each of math / flash / efficient / cudnn that runs on the inputs.
Run: ``pytest benchmarks/test_bench_attention_cuda.py --benchmark-only --benchmark-json=benchmarks/results/<gpu>.json``.
"""
import pytest
import torch
import torch.nn.functional as F

from cotracker_fast import ops as ref

pytestmark = pytest.mark.gpu

SHAPES = [("time", b, 8) for b in (1024, 8192, 65536)] + [("group", 8, n) for n in (256, 1024, 4096, 16384)]
PROVIDERS = ["cuda", "reference", "sdpa-math", "sdpa-flash", "sdpa-efficient", "sdpa-cudnn"]


def _sdpa(backend_name):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}[backend_name]

    def run(qkv):
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        with sdpa_kernel(backend):
            out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(qkv.shape[0], qkv.shape[1], -1)

    return run


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kind, batch, L", SHAPES, ids=[f"{k}-b{b}-L{n}" for k, b, n in SHAPES])
def test_attention_cuda_gpu(benchmark, provider, dtype, kind, batch, L):
    benchmark.group = f"attention {kind} batch={batch} L={L} {dtype}"
    qkv = torch.randn(batch, L, 3, 8, 48, device="cuda", dtype=dtype)
    if provider == "cuda":
        from cotracker_fast.ops.op_attention import attention_cuda as fn
    elif provider == "reference":
        fn = ref.attention_reference
    else:
        fn = _sdpa(provider.split("-", 1)[1])
    try:
        fn(qkv)
    except RuntimeError as err:  # this SDPA backend does not support these inputs on this GPU
        pytest.skip(f"{provider} cannot run: {err}")

    def call():
        out = fn(qkv)
        torch.cuda.synchronize()
        return out

    benchmark(call)
