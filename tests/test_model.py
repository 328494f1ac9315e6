"""The CoTracker v1 network: official state-dict layout, window schedule, batches, backends."""
import pytest
import torch

from cotracker_fast.models.cotracker import CoTracker, SlidingWindowTracker, mask_vis_channels
from cotracker_fast.models.registry import create_model, get_config, list_models, model_name_from_checkpoint

from helpers import official_key_shapes, tame_random_weights_


@pytest.mark.parametrize("name", ["cotracker_stride_4_wind_8", "cotracker_stride_4_wind_12", "cotracker_stride_8_wind_16"])
def test_official_state_dict_layout(name):
    expected = official_key_shapes()
    sd = create_model(name).state_dict()
    assert len(expected) == 150
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert sum(v.numel() for v in sd.values()) == 24_149_859
    # the official order: fnet, updateformer (input_transform, flow_head, time, space), norm, heads
    keys = list(sd)
    assert keys[0] == "fnet.conv1.weight" and keys[44] == "updateformer.input_transform.weight"
    assert keys[48] == "updateformer.time_blocks.0.attn.qkv.weight" and keys[-1] == "vis_predictor.0.bias"


def test_registry_and_checkpoint_names():
    assert list_models() == ["cotracker_fast_small", "cotracker_stride_4_wind_12", "cotracker_stride_4_wind_8",
                             "cotracker_stride_8_wind_16"]
    small = get_config("cotracker_fast_small")
    assert (small.hidden_size, small.time_depth, small.space_depth, small.model_resolution, small.pos_embed,
            small.flow_embed_dim) == (128, 2, 2, (576, 768), False, 0)
    assert sum(p.numel() for p in create_model("cotracker_fast_small").parameters()) == 3_499_107
    cfg = get_config("cotracker_stride_8_wind_16")
    assert (cfg.stride, cfg.window_len, cfg.window_step) == (8, 16, 8)
    assert (cfg.corr_dim, cfg.flow_dim, cfg.input_dim, cfg.head_dim) == (196, 130, 456, 48)
    assert model_name_from_checkpoint("/x/y/cotracker_stride_4_wind_12.pth") == "cotracker_stride_4_wind_12"
    assert model_name_from_checkpoint(None) == "cotracker_stride_4_wind_8"
    with pytest.raises(ValueError, match="cannot infer the model variant"):
        model_name_from_checkpoint("my_weights.pth")
    with pytest.raises(ValueError, match="unknown model name"):
        create_model("cotracker_stride_2")


def test_variant_from_safetensors_metadata(tmp_path):
    from cotracker_fast.models.checkpoint import save_safetensors

    sd = {k: v.half() for k, v in create_model("cotracker_fast_small").state_dict().items()}
    named = tmp_path / "run7.safetensors"
    save_safetensors(sd, str(named), metadata={"model_name": "cotracker_fast_small"})
    assert model_name_from_checkpoint(str(named)) == "cotracker_fast_small"
    unnamed = tmp_path / "run8.safetensors"
    save_safetensors(sd, str(unnamed), metadata={})
    with pytest.raises(ValueError, match="cannot infer the model variant"):
        model_name_from_checkpoint(str(unnamed))


@pytest.fixture(scope="module")
def model():
    """Random, tamed weights (see helpers.tame_random_weights_) in float64, so that structural equalities (order,
    batch, backends) can be asserted at ~1e-6 px instead of being drowned by amplified round-off."""
    torch.manual_seed(0)
    return tame_random_weights_(create_model()).double().eval()


def _video(B=1, T=12, H=48, W=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, T, 3, H, W, generator=g, dtype=torch.float64) * 255


def _translating_clip(T, dx=3, dy=2, H=48, W=64):
    """``(1, T, 3, H, W)`` float64: a smooth texture moving by (dx, dy) pixels per frame (crops of a larger image)."""
    g = torch.Generator().manual_seed(3)
    big = torch.nn.functional.interpolate(
        torch.rand(1, 3, 10, 12, generator=g, dtype=torch.float64), (H + dy * T, W + dx * T), mode="bilinear",
        align_corners=False,
    )[0] * 255
    return torch.stack([big[:, dy * (T - t) : dy * (T - t) + H, dx * (T - t) : dx * (T - t) + W] for t in range(T)])[None]


