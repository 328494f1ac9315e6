"""Hand-computed checks for cotracker_fast.evaluation.metrics (numpy only)."""
import math

import numpy as np
import pytest

from cotracker_fast.evaluation.metrics import (
    average_metrics,
    badja_pck,
    compute_tapvid_metrics,
    fastcapture_accuracy,
    tapvid_points_from_tracks,
)

THRESH = (1, 2, 4, 8, 16)


def _single(query_t, gt_xy, gt_occ, pred_xy, pred_occ, mode):
    """One video, one point: gt_xy/pred_xy [T, 2], occ [T]."""
    T = len(gt_occ)
    q = np.array([[[query_t, 0.0, 0.0]]])
    return compute_tapvid_metrics(
        q,
        np.asarray(gt_occ, bool).reshape(1, 1, T),
        np.asarray(gt_xy, float).reshape(1, 1, T, 2),
        np.asarray(pred_occ, bool).reshape(1, 1, T),
        np.asarray(pred_xy, float).reshape(1, 1, T, 2),
        mode,
    )


def test_all_metrics_first_mode_offsets():
    # T=5, query at t=1 -> evaluated frames 2, 3, 4. GT visible at (10, 10) everywhere,
    # prediction always visible. Offsets: f0 100 px, f1 100 px (not evaluated),
    # f2 0 px (sq 0), f3 1.5 px (sq 2.25), f4 3 px (sq 9).
    gt = np.full((5, 2), 10.0)
    pred = gt.copy()
    pred[0, 0] += 100
    pred[1, 0] += 100
    pred[3, 0] += 1.5
    pred[4, 0] += 3.0
    m = _single(1, gt, [False] * 5, pred, [False] * 5, "first")
    # occlusion: all 3 evaluated frames agree -> 1
    assert m["occlusion_accuracy"] == pytest.approx([1.0])
    # d=1: only f2 within -> 1/3; TP=1, FP=2 -> 1/(3+2)=0.2
    assert m["pts_within_1"] == pytest.approx([1 / 3])
    assert m["jaccard_1"] == pytest.approx([0.2])
    # d=2: f2, f3 (2.25<4) within -> 2/3; TP=2, FP=1 -> 2/4=0.5
    assert m["pts_within_2"] == pytest.approx([2 / 3])
    assert m["jaccard_2"] == pytest.approx([0.5])
    # d>=4: all within -> 1 and 3/3
    for d in (4, 8, 16):
        assert m[f"pts_within_{d}"] == pytest.approx([1.0])
        assert m[f"jaccard_{d}"] == pytest.approx([1.0])
    # averages: (1/3+2/3+1+1+1)/5 = 0.8 ; (0.2+0.5+1+1+1)/5 = 0.74
    assert m["average_pts_within_thresh"] == pytest.approx([0.8])
    assert m["average_jaccard"] == pytest.approx([0.74])
    for v in m.values():
        assert isinstance(v, np.ndarray) and v.shape == (1,)


def test_occlusion_and_false_positives():
    # b=1, n=2, T=3, both queries at t=0 ("first") -> frames 1, 2 evaluated (4 entries).
    # p0: GT visible at (0,0) f1,f2; pred exact; pred visible f1, pred OCCLUDED f2 (wrong).
    # p1: GT occluded f1, visible f2 at (0,0); pred visible f1 (wrong -> FP),
    #     pred visible f2 at 5 px (sq 25).
    q = np.zeros((1, 2, 3))
    gt_occ = np.array([[[False, False, False], [False, True, False]]])
    pred_occ = np.array([[[False, False, True], [False, False, False]]])
    gt = np.zeros((1, 2, 3, 2))
    pred = np.zeros((1, 2, 3, 2))
    pred[0, 1, 2, 0] = 5.0
    m = compute_tapvid_metrics(q, gt_occ, gt, pred_occ, pred, "first")
    # occlusion correct: p0f1 yes, p0f2 no, p1f1 no, p1f2 yes -> 2/4
    assert m["occlusion_accuracy"] == pytest.approx([0.5])
    # GT-visible evaluated: p0f1, p0f2, p1f2 = 3
    # d<=4 (25 >= 16): within p0f1, p0f2 -> 2/3; TP = p0f1 = 1 (p0f2 pred occluded);
    #   FP = p1f1 (gt occ) + p1f2 (not within) = 2 -> 1/(3+2) = 0.2
    for d in (1, 2, 4):
        assert m[f"pts_within_{d}"] == pytest.approx([2 / 3])
        assert m[f"jaccard_{d}"] == pytest.approx([0.2])
    # d>=8: all 3 within -> 1; TP = p0f1, p1f2 = 2; FP = p1f1 = 1 -> 2/(3+1) = 0.5
    for d in (8, 16):
        assert m[f"pts_within_{d}"] == pytest.approx([1.0])
        assert m[f"jaccard_{d}"] == pytest.approx([0.5])
    # averages: (3*2/3 + 2)/5 = 0.8 ; (3*0.2 + 2*0.5)/5 = 0.32
    assert m["average_pts_within_thresh"] == pytest.approx([0.8])
    assert m["average_jaccard"] == pytest.approx([0.32])


