"""Procedural textures and anti-aliased object shapes of the synthetic clips (torch: element-wise arithmetic and
``grid_sample`` only, so a texture is the same on every machine)."""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------------------
# textures (torch, element-wise arithmetic + grid_sample only)
# ----------------------------------------------------------------------------------------------------------


def _resize(x: torch.Tensor, size_hw: Tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize ``(C, h, w)`` to ``(C, H, W)`` with half-pixel centres (as ``F.interpolate(align_corners=False)``)
    through ``grid_sample`` (border-clamped), which gives the same result for any thread count."""
    c, h, w = x.shape
    hh, ww = size_hw
    xs = (torch.arange(ww, dtype=torch.float32) + 0.5) * (2.0 / ww) - 1.0
    ys = (torch.arange(hh, dtype=torch.float32) + 0.5) * (2.0 / hh) - 1.0
    grid = torch.stack([xs[None, :].expand(hh, ww), ys[:, None].expand(hh, ww)], -1)[None]
    return F.grid_sample(x[None], grid, mode=mode, padding_mode="border", align_corners=False)[0]


def _fbm(rng: np.random.Generator, channels: int, h: int, w: int, cell_max: float, persistence: float) -> torch.Tensor:
    """Multi-scale value noise ``(C, h, w)`` in ``[0, 1]``: random grids with cells from ``cell_max`` down to 4 px,
    each octave upsampled (bicubic) onto the next finer one and added with weight ``persistence ** octave``."""
    cells = []
    c = max(float(cell_max), 4.0)
    while c >= 4.0 - 1e-9:
        cells.append(c)
        c /= 2.0
    acc: Optional[torch.Tensor] = None
    for i, cell in enumerate(cells):
        gh, gw = max(2, int(math.ceil(h / cell)) + 1), max(2, int(math.ceil(w / cell)) + 1)
        g = torch.from_numpy(rng.random((channels, gh, gw), dtype=np.float32)) * float(persistence**i)
        acc = g if acc is None else _resize(acc, (gh, gw)) + g
    out = _resize(acc, (h, w))
    lo = out.amin(dim=(1, 2), keepdim=True)  # min / max reductions do not depend on the summation order
    hi = out.amax(dim=(1, 2), keepdim=True)
    return (out - lo) / torch.clamp(hi - lo, min=1e-6)


def _colour_pair(rng: np.random.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    a = rng.uniform(0.0, 255.0, 3)
    d = rng.normal(size=3)
    d = d / max(float(np.sqrt((d * d).sum())), 1e-6) * rng.uniform(90.0, 200.0)
    b = np.clip(a + d, 0.0, 255.0)
    return (torch.tensor(a, dtype=torch.float32)[:, None, None], torch.tensor(b, dtype=torch.float32)[:, None, None])


def _coords(h: int, w: int, rng: np.random.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates of an ``(h, w)`` canvas rotated by a random angle: ``(h, w)`` each."""
    th = rng.uniform(0.0, math.pi)
    c, s = math.cos(th), math.sin(th)
    x = torch.arange(w, dtype=torch.float32)[None, :]
    y = torch.arange(h, dtype=torch.float32)[:, None]
    return x * c + y * s, y * c - x * s


def _triangle(s: torch.Tensor) -> torch.Tensor:
    """Triangle wave of period 1 with values in ``[-1, 1]``."""
    return torch.abs((s - torch.floor(s)) - 0.5) * 4.0 - 1.0


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = torch.clamp(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@lru_cache(maxsize=1)
@lru_cache(maxsize=64)
def _photo_tensor(path: str) -> torch.Tensor:
    """The photograph at ``path`` as ``(3, h, w) float32`` RGB in 0..255 (grey images repeated), cached per path."""
    import imageio.v3 as iio

    img = np.asarray(iio.imread(path))
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[0] < 16 or img.shape[1] < 16:
        raise ValueError(f"photo {path!r}: expected an (H, W[, C]) image of at least 16x16, got {img.shape}")
    return torch.from_numpy(np.ascontiguousarray(img[:, :, :3]).astype(np.float32)).permute(2, 0, 1).contiguous()


def _texture(kind: str, rng: np.random.Generator, h: int, w: int, photos: Sequence[str] = ()) -> torch.Tensor:
    """A texture ``(3, h, w) float32`` in 0..255 of the given kind."""
    if kind == "ramp":
        x = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w) * (255.0 / max(w - 1, 1))
        y = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w) * (255.0 / max(h - 1, 1))
        return torch.stack([x, y, torch.full((h, w), float(rng.uniform(0.0, 255.0)))])
    if kind == "photo":
        photo = _photo_tensor(str(photos[int(rng.integers(len(photos)))]))
        ph, pw = photo.shape[1:]
        sc = min(rng.uniform(0.5, 1.3), (ph - 1) / h, (pw - 1) / w)  # photo pixels per texture pixel
        y0 = rng.uniform(0.0, ph - h * sc)
        x0 = rng.uniform(0.0, pw - w * sc)
        xs = x0 + (torch.arange(w, dtype=torch.float32) + 0.5) * sc  # photo edge coordinates
        ys = y0 + (torch.arange(h, dtype=torch.float32) + 0.5) * sc
        grid = torch.stack(
            [(xs * (2.0 / pw) - 1.0)[None, :].expand(h, w), (ys * (2.0 / ph) - 1.0)[:, None].expand(h, w)], -1
        )
        tex = F.grid_sample(photo[None], grid[None], mode="bilinear", padding_mode="border", align_corners=False)[0]
        if rng.random() < 0.5:
            tex = tex[torch.from_numpy(rng.permutation(3))]
        if rng.random() < 0.5:
            tex = torch.flip(tex, dims=[2])
        return tex.contiguous()
    a, b = _colour_pair(rng)
    fine = _fbm(rng, 3, h, w, rng.uniform(8.0, 32.0), rng.uniform(0.5, 0.8))
    detail = (fine - 0.5) * float(rng.uniform(40.0, 90.0))  # every texture carries trackable detail
    if kind == "noise":
        m = _fbm(rng, 1, h, w, rng.uniform(16.0, 128.0), rng.uniform(0.45, 0.75))
        tex = a + (b - a) * m
    elif kind == "stripes":
        x, _ = _coords(h, w, rng)
        period = rng.uniform(8.0, 40.0)
        sharp = rng.uniform(1.0, 3.0)
        prof = _smoothstep(_triangle(x / period + rng.random()) * sharp * 0.5 + 0.5)
        tex = a + (b - a) * prof
    elif kind == "checkers":
        x, y = _coords(h, w, rng)
        cell = rng.uniform(8.0, 48.0)
        k = cell / 3.0  # transition over about 3 px
        sx = torch.clamp(_triangle(x / (2.0 * cell) + rng.random()) * k, -1.0, 1.0)
        sy = torch.clamp(_triangle(y / (2.0 * cell) + rng.random()) * k, -1.0, 1.0)
        tex = a + (b - a) * (0.5 + 0.5 * sx * sy)
    elif kind == "gradient":
        x, y = _coords(h, w, rng)
        lin = x / max(h, w)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        xx = torch.arange(w, dtype=torch.float32)[None, :] - cx
        yy = torch.arange(h, dtype=torch.float32)[:, None] - cy
        rad = torch.sqrt(xx * xx + yy * yy) / max(h, w)
        m = torch.clamp(lin * rng.uniform(0.5, 1.5) + rad * rng.uniform(-1.0, 1.0) + rng.uniform(-0.2, 0.2), 0.0, 1.0)
        tex = a + (b - a) * m
        detail = detail * 1.5
    else:  # pragma: no cover - guarded by the config
        raise ValueError(f"unknown texture kind {kind!r}")
    return torch.clamp(tex + detail, 0.0, 255.0)


