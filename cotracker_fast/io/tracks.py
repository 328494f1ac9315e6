"""Track files: ``.npz``, ``.csv`` and ``.json``, written atomically."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import numpy as np

from .common import TRACK_EXTENSIONS, PathLike
from .video_write import _check_fps, atomic_output

# ----------------------------------------------------------------------------------------------------------
# tracks
# ----------------------------------------------------------------------------------------------------------


def _check_tracks(tracks: Any, visibility: Any, queries: Any, fps: Any):
    tr = np.asarray(tracks)
    if tr.ndim != 3 or tr.shape[2] != 2:
        raise ValueError(f"tracks must have shape (T, N, 2) with (x, y) in pixels, got {tr.shape}")
    if not np.issubdtype(tr.dtype, np.number) or np.iscomplexobj(tr):
        raise ValueError(f"tracks must be real numbers, got dtype {tr.dtype}")
    tr = tr.astype(np.float32)
    vis = np.asarray(visibility)
    if vis.shape != tr.shape[:2]:
        raise ValueError(f"visibility must have shape (T, N) = {tr.shape[:2]}, got {vis.shape}")
    if vis.dtype != np.bool_:
        if not np.issubdtype(vis.dtype, np.number) or not np.all((vis == 0) | (vis == 1)):
            raise ValueError("visibility must be boolean (or 0/1 numbers)")
        vis = vis != 0
    q = None
    if queries is not None:
        q = np.asarray(queries)
        if q.ndim != 2 or q.shape != (tr.shape[1], 3):
            raise ValueError(f"queries must have shape (N, 3) = ({tr.shape[1]}, 3) rows (t, x, y), got {q.shape}")
        q = q.astype(np.float32)
    f = None if fps is None else _check_fps(fps)
    return tr, vis, q, f


def _float_strings(a: np.ndarray) -> np.ndarray:
    """Shortest decimal strings that read back to the same float32 values (``nan``/``inf`` kept)."""
    return np.asarray(a, dtype=np.float32).astype(str)


def _json_floats(a: np.ndarray) -> Any:
    """Nested lists of Python floats with float32-shortest decimals; non-finite values become ``None``."""
    strings = _float_strings(a)
    finite = np.isfinite(a)
    flat = [float(s) if ok else None for s, ok in zip(strings.ravel().tolist(), finite.ravel().tolist())]
    return np.array(flat, dtype=object).reshape(a.shape).tolist()


def save_tracks(
    path: PathLike,
    tracks: np.ndarray,
    visibility: np.ndarray,
    *,
    queries: Optional[np.ndarray] = None,
    fps: Optional[float] = None,
) -> None:
    """Save tracks atomically (temporary file in the same directory + :func:`os.replace`).

    Args:
        path: destination; the extension picks the format:

            * ``.npz``: compressed arrays ``tracks`` (T, N, 2) float32, ``visibility`` (T, N) bool, and
              ``queries`` (N, 3) float32 / ``fps`` () float64 when given;
            * ``.csv``: header ``frame,track,x,y,visible``, one row per (frame, track), frame-major;
              ``visible`` is 0/1; floats are written with the shortest decimals that read back exactly
              as float32;
            * ``.json``: ``{"tracks": [[[x, y], ...] per frame], "visibility": [[bool, ...] per frame],
              "queries": [[t, x, y], ...], "fps": ...}`` (the last two only when given); non-finite
              coordinates become ``null``.
        tracks: ``(T, N, 2)`` positions ``(x, y)`` in pixels (NaN allowed for "no position").
        visibility: ``(T, N)`` bool (or 0/1 numbers).
        queries: optional ``(N, 3)`` rows ``(t, x, y)``.
        fps: optional positive frames per second (not stored in ``.csv``).

    Raises:
        ValueError: unknown extension (the message lists the supported ones) or bad array shapes.
        FileNotFoundError: the destination directory does not exist.
    """
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext not in TRACK_EXTENSIONS:
        raise ValueError(f"{p!r}: unsupported tracks extension {ext!r}; supported: {', '.join(TRACK_EXTENSIONS)}")
    tr, vis, q, f = _check_tracks(tracks, visibility, queries, fps)
    directory = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"output directory does not exist: {directory!r} (for {p!r})")
    with atomic_output(p) as tmp:
        if ext == ".npz":
            arrays: Dict[str, np.ndarray] = {"tracks": tr, "visibility": vis}
            if q is not None:
                arrays["queries"] = q
            if f is not None:
                arrays["fps"] = np.asarray(f, dtype=np.float64)
            with open(tmp, "wb") as fh:  # a file object: numpy does not append ".npz" to the name
                np.savez_compressed(fh, **arrays)
        elif ext == ".csv":
            t_len, n = vis.shape
            xs = _float_strings(tr[..., 0]).ravel().tolist()
            ys = _float_strings(tr[..., 1]).ravel().tolist()
            vv = vis.ravel().tolist()
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write("frame,track,x,y,visible\n")
                k = 0
                for ti in range(t_len):
                    fh.write(
                        "".join(
                            f"{ti},{ni},{xs[k + ni]},{ys[k + ni]},{1 if vv[k + ni] else 0}\n" for ni in range(n)
                        )
                    )
                    k += n
        else:
            doc: Dict[str, Any] = {"tracks": _json_floats(tr), "visibility": vis.tolist()}
            if q is not None:
                doc["queries"] = _json_floats(q)
            if f is not None:
                doc["fps"] = f
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, separators=(",", ":"), allow_nan=False)


def load_tracks(path: PathLike) -> Dict[str, Any]:
    """Load tracks written by :func:`save_tracks` (``.npz``, ``.csv`` or ``.json``).

    Returns:
        ``{"tracks": (T, N, 2) float32, "visibility": (T, N) bool, "queries": (N, 3) float32 or None,
        "fps": float or None}`` (``.csv`` never has queries/fps).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown extension or malformed content.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"tracks file not found: {p!r}")
    ext = os.path.splitext(p)[1].lower()
    if ext == ".npz":
        with np.load(p, allow_pickle=False) as data:
            if "tracks" not in data or "visibility" not in data:
                raise ValueError(f"{p!r}: missing 'tracks' and/or 'visibility' arrays")
            out = {
                "tracks": data["tracks"].astype(np.float32),
                "visibility": data["visibility"].astype(bool),
                "queries": data["queries"].astype(np.float32) if "queries" in data else None,
                "fps": float(data["fps"]) if "fps" in data else None,
            }
    elif ext == ".json":
        with open(p, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
        if not isinstance(doc, dict) or "tracks" not in doc or "visibility" not in doc:
            raise ValueError(f"{p!r}: expected a JSON object with 'tracks' and 'visibility'")
        tr = np.array(doc["tracks"], dtype=np.float64)  # null -> nan
        if tr.size == 0:
            tr = tr.reshape(len(doc["tracks"]), 0, 2)
        out = {
            "tracks": tr.astype(np.float32),
            "visibility": np.array(doc["visibility"], dtype=bool).reshape(tr.shape[:2]),
            "queries": None if doc.get("queries") is None else np.array(doc["queries"], np.float64).astype(np.float32),
            "fps": None if doc.get("fps") is None else float(doc["fps"]),
        }
    elif ext == ".csv":
        with open(p, "r", encoding="utf-8") as fh:
            header = fh.readline().strip()
            if header != "frame,track,x,y,visible":
                raise ValueError(f"{p!r}: expected header 'frame,track,x,y,visible', got {header!r}")
            body = fh.read()
        raw = np.loadtxt(body.splitlines(), delimiter=",", dtype=np.float64, ndmin=2) if body.strip() else None
        if raw is None:
            raise ValueError(f"{p!r}: no rows")
        frames, track_ids = raw[:, 0].astype(np.int64), raw[:, 1].astype(np.int64)
        t_len, n = int(frames.max()) + 1, int(track_ids.max()) + 1
        if raw.shape[0] != t_len * n:
            raise ValueError(f"{p!r}: expected {t_len} x {n} = {t_len * n} rows, found {raw.shape[0]}")
        tr = np.full((t_len, n, 2), np.nan, dtype=np.float32)
        vis = np.zeros((t_len, n), dtype=bool)
        tr[frames, track_ids, 0] = raw[:, 2]
        tr[frames, track_ids, 1] = raw[:, 3]
        vis[frames, track_ids] = raw[:, 4] != 0
        out = {"tracks": tr, "visibility": vis, "queries": None, "fps": None}
    else:
        raise ValueError(f"{p!r}: unsupported tracks extension {ext!r}; supported: {', '.join(TRACK_EXTENSIONS)}")
    tr = out["tracks"]
    if tr.ndim != 3 or tr.shape[2] != 2 or out["visibility"].shape != tr.shape[:2]:
        raise ValueError(f"{p!r}: malformed tracks {tr.shape} / visibility {out['visibility'].shape}")
    return out