@torch.no_grad()
@pytest.mark.parametrize("T", [3, 4])
def test_short_clip_is_tracked(model, T):
    """T <= S/2 = 4: the official schedule would run no window (tracks (0, 0), visibility sigmoid(0) = 0.5). Here
    the first window runs on the clip padded with its last frame, its track mask covering only the T real frames.
    The weights are random, so the tracks are not expected to follow the clip's motion: the test checks that every
    frame from each point's query frame on holds the window's prediction, exactly that of a window run by hand."""
    video = _translating_clip(T)
    q = torch.tensor([[[0.0, 20, 20], [1.0, 40, 30], [T - 1.0, 10, 35]]], dtype=torch.float64)
    tr, feat, vis, td = model(video, q, iters=2, is_train=True)
    assert td.window_starts == [0] and td.coord_preds[0][-1].shape[1] == T
    assert tr.shape == (1, T, 3, 2) and bool(torch.isfinite(tr).all())
    assert bool((tr[0].abs().sum(-1) > 0).all())  # no (0, 0): points are predicted in their first window
    assert not bool((vis[0] == 0.5).any())

    state = SlidingWindowTracker(model, 1, 2, video.device)
    state.add_queries(q)
    padded = torch.cat([video, video[:, -1:].expand(-1, 8 - T, -1, -1, -1)], 1)
    out = state.run_window(padded, T)
    ref_t = video.new_zeros(1, T, 3, 2)
    ref_v = video.new_zeros(1, T, 3)
    out.write_into(ref_t, ref_v)
    torch.testing.assert_close(tr, ref_t, atol=0, rtol=0)
    torch.testing.assert_close(vis, torch.sigmoid(ref_v), atol=0, rtol=0)


def test_window_runs_rule():
    """The first window always runs; later ones while start < T - S/2 (the official schedule)."""
    from cotracker_fast.models.cotracker import window_runs

    def starts(T, step=4):
        out, ind = [], 0
        while window_runs(ind, T, step):
            out.append(ind)
            ind += step
        return out

    assert starts(1) == starts(3) == starts(4) == [0]  # the official rule runs no window here
    assert starts(5) == starts(8) == [0] and starts(9) == starts(12) == [0, 4] and starts(13) == [0, 4, 8]


@torch.no_grad()
def test_window_schedule_and_late_queries(model):
    """T=13 (not a multiple of S/2=4): windows at 0, 4, 8 (the last padded). A point queried at frame 9 joins the
    window at 4 (the first start > 9 - 8): frames 0..3 stay exactly (0, 0); frames 4..8, before its query, get
    predictions (official behaviour)."""
    video = _video(T=13)
    q = torch.tensor([[[0.0, 20, 20], [9.0, 30, 25], [12.0, 5, 40]]], dtype=torch.float64)
    tr, feat, vis, td = model(video, q, iters=2, is_train=True)
    assert td.window_starts == [0, 4, 8]
    assert [p[0].shape[1] for p in td.coord_preds] == [8, 8, 5]  # S_local of the padded last window
    assert torch.all(tr[0, :4, 1] == 0) and torch.all(tr[0, 4:, 1] != 0)
    assert torch.all(tr[0, :8, 2] == 0) and torch.all(tr[0, 8:, 2] != 0)  # t=12 joins at window 8
    assert torch.all(tr[0, :, 0] != 0)
    assert torch.all(vis[0, :4, 1] == 0.5) and torch.all(vis[0, 4:, 1] != 0.5)
    assert feat.shape == (1, 3, 128)
    # the padded last window writes only the real frames
    assert tr.shape == (1, 13, 3, 2)