# ----------------------------------------------------------------------------------------------------------
# shapes: anti-aliased alpha from a signed distance (texture pixels, negative inside)
# ----------------------------------------------------------------------------------------------------------


def _shape_alpha(shape: str, rng: np.random.Generator, size: int, radius: float) -> torch.Tensor:
    """Alpha ``(1, size, size)`` in ``[0, 1]`` of a shape of outer radius ``radius`` centred on the canvas."""
    c = (size - 1) / 2.0
    x = torch.arange(size, dtype=torch.float32)[None, :] - c
    y = torch.arange(size, dtype=torch.float32)[:, None] - c
    if shape == "ellipse":
        a = radius * rng.uniform(0.85, 1.0)
        b = a * rng.uniform(0.45, 1.0)
        th = rng.uniform(0.0, math.pi)
        co, si = math.cos(th), math.sin(th)
        xr, yr = x * co + y * si, y * co - x * si
        q = torch.sqrt((xr / a) ** 2 + (yr / b) ** 2)
        grad = torch.sqrt((xr / (a * a)) ** 2 + (yr / (b * b)) ** 2) / torch.clamp(q, min=1e-6)
        sd = torch.where(q < 0.5, torch.full_like(q, -radius), (q - 1.0) / torch.clamp(grad, min=1e-6))
    elif shape == "polygon":
        n = int(rng.integers(3, 9))
        ang = np.arange(n) * (2.0 * math.pi / n) + rng.uniform(-0.3, 0.3, n) * (2.0 * math.pi / n) + rng.uniform(0, 6.3)
        squash = rng.uniform(0.6, 1.0)
        th = rng.uniform(0.0, math.pi)
        vx0, vy0 = np.cos(ang) * radius, np.sin(ang) * radius * squash
        vx = vx0 * math.cos(th) - vy0 * math.sin(th)  # an affine image of a convex polygon is convex
        vy = vx0 * math.sin(th) + vy0 * math.cos(th)
        sd = None
        for i in range(n):
            x0_, y0_, x1_, y1_ = vx[i], vy[i], vx[(i + 1) % n], vy[(i + 1) % n]
            ex, ey = x1_ - x0_, y1_ - y0_
            ln = math.hypot(ex, ey)
            nx, ny = ey / ln, -ex / ln  # outward normal for counter-clockwise vertices
            if nx * x0_ + ny * y0_ < 0:
                nx, ny = -nx, -ny
            d = x * float(nx) + y * float(ny) - float(nx * x0_ + ny * y0_)
            sd = d if sd is None else torch.maximum(sd, d)
    elif shape == "blob":
        k_max = 4
        ca = rng.uniform(-1.0, 1.0, k_max + 1) / np.arange(1, k_max + 2) ** 1.2 * 0.25
        sa = rng.uniform(-1.0, 1.0, k_max + 1) / np.arange(1, k_max + 2) ** 1.2 * 0.25
        ca[:2] = 0.0
        sa[:2] = 0.0
        thg = np.linspace(0.0, 2.0 * math.pi, 721)
        rg = 1.0 + sum(ca[k] * np.cos(k * thg) + sa[k] * np.sin(k * thg) for k in range(2, k_max + 1))
        scale = radius / float(rg.max())
        rho = torch.sqrt(x * x + y * y)
        cth = x / torch.clamp(rho, min=1e-6)
        sth = y / torch.clamp(rho, min=1e-6)
        # cos(k th) = T_k(cos th), sin(k th) = sin th * U_{k-1}(cos th) (Chebyshev): no transcendental calls
        t_prev, t_cur = torch.ones_like(cth), cth
        u_prev, u_cur = torch.ones_like(cth), 2.0 * cth
        r = torch.ones_like(cth)
        for k in range(2, k_max + 1):
            t_prev, t_cur = t_cur, 2.0 * cth * t_cur - t_prev  # T_k
            r = r + float(ca[k]) * t_cur + float(sa[k]) * sth * u_cur  # u_cur = U_{k-1}
            u_prev, u_cur = u_cur, 2.0 * cth * u_cur - u_prev
        sd = rho - r * scale
    else:  # pragma: no cover - guarded by the config
        raise ValueError(f"unknown shape {shape!r}")
    return torch.clamp(0.5 - sd, 0.0, 1.0)[None]