def _query2_case(wrong_frames, mode, wrong_occ_frames=()):
    # T=4, query at t=2, GT visible at (0,0). Prediction exact and visible except
    # 100 px off on `wrong_frames` and wrongly occluded on `wrong_occ_frames`.
    gt = np.zeros((4, 2))
    pred = np.zeros((4, 2))
    pred_occ = np.zeros(4, bool)
    for f in wrong_frames:
        pred[f, 0] = 100.0
    for f in wrong_occ_frames:
        pred_occ[f] = True
    return _single(2, gt, np.zeros(4, bool), pred, pred_occ, mode)


def test_first_mode_ignores_before_and_at_query():
    # wrong before the query (f0, f1) and at the query (f2): only f3 evaluated, exact -> 1
    m = _query2_case([0, 1, 2], "first", wrong_occ_frames=[0, 1, 2])
    for k in ("occlusion_accuracy", "average_jaccard", "average_pts_within_thresh"):
        assert m[k] == pytest.approx([1.0])
    # wrong after the query (f3): pts 0/1, jaccard 0/(1+1) = 0
    m = _query2_case([3], "first")
    assert m["pts_within_16"] == pytest.approx([0.0])
    assert m["jaccard_16"] == pytest.approx([0.0])
    assert m["average_jaccard"] == pytest.approx([0.0])
    # wrong occlusion after the query: occ acc 0/1; pred occluded -> TP 0, FP 0 -> 0/1
    m = _query2_case([], "first", wrong_occ_frames=[3])
    assert m["occlusion_accuracy"] == pytest.approx([0.0])
    assert m["pts_within_1"] == pytest.approx([1.0])
    assert m["jaccard_1"] == pytest.approx([0.0])


def test_strided_mode_counts_before_not_at_query():
    # wrong at the query frame only -> evaluated f0, f1, f3 all exact -> 1
    m = _query2_case([2], "strided", wrong_occ_frames=[2])
    for k in ("occlusion_accuracy", "average_jaccard", "average_pts_within_thresh"):
        assert m[k] == pytest.approx([1.0])
    # wrong before the query (f0): pts 2/3 at every d; TP 2, FP 1 -> 2/(3+1) = 0.5
    m = _query2_case([0], "strided")
    for d in THRESH:
        assert m[f"pts_within_{d}"] == pytest.approx([2 / 3])
        assert m[f"jaccard_{d}"] == pytest.approx([0.5])
    # wrong occlusion before the query: occlusion accuracy 2/3
    m = _query2_case([], "strided", wrong_occ_frames=[1])
    assert m["occlusion_accuracy"] == pytest.approx([2 / 3])


def test_threshold_is_strict():
    # T=2, query 0 -> only f1 evaluated; offset exactly 2 px (sq 4).
    gt = np.zeros((2, 2))
    pred = np.array([[0.0, 0.0], [0.0, 2.0]])
    m = _single(0, gt, [False, False], pred, [False, False], "first")
    # 4 < 1, 4 < 4 false; 4 < 16 true
    assert m["pts_within_1"] == pytest.approx([0.0])
    assert m["pts_within_2"] == pytest.approx([0.0])
    assert m["jaccard_2"] == pytest.approx([0.0])  # 0 / (1 + 1)
    assert m["pts_within_4"] == pytest.approx([1.0])
    assert m["jaccard_4"] == pytest.approx([1.0])
    # exactly 1 px -> not within 1
    pred[1] = [1.0, 0.0]
    m = _single(0, gt, [False, False], pred, [False, False], "first")
    assert m["pts_within_1"] == pytest.approx([0.0])
    assert m["pts_within_2"] == pytest.approx([1.0])


