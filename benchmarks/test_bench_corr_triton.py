"""Triton correlation kernel vs the references (GPU; skipped without CUDA).

Shapes of the official inference path: S = 8 frames, 384x512 input at stride 4 (96x128 level-0 maps), 4 levels,
radius 3, C = 128, N in {256, 1024, 4096, 16384}, fp32 and bf16. Recorded per case: time (pytest-benchmark),
``extra_info.gbps`` = the bytes the op must move at least (track features, coordinates, output, and the pyramid
cells it needs: at most the whole pyramid) divided by the median time, and ``extra_info.peak_mem_MiB``.
Run: ``pytest benchmarks/test_bench_corr_triton.py --benchmark-only --benchmark-json=benchmarks/results/<gpu>.json``.
"""
import pytest
import torch

from cotracker_fast import ops
from cotracker_fast import ops as ref

pytestmark = pytest.mark.gpu

S, H, W, C, LEVELS, RADIUS = 8, 96, 128, 128, 4, 3


def _must_move_bytes(N, dtype, *, S=S, H=H, W=W, C=C, levels=LEVELS, radius=RADIUS):
    """Bytes the forward must move at least (this suite's shapes unless given; ``benchmarks/gpu_check_micro.py`` passes
    its own)."""
    elt = torch.finfo(dtype).bits // 8
    pyramid = sum(S * C * (H >> lvl) * (W >> lvl) for lvl in range(levels)) * elt
    cells = S * N * levels * (2 * radius + 2) ** 2 * C * elt
    return S * N * C * elt + S * N * 2 * 4 + S * N * levels * (2 * radius + 1) ** 2 * 4 + min(pyramid, cells)


@pytest.mark.parametrize("impl", ["triton", "torch", "reference"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("N", [256, 1024, 4096, 16384])
def test_corr_sample_triton_gpu(benchmark, impl, dtype, N):
    benchmark.group = f"corr_sample cuda N={N} {dtype}"
    g = torch.Generator().manual_seed(0)
    fmaps = torch.randn(1, S, C, H, W, generator=g).to("cuda", dtype)
    pyr = ops.build_pyramid(fmaps, LEVELS)
    feats = torch.randn(1, S, N, C, generator=g).to("cuda", dtype)
    coords = (torch.rand(1, S, N, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])).cuda()
    fn = {"triton": None, "torch": ref.corr_sample_torch, "reference": ref.corr_sample_reference}[impl]

    def call():
        out = ops.corr_sample(pyr, feats, coords, RADIUS, backend="triton") if fn is None else fn(pyr, feats, coords, RADIUS)
        torch.cuda.synchronize()
        return out

    call()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    benchmark(call)
    benchmark.extra_info["peak_mem_MiB"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    benchmark.extra_info["gbps"] = _must_move_bytes(N, dtype) / benchmark.stats.stats.median / 1e9
