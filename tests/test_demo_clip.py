"""Tests for cotracker_fast.demo_clip: the photo-based demo clip and its ground truth."""
import numpy as np
import pytest

from cotracker_fast.demo_clip import (
    ASSET_DIR,
    PHOTO_NAME,
    DemoClip,
    bilinear_sample,
    load_photo,
    make_demo_clip,
    tracking_error,
)


@pytest.fixture(scope="module")
def clip() -> DemoClip:
    return make_demo_clip()  # the clip `make demo` uses (24 x 384 x 512), ~1 s


@pytest.fixture(scope="module")
def small() -> DemoClip:
    return make_demo_clip(8, (96, 128), seed=5)


def test_asset_ships_with_licence_note():
    assert (ASSET_DIR / PHOTO_NAME).stat().st_size < 300_000
    notes = (ASSET_DIR / "ASSETS.md").read_text()
    assert PHOTO_NAME in notes and "public domain" in notes.lower()
    photo = load_photo()
    assert photo.shape == (600, 512, 3) and photo.dtype == np.uint8
    assert photo.std() > 30  # a real, textured photograph, not a flat placeholder


def test_shapes_and_types(clip):
    t_len, h, w = 24, 384, 512
    assert clip.frames.shape == (t_len, h, w, 3) and clip.frames.dtype == np.uint8
    n = clip.queries.shape[0]
    assert clip.queries.shape == (n, 3) and clip.queries.dtype == np.float32
    assert n == 6 * 8 + 8
    assert clip.gt_tracks.shape == (t_len, n, 2) and clip.gt_tracks.dtype == np.float32
    assert clip.gt_visible.shape == (t_len, n) and clip.gt_visible.dtype == np.bool_
    assert isinstance(clip.description, str) and PHOTO_NAME in clip.description
    assert clip.photo_to_frame.shape == (t_len, 2, 3)


def test_queries(clip):
    t = clip.queries[:, 0]
    assert (t == np.round(t)).all()
    assert (t == 0).sum() == 48
    late = t[t > 0]
    assert len(late) == 8 and late.max() <= 23
    h, w = clip.frames.shape[1:3]
    x, y = clip.queries[:, 1], clip.queries[:, 2]
    assert ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).all()
    # every query is visible at its own frame
    assert clip.gt_visible[t.astype(int), np.arange(len(t))].all()
    # queries sit on textured places: local contrast well above the frame's typical one
    gray = clip.frames.mean(axis=3)
    local_std = [
        gray[int(tq), int(yq) - 3 : int(yq) + 4, int(xq) - 3 : int(xq) + 4].std() for tq, xq, yq in clip.queries
    ]
    assert np.median(local_std) > 10


def test_deterministic(small):
    again = make_demo_clip(8, (96, 128), seed=5)
    np.testing.assert_array_equal(small.frames, again.frames)
    np.testing.assert_array_equal(small.queries, again.queries)
    np.testing.assert_array_equal(small.gt_tracks, again.gt_tracks)
    np.testing.assert_array_equal(small.gt_visible, again.gt_visible)
    assert small.description == again.description
    other = make_demo_clip(8, (96, 128), seed=6)
    assert not np.array_equal(small.gt_tracks, other.gt_tracks)


def test_gt_starts_at_the_queries(clip, small):
    for c in (clip, small):
        t = c.queries[:, 0].astype(int)
        at_query = c.gt_tracks[t, np.arange(len(t))]
        # float64 transforms rounded to float32: agreement to float32 precision at ~500 px
        np.testing.assert_allclose(at_query, c.queries[:, 1:], atol=1e-3)
        first = t == 0
        np.testing.assert_allclose(c.gt_tracks[0, first], c.queries[first, 1:], atol=1e-3)


def test_the_points_move_smoothly(clip):
    step = np.linalg.norm(np.diff(clip.gt_tracks, axis=0), axis=-1)
    assert step.max() < 15  # px per frame: trackable motion
    assert step.mean() > 0.5  # but it does move
    assert np.abs(clip.gt_tracks[-1] - clip.gt_tracks[0]).max() > 10


def test_visibility_is_inside_the_frame(clip, small):
    for c in (clip, small):
        h, w = c.frames.shape[1:3]
        x, y = c.gt_tracks[..., 0], c.gt_tracks[..., 1]
        np.testing.assert_array_equal(c.gt_visible, (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1))
    assert clip.gt_visible.mean() > 0.8


