"""Rendering of the synthetic clips: the per-frame homographies of the camera and the objects, the layers (a
textured background and anti-aliased textured objects) and their composition into frames with the front-most layer
of every pixel. Geometry is numpy float64 with explicit element-wise formulas (no BLAS); rendering is torch
``grid_sample``."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .synthetic_config import SyntheticConfig
from .textures import _shape_alpha, _texture

# ----------------------------------------------------------------------------------------------------------
# small geometry helpers (numpy float64; explicit element-wise formulas, no BLAS)
# ----------------------------------------------------------------------------------------------------------


def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _linear(a: float, b: float, c: float, d: float) -> np.ndarray:
    return np.array([[a, b, 0.0], [c, d, 0.0], [0.0, 0.0, 1.0]])


def _chain(*ms: np.ndarray) -> np.ndarray:
    out = ms[0]
    for m in ms[1:]:
        out = out @ m
    return out


def _apply_h(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Apply homographies ``m (..., 3, 3)`` to points ``x, y`` (broadcastable ``(...)``): returns ``(x', y')``."""
    xn = m[..., 0, 0] * x + m[..., 0, 1] * y + m[..., 0, 2]
    yn = m[..., 1, 0] * x + m[..., 1, 1] * y + m[..., 1, 2]
    w = m[..., 2, 0] * x + m[..., 2, 1] * y + m[..., 2, 2]
    return xn / w, yn / w


def _normaliser(h: int, w: int) -> np.ndarray:
    """Texture pixel coordinates -> ``grid_sample`` coordinates (``align_corners=False``)."""
    return np.array([[2.0 / w, 0.0, 1.0 / w - 1.0], [0.0, 2.0 / h, 1.0 / h - 1.0], [0.0, 0.0, 1.0]])


def _smooth_curve(rng: np.random.Generator, u: np.ndarray, total: float, wobble: float) -> np.ndarray:
    """A smooth scalar path over normalised time ``u`` (T,), 0 at ``u = 0``: a linear drift of ``total`` with a
    random quadratic ease and a sinusoid of amplitude ``wobble`` (less than 1.5 periods over the clip)."""
    ease = rng.uniform(-0.5, 0.5)
    drift = total * (u + ease * u * (1.0 - u) * 2.0)
    f = rng.uniform(0.3, 1.5)
    ph = rng.uniform(0.0, 2.0 * math.pi)
    return drift + wobble * (np.sin(2.0 * math.pi * f * u + ph) - math.sin(ph))


# ----------------------------------------------------------------------------------------------------------
# scene
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _Layer:
    rgb: torch.Tensor  # (3, h, w) float32 0..255
    alpha: Optional[torch.Tensor]  # (1, h, w) float32 or None (opaque background)
    maps: np.ndarray  # (T, 3, 3) float64, texture pixel -> frame pixel
    info: Dict[str, Any]

    @property
    def hw(self) -> Tuple[int, int]:
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])


def _object_maps(
    rng: np.random.Generator, cfg: SyntheticConfig, u: np.ndarray, centre_tex: float, radius: float
) -> Tuple[np.ndarray, bool]:
    """Texture -> frame maps ``(T, 3, 3)`` of one object (before the camera), and whether it is perspective."""
    h, w = cfg.size_hw
    big = float(max(h, w))
    cx0, cy0 = rng.uniform(0.05 * w, 0.95 * w), rng.uniform(0.05 * h, 0.95 * h)
    travel = rng.uniform(0.0, 1.0) * cfg.object_travel * big
    ang = rng.uniform(0.0, 2.0 * math.pi)
    wob = cfg.wobble * big
    px = cx0 + _smooth_curve(rng, u, travel * math.cos(ang), wob * rng.random())
    py = cy0 + _smooth_curve(rng, u, travel * math.sin(ang), wob * rng.random())
    rot = rng.uniform(0.0, 2.0 * math.pi) + _smooth_curve(
        rng, u, math.radians(rng.uniform(-1.0, 1.0) * cfg.object_rotation), math.radians(3.0) * rng.random()
    )
    zoom = np.exp(rng.uniform(-0.15, 0.15) + _smooth_curve(rng, u, rng.uniform(-1.0, 1.0) * cfg.object_zoom, 0.02))
    sh = cfg.object_shear
    aniso = rng.uniform(-sh, sh) + _smooth_curve(rng, u, rng.uniform(-sh, sh) * 0.5, 0.0)
    shear = rng.uniform(-sh, sh) + _smooth_curve(rng, u, rng.uniform(-sh, sh) * 0.5, 0.0)
    persp = rng.random() < cfg.perspective_probability and cfg.perspective > 0
    if persp:
        # |g . (x, y)| <= |g| * radius * sqrt(2) on the canvas: keep it below cfg.perspective
        lim = cfg.perspective / math.sqrt(2.0)
        g0 = rng.uniform(-lim, lim, 2) * 0.5
        g1 = rng.uniform(-lim, lim, 2) * 0.5
        gx = (g0[0] + (g1[0] - g0[0]) * u) / radius
        gy = (g0[1] + (g1[1] - g0[1]) * u) / radius
    maps = np.zeros((len(u), 3, 3))
    to_centre = _translate(-centre_tex, -centre_tex)
    for t in range(len(u)):
        c, s = math.cos(rot[t]), math.sin(rot[t])
        sx, sy = zoom[t] * math.exp(aniso[t]), zoom[t] * math.exp(-aniso[t])
        m = _chain(
            _translate(px[t], py[t]), _linear(c, -s, s, c), _linear(sx, 0.0, 0.0, sy), _linear(1.0, shear[t], 0.0, 1.0)
        )
        if persp:
            m = m @ np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [gx[t], gy[t], 1.0]])
        maps[t] = m @ to_centre
    return maps, bool(persp)


