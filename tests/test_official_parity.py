"""Parity with the official CoTracker v1 code, through golden outputs it produced (tests/data/README.md).

Targets from the foundation issue: with the same weights, fp32 on CPU, mean |diff| <= 1e-3 px, max <= 0.05 px and
visibility agreement >= 99.9%. Weights are synthetic (no trained checkpoint can be fetched here): the "tamed" ones
are well-conditioned (helpers.tame_random_weights_), the "untamed" ones exercise every op but are chaotic, so
those cases run one window with 1-2 iterations and have their own, measured bounds.
"""
import os

import numpy as np
import pytest
import torch

import golden_inputs as gi
from cotracker_fast.models.registry import create_model
from cotracker_fast.predictor import CoTrackerPredictor
from helpers import state_dict_checksum, synthetic_state_dict

GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "data", "official_v1_golden.npz"))

# (mean, max) bounds in px, per case
BOUNDS = {
    # The target. Measured (both backends): mean <= 4.7e-5, max <= 1.3e-3 px.
    "tamed": (1e-3, 0.05),
    # One iteration of untamed weights: measured mean 2.5e-5, max 1.1e-4 px.
    "untamed_1iter": (1e-3, 0.05),
    # Two iterations of untamed weights amplify float32 round-off chaotically: the official code's own tracks move
    # 0.13 px when its input changes by 1e-4 (measured). Measured vs official: mean 0.02, max 0.1 px; swapping
    # pe_x/pe_y or sin/cos in the flow embedding gives 22-41 px, so these bounds still catch layout bugs.
    "untamed_2iter": (0.1, 1.0),
}


def _bounds(case):
    if case["tame"]:
        return BOUNDS["tamed"]
    return BOUNDS["untamed_1iter"] if case["iters"] == 1 else BOUNDS["untamed_2iter"]


def _inputs(case):
    sd = synthetic_state_dict(case["seed"], tame=case["tame"])
    expect = float(GOLDEN[case["id"] + "/weights_checksum"])
    assert abs(state_dict_checksum(sd) - expect) <= 1e-9 * abs(expect), "synthetic weights changed: regenerate golden"
    video = gi.make_video(case)
    assert float(video.double().sum()) == float(GOLDEN[case["id"] + "/video_checksum"]), "golden inputs changed"
    return sd, video


def _check(case, tracks, vis_bool):
    ref_t = torch.from_numpy(GOLDEN[case["id"] + "/tracks"])
    ref_v = torch.from_numpy(GOLDEN[case["id"] + "/vis"])
    ref_v = ref_v if ref_v.dtype == torch.bool else ref_v > 0.9
    assert tracks.shape == ref_t.shape
    diff = (tracks - ref_t).abs()
    mean_b, max_b = _bounds(case)
    assert diff.mean() <= mean_b and diff.max() <= max_b, f"mean {diff.mean():.3g} max {diff.max():.3g} px"
    assert (vis_bool == ref_v).float().mean() >= 0.999


@pytest.mark.parametrize("backend", ["reference", "torch"])
@pytest.mark.parametrize("case", [c for c in gi.CASES if c["kind"] == "model"], ids=lambda c: c["id"])
@torch.no_grad()
def test_model_matches_official(case, backend):
    sd, video = _inputs(case)
    model = create_model(case["model"], backend=backend).eval()
    model.load_state_dict(sd)
    tracks, _, vis, _ = model(video, gi.make_queries(case), iters=case["iters"])
    _check(case, tracks, vis > 0.9)


@pytest.mark.parametrize("case", [c for c in gi.CASES if c["kind"] == "predictor"], ids=lambda c: c["id"])
def test_predictor_matches_official(case, tmp_path):
    sd, video = _inputs(case)
    path = tmp_path / f"{case['model']}.pth"  # the official file name selects the variant
    torch.save(sd, path)
    predictor = CoTrackerPredictor(str(path))
    tracks, vis = predictor(video, **gi.predictor_kwargs(case))
    _check(case, tracks, vis)
    if case["mode"] in ("late_backward", "grid_frame_backward"):
        # the case only tests the backward fill if the forward pass alone leaves frames unpredicted
        forward, _ = predictor(video, **dict(gi.predictor_kwargs(case), backward_tracking=False))
        assert (forward == 0).all(-1).any() and not (tracks == 0).all(-1).any()