@torch.no_grad()
def test_query_order_with_distinct_frames_does_not_matter(model):
    """Tracks are processed in the official order (sorted by query frame), so permuting queries with distinct
    frames permutes the outputs. (Ties keep torch.sort's order, which the official token layout makes matter.)"""
    video = _video(T=10, seed=1)
    q = torch.tensor([[[6.0, 20, 20], [0.0, 30, 25], [3.0, 50, 10], [1.0, 8, 30]]], dtype=torch.float64)
    perm = torch.tensor([2, 0, 3, 1])
    tr, _, vis, _ = model(video, q, iters=2)
    tr_p, _, vis_p, _ = model(video, q[:, perm], iters=2)
    torch.testing.assert_close(tr_p, tr[:, :, perm], atol=1e-6, rtol=0)
    torch.testing.assert_close(vis_p, vis[:, :, perm], atol=1e-8, rtol=0)


def test_mask_vis_channels_official_layout():
    """Closed form of the official layout: with z the row-major flattening of [mask rows; vis rows] (2N x S),
    token (n, s) holds z[2(nS+s)], z[2(nS+s)+1]."""
    B, S, N = 2, 4, 5
    mask = torch.rand(B, S, N) > 0.5
    vis = torch.randn(B, S, N)
    out = mask_vis_channels(mask, vis)
    for b in range(B):
        z = torch.cat([mask[b].T.float(), vis[b].T], 0).reshape(-1)
        for n in range(N):
            for s_ in range(S):
                assert out[b, s_, n, 0] == z[2 * (n * S + s_)] and out[b, s_, n, 1] == z[2 * (n * S + s_) + 1]
    # per-sample counts: each sample laid out as if it had only its own tracks; padding is zero
    counts = torch.tensor([5, 3])
    out_c = mask_vis_channels(mask, vis, counts)
    torch.testing.assert_close(out_c[0], out[0], rtol=0, atol=0)
    torch.testing.assert_close(out_c[1:, :, :3], mask_vis_channels(mask[1:, :, :3], vis[1:, :, :3]), rtol=0, atol=0)
    assert torch.all(out_c[1, :, 3:] == 0)


@torch.no_grad()
def test_batch_equals_singles(model):
    """Two samples whose points join windows at different times (different active sets per window)."""
    v = torch.cat([_video(T=14, seed=2), _video(T=14, seed=3)])
    # sample 1 has no active point in the first window (all its queries are at frames >= 8)
    q = torch.tensor([[[0.0, 10, 10], [0.0, 40, 30], [9.0, 20, 20]], [[8.0, 30, 30], [13.0, 12, 7], [9.0, 60, 40]]], dtype=torch.float64)
    tr, feat, vis, _ = model(v, q, iters=2)
    for b in range(2):
        t1, f1, v1, _ = model(v[b : b + 1], q[b : b + 1], iters=2)
        torch.testing.assert_close(tr[b : b + 1], t1, atol=1e-6, rtol=0)
        torch.testing.assert_close(vis[b : b + 1], v1, atol=1e-8, rtol=0)
        torch.testing.assert_close(feat[b : b + 1], f1, atol=1e-8, rtol=0)


