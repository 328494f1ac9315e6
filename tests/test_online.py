"""The streaming predictor gives the offline predictor's tracks, holding one window of frames."""
import pytest
import torch

from cotracker_fast.online import CoTrackerOnlinePredictor

from helpers import tame_random_weights_


@pytest.fixture
def pair(make_predictor, random_state_dict):
    off = make_predictor()
    on = make_predictor(cls=CoTrackerOnlinePredictor)
    tame_random_weights_(off.model)
    tame_random_weights_(on.model)
    return off, on


def _video(T=19, H=50, W=70, seed=0):
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(T, 3, 6, 9, generator=g)
    return (torch.nn.functional.interpolate(small, (H, W), mode="bilinear", align_corners=False) * 255)[None]


def _run(on, video, chunk, **start):
    on.start(video.shape[-2:], **start)
    tracks, vis = [], []
    S = on.window_len
    for i in range(0, video.shape[1], chunk):
        t, v, first = on.step(video[:, i : i + chunk])
        assert first == sum(x.shape[1] for x in tracks)
        assert on.buffered_frames <= S  # never more than one window of frames held between calls
        tracks.append(t)
        vis.append(v)
    t, v, first = on.finish()
    tracks.append(t)
    vis.append(v)
    return torch.cat(tracks, 1), torch.cat(vis, 1)


@pytest.mark.parametrize("chunk", [1, 3, 8, 19])
def test_streaming_equals_offline_queries(pair, chunk):
    off, on = pair
    video = _video()  # T = 19: not a multiple of S/2, the last window is padded
    q = torch.tensor([[[0.0, 10, 12], [5.0, 30, 20], [9.0, 60, 40], [14.0, 3, 44], [0.0, 69, 49]]])
    t_off, v_off = off(video, q)
    t_on, v_on = _run(on, video, chunk, queries=q)
    assert torch.equal(t_on, t_off) and torch.equal(v_on, v_off)


def test_streaming_equals_offline_grid_mask(pair):
    off, on = pair
    video = _video(T=14, seed=1)
    mask = torch.zeros(1, 1, 50, 70)
    mask[..., 5:40, 10:60] = 1
    t_off, v_off = off(video, grid_size=5, grid_query_frame=3, segm_mask=mask)
    t_on, v_on = _run(on, video, 4, grid_size=5, grid_query_frame=3, segm_mask=mask)
    assert torch.equal(t_on, t_off) and torch.equal(v_on, v_off)


@pytest.mark.parametrize("T", [3, 4])
def test_short_video(pair, T):
    """T <= S/2: the one window runs in finish() (step() cannot know the clip will stay shorter than a window) and
    every frame from the query frame on is tracked, as offline."""
    off, on = pair
    video = _video(T=T)
    q = torch.tensor([[[1.0, 10, 12], [0.0, 40, 30]]])
    t_off, v_off = off(video, q)
    on.start(video.shape[-2:], queries=q)
    t_step, _, _ = on.step(video)
    assert t_step.shape[1] == 0  # nothing is final before the end of the clip is known
    t_on, v_on, first = on.finish()
    assert first == 0 and t_on.shape[1] == T
    assert torch.equal(t_on, t_off) and torch.equal(v_on, v_off)
    assert bool((t_on.abs().sum(-1) > 0).all())  # the window predicts all of its frames
    assert torch.equal(_run(on, video, 2, queries=q)[0], t_off)


