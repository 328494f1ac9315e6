"""Feature CNN of CoTracker v1 (a RAFT-style residual encoder with multi-scale fusion).

Every norm is a parameter-free ``InstanceNorm2d`` (affine=False, no running stats), so the network behaves the same
in train and eval mode. Module names follow the official state-dict keys (``fnet.layer2.0.downsample.0.weight`` ...).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def norm_act(norm: nn.InstanceNorm2d, x: Tensor, relu: bool = True) -> Tensor:
    """``relu(norm(x))`` (``norm(x)`` when ``relu`` is False) for a parameter-free instance norm.

    Activations in channels-last storage on a CPU (float32 or bf16: the predictors' CPU fast path keeps the encoder's
    weights channels-last, so every convolution writes that layout) go through ``F.group_norm`` with one group per
    channel, outside autocast: the same normalisation, computed by a channels-last kernel that accumulates its
    statistics in float32 and writes the input's dtype in the input's layout. ``nn.InstanceNorm2d`` copies such a
    tensor to the contiguous layout around a batch norm and returns it there, so the next convolution copies it back:
    together about 3x the time (measured 60-70 ms against 21 ms on a bf16 (8, 64, 192, 256) map, 2 threads). Every
    other input (contiguous, or on another device) goes through the module itself: the official arithmetic, to the
    bit. The two differ by float32 rounding only (the sums are taken in another order).
    """
    if (x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16) and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)):
        with torch.autocast("cpu", enabled=False):
            y = F.group_norm(x, x.shape[1], eps=norm.eps)
    else:
        y = norm(x)
    return F.relu(y, inplace=True) if relu else y


class ResidualBlock(nn.Module):
    """``relu(shortcut(x) + relu(norm(conv(relu(norm(conv_s(x)))))))``; the shortcut is a strided 1x1 conv + norm
    when ``stride > 1`` (``downsample.0`` / ``downsample.1``), identity otherwise."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1)
        self.norm1 = nn.InstanceNorm2d(planes)
        self.norm2 = nn.InstanceNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        if stride == 1:
            self.downsample = None
        else:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride), nn.InstanceNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = norm_act(self.norm1, self.conv1(x))
        y = norm_act(self.norm2, self.conv2(y))
        if self.downsample is not None:
            x = norm_act(self.downsample[1], self.downsample[0](x), relu=False)
        return self.relu(x + y)


class BasicEncoder(nn.Module):
    """Images ``(B, 3, H, W)`` in [-1, 1] -> features ``(B, output_dim, H // stride, W // stride)``.

    conv 7x7/2 -> 4 residual stages (64, 96, 128, 128 channels at /2, /4, /8, /16) -> each stage resized to
    ``(H // stride, W // stride)`` (bilinear, align_corners=True) -> concat (416) -> conv 3x3 (256) -> conv 1x1.
    """

    stage_dims: Tuple[int, ...] = (64, 96, 128, 128)

    def __init__(self, input_dim: int = 3, output_dim: int = 128, stride: int = 4):
        super().__init__()
        self.stride = stride
        d = self.stage_dims
        self.conv1 = nn.Conv2d(input_dim, d[0], kernel_size=7, stride=2, padding=3)
        self.norm1 = nn.InstanceNorm2d(d[0])
        self.in_planes = d[0]
        self.layer1 = self._make_layer(d[0], stride=1)
        self.layer2 = self._make_layer(d[1], stride=2)
        self.layer3 = self._make_layer(d[2], stride=2)
        self.layer4 = self._make_layer(d[3], stride=2)
        self.conv2 = nn.Conv2d(sum(d), 2 * output_dim, kernel_size=3, padding=1)
        self.norm2 = nn.InstanceNorm2d(2 * output_dim)
        self.conv3 = nn.Conv2d(2 * output_dim, output_dim, kernel_size=1)
        self.reset_parameters()

    def _make_layer(self, dim: int, stride: int) -> nn.Sequential:
        layers = nn.Sequential(ResidualBlock(self.in_planes, dim, stride), ResidualBlock(dim, dim, 1))
        self.in_planes = dim
        return layers

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan_out, relu) conv weights, as the official training-from-scratch init."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        size = (H // self.stride, W // self.stride)
        x = norm_act(self.norm1, self.conv1(x))
        a = self.layer1(x)
        b = self.layer2(a)
        c = self.layer3(b)
        d = self.layer4(c)
        feats = [F.interpolate(t, size, mode="bilinear", align_corners=True) for t in (a, b, c, d)]
        x = norm_act(self.norm2, self.conv2(torch.cat(feats, dim=1)))
        return self.conv3(x)