def test_batch_of_two():
    # n=1, T=3, query 0. video 0 exact -> all 1; video 1 100 px off, visible -> 0 (occ still 1)
    q = np.zeros((2, 1, 3))
    occ = np.zeros((2, 1, 3), bool)
    gt = np.zeros((2, 1, 3, 2))
    pred = np.zeros((2, 1, 3, 2))
    pred[1, 0, :, 0] = 100.0
    m = compute_tapvid_metrics(q, occ, gt, occ, pred, "first")
    assert m["occlusion_accuracy"] == pytest.approx([1.0, 1.0])
    for d in THRESH:
        assert m[f"pts_within_{d}"] == pytest.approx([1.0, 0.0])
        assert m[f"jaccard_{d}"] == pytest.approx([1.0, 0.0])
    assert m["average_jaccard"].shape == (2,)
    assert m["average_jaccard"] == pytest.approx([1.0, 0.0])
    # average over videos: 0.5
    avg = average_metrics([{k: v[i] for k, v in m.items()} for i in range(2)])
    assert avg["average_jaccard"] == pytest.approx(0.5)
    assert avg["occlusion_accuracy"] == pytest.approx(1.0)


def test_nan_for_empty_denominators():
    # GT and prediction occluded everywhere -> no GT-visible and no FP -> NaN; occ acc 1
    z = np.zeros((3, 2))
    m = _single(0, z, [True] * 3, z, [True] * 3, "first")
    assert m["occlusion_accuracy"] == pytest.approx([1.0])
    assert np.isnan(m["pts_within_4"][0]) and np.isnan(m["jaccard_4"][0])
    assert np.isnan(m["average_jaccard"][0])
    # "first" with the query at the last frame -> nothing evaluated -> all NaN
    m = _single(2, z, [False] * 3, z, [False] * 3, "first")
    assert all(np.isnan(v[0]) for v in m.values())


def test_average_metrics_ignores_nan():
    # a: (1 + 0.5) / 2 = 0.75 (NaN dropped); b: all NaN -> NaN
    avg = average_metrics([
        {"a": np.array([1.0, np.nan]), "b": np.nan},
        {"a": np.array([0.5]), "b": float("nan")},
    ])
    assert avg["a"] == pytest.approx(0.75)
    assert math.isnan(avg["b"])
    with pytest.raises(ValueError, match="per_video"):
        average_metrics([])


def test_badja_pck():
    # T=3, n=2, GT at (0,0). seg_area [100, 100, 100] -> radius 0.2*10 = 2 px.
    # f0: 50 px off (excluded: frame 0). f1: p0 1.5 px (pck yes, 3px yes),
    # p1 2.5 px (pck no, 3px yes). f2: p0 1 px (yes, yes), p1 invisible 50 px (excluded).
    gt = np.zeros((3, 2, 2))
    pred = np.zeros((3, 2, 2))
    pred[0, :, 0] = 50.0
    pred[1, 0, 0] = 1.5
    pred[1, 1, 1] = 2.5
    pred[2, 0, 0] = 1.0
    pred[2, 1, 0] = 50.0
    vis = np.array([[True, True], [True, True], [True, False]])
    r = badja_pck(pred, gt, vis, [100.0, 100.0, 100.0])
    assert r["pck"] == pytest.approx(2 / 3)
    assert r["accuracy_3px"] == pytest.approx(1.0)
    # boundary: exactly 2 px at area 100 -> not correct (strict); area 400 -> radius 4 -> correct
    pred2 = np.zeros((2, 1, 2))
    pred2[1, 0, 0] = 2.0
    gt2 = np.zeros((2, 1, 2))
    vis2 = np.ones((2, 1), bool)
    assert badja_pck(pred2, gt2, vis2, [100.0, 100.0])["pck"] == 0.0
    assert badja_pck(pred2, gt2, vis2, [100.0, 400.0])["pck"] == 1.0
    # only frame 0 visible -> nothing to evaluate -> NaN
    r = badja_pck(pred2, gt2, np.array([[True], [False]]), [100.0, 100.0])
    assert math.isnan(r["pck"]) and math.isnan(r["accuracy_3px"])