def test_queries_added_while_streaming(pair):
    """Queries given before their frame arrives are tracked as if known from the start, up to the order of tied
    query frames: the official order comes from torch.sort's unstable algorithm over *all* queries, whose tie
    order for N > 16 depends on the whole array, including queries the stream has not seen yet; through the
    official token layout that order changes tracks slightly. Measured here: max 0.018 px; asserted at
    0.05 px. (With all queries given at start() the streams are bit-exact, tests above.)"""
    off, on = pair
    video = _video(T=17, seed=2)
    q0 = torch.tensor([[[0.0, 10, 12], [2.0, 40, 30]]])
    q1 = torch.tensor([[[13.0, 20, 25]]])
    on.start(video.shape[-2:], queries=q0)
    outs = [on.step(video[:, :10])]
    with pytest.raises(ValueError, match="arrived after that frame"):
        on.add_queries(torch.tensor([[[9.0, 5, 5]]]))
    on.add_queries(q1)
    outs.append(on.step(video[:, 10:]))
    outs.append(on.finish())
    t_off, v_off = off(video, torch.cat([q0, q1], 1))
    # frames emitted before q1 was added have 2 columns, later ones 3
    assert outs[0][0].shape[2] == 2 and outs[2][0].shape[2] == 3
    torch.testing.assert_close(outs[0][0], t_off[:, : outs[0][0].shape[1], :2], rtol=0, atol=0.05)
    t_on = torch.cat([o[0] for o in outs[1:]], 1)
    first = outs[1][2]
    torch.testing.assert_close(t_on, t_off[:, first:], rtol=0, atol=0.05)


def test_backward_pass_equals_offline_backward_tracking(pair):
    off, on = pair
    video = _video(T=15, seed=3)
    q = torch.tensor([[[11.0, 10, 12], [6.0, 30, 20], [0.0, 50, 30]]])
    t_fwd, v_fwd = _run(on, video, 4, queries=q)
    on.start_backward(video.shape[1])
    rev = video.flip(1)
    outs = [on.step(rev[:, i : i + 5]) for i in range(0, 15, 5)] + [on.finish()]
    t_bwd = torch.cat([o[0] for o in outs], 1).flip(1)
    v_bwd = torch.cat([o[1] for o in outs], 1).flip(1)
    missing = t_fwd == 0
    t_both = torch.where(missing, t_bwd, t_fwd)
    v_both = torch.where(missing[..., 0], v_bwd, v_fwd)
    t_off, v_off = off(video, q, backward_tracking=True)
    assert missing.any()  # the point queried at frame 11 has frames before its first window
    assert torch.equal(t_both, t_off) and torch.equal(v_both, v_off)


def test_streaming_batch_equals_offline(pair):
    off, on = pair
    video = torch.cat([_video(T=13, seed=4), _video(T=13, seed=5)])
    q = torch.tensor([[[0.0, 10, 12], [9.0, 30, 20]], [[3.0, 50, 30], [0.0, 5, 40]]])
    t_off, v_off = off(video, q)
    t_on, v_on = _run(on, video, 5, queries=q)
    assert torch.equal(t_on, t_off) and torch.equal(v_on, v_off)


def test_online_errors(pair):
    _, on = pair
    with pytest.raises(RuntimeError, match="start"):
        on.step(torch.zeros(1, 1, 3, 8, 8))
    on.start((50, 70), queries=torch.tensor([[[0.0, 1, 1]]]))
    with pytest.raises(ValueError, match=r"frames must be \(B=1, F, 3, H=50, W=70\)"):
        on.step(torch.zeros(1, 2, 3, 40, 70))
    with pytest.raises(ValueError, match="NaN"):
        on.step(torch.full((1, 1, 3, 50, 70), float("nan")))
    assert on.frames_received == 0
    with pytest.raises(ValueError, match="empty"):
        on.finish()
    on.step(_video(T=2))
    on.finish()
    with pytest.raises(RuntimeError, match="finish"):
        on.step(_video(T=1))
    with pytest.raises(RuntimeError, match="finished"):
        on.add_queries(torch.tensor([[[5.0, 1, 1]]]))
    with pytest.raises(ValueError, match="forward pass had 2 frames"):
        on.start_backward(5)
    with pytest.raises(ValueError, match="outside"):
        on.start((50, 70), queries=torch.tensor([[[0.0, 71, 1]]]))
    with pytest.raises(ValueError, match="0..255"):
        on.start((50, 70), queries=torch.tensor([[[0.0, 1, 1]]]))
        on.step(torch.full((1, 1, 3, 50, 70), 1000.0))
