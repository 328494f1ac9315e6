"""Inputs of the official-parity golden cases (tests/data/official_v1_golden.npz).

The golden outputs were produced by running the official CoTracker v1 code (see tests/data/README.md) on exactly
these inputs and weights (:func:`helpers.synthetic_state_dict`); the test regenerates the inputs from the seeds and
checks checksums, so a changed random generator fails loudly instead of comparing different inputs.
"""
import torch

CASES = [
    # untamed weights, one window: all the maths (incl. the sin/cos flow embedding). Only 2 iterations: with random
    # weights the network is chaotic (measured: a 1e-4 input change moves the official code's own tracks by
    # 0.13 px after 2 iterations and 20 px after 3), see test_official_parity.py for the tolerances.
    dict(id="w8_untamed_1win", kind="model", model="cotracker_stride_4_wind_8", tame=False, seed=0,
         T=8, H=96, W=128, N=24, iters=2),
    dict(id="w8_untamed_1win_1iter", kind="model", model="cotracker_stride_4_wind_8", tame=False, seed=0,
         T=8, H=96, W=128, N=24, iters=1),
    # tamed weights: many windows, ties at frame 0 (N > 16 exercises torch.sort's order), late queries
    dict(id="w8_tamed_21f", kind="model", model="cotracker_stride_4_wind_8", tame=True, seed=1,
         T=21, H=96, W=128, N=40, iters=4),
    dict(id="w12_tamed_27f", kind="model", model="cotracker_stride_4_wind_12", tame=True, seed=2,
         T=27, H=96, W=128, N=30, iters=4),
    dict(id="s8w16_tamed_37f", kind="model", model="cotracker_stride_8_wind_16", tame=True, seed=3,
         T=37, H=128, W=160, N=30, iters=4),
    # the official predictor (v1.0 semantics), full 384x512 pipeline
    dict(id="pred_queries_backward", kind="predictor", model="cotracker_stride_4_wind_8", tame=True, seed=4,
         T=11, H=60, W=80, mode="queries_backward"),
    dict(id="pred_grid_mask", kind="predictor", model="cotracker_stride_4_wind_8", tame=True, seed=5,
         T=11, H=60, W=80, mode="grid_mask"),
    # backward tracking that really fills: points whose first window starts after frame 0
    dict(id="pred_late_query_backward", kind="predictor", model="cotracker_stride_4_wind_8", tame=True, seed=6,
         T=14, H=60, W=80, mode="late_backward"),
    dict(id="pred_grid_frame9_backward", kind="predictor", model="cotracker_stride_4_wind_8", tame=True, seed=7,
         T=14, H=60, W=80, mode="grid_frame_backward"),
]


def make_video(case):
    """(1, T, 3, H, W) float32 in 0..255, integer valued: upsampled low-resolution noise.

    The float32 interpolation's last bit depends on how the CPU kernel splits the work between threads, and rounding
    to integers turns that bit into a grey level wherever a value sits at .5. The golden outputs were made with two
    threads, so the interpolation always runs with two (the videos' checksums in the golden file check it)."""
    g = torch.Generator().manual_seed(case["seed"])
    T, H, W = case["T"], case["H"], case["W"]
    small = torch.rand(T, 3, max(H // 8, 2), max(W // 8, 2), generator=g)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        v = torch.nn.functional.interpolate(small, (H, W), mode="bilinear", align_corners=False) * 255
    finally:
        torch.set_num_threads(threads)
    return v.round().clamp(0, 255)[None]


def make_queries(case):
    if case["kind"] == "predictor" and case["mode"] == "late_backward":
        return torch.tensor([[[10.0, 30, 20], [0.0, 5, 5], [6.0, 50, 40], [13.0, 70, 9]]])
    if case["kind"] == "predictor":
        return torch.tensor([[[0.0, 10, 12], [3.0, 40.5, 30.25], [7.0, 70, 50], [0.0, 79, 59]]])
    g = torch.Generator().manual_seed(case["seed"] + 100)
    N, T, H, W = case["N"], case["T"], case["H"], case["W"]
    t = torch.randint(0, T, (N,), generator=g).float()
    t[: N // 2] = 0
    x = torch.rand(N, generator=g) * (W - 1)
    y = torch.rand(N, generator=g) * (H - 1)
    return torch.stack([t, x, y], -1)[None]


def predictor_kwargs(case):
    if case["mode"] in ("queries_backward", "late_backward"):
        return dict(queries=make_queries(case), backward_tracking=True)
    if case["mode"] == "grid_frame_backward":
        return dict(grid_size=3, grid_query_frame=9, backward_tracking=True)
    mask = torch.zeros(1, 1, case["H"], case["W"])
    mask[..., 10:45, 20:70] = 1
    return dict(grid_size=5, segm_mask=mask, grid_query_frame=2)