@torch.no_grad()
def test_reference_and_torch_backends_agree(model):
    video = _video(T=9, H=64, W=96, seed=4)  # the dense baseline needs every pyramid level >= 2x2
    q = torch.tensor([[[0.0, 20, 20], [2.0, 33, 21], [0.0, 60, 5]]], dtype=torch.float64)
    model.set_backend("torch")
    a = model(video, q, iters=2)
    model.set_backend("reference")
    try:
        b = model(video, q, iters=2)
    finally:
        model.set_backend(None)
    torch.testing.assert_close(a[0], b[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(a[2], b[2], atol=1e-8, rtol=0)


def test_model_input_errors(model):
    v = _video(T=9)
    with pytest.raises(ValueError, match="rgbs"):
        model(v[0], torch.zeros(1, 1, 3))
    with pytest.raises(TypeError, match="floating-point"):
        model(v.to(torch.uint8), torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="queries"):
        model(v, torch.zeros(1, 1, 2))
    with pytest.raises(ValueError, match=r"queries must be a \(B=1, N, 3\)"):
        model(v, torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="must be >= 0"):
        model(v, torch.tensor([[[-1.0, 1, 1]]]))
    with pytest.raises(ValueError, match="must be < T"):
        model(v, torch.tensor([[[9.0, 1, 1]]]))
    with pytest.raises(ValueError, match="NaN"):
        model(v, torch.tensor([[[0.0, float("nan"), 1]]]))
    with pytest.raises(ValueError, match="feat_init"):
        model(v, torch.zeros(1, 1, 3), feat_init=torch.zeros(1))
    state = SlidingWindowTracker(model, 1, 1, "cpu")
    state.add_queries(torch.tensor([[[0.0, 5, 5]]]))
    with torch.no_grad():
        state.run_window(v[:, :8], 8)
    with pytest.raises(ValueError, match="arrived after"):
        state.add_queries(torch.tensor([[[2.0, 5, 5]]]))
    with pytest.raises(ValueError, match="needs 4 new frames"):
        state.run_window(v[:, :3], 8)


def test_gradients_flow_in_training_mode():
    torch.manual_seed(0)
    m = CoTracker(get_config("cotracker_stride_4_wind_8")).train()
    tr, _, vis, td = m(_video(T=8, H=32, W=48).float(), torch.tensor([[[0.0, 10, 10], [0.0, 30, 20]]]), iters=2, is_train=True)
    loss = sum(p.abs().mean() for p in td.coord_preds[0]) + td.vis_logits[0].mean()
    loss.backward()
    assert m.fnet.conv1.weight.grad is not None and torch.isfinite(m.fnet.conv1.weight.grad).all()
    assert m.updateformer.space_blocks[5].attn.qkv.weight.grad.abs().sum() > 0


def test_flow_embedding_without_sinusoids_is_the_raw_flow():
    from cotracker_fast.models.embeddings import flow_embedding

    flows = torch.randn(2, 3, 4, 2)
    assert torch.equal(flow_embedding(flows, 0), flows)
    assert flow_embedding(flows, 64).shape[-1] == 130 and get_config("cotracker_fast_small").flow_dim == 2


def test_drop_flow_sinusoids_keeps_the_projection_of_the_kept_channels():
    """The converted input projection of the shipped variant gives, on the raw-flow layout, what the official-layout
    projection gives with its k >= 1 sinusoid columns zeroed (k = 0: sin 0 = 0 and cos 0 = 1, folded into the
    bias)."""
    import dataclasses
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train"))
    from drop_flow_sinusoids import drop_flow_sinusoids

    new_cfg = get_config("cotracker_fast_small")
    old = CoTracker(dataclasses.replace(new_cfg, flow_embed_dim=64))
    new_sd = drop_flow_sinusoids(old.state_dict())
    new = CoTracker(new_cfg)
    new.load_state_dict(new_sd)  # strict: every shape fits the raw-flow layout
    g = torch.Generator().manual_seed(0)
    rest = torch.randn(5, new_cfg.input_dim - 2, generator=g)
    raw = torch.randn(5, 2, generator=g)
    sinusoids = torch.randn(5, 128, generator=g)
    sinusoids[:, 0], sinusoids[:, 1], sinusoids[:, 64], sinusoids[:, 65] = 0.0, 1.0, 0.0, 1.0  # k = 0 of x, y
    w = old.updateformer.input_transform.weight.detach().clone()
    k_ge_1 = [c for axis in (0, 64) for c in range(2 + axis + 2, 2 + axis + 64)]
    w[:, k_ge_1] = 0
    expect = torch.cat([raw, sinusoids, rest], 1) @ w.T + old.updateformer.input_transform.bias.detach()
    with torch.no_grad():
        got = new.updateformer.input_transform(torch.cat([raw, rest], 1))
    torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="input columns"):
        drop_flow_sinusoids(new_sd)
