"""Classical baseline: OpenCV pyramidal Lucas-Kanade point tracking with a forward-backward occlusion check.

API (kept stable for the accuracy comparisons)::

    tracks, visible = track_lk(video, queries)
    # video:   (T, H, W, 3) uint8  or  (T, 3, H, W) float RGB in 0..255 (numpy array or torch tensor)
    # queries: (N, 3) rows (t, x, y): integer query frame, position in pixels (x right, y down, pixel centres
    #          at integer coordinates)
    # tracks:  (T, N, 2) float32 numpy, (x, y) pixels;  visible: (T, N) bool numpy

Each point is tracked forward from its query frame to the last frame and backward from it to frame 0. A point
keeps an *anchor*: the last frame where it was reliably tracked and its position there. At every new frame it is
tracked from the anchor frame (``cv2.calcOpticalFlowPyrLK``, starting from the anchor position) and the result is
tracked back to the anchor frame; the step is accepted when both LK calls converge, the round trip lands within
``fb_threshold`` pixels of the anchor position, the new position lies inside the image, and the ``win_size``-square
patch around it correlates (normalised cross-correlation) above ``ncc_threshold`` with the patch around the anchor
position in the anchor frame. The patch test catches the partially covered steps that the forward-backward test
lets through (measured on the occlusion test of ``tests/test_baselines.py``: round trip 0.63 px, NCC 0.54 against
about 0.9997 for the unoccluded steps). An accepted step moves the anchor to the new frame (ordinary frame-to-frame
tracking). A rejected step marks the frame not visible and
holds the anchor position; the next frames keep trying from the anchor frame, so a point that reappears near where
it was last seen is picked up again.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["track_lk", "to_gray_frames"]


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def to_gray_frames(video) -> np.ndarray:
    """``(T, H, W, 3)`` or ``(T, 3, H, W)`` RGB in 0..255 -> ``(T, H, W)`` uint8 grey frames (OpenCV's RGB->grey
    weights). Float values are rounded and clipped to 0..255. When both layouts fit the shape (W = 3 or H = 3),
    uint8 is read as ``(T, H, W, 3)`` and float as ``(T, 3, H, W)``."""
    import cv2

    v = _to_numpy(video)
    if v.ndim != 4 or (v.shape[-1] != 3 and v.shape[1] != 3):
        raise ValueError(f"video must be (T, H, W, 3) uint8 or (T, 3, H, W) float RGB in 0..255, got shape {v.shape}")
    if v.shape[-1] == 3 and v.shape[1] == 3:
        channels_last = v.dtype == np.uint8
    else:
        channels_last = v.shape[-1] == 3
    if not channels_last:
        v = v.transpose(0, 2, 3, 1)
    if v.dtype != np.uint8:
        v = v.astype(np.float64)
        if not np.isfinite(v).all():
            raise ValueError("video contains NaN or inf values")
        v = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    if v.shape[0] < 1 or v.shape[1] < 1 or v.shape[2] < 1:
        raise ValueError(f"video has an empty dimension: {v.shape}")
    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in v])


def _check_queries(queries, T: int) -> np.ndarray:
    q = _to_numpy(queries).astype(np.float64)
    if q.ndim != 2 or q.shape[1] != 3 or q.shape[0] == 0:
        raise ValueError(f"queries must be (N >= 1, 3) rows (t, x, y) in pixels, got shape {q.shape}")
    if not np.isfinite(q).all():
        raise ValueError("queries contains NaN or inf")
    t = q[:, 0]
    if ((t < 0) | (t > T - 1) | (t != np.round(t))).any():
        raise ValueError(f"queries[:, 0] must be integer frame indices in [0, T-1 = {T - 1}]")
    return q


def _patches(img: np.ndarray, xy: np.ndarray, size: int) -> np.ndarray:
    """Bilinear ``(M, size, size)`` float32 patches of ``img`` (H, W) centred on ``xy`` (M, 2), border-replicated."""
    H, W = img.shape
    offs = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    x = xy[:, 0, None, None].astype(np.float64) + offs[None, None, :]  # (M, 1, size)
    y = xy[:, 1, None, None].astype(np.float64) + offs[None, :, None]  # (M, size, 1)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0i, y0i = x0.astype(np.int64), y0.astype(np.int64)
    im = img.astype(np.float32)

    def tap(yi, xi):
        return im[np.clip(yi, 0, H - 1), np.clip(xi, 0, W - 1)]

    top = tap(y0i, x0i) * (1 - fx) + tap(y0i, x0i + 1) * fx
    bottom = tap(y0i + 1, x0i) * (1 - fx) + tap(y0i + 1, x0i + 1) * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _ncc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``(M, s, s)`` patch pairs -> ``(M,)`` in [-1, 1] (0 for a flat patch)."""
    a = a.reshape(a.shape[0], -1) - a.reshape(a.shape[0], -1).mean(1, keepdims=True)
    b = b.reshape(b.shape[0], -1) - b.reshape(b.shape[0], -1).mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 1e-6, (a * b).sum(1) / np.maximum(den, 1e-6), 0.0)


