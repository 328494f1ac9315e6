"""Inputs of the CoTracker3 official-parity golden cases (tests/data/official_v3_golden.npz).

The golden outputs were produced by running the official CoTracker3 code (tests/data/README.md) on exactly these
inputs, with the weights of :func:`helpers_v3.synthetic_v3_state_dict`; the test regenerates everything from the
seeds and checks checksums, so a changed random generator fails loudly instead of comparing different inputs.

Case kinds (batch 1 everywhere: the official forwards fail for batch >= 2):

* ``"offline"``: ``CoTrackerThreeOffline(stride=4, corr_radius=3, window_len=60)`` called as
  ``model(video, queries, iters=iters)``; outputs coords (pixels), sigmoid vis, sigmoid conf.
* ``"online_sliding"``: ``CoTrackerThreeOnline(stride=4, corr_radius=3, window_len=16)``, whole-video mode
  (``is_online=False``).
* ``"online_stream"``: the same model in streaming mode: ``init_video_online_processing()``, then
  ``model(video[:, i:i + 16], queries, iters=iters, is_online=True)`` for ``i in range(0, T - 8, 8)``; the outputs of
  the last call.
* ``"predictor_offline"``: ``CoTrackerPredictor(checkpoint=<file of the weights>, offline=True, v2=False,
  window_len=60)(video, **predictor_kwargs(case))``: tracks (original pixels) and bool visibility.
* ``"predictor_online"``: ``CoTrackerOnlinePredictor(checkpoint=<file>, window_len=16)``: a first call
  ``(video_chunk=video, is_first_step=True, **predictor_kwargs(case))``, then
  ``(video_chunk=video[:, i:i + 16])`` for ``i in range(0, T - 8, 8)``; the outputs of the last call.
"""
import torch

CASES = [
    # untamed weights, one iteration: every op of the model, including the sin/cos motion encoding
    dict(id="off_untamed_T10_1iter", kind="offline", tame=False, seed=0, T=10, H=96, W=128, N=20, iters=1),
    # tamed weights, the official 6 iterations; fractional query times and points outside the frame
    dict(id="off_tamed_T10", kind="offline", tame=True, seed=1, T=10, H=96, W=128, N=20, iters=6),
    dict(id="off_tamed_T28", kind="offline", tame=True, seed=2, T=28, H=64, W=96, N=16, iters=4),
    dict(id="off_tamed_T1", kind="offline", tame=True, seed=3, T=1, H=64, W=96, N=8, iters=3),
    # online model: several windows, copy-over, late queries (support gating), a padded last window
    dict(id="on_slide_untamed_T16_1iter", kind="online_sliding", tame=False, seed=4, T=16, H=64, W=96, N=12,
         iters=1),
    dict(id="on_slide_tamed_T21", kind="online_sliding", tame=True, seed=5, T=21, H=64, W=96, N=16, iters=4),
    dict(id="on_slide_tamed_T40", kind="online_sliding", tame=True, seed=6, T=40, H=64, W=96, N=16, iters=4),
    dict(id="on_stream_tamed_T21", kind="online_stream", tame=True, seed=5, T=21, H=64, W=96, N=16, iters=4),
    dict(id="on_stream_tamed_T40", kind="online_stream", tame=True, seed=6, T=40, H=64, W=96, N=16, iters=4),
    # the official predictors (384x512 inside)
    dict(id="pred_off_queries_backward", kind="predictor_offline", tame=True, seed=7, T=9, H=48, W=64,
         mode="queries_backward"),
    dict(id="pred_off_grid_mask", kind="predictor_offline", tame=True, seed=8, T=9, H=48, W=64, mode="grid_mask"),
    dict(id="pred_off_queries_only", kind="predictor_offline", tame=True, seed=9, T=9, H=48, W=64,
         mode="queries_with_grid_size"),
    dict(id="pred_on_queries", kind="predictor_online", tame=True, seed=10, T=20, H=48, W=64, mode="queries"),
    dict(id="pred_on_grid", kind="predictor_online", tame=True, seed=11, T=20, H=48, W=64, mode="grid"),
]


def window_len(case) -> int:
    """60 for the offline model's weights, 16 for the online model's."""
    return 60 if case["kind"] in ("offline", "predictor_offline") else 16


def make_video(case):
    """(1, T, 3, H, W) float32 in 0..255, integer valued: upsampled low-resolution noise. Interpolated in float64,
    so that no pixel's rounding depends on the thread count."""
    g = torch.Generator().manual_seed(case["seed"])
    T, H, W = case["T"], case["H"], case["W"]
    small = torch.rand(T, 3, max(H // 8, 2), max(W // 8, 2), generator=g, dtype=torch.float64)
    v = torch.nn.functional.interpolate(small, (H, W), mode="bilinear", align_corners=False) * 255
    return v.round().clamp(0, 255).float()[None]


def make_queries(case):
    """(1, N, 3) (t, x, y). Model cases: in the video's pixels, a quarter of them at frame 0; offline cases also have
    a fractional time and points just outside the frame. Predictor cases: in the original video's pixels."""
    if case["kind"].startswith("predictor"):
        if case["kind"] == "predictor_online":
            return torch.tensor([[[0.0, 10, 12], [0.0, 40.5, 30.25], [5.0, 60, 40], [12.0, 63, 47], [9.0, 3, 44]]])
        return torch.tensor([[[0.0, 10, 12], [3.0, 40.5, 30.25], [7.0, 60, 40], [0.0, 63, 47], [5.0, 2, 20]]])
    g = torch.Generator().manual_seed(case["seed"] + 100)
    N, T, H, W = case["N"], case["T"], case["H"], case["W"]
    t = torch.randint(0, T, (N,), generator=g).float()
    t[: N // 4] = 0
    x = torch.rand(N, generator=g) * (W - 1)
    y = torch.rand(N, generator=g) * (H - 1)
    if case["kind"] == "offline":
        t[-1] = min(T - 1, 3) + 0.6 if T > 1 else 0.6  # truncated toward zero by the model
        x[-2], y[-2] = -2.5, H + 1.5  # outside the frame: border padding
    return torch.stack([t, x, y], -1)[None]


def predictor_kwargs(case):
    """Keyword arguments of the predictor call (the first call for online predictors)."""
    mode = case["mode"]
    if mode == "queries_backward":
        return dict(queries=make_queries(case), backward_tracking=True)
    if mode == "queries_with_grid_size":  # grid_size > 0 with queries: no support grid is added
        return dict(queries=make_queries(case), grid_size=4)
    if mode == "grid_mask":
        mask = torch.zeros(1, 1, case["H"], case["W"])
        mask[..., 8:40, 10:50] = 1
        return dict(grid_size=5, segm_mask=mask, grid_query_frame=2)
    if mode == "queries":
        return dict(queries=make_queries(case))
    if mode == "grid":
        return dict(grid_size=3, grid_query_frame=0)
    raise ValueError(mode)
