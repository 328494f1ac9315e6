"""The paper's single-point protocol: batched over shared features vs the official one-model-call-per-point loop.

A 30-query video (target: batched >= 10x faster than the loop). CPU case at a reduced resolution so that it finishes
in minutes on 2 cores; GPU case at the official 384x512. Random weights (speed does not depend on them).
"""
import pytest
import torch

from cotracker_fast.evaluation import protocols
from cotracker_fast.models.registry import create_model

IMPLS = {"batched": protocols.single_point_tracks, "one_by_one": protocols.single_point_tracks_one_by_one}


def _case(device, T, hw, n=30):
    torch.manual_seed(0)
    model = create_model().eval().to(device)
    video = (torch.rand(1, T, 3, *hw) * 255).to(device)
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, T // 2, (n,), generator=g).float()
    t[: n // 2] = 0
    xy = torch.rand(n, 2, generator=g) * torch.tensor([hw[1] - 1.0, hw[0] - 1.0])
    return model, video, torch.cat([t[:, None], xy], 1).to(device)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_single_point_protocol_cpu(benchmark, impl):
    benchmark.group = "single-point protocol cpu 30 queries T=16 192x256"
    model, video, q = _case("cpu", 16, (192, 256))
    benchmark.pedantic(IMPLS[impl], args=(model, video, q), kwargs=dict(iters=6), rounds=1, iterations=1)


@pytest.mark.gpu
@pytest.mark.parametrize("impl", list(IMPLS))
def test_single_point_protocol_gpu(benchmark, impl):
    benchmark.group = "single-point protocol cuda 30 queries T=24 384x512"
    model, video, q = _case("cuda", 24, (384, 512))

    def call():
        out = IMPLS[impl](model, video, q, iters=6)
        torch.cuda.synchronize()
        return out

    benchmark.pedantic(call, rounds=3, iterations=1, warmup_rounds=1)
