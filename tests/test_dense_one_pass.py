"""Dense mode in one pass (``CoTrackerPredictor(dense_mode="one_pass", dense_chunk=...)``).

The official dense mode tracks ``step^2`` offset lattices (``step = W // 30``) in one pass each; ``"one_pass"`` tracks
their union together, chunked into model calls of at most ``dense_chunk`` points. Random, tamed weights, a small
working resolution and one refinement iteration keep every case to a few seconds on one CPU thread.
"""
import pytest
import torch
from helpers import tame_random_weights_

from cotracker_fast.predictor import DEFAULT_DENSE_CHUNK, CoTrackerPredictor

MODEL = "cotracker_stride_4_wind_8"  # S = 8: T = 12 makes two windows


@pytest.fixture(scope="module")
def weights():
    """One tamed random state dict shared by every predictor of the module (so modes are compared on the same net)."""
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="RANDOM"):
        p = CoTrackerPredictor(None, model_name=MODEL)
    return tame_random_weights_(p.model).state_dict()


def make(weights, **kw):
    with pytest.warns(UserWarning, match="RANDOM"):
        p = CoTrackerPredictor(None, model_name=MODEL, iters=1, **kw)
    p.model.load_state_dict(weights)
    p.interp_shape = (32, 48)  # small working resolution: the dense logic does not depend on it
    return p


def video(B=1, T=8, H=7, W=61, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, T, 3, H, W, generator=g) * 255


def lattice_points(H, W, t):
    """The dense points in the official output order, written out independently of the predictor: lattice
    ``o = 0 .. step^2 - 1`` at pixel offset ``(o % step, o // step)``, each row-major with spacing ``step``."""
    step = W // 30
    rows = [
        (float(t), float(i * step + o % step), float(j * step + o // step))
        for o in range(step * step)
        for j in range(H // step)
        for i in range(W // step)
    ]
    return torch.tensor(rows)


def test_single_lattice_both_modes_identical(weights):
    # W = 32: step = 1, a single lattice of 32 x 4 points, so both modes make the very same model call
    v = video(B=2, T=12, H=4, W=32)
    off = make(weights)
    one = make(weights, dense_mode="one_pass")
    assert off.dense_mode == "official" and one.dense_chunk == DEFAULT_DENSE_CHUNK
    t_off, v_off = off(v, grid_query_frame=9, backward_tracking=True)
    t_one, v_one = one(v, grid_query_frame=9, backward_tracking=True)
    assert t_off.shape == (2, 12, 32 * 4, 2)
    assert torch.equal(t_one, t_off) and torch.equal(v_one, v_off)


def test_odd_video_same_layout_as_official(weights):
    H, W = 5, 61  # step 2: 4 lattices of 30 x 2 points
    v = video(H=H, W=W)
    off = make(weights)
    one = make(weights, dense_mode="one_pass")
    t_off, v_off = off(v, grid_query_frame=2)
    t_one, v_one = one(v, grid_query_frame=2)
    assert t_one.shape == t_off.shape == (1, 8, 4 * 30 * 2, 2)
    assert v_one.shape == v_off.shape == (1, 8, 240) and v_one.dtype == v_off.dtype == torch.bool
    # point order: at the query frame every point sits on its query (official query-point correction)
    expected = lattice_points(H, W, 2)
    assert torch.equal(t_one[0, 2], t_off[0, 2])
    torch.testing.assert_close(t_one[0, 2], expected[:, 1:], atol=1e-4, rtol=0)
    # one pass is a different estimator: points see the other lattices, so the tracks move (not bit-identical)
    assert not torch.equal(t_one, t_off)
    # ... and it is one call on the union of the lattices (no support grid), in the official order
    with torch.no_grad():
        t_ref, v_ref = one._compute_sparse_tracks(v, expected[None], add_support_grid=False)
    assert torch.equal(t_one, t_ref) and torch.equal(v_one, v_ref)


def test_chunks_equal_separate_calls(weights):
    H, W, qf = 3, 61, 9  # 4 lattices of 30 x 1 points; query frame 9 of 12: frames 0-3 come from backward tracking
    v = video(T=12, H=H, W=W, seed=1)
    pts = lattice_points(H, W, qf)
    assert pts.shape[0] == 120
    chunked = make(weights, dense_mode="one_pass", dense_chunk=50)  # chunks of 50, 50 and 20 points
    t_c, v_c = chunked(v, grid_query_frame=qf, backward_tracking=True)
    with torch.no_grad():
        parts = [
            chunked._compute_sparse_tracks(v, pts[None, lo : lo + 50], add_support_grid=False, backward_tracking=True)
            for lo in range(0, 120, 50)
        ]
    assert torch.equal(t_c, torch.cat([p[0] for p in parts], 2))
    assert torch.equal(v_c, torch.cat([p[1] for p in parts], 2))
    # (forward only from here, to keep the test short) the chunks really are separate problems, not the unchunked
    # call; a chunk >= N is the unchunked call
    t_w, v_w = make(weights, dense_mode="one_pass")(v, grid_query_frame=qf)
    assert not torch.equal(chunked(v, grid_query_frame=qf)[0], t_w)
    for n in (120, 10**6):
        t_n, v_n = make(weights, dense_mode="one_pass", dense_chunk=n)(v, grid_query_frame=qf)
        assert torch.equal(t_n, t_w) and torch.equal(v_n, v_w)


@pytest.mark.parametrize("value", ["fast", "ONE_PASS", None, 1])
def test_bad_dense_mode(value):
    with pytest.raises(ValueError, match="dense_mode"):
        CoTrackerPredictor(None, model_name=MODEL, dense_mode=value)


@pytest.mark.parametrize("value", [0, -4, 2.5, True, "4096", None])
def test_bad_dense_chunk(value):
    with pytest.raises(ValueError, match="dense_chunk"):
        CoTrackerPredictor(None, model_name=MODEL, dense_mode="one_pass", dense_chunk=value)
