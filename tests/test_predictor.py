"""The drop-in predictor: modes, official semantics, batches and input validation (random, tamed weights at a
small working resolution; parity with the official code itself is in test_official_parity.py)."""
import warnings

import pytest
import torch

from cotracker_fast import precision
from cotracker_fast.predictor import CoTrackerPredictor, get_points_on_a_grid

from helpers import tame_random_weights_


@pytest.fixture
def predictor(make_predictor):
    p = make_predictor()
    tame_random_weights_(p.model)
    return p


def _video(B=1, T=11, H=40, W=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(B * T, 3, 5, 7, generator=g)
    v = torch.nn.functional.interpolate(small, (H, W), mode="bilinear", align_corners=False) * 255
    return v.reshape(B, T, 3, H, W)


def test_support_grid_positions_are_official():
    """The official 6x6 support grid at 384x512 (values from the official code)."""
    g = get_points_on_a_grid(6, (384, 512))
    assert g.shape == (1, 36, 2)
    xs = torch.tensor([8, 107.2, 206.4, 305.6, 404.8, 504])
    ys = torch.tensor([8, 81.6, 155.2, 228.8, 302.4, 376])
    torch.testing.assert_close(g[0, :6, 0], xs)  # row-major: x varies fastest
    torch.testing.assert_close(g[0, ::6, 1], ys)
    torch.testing.assert_close(get_points_on_a_grid(1, (384, 512)), torch.tensor([[[256.0, 192.0]]]))


def test_queries_mode_outputs_and_query_correction(predictor):
    v = _video()
    q = torch.tensor([[[0.0, 10, 12], [3.0, 40.5, 30.25], [9.0, 55, 39]]])
    tracks, vis = predictor(v, q)
    assert tracks.shape == (1, 11, 3, 2) and vis.shape == (1, 11, 3) and vis.dtype == torch.bool
    for n, (t, x, y) in enumerate(q[0].tolist()):
        # the query xy is scaled to the working resolution and back in float32: equal up to rounding
        torch.testing.assert_close(tracks[0, int(t), n], torch.tensor([x, y]), atol=1e-4, rtol=0)
        assert vis[0, int(t), n]
    # the point queried at frame 9 joins the window starting at 4: frames 0..3 are never predicted
    assert torch.all(tracks[0, :4, 2] == 0) and not vis[0, :4, 2].any()
    assert torch.all(tracks[0, 4:, 2] != 0)


def test_backward_tracking_fills_frames_before_first_window(predictor):
    v = _video(T=13)
    q = torch.tensor([[[10.0, 30, 20], [0.0, 5, 5]]])
    fwd, _ = predictor(v, q)
    both, _ = predictor(v, q, backward_tracking=True)
    first_window = 4  # smallest multiple of S/2 = 4 that is > 10 - 8
    assert torch.all(fwd[0, :first_window, 0] == 0)
    assert torch.all(both[0, :first_window, 0] != 0)
    # frames the forward pass predicted are kept
    torch.testing.assert_close(both[0, first_window:], fwd[0, first_window:])


def _translating_video(T, dx=3, dy=2, H=40, W=56):
    """``(1, T, 3, H, W)``: a smooth texture moving by (dx, dy) pixels per frame (crops of a larger image)."""
    g = torch.Generator().manual_seed(5)
    big = torch.nn.functional.interpolate(
        torch.rand(1, 3, 6, 8, generator=g), (H + dy * T, W + dx * T), mode="bilinear", align_corners=False
    )[0] * 255
    return torch.stack([big[:, dy * (T - t) : dy * (T - t) + H, dx * (T - t) : dx * (T - t) + W] for t in range(T)])[None]


@pytest.mark.parametrize("T", [3, 4])
def test_short_clip_is_tracked(predictor, T):
    """A clip of at most S/2 = 4 frames gets the first window's tracks on every frame (the official schedule runs
    no window and returns (0, 0) on every frame but the query frame), through every way the predictor drives the
    model: one call, point chunks with shared features, and the backward pass. (Random weights: the tracks do not
    follow the clip's motion; the model-level test checks them against a window run by hand.)"""
    v = _translating_video(T)
    q = torch.tensor([[[0.0, 10, 12], [1.0, 40.5, 30.25], [T - 1.0, 25, 20]]])
    tracks, vis = predictor(v, q)
    assert tracks.shape == (1, T, 3, 2) and bool(torch.isfinite(tracks).all())
    # the window predicts all of its frames, before a point's query frame too (official first-window behaviour)
    assert bool((tracks.abs().sum(-1) > 0).all())
    moved = (tracks[0, 1:] - tracks[0, :-1]).abs().sum(-1) > 0  # (T - 1, N): not the query repeated
    assert bool(moved.any(0).all())
    # the points run in chunks over shared feature maps give the tracks of separate calls
    small = predictor.resize_frames(v)
    qs = q.clone()
    qs[..., 1] *= predictor.interp_shape[1] / v.shape[-1]
    qs[..., 2] *= predictor.interp_shape[0] / v.shape[-2]
    chunked, chunked_vis = predictor._run_model(small, qs, chunk=2)
    parts = [predictor._run_model(small, qs[:, :2]), predictor._run_model(small, qs[:, 2:])]
    assert bool((chunked.abs().sum(-1) > 0).all())
    torch.testing.assert_close(chunked, torch.cat([p[0] for p in parts], 2), atol=1e-5, rtol=0)
    # backward tracking has nothing to fill: the forward pass predicted every frame
    both, vis_both = predictor(v, q, backward_tracking=True)
    assert torch.equal(both, tracks) and torch.equal(vis_both, vis)


def test_grid_and_mask_modes(predictor):
    v = _video()
    tracks, vis = predictor(v, grid_size=4, grid_query_frame=2)
    assert tracks.shape == (1, 11, 16, 2)
    assert torch.all(tracks[0, :2] != 0)  # frames before the query frame but in the first window are predicted
    mask = torch.zeros(1, 1, 40, 56)
    mask[..., :, :28] = 1  # left half
    t_m, _ = predictor(v, grid_size=4, segm_mask=mask)
    assert t_m.shape[2] == 8  # the two left columns of the 4x4 grid
    assert torch.all(t_m[0, 0, :, 0] < 28)
    with pytest.raises(ValueError, match="selects no grid point"):
        predictor(v, grid_size=4, segm_mask=torch.zeros(1, 1, 40, 56))


def test_dense_mode_and_batched_lattices(make_predictor):
    p = make_predictor(interp_shape=(32, 48), iters=1)
    tame_random_weights_(p.model)
    v = _video(T=9, H=16, W=60)  # W // 30 = 2: 4 offset lattices of 30 x 8 points
    tracks, vis = p(v)
    assert tracks.shape == (1, 9, 4 * 30 * 8, 2)
    # lattice (ox, oy) = (1, 0) comes second; its first point is at (1, 0)
    torch.testing.assert_close(tracks[0, 0, 240], torch.tensor([1.0, 0.0]), atol=1e-4, rtol=0)
    p.dense_batch_size = 3
    tracks3, vis3 = p(v)
    # batched lattices: same maths, different matmul shapes (float32 round-off; measured max ~1e-4 px)
    torch.testing.assert_close(tracks3, tracks, atol=2e-3, rtol=0)
    assert (vis3 == vis).float().mean() > 0.999


def test_batch_equals_singles(predictor):
    v = torch.cat([_video(seed=1), _video(seed=2)])
    q = torch.tensor([[[0.0, 10, 12], [6.0, 40, 30]], [[2.0, 20, 20], [0.0, 50, 8]]])
    tracks, vis = predictor(v, q, backward_tracking=True)
    for b in range(2):
        t1, v1 = predictor(v[b : b + 1], q[b : b + 1], backward_tracking=True)
        # float32 round-off of batched vs single matmuls, tamed weights: measured max ~1e-5 px
        torch.testing.assert_close(tracks[b : b + 1], t1, atol=1e-3, rtol=0)
        assert torch.equal(vis[b : b + 1], v1)


# Autocast deviation from fp32 on this test's inputs (tamed random weights, tracks move ~2.5 px per frame),
# measured on CPU (emulated bf16, the same roundings as native): mean 0.075 / max 0.26 px before the transformer's
# input projection and output head were kept in float32; the bounds leave a 4x margin over that.
BF16_BOUNDS = (0.3, 1.0)


def test_bf16_runs_under_autocast(predictor, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # take the bf16 path on any CPU
    v = _video()
    q = torch.tensor([[[0.0, 10, 12], [3.0, 40.5, 30.25]]])
    ref, ref_vis = predictor(v, q)
    predictor.dtype = torch.bfloat16
    assert predictor.compute_dtype == torch.bfloat16
    low, vis = predictor(v, q)
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    diff = (low - ref).abs()
    mean_b, max_b = BF16_BOUNDS
    assert 0 < diff.mean() < mean_b and diff.max() < max_b, f"mean {diff.mean():.3g} max {diff.max():.3g}"
    assert torch.equal(vis, ref_vis)


@pytest.mark.parametrize(
    "video, kwargs, exc, match",
    [
        (torch.rand(11, 3, 40, 56) * 255, {}, ValueError, r"video must be a \(B, T, 3, H, W\)"),
        ((torch.rand(1, 11, 3, 40, 56) * 255).to(torch.uint8), {}, TypeError, "floating-point"),
        (torch.full((1, 11, 3, 40, 56), float("nan")), {}, ValueError, "NaN or inf"),
        (torch.rand(1, 11, 3, 40, 56), {"queries": torch.zeros(1, 1, 3)}, UserWarning, "0..1"),
        (torch.rand(1, 11, 3, 40, 56) * 2 - 1, {"queries": torch.zeros(1, 1, 3)}, UserWarning, "-1..1"),
        (torch.rand(1, 11, 3, 40, 56) * 1000, {}, ValueError, "0..255"),
        (torch.rand(1, 11, 3, 40, 56) * 255 - 20, {}, ValueError, "0..255"),
        (torch.zeros(1, 0, 3, 40, 56), {}, ValueError, "empty"),
        (torch.zeros(1, 11, 3, 0, 56), {}, ValueError, "empty"),
        (None, {"queries": torch.zeros(1, 0, 3)}, ValueError, "queries is empty"),
        (None, {"queries": torch.zeros(1, 2)}, ValueError, r"queries must be a \(B=1, N, 3\)"),
        (None, {"queries": torch.tensor([[[0.0, 57, 3]]])}, ValueError, "outside the 56x40 frame"),
        (None, {"queries": torch.tensor([[[0.0, -1, 3]]])}, ValueError, "outside"),
        (None, {"queries": torch.tensor([[[11.0, 1, 3]]])}, ValueError, r"must be in \[0, T=11\)"),
        (None, {"queries": torch.tensor([[[-1.0, 1, 3]]])}, ValueError, r"queries\[0, 0, 0\] = -1.0"),
        (None, {"queries": torch.tensor([[[1.5, 1, 3]]])}, UserWarning, "truncated"),
        (None, {"queries": torch.tensor([[[0.0, float("inf"), 3]]])}, ValueError, "NaN or inf"),
        (None, {"grid_size": 3, "grid_query_frame": 11}, ValueError, "grid_query_frame"),
        (None, {"grid_size": -1}, ValueError, "grid_size"),
        (None, {"grid_size": 3, "segm_mask": torch.ones(1, 1, 20, 20)}, ValueError, "segm_mask must be"),
    ],
)
def test_bad_input(predictor, video, kwargs, exc, match):
    video = _video() if video is None else video
    if exc is UserWarning:
        with pytest.warns(UserWarning, match=match):
            predictor(video, **kwargs)
        return
    with pytest.raises(exc, match=match):
        predictor(video, **kwargs)


def test_official_argument_quirks_warn(predictor):
    v = _video()
    q = torch.tensor([[[0.0, 10, 12]]])
    with pytest.warns(UserWarning, match="grid is ignored"):
        tracks, _ = predictor(v, q, grid_size=3)
    assert tracks.shape[2] == 1
    with pytest.warns(UserWarning, match="segm_mask only selects grid points"):
        predictor(v, q, segm_mask=torch.ones(1, 1, 40, 56))


def test_constructor_checks(tmp_path):
    from helpers import synthetic_state_dict

    torch.save(synthetic_state_dict(0), str(tmp_path / "weights.pth"))  # a v1 file whose name says no variant
    with pytest.raises(ValueError, match="cannot infer the model variant"):
        CoTrackerPredictor(str(tmp_path / "weights.pth"))
    with pytest.raises(FileNotFoundError, match="cotracker_stride_4_wind_8.pth"):
        CoTrackerPredictor(str(tmp_path / "cotracker_stride_4_wind_8.pth"))
    with pytest.raises(ValueError, match="dtype"):
        CoTrackerPredictor(None, dtype=torch.int8)
    with pytest.warns(UserWarning, match="RANDOM"):
        p = CoTrackerPredictor(None, model_name="cotracker_stride_8_wind_16")
    assert p.model.stride == 8 and p.model.window_len == 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = CoTrackerPredictor(None, backend="reference")
    assert p.model.updateformer.time_blocks[0].attn.backend == "reference"


def test_fractional_query_frames_are_truncated(predictor):
    v = _video()
    with pytest.warns(UserWarning, match="truncated"):
        a, _ = predictor(v, torch.tensor([[[2.9, 10, 12]]]))
    b, _ = predictor(v, torch.tensor([[[2.0, 10, 12]]]))
    assert torch.equal(a, b)


def test_autocast_keeps_query_positions_in_fp32():
    """Under autocast the feature maps are bf16; sampling positions and weights must stay fp32 (a bf16 position
    would move a query by up to a quarter cell)."""
    from cotracker_fast.ops import bilinear_sample_border

    g = torch.Generator().manual_seed(0)
    img = torch.randn(1, 4, 30, 200, generator=g).bfloat16()
    xy = torch.tensor([[[100.3, 7.7], [150.9, 21.1]]])
    got = bilinear_sample_border(img, xy)
    expect = bilinear_sample_border(img.float(), xy)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expect, rtol=0, atol=1e-6)
