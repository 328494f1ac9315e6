"""Speed of the correlation and attention implementations (pytest-benchmark).

Run: ``make bench`` (saves ``benchmarks/results/latest.json``). Every fast backend is compared with the reference
from :mod:`cotracker_fast.ops`. The GPU cases use the official inference shapes (S = 8, 384x512 at
stride 4: 96x128 level-0 maps, 4 levels, radius 3, C = 128) and also record peak memory.
"""
import pytest
import torch

from cotracker_fast import ops
from cotracker_fast import ops as ref
from cotracker_fast.ops import _cpu_ext
from cotracker_fast.ops.op_corr4d import channels_last_level

CORR_IMPLS = {"dense (official-equivalent)": ref.corr_sample_reference, "local": ref.corr_sample_torch}
ATTN_IMPLS = {"math": ref.attention_reference, "sdpa": ref.attention_sdpa}
needs_cpu_ext = pytest.mark.skipif(_cpu_ext.cpu_extension_error() is not None,
                                   reason=str(_cpu_ext.cpu_extension_error()))


def _corr_inputs(device, B, S, N, H, W, C=128, levels=4, dtype=torch.float32):
    g = torch.Generator(device="cpu").manual_seed(0)
    fmaps = torch.randn(B, S, C, H, W, generator=g).to(device, dtype)
    feats = torch.randn(B, S, N, C, generator=g).to(device, dtype)
    coords = (torch.rand(B, S, N, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])).to(device)
    return ops.build_pyramid(fmaps, levels), feats, coords