def _camera_maps(rng: np.random.Generator, cfg: SyntheticConfig, u: np.ndarray) -> Optional[np.ndarray]:
    """Camera homographies ``(T, 3, 3)`` (identity at frame 0) or ``None`` for a still camera."""
    if not rng.random() < cfg.camera_motion_probability:
        return None
    h, w = cfg.size_hw
    fc = ((w - 1) / 2.0, (h - 1) / 2.0)
    rf = 0.5 * math.hypot(h, w)
    tx = _smooth_curve(rng, u, rng.uniform(-1.0, 1.0) * cfg.camera_translation * w, 0.01 * w * rng.random())
    ty = _smooth_curve(rng, u, rng.uniform(-1.0, 1.0) * cfg.camera_translation * h, 0.01 * h * rng.random())
    rot = _smooth_curve(rng, u, math.radians(rng.uniform(-1.0, 1.0) * cfg.camera_rotation), 0.0)
    zoom = np.exp(_smooth_curve(rng, u, rng.uniform(-1.0, 1.0) * cfg.camera_zoom, 0.0))
    g = rng.uniform(-1.0, 1.0, 2) * cfg.camera_perspective / math.sqrt(2.0)
    maps = np.zeros((len(u), 3, 3))
    for t in range(len(u)):
        c, s = math.cos(rot[t]), math.sin(rot[t])
        p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [g[0] * u[t] / rf, g[1] * u[t] / rf, 1.0]])
        maps[t] = _chain(
            _translate(fc[0] + tx[t], fc[1] + ty[t]),
            _linear(c, -s, s, c),
            _linear(zoom[t], 0.0, 0.0, zoom[t]),
            p,
            _translate(-fc[0], -fc[1]),
        )
    return maps


def _texture_kind(rng: np.random.Generator, cfg: SyntheticConfig) -> str:
    """One layer's texture kind: uniform over ``cfg.textures``, or ``"photo"`` with probability ``cfg.photo_share``
    and the other kinds uniformly otherwise."""
    if cfg.photo_share is None:
        return str(rng.choice(cfg.textures))
    if rng.random() < cfg.photo_share:
        return "photo"
    return str(rng.choice([k for k in cfg.textures if k != "photo"]))


def _build_layers(rng: np.random.Generator, cfg: SyntheticConfig) -> Tuple[List[_Layer], bool]:
    h, w = cfg.size_hw
    t_len = cfg.num_frames
    u = np.arange(t_len, dtype=np.float64) / max(t_len - 1, 1)
    cam = _camera_maps(rng, cfg, u)
    # background: a canvas larger than the frame when the camera moves (reflection-padded beyond it)
    m = 1.0 if cam is None else 1.0 + 2.0 * (cfg.camera_translation + 0.5 * cfg.camera_zoom) + 0.1
    bh, bw = int(math.ceil(h * m)) + 8, int(math.ceil(w * m)) + 8
    kind = _texture_kind(rng, cfg)
    bg_map = _translate((w - 1) / 2.0 - (bw - 1) / 2.0, (h - 1) / 2.0 - (bh - 1) / 2.0)
    bg_maps = np.repeat(bg_map[None], t_len, 0) if cam is None else cam @ bg_map
    layers = [_Layer(_texture(kind, rng, bh, bw, cfg.photo_paths), None, bg_maps, {"texture": kind, "shape": "background"})]
    n_obj = int(rng.integers(cfg.num_objects[0], cfg.num_objects[1] + 1))
    for _ in range(n_obj):
        diam = rng.uniform(*cfg.object_size) * min(h, w)
        radius = max(2.0, diam / 2.0)
        size = 2 * int(math.ceil(radius)) + 7
        centre = (size - 1) / 2.0
        shape = str(rng.choice(cfg.shapes))
        alpha = _shape_alpha(shape, rng, size, radius)
        kind = _texture_kind(rng, cfg)
        tex = _texture(kind, rng, size, size, cfg.photo_paths)
        maps, persp = _object_maps(rng, cfg, u, centre, radius)
        if cam is not None:
            maps = cam @ maps
        layers.append(_Layer(tex, alpha, maps, {"texture": kind, "shape": shape, "perspective": persp}))
    return layers, cam is not None


