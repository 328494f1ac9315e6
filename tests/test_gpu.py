"""CUDA checks (marked `gpu`: skipped with a reason on machines without a GPU, run on the device machine)."""
import os

import numpy as np
import pytest
import torch

import golden_inputs as gi
from cotracker_fast.models.registry import create_model
from cotracker_fast.online import CoTrackerOnlinePredictor
from cotracker_fast.predictor import CoTrackerPredictor
from helpers import synthetic_state_dict

pytestmark = pytest.mark.gpu
GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "data", "official_v1_golden.npz"))


@pytest.mark.parametrize("backend", ["reference", "torch"])
@pytest.mark.parametrize("case", [c for c in gi.CASES if c["kind"] == "model" and c["tame"]], ids=lambda c: c["id"])
@torch.no_grad()
def test_model_matches_official_on_cuda(case, backend):
    """fp32 on CUDA against the official code's CPU outputs. TF32 is off so the matmuls are true fp32; the
    remaining differences are summation order, as on the CPU (bound: mean 1e-3 / max 0.05 px)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = create_model(case["model"], backend=backend).eval().cuda()
    model.load_state_dict(synthetic_state_dict(case["seed"], tame=True))
    tracks, _, vis, _ = model(gi.make_video(case).cuda(), gi.make_queries(case).cuda(), iters=case["iters"])
    diff = (tracks.cpu() - torch.from_numpy(GOLDEN[case["id"] + "/tracks"])).abs()
    assert diff.mean() <= 1e-3 and diff.max() <= 0.05, f"mean {diff.mean():.3g} max {diff.max():.3g}"


def test_streaming_equals_offline_on_cuda(tmp_path):
    sd = synthetic_state_dict(3, tame=True)
    path = tmp_path / "cotracker_stride_4_wind_8.pth"
    torch.save(sd, path)
    off = CoTrackerPredictor(str(path), device="cuda")
    on = CoTrackerOnlinePredictor(str(path), device="cuda")
    g = torch.Generator().manual_seed(0)
    video = (torch.rand(1, 19, 3, 60, 80, generator=g) * 255).cuda()
    q = torch.tensor([[[0.0, 10, 12], [5.0, 30, 20], [9.0, 60, 40]]], device="cuda")
    t_off, v_off = off(video, q)
    on.start((60, 80), q)
    outs = [on.step(video[:, i : i + 3]) for i in range(0, 19, 3)] + [on.finish()]
    t_on = torch.cat([o[0] for o in outs], 1)
    v_on = torch.cat([o[1] for o in outs], 1)
    assert torch.equal(t_on, t_off) and torch.equal(v_on, v_off)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_on_cuda(tmp_path, dtype):
    sd = synthetic_state_dict(4, tame=True)
    path = tmp_path / "cotracker_stride_4_wind_8.pth"
    torch.save(sd, path)
    case = [c for c in gi.CASES if c["id"] == "pred_queries_backward"][0]
    video = gi.make_video(case).cuda()
    ref, _ = CoTrackerPredictor(str(path), device="cuda")(video, **{k: (v.cuda() if torch.is_tensor(v) else v)
                                                                       for k, v in gi.predictor_kwargs(case).items()})
    low, _ = CoTrackerPredictor(str(path), device="cuda", dtype=dtype)(
        video, **{k: (v.cuda() if torch.is_tensor(v) else v) for k, v in gi.predictor_kwargs(case).items()}
    )
    assert torch.isfinite(low).all()
    # Not yet measured on a GPU (none was available when this was written). On CPU autocast the full-pipeline
    # deviation of these weights is ~0.1 px mean (bf16); CUDA kernels round differently, so the bound is 1 px mean.
    assert (low - ref).abs().mean() < 1.0
