"""End-to-end speed of the predictor (pytest-benchmark): the reference backend (official maths: dense correlation
volume, explicit attention) against the default automatic backend."""
import warnings

import pytest
import torch

from cotracker_fast.predictor import CoTrackerPredictor


def _predictor(backend, device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CoTrackerPredictor(None, model_name="cotracker_stride_4_wind_8", backend=backend, device=device)  # random weights: speed does not depend on them


def _inputs(T, N, device):
    g = torch.Generator().manual_seed(0)
    video = (torch.rand(1, T, 3, 384, 512, generator=g) * 255).to(device)
    q = torch.cat([torch.zeros(1, N, 1), torch.rand(1, N, 2, generator=g) * torch.tensor([511.0, 383.0])], -1)
    return video, q.to(device)


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_predictor_cpu(benchmark, backend):
    """CPU: 12 frames at 384x512, 64 query points (+ the 6x6 support grid), 6 iterations."""
    benchmark.group = "predictor cpu T=12 N=64"
    p = _predictor(backend, "cpu")
    video, q = _inputs(12, 64, "cpu")
    benchmark.pedantic(p, args=(video, q), rounds=2, iterations=1, warmup_rounds=0)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["reference", "auto"])
@pytest.mark.parametrize("N", [256, 1024])
def test_predictor_gpu(benchmark, backend, N):
    benchmark.group = f"predictor cuda T=24 N={N}"
    p = _predictor(backend, "cuda")
    video, q = _inputs(24, N, "cuda")

    def call():
        out = p(video, q)
        torch.cuda.synchronize()
        return out

    torch.cuda.reset_peak_memory_stats()
    benchmark.pedantic(call, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["peak_mem_MiB"] = torch.cuda.max_memory_allocated() / 2**20