def _grid_for(inv_norm: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, affine: bool) -> torch.Tensor:
    """Sampling grid ``(F, h, w, 2)`` of frame pixels ``xs (F, 1, w)``, ``ys (F, h, 1)`` under normalised inverse
    maps ``inv_norm (F, 3, 3)`` (float32)."""
    g = inv_norm[:, :, :, None, None]  # (F, 3, 3, 1, 1): g[:, r, c] is (F, 1, 1)
    f, w = xs.shape[0], xs.shape[2]
    h = ys.shape[1]
    grid = torch.empty((f, h, w, 2), dtype=torch.float32)
    gx, gy = grid[..., 0], grid[..., 1]
    # the (F, 1, w) and (F, h, 1) parts are summed first, so each coordinate costs one full-size addition,
    # written straight into the grid
    torch.add(g[:, 0, 0] * xs + g[:, 0, 2], g[:, 0, 1] * ys, out=gx)
    torch.add(g[:, 1, 0] * xs + g[:, 1, 2], g[:, 1, 1] * ys, out=gy)
    if not affine:
        den = (g[:, 2, 0] * xs + g[:, 2, 2]) + g[:, 2, 1] * ys
        gx.div_(den)
        gy.div_(den)
    return grid


def _render(layers: List[_Layer], size_hw: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Composite the layers: ``video (T, 3, H, W) float32`` and ``front (T, H, W) int8``, the nearest layer with
    alpha >= 0.5 at each pixel centre."""
    h, w = size_hw
    t_len = layers[0].maps.shape[0]
    bg = layers[0]
    th, tw = bg.hw
    inv = np.linalg.inv(bg.maps)
    norm = torch.from_numpy((_normaliser(th, tw) @ inv).astype(np.float32))
    affine = bool(np.all(inv[:, 2, :2] == 0.0))
    static = bool(np.all(bg.maps == bg.maps[:1]))
    frames = 1 if static else t_len
    xs = torch.arange(w, dtype=torch.float32)[None, None, :].expand(frames, 1, w)
    ys = torch.arange(h, dtype=torch.float32)[None, :, None].expand(frames, h, 1)
    grid = _grid_for(norm[:frames], xs, ys, affine)
    tex = bg.rgb[None].expand(frames, -1, -1, -1)  # no copy: batch stride 0
    out = F.grid_sample(tex, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    video = out.expand(t_len, 3, h, w).contiguous() if static else out
    front = torch.zeros((t_len, h, w), dtype=torch.int8)

    for k, layer in enumerate(layers[1:], 1):
        lh, lw = layer.hw
        cx = np.array([-0.5, lw - 0.5, -0.5, lw - 0.5])
        cy = np.array([-0.5, -0.5, lh - 0.5, lh - 0.5])
        fx, fy = _apply_h(layer.maps[:, None], cx[None], cy[None])  # (T, 4)
        x0 = np.clip(np.floor(fx.min(1)), 0, w - 1).astype(np.int64)
        x1 = np.clip(np.ceil(fx.max(1)), 0, w - 1).astype(np.int64)
        y0 = np.clip(np.floor(fy.min(1)), 0, h - 1).astype(np.int64)
        y1 = np.clip(np.ceil(fy.max(1)), 0, h - 1).astype(np.int64)
        on = (fx.max(1) >= 0) & (fx.min(1) <= w - 1) & (fy.max(1) >= 0) & (fy.min(1) <= h - 1)
        ts = np.flatnonzero(on)
        if ts.size == 0:
            continue
        bw_ = int((x1 - x0)[ts].max()) + 1
        bh_ = int((y1 - y0)[ts].max()) + 1
        ox = np.minimum(x0[ts], w - bw_)
        oy = np.minimum(y0[ts], h - bh_)
        inv = np.linalg.inv(layer.maps[ts])
        norm = torch.from_numpy((_normaliser(lh, lw) @ inv).astype(np.float32))
        affine = bool(np.all(inv[:, 2, :2] == 0.0))
        xs = torch.from_numpy(ox.astype(np.float32))[:, None, None] + torch.arange(bw_, dtype=torch.float32)[None, None]
        ys = (
            torch.from_numpy(oy.astype(np.float32))[:, None, None]
            + torch.arange(bh_, dtype=torch.float32)[None, :, None]
        )
        grid = _grid_for(norm, xs, ys, affine)
        rgba = torch.cat([layer.rgb, layer.alpha], 0)[None].expand(len(ts), -1, -1, -1)
        s = F.grid_sample(rgba, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (F, 4, bh, bw)
        for j, t in enumerate(ts):
            a = s[j, 3:4]
            ya, xa = int(oy[j]), int(ox[j])
            region = video[t, :, ya : ya + bh_, xa : xa + bw_]
            region.copy_(region * (1.0 - a) + s[j, :3] * a)
            fr = front[t, ya : ya + bh_, xa : xa + bw_]
            fr.copy_(torch.where(a[0] >= 0.5, torch.tensor(k, dtype=torch.int8), fr))
    return video, front