def test_frames_are_filled_by_the_photo(clip):
    """Every frame pixel maps back inside the photograph: no empty borders."""
    h, w = clip.frames.shape[1:3]
    ph, pw = clip.photo.shape[:2]
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
    for a in clip.photo_to_frame:
        lin, off = a[:, :2], a[:, 2]
        src = (corners - off) @ np.linalg.inv(lin).T
        assert (src >= 0).all() and (src[:, 0] <= pw - 1).all() and (src[:, 1] <= ph - 1).all()


@pytest.mark.parametrize("which", ["clip", "small"])
def test_warp_matches_ground_truth(which, request):
    """The rendered frame at a GT position shows what the query frame shows at the query position."""
    c = request.getfixturevalue(which)
    t_q = c.queries[:, 0].astype(int)
    ref = np.stack([bilinear_sample(c.frames[tq], x, y) for tq, (x, y) in zip(t_q, c.queries[:, 1:])])
    err, err_shifted = [], []
    for t in range(len(c.frames)):
        v = c.gt_visible[t]
        gx, gy = c.gt_tracks[t, :, 0].astype(np.float64), c.gt_tracks[t, :, 1].astype(np.float64)
        err.append(np.abs(bilinear_sample(c.frames[t], gx, gy) - ref).mean(-1)[v])
        err_shifted.append(np.abs(bilinear_sample(c.frames[t], gx + 3, gy - 2) - ref).mean(-1)[v])
    err, err_shifted = np.concatenate(err), np.concatenate(err_shifted)
    # Both sides are bilinear resamplings of the photo (frame = photo resampled, then sampled again at a
    # sub-pixel GT position), which differ on the sharp corners the queries sit on: measured mean ~3 grey
    # levels at 384x512 and ~6 at 96x128, versus ~50-70 when the position is off by (3, -2) px.
    assert err.mean() < 10
    assert err_shifted.mean() > 4 * err.mean()
    # and the photograph itself, at the query's photo point, agrees the same way
    inv = [np.linalg.inv(np.vstack([a, [0, 0, 1]])) for a in c.photo_to_frame]
    src = np.stack([(inv[tq] @ [x, y, 1.0])[:2] for tq, (x, y) in zip(t_q, c.queries[:, 1:])])
    from_photo = bilinear_sample(c.photo, src[:, 0], src[:, 1])
    assert np.abs(from_photo - ref).mean() < 10


def test_tracking_error_of_gt_is_zero(clip):
    res = tracking_error(clip.gt_tracks, clip.gt_tracks, clip.gt_visible)
    assert res["epe_mean"] == 0 and res["epe_median"] == 0
    assert res["delta_avg"] == 1 and all(res[f"frac_within_{d}"] == 1 for d in (1, 2, 4, 8, 16))
    assert res["num_evaluated"] == clip.gt_visible.sum()


def test_tracking_error_values():
    gt = np.zeros((4, 3, 2))
    vis = np.ones((4, 3), bool)
    vis[1, 2] = False
    pred = gt + [3.0, 4.0]  # a 5 px error everywhere
    pred[1, 2] = 1000.0  # not visible: ignored
    res = tracking_error(pred, gt, vis)
    assert res["epe_mean"] == pytest.approx(5) and res["epe_median"] == pytest.approx(5)
    assert [res[f"frac_within_{d}"] for d in (1, 2, 4, 8, 16)] == [0, 0, 0, 1, 1]
    assert res["delta_avg"] == pytest.approx(0.4)
    assert res["num_evaluated"] == 11
    # query frames: only frames strictly after each query count
    res = tracking_error(pred, gt, vis, query_frames=np.array([0, 2, 3]))
    assert res["num_evaluated"] == 3 + 1 + 0
    # TAP-Vid scale: 256 x 512 frames resized to 256 x 256 halve x, so a (3, 4) px error becomes (1.5, 4)
    res = tracking_error(pred, gt, vis, image_size_hw=(256, 512))
    assert res["epe_mean"] == pytest.approx(np.hypot(1.5, 4.0))
    # a missing prediction is an infinite error
    pred[0, 0] = np.nan
    res = tracking_error(pred, gt, vis)
    assert res["epe_mean"] == np.inf and res["frac_within_16"] == pytest.approx(10 / 11)
    with pytest.raises(ValueError, match="pred_tracks"):
        tracking_error(pred[:, :2], gt, vis)
    with pytest.raises(ValueError, match="gt_visible"):
        tracking_error(pred, gt, vis[:, :2])


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_frames"):
        make_demo_clip(1)
    with pytest.raises(ValueError, match="size_hw"):
        make_demo_clip(4, (16, 64))