def _run(benchmark, fn, args, device):
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

        def call():
            out = fn(*args)
            torch.cuda.synchronize()
            return out

        benchmark(call)
        benchmark.extra_info["peak_mem_MiB"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        benchmark(fn, *args)


@pytest.mark.parametrize("impl", list(CORR_IMPLS))
@pytest.mark.parametrize("N, H, W", [(64, 48, 64), (256, 96, 128)])
def test_corr_sample_cpu(benchmark, impl, N, H, W):
    """CPU, S = 8, 4 levels, radius 3, C = 128: reduced maps (48x64) and the official ones (96x128)."""
    benchmark.group = f"corr_sample cpu N={N} {H}x{W}"
    pyr, feats, coords = _corr_inputs("cpu", 1, 8, N, H, W)
    _run(benchmark, CORR_IMPLS[impl], (pyr, feats, coords, 3), "cpu")


@pytest.mark.parametrize("impl", list(ATTN_IMPLS))
@pytest.mark.parametrize("shape", [(256, 8), (8, 256)], ids=["time", "space"])
def test_attention_cpu(benchmark, impl, shape):
    """CPU, UpdateFormer shapes with N = 256 tracks: time (batch N, length S=8) and space (batch S, length N)."""
    batch, L = shape
    benchmark.group = f"attention cpu batch={batch} L={L}"
    qkv = torch.randn(batch, L, 3, 8, 48)
    _run(benchmark, ATTN_IMPLS[impl], (qkv,), "cpu")


def _channels_last(pyramid):
    return [channels_last_level(p) for p in pyramid]


@needs_cpu_ext
@pytest.mark.parametrize("impl", ["local", "cpu kernel"])
@pytest.mark.parametrize("N", [256, 1060])
def test_corr_sample_cpu_kernel(benchmark, impl, N):
    """CPU, the model's window at 384x512: S = 8, 96x128 level-0 maps stored channels-last (as the model keeps its
    pyramid), 4 levels, radius 3, C = 128; N = 1060 is 1024 queries plus the 6x6 support grid."""
    benchmark.group = f"corr_sample cpu channels-last N={N} 96x128"
    pyr, feats, coords = _corr_inputs("cpu", 1, 8, N, 96, 128)
    fn = ref.corr_sample_cpu if impl == "cpu kernel" else ref.corr_sample_torch
    _run(benchmark, fn, (_channels_last(pyr), feats, coords, 3), "cpu")


@needs_cpu_ext
@pytest.mark.skipif(not _cpu_ext.cpu_bf16_attention_supported(), reason="this CPU lacks AVX512-BF16")
@pytest.mark.parametrize("impl", ["sdpa fp32", "sdpa bf16", "cpu kernel bf16"])
@pytest.mark.parametrize("shape", [(1060, 8), (8, 1060)], ids=["time", "space"])
def test_attention_cpu_kernel(benchmark, impl, shape):
    """CPU, UpdateFormer shapes of the N = 1024 window (1060 tracks with the support grid, S = 8, 8 heads of 48):
    SDPA in fp32 and bf16 against the AVX512-BF16 kernel."""
    batch, L = shape
    benchmark.group = f"attention cpu bf16 batch={batch} L={L}"
    qkv = torch.randn(batch, L, 3, 8, 48)
    if impl == "cpu kernel bf16":
        _run(benchmark, ref.attention_cpu, (qkv.bfloat16(),), "cpu")
    else:
        _run(benchmark, ref.attention_sdpa, (qkv if impl == "sdpa fp32" else qkv.bfloat16(),), "cpu")


@needs_cpu_ext
@pytest.mark.skipif(not _cpu_ext.cpu_bf16_attention_supported(), reason="this CPU lacks AVX512-BF16")
@pytest.mark.parametrize("impl", ["sdpa bf16", "cpu kernel bf16"])
@pytest.mark.parametrize("L", [8, 16, 32, 64, 128, 256])
def test_attention_cpu_length_sweep(benchmark, impl, L):
    """CPU bf16, about 8,480 tokens (1060 tracks x 8 frames; 8480 // L sequences of length L), 8 heads of 48: where the
    AVX512-BF16 kernel stops beating SDPA (``CPU_AMX_KERNEL_MAX_LEN`` of the ``cpu_amx`` backend)."""
    benchmark.group = f"attention cpu bf16 8480 tokens L={L}"
    qkv = torch.randn(8480 // L, L, 3, 8, 48).bfloat16()
    _run(benchmark, ref.attention_cpu if impl == "cpu kernel bf16" else ref.attention_sdpa, (qkv,), "cpu")


@pytest.mark.parametrize("impl", ["F.linear under autocast", "fused (models.updateformer.linear)"])
@pytest.mark.parametrize("shape", [(8480, 384, 1152), (8480, 384, 1536), (8480, 1536, 384), (64, 384, 1152)],
                         ids=["qkv", "fc1", "fc2", "qkv-64-tokens"])
def test_linear_cpu_bf16(benchmark, impl, shape):
    """CPU bf16 autocast inference of the transformer blocks' Linears (tokens, in, out): autocast's ``aten::addmm``
    against the oneDNN matmul with the bias in its epilogue (fc1 also with its tanh GELU, as in the model)."""
    import torch.nn.functional as F

    from cotracker_fast.models.updateformer import linear

    M, K, Nout = shape
    benchmark.group = f"linear cpu bf16 {M}x{K}->{Nout}"
    layer = torch.nn.Linear(K, Nout).eval()
    x = torch.randn(M, K)
    gelu = K == 384 and Nout == 1536

    def call():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            if impl.startswith("fused"):
                return linear(layer, x, gelu_tanh=gelu)
            y = layer(x)
            return F.gelu(y, approximate="tanh") if gelu else y

    benchmark(call)


@pytest.mark.gpu
@pytest.mark.parametrize("impl", list(CORR_IMPLS))
@pytest.mark.parametrize("N", [256, 1024, 4096])
def test_corr_sample_gpu(benchmark, impl, N):
    benchmark.group = f"corr_sample cuda N={N}"
    pyr, feats, coords = _corr_inputs("cuda", 1, 8, N, 96, 128)
    _run(benchmark, CORR_IMPLS[impl], (pyr, feats, coords, 3), "cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("impl", list(ATTN_IMPLS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(4096, 8), (8, 4096)], ids=["time", "space"])
def test_attention_gpu(benchmark, impl, dtype, shape):
    batch, L = shape
    benchmark.group = f"attention cuda batch={batch} L={L} {dtype}"
    qkv = torch.randn(batch, L, 3, 8, 48, device="cuda", dtype=dtype)
    _run(benchmark, ATTN_IMPLS[impl], (qkv,), "cuda")