def test_fastcapture_accuracy():
    # f0 excluded (50 px). f1: p0 (2,2) -> 2.83 px yes; p1 (3,0) exactly 3 -> no (strict).
    # f2: p0 (0,2.9) yes; p1 invisible (excluded). -> 2/3
    gt = np.zeros((3, 2, 2))
    pred = np.zeros((3, 2, 2))
    pred[0] = 50.0
    pred[1, 0] = [2.0, 2.0]
    pred[1, 1] = [3.0, 0.0]
    pred[2, 0] = [0.0, 2.9]
    pred[2, 1] = [50.0, 0.0]
    vis = np.array([[True, True], [True, True], [True, False]])
    assert fastcapture_accuracy(pred, gt, vis)["accuracy_3px"] == pytest.approx(2 / 3)
    r = fastcapture_accuracy(pred, gt, np.zeros((3, 2), bool))
    assert math.isnan(r["accuracy_3px"])


def test_tapvid_points_from_tracks():
    # frame H=128, W=512 -> x * 0.5, y * 2
    tracks = np.array([
        [[100.0, 10.0], [200.0, 20.0]],   # t=0: p0, p1
        [[102.0, 11.0], [204.0, 22.0]],   # t=1
    ])
    visible = np.array([[True, False], [True, True]])
    q, occ, tr = tapvid_points_from_tracks(tracks, visible, [0, 1], (128, 512))
    assert q.shape == (1, 2, 3) and occ.shape == (1, 2, 2) and tr.shape == (1, 2, 2, 2)
    # p0 queried at t=0 -> (0, y=20, x=50); p1 at t=1 -> (1, y=44, x=102)
    np.testing.assert_allclose(q[0], [[0.0, 20.0, 50.0], [1.0, 44.0, 102.0]])
    np.testing.assert_allclose(tr[0, 0], [[50.0, 20.0], [51.0, 22.0]])
    np.testing.assert_allclose(tr[0, 1], [[100.0, 40.0], [102.0, 44.0]])
    np.testing.assert_array_equal(occ[0], [[False, False], [True, False]])
    assert occ.dtype == bool
    # round-trip into the metric: perfect prediction -> everything 1
    m = compute_tapvid_metrics(q, occ, tr, occ, tr, "strided")
    assert m["average_jaccard"] == pytest.approx([1.0])


def test_bad_shapes_raise_value_error():
    q = np.zeros((1, 2, 3))
    occ = np.zeros((1, 2, 4), bool)
    tr = np.zeros((1, 2, 4, 2))
    with pytest.raises(ValueError, match="query_points"):
        compute_tapvid_metrics(np.zeros((1, 2, 2)), occ, tr, occ, tr, "first")
    with pytest.raises(ValueError, match="gt_occluded"):
        compute_tapvid_metrics(q, occ[0], tr, occ, tr, "first")
    with pytest.raises(ValueError, match="gt_tracks"):
        compute_tapvid_metrics(q, occ, tr[..., :1], occ, tr, "first")
    with pytest.raises(ValueError, match="pred_occluded"):
        compute_tapvid_metrics(q, occ, tr, occ[:, :, :3], tr, "first")
    with pytest.raises(ValueError, match="pred_tracks"):
        compute_tapvid_metrics(q, occ, tr, occ, np.zeros((1, 2, 3, 2)), "first")
    with pytest.raises(ValueError, match="query_mode"):
        compute_tapvid_metrics(q, occ, tr, occ, tr, "all")
    with pytest.raises(ValueError, match="query_points"):
        compute_tapvid_metrics(np.full((1, 2, 3), 4.0), occ, tr, occ, tr, "first")
    p = np.zeros((3, 2, 2))
    v = np.ones((3, 2), bool)
    with pytest.raises(ValueError, match="seg_area"):
        badja_pck(p, p, v, [1.0, 1.0])
    with pytest.raises(ValueError, match="pred_tracks"):
        badja_pck(p[:2], p, v, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="gt_visible"):
        fastcapture_accuracy(p, p, v.T)
    with pytest.raises(ValueError, match="gt_tracks"):
        fastcapture_accuracy(p, p[..., 0], v)
    with pytest.raises(ValueError, match="visible"):
        tapvid_points_from_tracks(p, v[:2], [0, 0], (10, 10))
    with pytest.raises(ValueError, match="query_frames"):
        tapvid_points_from_tracks(p, v, [0, 0, 0], (10, 10))
    with pytest.raises(ValueError, match="tracks"):
        tapvid_points_from_tracks(p[..., 0], v, [0, 0], (10, 10))
    with pytest.raises(ValueError, match="size_hw"):
        tapvid_points_from_tracks(p, v, [0, 0], (0, 10))
