"""Query files (rows ``t, x, y``) and segmentation masks."""
from __future__ import annotations

import json
import math
import os
import re
from typing import Any, List, Sequence, Tuple

import numpy as np

from .common import PathLike

# ----------------------------------------------------------------------------------------------------------
# queries and masks
# ----------------------------------------------------------------------------------------------------------


def _validate_query_rows(rows: List[Tuple[str, Sequence[Any]]], path: str) -> np.ndarray:
    """Check ``(label, values)`` rows are 3 finite numbers with ``t`` a non-negative integer."""
    out = np.empty((len(rows), 3), dtype=np.float64)
    for i, (label, values) in enumerate(rows):
        if len(values) != 3:
            raise ValueError(f"{path!r}, {label}: expected 3 columns (t, x, y), got {len(values)}: {list(values)!r}")
        try:
            vals = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError(f"{path!r}, {label}: values must be numbers (t, x, y), got {list(values)!r}") from None
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"{path!r}, {label}: non-finite value in (t, x, y) = {vals!r}")
        t = vals[0]
        if t < 0:
            raise ValueError(f"{path!r}, {label}: frame index t must be >= 0, got {t:g}")
        if t != int(t):
            raise ValueError(f"{path!r}, {label}: frame index t must be an integer, got {t:g}")
        out[i] = vals
    if len(rows) == 0:
        raise ValueError(f"{path!r}: contains no queries")
    return out.astype(np.float32)


def load_queries(path: PathLike) -> np.ndarray:
    """Load query points ``(t, x, y)``: frame index and pixel position in that frame.

    Formats (by extension):

    * ``.csv`` / ``.txt``: one query per line, comma- or whitespace-separated; an optional first line
      ``t,x,y`` (header); blank lines and lines starting with ``#`` are ignored.
    * ``.npy``: a numeric array of shape ``(N, 3)``.
    * ``.json``: a list of ``[t, x, y]`` or a list of ``{"t": .., "x": .., "y": ..}`` (also accepted
      wrapped as ``{"queries": [...]}``).

    Returns:
        ``(N, 3) float32``, ``N >= 1``; ``t`` integer-valued and ``>= 0``, ``x``/``y`` in pixels.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown extension, unparsable file, wrong column count, non-finite value, negative
            or fractional ``t``, or no queries; the message names the file and the row (line number for
            text files, 0-based index for ``.npy``/``.json``).
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"queries file not found: {p!r}")
    ext = os.path.splitext(p)[1].lower()
    rows: List[Tuple[str, Sequence[Any]]] = []
    if ext in (".csv", ".txt"):
        with open(p, "r", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        first_content = True
        for lineno, line in enumerate(lines, start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            tokens = [tok for tok in re.split(r"[,\s]+", s) if tok != ""]
            if first_content:
                first_content = False
                if [tok.lower() for tok in tokens] == ["t", "x", "y"]:
                    continue
            rows.append((f"line {lineno}", tokens))
    elif ext == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as err:
            raise ValueError(f"{p!r}: could not read .npy ({type(err).__name__}: {err})") from None
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"{p!r}: expected an array of shape (N, 3) with rows (t, x, y), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise ValueError(f"{p!r}: expected a real numeric array, got dtype {arr.dtype}")
        rows = [(f"row {i}", list(r)) for i, r in enumerate(arr.tolist())]
    elif ext == ".json":
        try:
            with open(p, "r", encoding="utf-8") as fh:
                data = json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{p!r}: invalid JSON ({err})") from None
        if isinstance(data, dict) and "queries" in data:
            data = data["queries"]
        if not isinstance(data, list):
            raise ValueError(f"{p!r}: expected a JSON list of [t, x, y] or {{'t', 'x', 'y'}} items")
        for i, item in enumerate(data):
            if isinstance(item, dict):
                missing = [k for k in ("t", "x", "y") if k not in item]
                if missing:
                    raise ValueError(f"{p!r}, item {i}: missing key(s) {missing} (expected 't', 'x', 'y')")
                extra = sorted(set(item) - {"t", "x", "y"})
                if extra:
                    raise ValueError(f"{p!r}, item {i}: unexpected key(s) {extra} (expected 't', 'x', 'y')")
                rows.append((f"item {i}", [item["t"], item["x"], item["y"]]))
            elif isinstance(item, list):
                if any(isinstance(v, bool) for v in item):
                    raise ValueError(f"{p!r}, item {i}: values must be numbers (t, x, y), got {item!r}")
                rows.append((f"item {i}", item))
            else:
                raise ValueError(f"{p!r}, item {i}: expected [t, x, y] or {{'t','x','y'}}, got {item!r}")
    else:
        raise ValueError(f"{p!r}: unsupported queries extension {ext!r}; supported: .csv, .txt, .npy, .json")
    return _validate_query_rows(rows, p)


def load_mask(path: PathLike) -> np.ndarray:
    """Load a segmentation mask image (PNG, or any still image imageio reads).

    A pixel is inside when it is nonzero: for grayscale the value, for gray+alpha the gray value, for
    RGB/RGBA any of the R, G, B channels (alpha is ignored). Palette images are expanded to their colours
    first, so palette index 0 counts as inside unless its colour is black.

    Returns:
        ``(H, W) bool``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file cannot be decoded as a single still image.
    """
    import imageio.v3 as iio

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"mask file not found: {p!r}")
    try:
        img = np.asarray(iio.imread(p, plugin="pillow"))
    except Exception as err:
        raise ValueError(f"{p!r}: could not read mask image ({type(err).__name__}: {err})") from None
    if img.ndim == 2:
        return img != 0
    if img.ndim == 3 and img.shape[2] in (1, 2):
        return img[:, :, 0] != 0
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return np.any(img[:, :, :3] != 0, axis=2)
    raise ValueError(f"{p!r}: mask must be a single 2-D image (H, W[, C]), got array of shape {img.shape}")
