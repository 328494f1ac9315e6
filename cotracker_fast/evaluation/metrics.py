"""Evaluation metrics for point tracking: TAP-Vid, BADJA and FastCapture.

All functions are pure numpy and accept anything ``np.asarray`` understands
(numpy arrays, lists, CPU torch tensors).  Coordinates are always in pixels.

TAP-Vid layout (used by :func:`compute_tapvid_metrics`)::

    query_points  [b, n, 3]     rows (t, y, x); t is a frame index (rounded to int)
    occluded      [b, n, T]     bool, True = occluded
    tracks        [b, n, T, 2]  (x, y) pixels of a 256x256 frame

Project layout (used by BADJA / FastCapture and the converter)::

    tracks        [T, n, 2]     (x, y) pixels of the original frame
    visible       [T, n]        bool, True = visible
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "TAPVID_THRESHOLDS",
    "compute_tapvid_metrics",
    "average_metrics",
    "badja_pck",
    "fastcapture_accuracy",
    "tapvid_points_from_tracks",
    "tracking_error",
]

#: Pixel thresholds (in 256x256 space) used by TAP-Vid.
TAPVID_THRESHOLDS: Tuple[int, ...] = (1, 2, 4, 8, 16)


def _check_shape(name: str, arr: np.ndarray, expected: Sequence, desc: str) -> None:
    """Raise ValueError unless ``arr.shape`` matches ``expected`` (None = any size)."""
    ok = arr.ndim == len(expected) and all(
        e is None or int(e) == s for e, s in zip(expected, arr.shape)
    )
    if not ok:
        raise ValueError(f"{name} must have shape {desc}, got {tuple(arr.shape)}")


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise num / den as float64, NaN where den == 0 (no warnings)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def compute_tapvid_metrics(
    query_points,
    gt_occluded,
    gt_tracks,
    pred_occluded,
    pred_tracks,
    query_mode: str,
) -> Dict[str, np.ndarray]:
    """TAP-Vid metrics (occlusion accuracy, <delta^x, Jaccard) per video.

    Args:
        query_points: [b, n, 3] float, rows (t, y, x); only t is used here
            (query frame index = ``int(round(t))``, must lie in [0, T)).
        gt_occluded: [b, n, T] bool, ground-truth occlusion (True = occluded).
        gt_tracks: [b, n, T, 2] float, ground-truth (x, y) in pixels of a
            256x256 frame (the caller rescales).
        pred_occluded: [b, n, T] bool, predicted occlusion.
        pred_tracks: [b, n, T, 2] float, predicted (x, y), same pixel space.
        query_mode: ``"first"``: only frames strictly after the query frame are
            evaluated; ``"strided"``: every frame except the query frame.

    Returns:
        dict of float64 arrays of shape [b]:
        ``occlusion_accuracy``, ``pts_within_{d}`` and ``jaccard_{d}`` for
        d in (1, 2, 4, 8, 16) (pixels), ``average_pts_within_thresh`` and
        ``average_jaccard`` (means over the five thresholds).  A point is
        "within" d when its squared distance is strictly below d**2.
        Fractions lie in [0, 1]; a video whose denominator is empty (no
        evaluated frame, or no evaluated GT-visible frame and no false
        positive) gets NaN for that metric (and thus for the averages).

    Raises:
        ValueError: on a bad shape, unknown ``query_mode`` or query frame
            outside [0, T).
    """
    query_points = np.asarray(query_points, dtype=np.float64)
    gt_occluded = np.asarray(gt_occluded).astype(bool)
    gt_tracks = np.asarray(gt_tracks, dtype=np.float64)
    pred_occluded = np.asarray(pred_occluded).astype(bool)
    pred_tracks = np.asarray(pred_tracks, dtype=np.float64)

    if query_mode not in ("first", "strided"):
        raise ValueError(f"query_mode must be 'first' or 'strided', got {query_mode!r}")
    _check_shape("query_points", query_points, (None, None, 3), "[b, n, 3]")
    b, n, _ = query_points.shape
    _check_shape("gt_occluded", gt_occluded, (b, n, None), f"[b={b}, n={n}, T]")
    T = gt_occluded.shape[2]
    _check_shape("gt_tracks", gt_tracks, (b, n, T, 2), f"[b={b}, n={n}, T={T}, 2]")
    _check_shape("pred_occluded", pred_occluded, (b, n, T), f"[b={b}, n={n}, T={T}]")
    _check_shape("pred_tracks", pred_tracks, (b, n, T, 2), f"[b={b}, n={n}, T={T}, 2]")

    qt = np.round(query_points[..., 0]).astype(np.int64)  # [b, n]
    if qt.size and (qt.min() < 0 or qt.max() >= T):
        raise ValueError(f"query_points frame indices must lie in [0, {T}), got range "
                         f"[{qt.min()}, {qt.max()}]")
    frames = np.arange(T)[None, None, :]  # [1, 1, T]
    if query_mode == "first":
        evaluated = frames > qt[..., None]
    else:
        evaluated = frames != qt[..., None]  # [b, n, T]

    out: Dict[str, np.ndarray] = {}
    occ_correct = (pred_occluded == gt_occluded) & evaluated
    out["occlusion_accuracy"] = _safe_div(occ_correct.sum(axis=(1, 2)), evaluated.sum(axis=(1, 2)))

    gt_vis = ~gt_occluded
    pred_vis = ~pred_occluded
    sq_dist = np.sum((pred_tracks - gt_tracks) ** 2, axis=-1)  # [b, n, T]
    gt_vis_eval = gt_vis & evaluated
    n_gt_vis = gt_vis_eval.sum(axis=(1, 2))
    pts_all, jac_all = [], []
    for d in TAPVID_THRESHOLDS:
        within = sq_dist < d * d
        pts = _safe_div((within & gt_vis_eval).sum(axis=(1, 2)), n_gt_vis)
        tp = (within & gt_vis_eval & pred_vis).sum(axis=(1, 2))
        fp = (pred_vis & (gt_occluded | ~within) & evaluated).sum(axis=(1, 2))
        jac = _safe_div(tp, n_gt_vis + fp)
        out[f"pts_within_{d}"] = pts
        out[f"jaccard_{d}"] = jac
        pts_all.append(pts)
        jac_all.append(jac)
    out["average_jaccard"] = np.mean(np.stack(jac_all), axis=0)
    out["average_pts_within_thresh"] = np.mean(np.stack(pts_all), axis=0)
    return out


def average_metrics(per_video: List[Mapping[str, object]]) -> Dict[str, float]:
    """Mean over videos of every metric (the official evaluator's "avg").

    Args:
        per_video: list of metric dicts, one per video (or per batch); each
            value is a scalar or an array (e.g. shape [b] from
            :func:`compute_tapvid_metrics`), all entries are pooled.

    Returns:
        dict metric name -> float, the mean ignoring NaN (NaN if every value
        of that metric is NaN).  Keys are the union over all dicts.

    Raises:
        ValueError: if ``per_video`` is empty or holds a non-mapping.
    """
    if len(per_video) == 0:
        raise ValueError("per_video must be a non-empty list of metric dicts")
    pooled: Dict[str, list] = {}
    for i, m in enumerate(per_video):
        if not isinstance(m, Mapping):
            raise ValueError(f"per_video[{i}] must be a dict of metrics, got {type(m).__name__}")
        for k, v in m.items():
            pooled.setdefault(k, []).append(np.asarray(v, dtype=np.float64).reshape(-1))
    result: Dict[str, float] = {}
    for k, vals in pooled.items():
        v = np.concatenate(vals)
        v = v[~np.isnan(v)]
        result[k] = float(v.mean()) if v.size else float("nan")
    return result


def _check_project_layout(pred_tracks, gt_tracks, gt_visible):
    pred_tracks = np.asarray(pred_tracks, dtype=np.float64)
    gt_tracks = np.asarray(gt_tracks, dtype=np.float64)
    gt_visible = np.asarray(gt_visible).astype(bool)
    _check_shape("gt_tracks", gt_tracks, (None, None, 2), "[T, n, 2]")
    T, n, _ = gt_tracks.shape
    _check_shape("pred_tracks", pred_tracks, (T, n, 2), f"[T={T}, n={n}, 2]")
    _check_shape("gt_visible", gt_visible, (T, n), f"[T={T}, n={n}]")
    dist = np.sqrt(np.sum((pred_tracks - gt_tracks) ** 2, axis=-1))  # [T, n] pixels
    mask = gt_visible.copy()
    mask[:1] = False  # frame 0 holds the queries: never evaluated
    return dist, mask


def badja_pck(pred_tracks, gt_tracks, gt_visible, seg_area) -> Dict[str, float]:
    """BADJA keypoint accuracy.

    Evaluated entries: GT-visible (t, i) with frame index t >= 1.

    Args:
        pred_tracks: [T, n, 2] predicted (x, y) in pixels.
        gt_tracks: [T, n, 2] ground-truth (x, y) in pixels.
        gt_visible: [T, n] bool, True where the GT keypoint is visible.
        seg_area: [T] float, segmentation-mask area of frame t in pixels.

    Returns:
        dict with ``pck``: fraction of evaluated entries with distance
        < 0.2 * sqrt(seg_area[t]) pixels, and ``accuracy_3px``: fraction with
        distance < 3 px.  Both in [0, 1]; NaN if nothing is evaluated.

    Raises:
        ValueError: on a bad shape.
    """
    dist, mask = _check_project_layout(pred_tracks, gt_tracks, gt_visible)
    seg_area = np.asarray(seg_area, dtype=np.float64)
    _check_shape("seg_area", seg_area, (dist.shape[0],), f"[T={dist.shape[0]}]")
    radius = 0.2 * np.sqrt(seg_area)[:, None]  # [T, 1] pixels
    count = mask.sum()
    return {
        "pck": float(_safe_div((dist < radius)[mask].sum(), count)),
        "accuracy_3px": float(_safe_div((dist < 3.0)[mask].sum(), count)),
    }


def fastcapture_accuracy(pred_tracks, gt_tracks, gt_visible) -> Dict[str, float]:
    """FastCapture accuracy: fraction of GT-visible entries (frame t >= 1)
    whose prediction lies within 3 px (strict, distance < 3).

    Args:
        pred_tracks: [T, n, 2] predicted (x, y) in pixels.
        gt_tracks: [T, n, 2] ground-truth (x, y) in pixels.
        gt_visible: [T, n] bool, True where the GT point is visible.

    Returns:
        dict with ``accuracy_3px`` in [0, 1]; NaN if nothing is evaluated.

    Raises:
        ValueError: on a bad shape.
    """
    dist, mask = _check_project_layout(pred_tracks, gt_tracks, gt_visible)
    return {"accuracy_3px": float(_safe_div((dist < 3.0)[mask].sum(), mask.sum()))}


def tapvid_points_from_tracks(
    tracks, visible, query_frames, size_hw: Tuple[int, int]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert project-layout tracks to the TAP-Vid layout in 256x256 space.

    Args:
        tracks: [T, n, 2] (x, y) in pixels of a frame of size ``size_hw``.
        visible: [T, n] bool, True = visible.
        query_frames: [n] int, query frame index of each point, in [0, T).
        size_hw: (H, W) of the original frame in pixels, both > 0.

    Returns:
        (query_points [1, n, 3] float64 rows (t, y, x), with (x, y) the track
        position at the query frame in 256x256 pixels;
        occluded [1, n, T] bool = ~visible;
        tracks [1, n, T, 2] float64 (x * 256 / W, y * 256 / H)).

    Raises:
        ValueError: on a bad shape, bad ``size_hw`` or query frame out of range.
    """
    tracks = np.asarray(tracks, dtype=np.float64)
    visible = np.asarray(visible).astype(bool)
    query_frames = np.asarray(query_frames)
    _check_shape("tracks", tracks, (None, None, 2), "[T, n, 2]")
    T, n, _ = tracks.shape
    _check_shape("visible", visible, (T, n), f"[T={T}, n={n}]")
    _check_shape("query_frames", query_frames, (n,), f"[n={n}]")
    hw = np.asarray(size_hw, dtype=np.float64)
    if hw.shape != (2,) or np.any(hw <= 0):
        raise ValueError(f"size_hw must be (H, W) with positive entries, got {size_hw!r}")
    qf = np.round(query_frames.astype(np.float64)).astype(np.int64)
    if n and (qf.min() < 0 or qf.max() >= T):
        raise ValueError(f"query_frames must lie in [0, {T}), got range [{qf.min()}, {qf.max()}]")
    H, W = hw
    scaled = tracks * np.array([256.0 / W, 256.0 / H])  # [T, n, 2] (x, y)
    tracks_tv = scaled.transpose(1, 0, 2)[None]  # [1, n, T, 2]
    occluded = (~visible).T[None]  # [1, n, T]
    q_xy = scaled[qf, np.arange(n)]  # [n, 2] (x, y)
    query_points = np.stack([qf.astype(np.float64), q_xy[:, 1], q_xy[:, 0]], axis=-1)[None]
    return query_points, occluded, tracks_tv


def tracking_error(
    pred_tracks: np.ndarray,
    gt_tracks: np.ndarray,
    gt_visible: np.ndarray,
    *,
    query_frames: Optional[np.ndarray] = None,
    image_size_hw: Optional[Tuple[int, int]] = None,
) -> Dict[str, float]:
    """Position error of predicted tracks against ground truth, over the frames where the point is visible.

    The endpoint error (EPE) of a track at a frame is the Euclidean distance between predicted and true
    ``(x, y)``. Only (frame, track) pairs with ``gt_visible`` count; with ``query_frames`` given, also only
    frames strictly after each track's query frame (TAP-Vid's "query first" protocol: the query frame is
    given, frames before it are not asked for). A non-finite prediction counts as an infinite error.

    ``frac_within_<d>`` is the fraction of counted pairs with EPE < d for d in 1, 2, 4, 8, 16 and
    ``delta_avg`` their mean, TAP-Vid's ``< delta^x_avg`` position accuracy (as a fraction, not %). TAP-Vid
    measures it on frames resized to 256x256: pass ``image_size_hw=(H, W)`` to rescale coordinates the
    same way; by default errors are in the clip's own pixels.

    Args:
        pred_tracks: ``(T, N, 2)`` predicted ``(x, y)`` in pixels.
        gt_tracks: ``(T, N, 2)`` true ``(x, y)`` in pixels.
        gt_visible: ``(T, N)`` bool.
        query_frames: optional ``(N,)`` integer query frame of each track.
        image_size_hw: optional ``(H, W)`` of the frames, to measure in 256x256 TAP-Vid pixels.

    Returns:
        ``{"epe_mean", "epe_median", "frac_within_1", ..., "frac_within_16", "delta_avg", "num_evaluated"}``
        (errors in pixels; ``num_evaluated`` counted pairs; all values NaN except the count when none).

    Raises:
        ValueError: mismatched shapes.
    """
    pred = np.asarray(pred_tracks, dtype=np.float64)
    gt = np.asarray(gt_tracks, dtype=np.float64)
    vis = np.asarray(gt_visible)
    if gt.ndim != 3 or gt.shape[2] != 2:
        raise ValueError(f"gt_tracks must have shape (T, N, 2), got {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"pred_tracks must have the shape of gt_tracks {gt.shape}, got {pred.shape}")
    if vis.shape != gt.shape[:2]:
        raise ValueError(f"gt_visible must have shape (T, N) = {gt.shape[:2]}, got {vis.shape}")
    mask = vis.astype(bool).copy()
    t_len, n = mask.shape
    if query_frames is not None:
        qf = np.asarray(query_frames)
        if qf.shape != (n,):
            raise ValueError(f"query_frames must have shape (N,) = ({n},), got {qf.shape}")
        mask &= np.arange(t_len)[:, None] > qf[None, :]
    if image_size_hw is not None:
        if len(image_size_hw) != 2 or min(image_size_hw) <= 0:
            raise ValueError(f"image_size_hw must be (H, W) > 0, got {image_size_hw!r}")
        scale = np.array([256.0 / image_size_hw[1], 256.0 / image_size_hw[0]])
        pred, gt = pred * scale, gt * scale
    err = np.sqrt(((pred - gt) ** 2).sum(-1))
    err = np.where(np.isfinite(err), err, np.inf)[mask]
    out: Dict[str, float] = {"num_evaluated": int(err.size)}
    if err.size == 0:
        out.update({"epe_mean": math.nan, "epe_median": math.nan, "delta_avg": math.nan})
        out.update({f"frac_within_{d}": math.nan for d in TAPVID_THRESHOLDS})
        return out
    out["epe_mean"] = float(err.mean())
    out["epe_median"] = float(np.median(err))
    fracs = [float((err < d).mean()) for d in TAPVID_THRESHOLDS]
    for d, f in zip(TAPVID_THRESHOLDS, fracs):
        out[f"frac_within_{d}"] = f
    out["delta_avg"] = float(np.mean(fracs))
    return out