def _lk(cv2, prev: np.ndarray, nxt: np.ndarray, pts: np.ndarray, params: dict) -> Tuple[np.ndarray, np.ndarray]:
    """One LK call: ``pts`` (M, 2) float32 in ``prev`` -> positions (M, 2) in ``nxt`` and success (M,) bool."""
    out, status, _ = cv2.calcOpticalFlowPyrLK(prev, nxt, pts.reshape(-1, 1, 2), None, **params)
    return out.reshape(-1, 2), status.reshape(-1).astype(bool)


def _track_direction(gray, q, step, params, fb_threshold, ncc_threshold, tracks, visible) -> None:
    """Track every point from its query frame in time direction ``step`` (+1 or -1), filling tracks / visible."""
    import cv2

    T, H, W = gray.shape
    size = params["winSize"][0]
    q_t = q[:, 0].astype(np.int64)
    anchor_frame = q_t.copy()
    anchor_pos = q[:, 1:].astype(np.float32)
    anchor_patch = np.empty((q.shape[0], size, size), dtype=np.float32)
    for t in np.unique(q_t):  # each point's patch at its query
        idx = np.nonzero(q_t == t)[0]
        anchor_patch[idx] = _patches(gray[t], anchor_pos[idx], size)
    frames = range(T) if step > 0 else range(T - 1, -1, -1)
    for t in frames:
        # points whose query frame lies strictly before t in this direction
        active = (q_t < t) if step > 0 else (q_t > t)
        if not active.any():
            continue
        for a in np.unique(anchor_frame[active]):
            idx = np.nonzero(active & (anchor_frame == a))[0]
            start = anchor_pos[idx]
            new, ok_f = _lk(cv2, gray[a], gray[t], start, params)
            back, ok_b = _lk(cv2, gray[t], gray[a], new, params)
            fb_err = np.linalg.norm(back - start, axis=1)
            inside = (new[:, 0] >= 0) & (new[:, 0] <= W - 1) & (new[:, 1] >= 0) & (new[:, 1] <= H - 1)
            ok = ok_f & ok_b & np.isfinite(new).all(axis=1) & (fb_err < fb_threshold) & inside
            patch = _patches(gray[t], np.where(ok[:, None], new, start), size)
            ok &= _ncc(patch, anchor_patch[idx]) > ncc_threshold
            tracks[t, idx] = np.where(ok[:, None], new, start)
            visible[t, idx] = ok
            anchor_frame[idx[ok]] = t
            anchor_pos[idx[ok]] = new[ok]
            anchor_patch[idx[ok]] = patch[ok]


def track_lk(
    video,
    queries,
    *,
    win_size: int = 21,
    max_level: int = 3,
    fb_threshold: float = 1.0,
    ncc_threshold: float = 0.8,
    max_iterations: int = 30,
    epsilon: float = 0.01,
    min_eig_threshold: float = 1e-4,
) -> Tuple[np.ndarray, np.ndarray]:
    """Track query points with pyramidal Lucas-Kanade (see the module docstring for the procedure).

    Args:
        video: ``(T, H, W, 3)`` uint8 or ``(T, 3, H, W)`` float RGB in 0..255, numpy or torch.
        queries: ``(N, 3)`` rows ``(t, x, y)``: integer query frame in [0, T), position in pixels.
        win_size: LK window side in pixels at every pyramid level.
        max_level: pyramid levels above the full resolution (3: motions up to roughly 2^3 * win_size / 2 px).
        fb_threshold: largest forward-backward round-trip error in pixels for a step to count as visible.
        ncc_threshold: smallest normalised cross-correlation between the ``win_size`` patches at the anchor and
            at the new position for a step to count as visible (-1 disables the test).
        max_iterations, epsilon: LK stopping criteria per level (iterations, movement in pixels).
        min_eig_threshold: OpenCV's minimum eigenvalue of the window's gradient matrix (textureless windows fail).

    Returns:
        ``tracks`` ``(T, N, 2)`` float32 pixels and ``visible`` ``(T, N)`` bool. The query frame holds the query
        position, visible. Frames where a step was rejected hold the last reliable position, not visible.
    """
    import cv2

    gray = to_gray_frames(video)
    T = gray.shape[0]
    q = _check_queries(queries, T)
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size}")
    if max_level < 0 or fb_threshold <= 0:
        raise ValueError(f"max_level must be >= 0 and fb_threshold > 0, got {max_level}, {fb_threshold}")
    params = dict(
        winSize=(win_size, win_size),
        maxLevel=max_level,
        criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, max_iterations, epsilon),
        minEigThreshold=min_eig_threshold,
    )
    N = q.shape[0]
    tracks = np.repeat(q[None, :, 1:].astype(np.float32), T, axis=0)
    visible = np.zeros((T, N), dtype=bool)
    visible[q[:, 0].astype(np.int64), np.arange(N)] = True
    _track_direction(gray, q, +1, params, fb_threshold, ncc_threshold, tracks, visible)
    _track_direction(gray, q, -1, params, fb_threshold, ncc_threshold, tracks, visible)
    return tracks, visible
