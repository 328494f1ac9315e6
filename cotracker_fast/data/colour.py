"""Colour operations on ``(3, H, W)`` float32 images in ``[0, 1]`` (the photometric part of the training
augmentations): RGB/HSV conversion, torchvision-style colour jitter and a separable Gaussian blur, with operations
whose result does not depend on the number of threads."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["color_jitter", "gaussian_blur", "rgb_to_hsv", "hsv_to_rgb"]

_GRAY = (0.2989, 0.587, 0.114)  # luma weights of torchvision's rgb_to_grayscale

# ----------------------------------------------------------------------------------------------------------
# colour operations on (3, H, W) float32 images in [0, 1]
# ----------------------------------------------------------------------------------------------------------


def _gray(img: torch.Tensor) -> torch.Tensor:
    return img[0] * _GRAY[0] + img[1] * _GRAY[1] + img[2] * _GRAY[2]


def rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    """RGB ``(3, ...)`` in ``[0, 1]`` -> HSV ``(3, ...)``, hue in ``[0, 1)`` (a full turn is 1)."""
    r, g, b = img[0], img[1], img[2]
    maxc = torch.maximum(torch.maximum(r, g), b)
    delta = maxc - torch.minimum(torch.minimum(r, g), b)
    s = delta / torch.clamp(maxc, min=1e-12)  # 0 for black (delta is 0 there too)
    safe = delta + (delta == 0).to(delta.dtype)  # grey pixels: any non-zero divisor, hue comes out 0
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    return torch.stack([torch.remainder(h / 6.0, 1.0), s, maxc])


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """HSV ``(3, ...)`` (hue in turns) -> RGB ``(3, ...)`` in ``[0, 1]``: channel ``c = v - v s
    clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6 h) mod 6`` and ``n = 5, 3, 1`` for R, G, B."""
    h6, s, v = hsv[0] * 6.0, hsv[1], hsv[2]
    vs = v * s
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h6 + n, 6.0)
        out.append(v - vs * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(out)


def _mean(x: torch.Tensor) -> float:
    """Mean of a float tensor by numpy's pairwise summation (independent of torch's thread count)."""
    return float(np.mean(x.detach().contiguous().numpy(), dtype=np.float64))


def _draw_jitter(
    rng: np.random.Generator, brightness: float, contrast: float, saturation: float, hue: float
) -> Tuple[np.ndarray, float, float, float, float]:
    """Draw ColorJitter parameters: (order of the 4 ops, brightness, contrast, saturation factors, hue shift)."""
    order = rng.permutation(4)
    fb = rng.uniform(max(0.0, 1.0 - brightness), 1.0 + brightness)
    fc = rng.uniform(max(0.0, 1.0 - contrast), 1.0 + contrast)
    fs = rng.uniform(max(0.0, 1.0 - saturation), 1.0 + saturation)
    fh = rng.uniform(-hue, hue)
    return order, fb, fc, fs, fh


def _apply_jitter(
    x: torch.Tensor,
    params: Tuple[np.ndarray, float, float, float, float],
    strengths: Tuple[float, float, float, float],
    mean: Optional[float] = None,
) -> Tuple[torch.Tensor, Optional[float]]:
    """Apply drawn jitter parameters to ``x (3, ...)`` in ``[0, 1]``. The contrast op blends with ``mean`` when
    given, else with the mean grey level of ``x`` at that point. Returns ``(result, the mean used or None)``."""
    order, fb, fc, fs, fh = params
    b, c, s, h = strengths
    used = None
    for op in order:
        if op == 0 and b > 0:
            x = torch.clamp(x * fb, 0.0, 1.0)
        elif op == 1 and c > 0:
            used = _mean(_gray(x)) if mean is None else mean
            x = torch.clamp(x * fc + (1.0 - fc) * used, 0.0, 1.0)
        elif op == 2 and s > 0:
            x = torch.clamp(x * fs + _gray(x)[None] * (1.0 - fs), 0.0, 1.0)
        elif op == 3 and h > 0:
            hsv = rgb_to_hsv(x)
            x = hsv_to_rgb(torch.stack([hsv[0] + fh, hsv[1], hsv[2]]))
    return x, used


def color_jitter(
    img: torch.Tensor, rng: np.random.Generator, brightness: float, contrast: float, saturation: float, hue: float
) -> torch.Tensor:
    """torchvision-style ``ColorJitter``: brightness, contrast, saturation and hue adjustments with factors drawn
    uniformly from ``[max(0, 1 - b), 1 + b]`` (hue shift from ``[-hue, hue]`` turns), applied in a random order;
    contrast blends with the image's mean grey level, saturation with each pixel's grey level.

    Args:
        img: ``(3, H, W)`` float RGB in 0..255.
        rng: draws the order and the factors.
        brightness, contrast, saturation: jitter strengths (>= 0).
        hue: largest hue shift in turns, in ``[0, 0.5]``.

    Returns:
        ``(3, H, W) float32`` in 0..255.
    """
    params = _draw_jitter(rng, brightness, contrast, saturation, hue)
    x = img.to(torch.float32) / 255.0
    return _apply_jitter(x, params, (brightness, contrast, saturation, hue))[0] * 255.0


def gaussian_blur(img: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (as torchvision's ``GaussianBlur``). Taps whose weight is below
    1e-5 of the kernel's sum are dropped (and the rest renormalised): they change no value by more than 0.03 on a
    0..255 image and halve the work for small sigmas.

    Args:
        img: ``(C, H, W)`` float.
        kernel: odd kernel size (>= 1); its radius must be smaller than ``H`` and ``W`` (reflect padding).
        sigma: standard deviation in pixels (> 0).

    Returns:
        ``(C, H, W) float32``.
    """
    r = kernel // 2
    k = np.exp(-0.5 * (np.arange(0, r + 1) / sigma) ** 2)
    k = k / (k[0] + 2.0 * k[1:].sum())
    r = int(np.flatnonzero(k >= 1e-5).max())  # effective radius
    k = (k[: r + 1] / (k[0] + 2.0 * k[1 : r + 1].sum())).astype(np.float32)
    x = img.to(torch.float32)
    h, w = x.shape[-2:]
    if r == 0:
        return x.clone()
    if r >= h or r >= w:
        raise ValueError(f"blur kernel {kernel} too large for a {h}x{w} frame")
    p = F.pad(x[None], (r, r, r, r), mode="reflect")[0]
    # symmetric taps summed in pairs; separate multiplications and additions (no fused multiply-add), so the
    # result does not depend on how many threads split the work
    tmp = p[:, :, r : r + w] * float(k[0])
    for i in range(1, r + 1):
        tmp = tmp + (p[:, :, r - i : r - i + w] + p[:, :, r + i : r + i + w]) * float(k[i])
    out = tmp[:, r : r + h] * float(k[0])
    for i in range(1, r + 1):
        out = out + (tmp[:, r - i : r - i + h] + tmp[:, r + i : r + i + h]) * float(k[i])
    return out
