"""Model configuration for CoTracker v1.

Every size in the network is derived from the fields of :class:`CoTrackerConfig`; the three official
checkpoints differ only in ``stride`` and ``window_len`` (see :mod:`cotracker_fast.models.registry`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class CoTrackerConfig:
    """Hyper-parameters of a CoTracker v1 model.

    Attributes:
        stride: down-sampling factor of the feature CNN (feature map = input / stride).
        window_len: frames per sliding window ``S``; windows advance by ``S // 2``.
        latent_dim: channels ``C`` of the feature maps and track features.
        corr_levels: levels of the feature pyramid used for correlation.
        corr_radius: correlation neighbourhood radius ``r``: a ``(2r+1) x (2r+1)`` square per level.
        hidden_size: width of the UpdateFormer tokens.
        num_heads: attention heads (head dim = hidden_size / num_heads).
        time_depth / space_depth: number of time and space (group) attention blocks.
        mlp_ratio: MLP hidden width / hidden_size in each transformer block.
        flow_embed_dim: sin/cos features per axis of the flow embedding.
        model_resolution: (H, W) input resolution in pixels; the 2D position table covers
            ``(H // stride, W // stride)`` cells.
        pos_embed: add the 2D sin/cos table of each track's window-start position to its tokens (official). Without
            it the network sees only relative quantities (flows, correlations, features), so a model trained on
            small crops runs unchanged on larger frames.
    """

    stride: int = 4
    window_len: int = 8
    latent_dim: int = 128
    corr_levels: int = 4
    corr_radius: int = 3
    hidden_size: int = 384
    num_heads: int = 8
    time_depth: int = 6
    space_depth: int = 6
    mlp_ratio: float = 4.0
    flow_embed_dim: int = 64
    model_resolution: Tuple[int, int] = (384, 512)
    pos_embed: bool = True

    def __post_init__(self):
        if self.window_len < 2 or self.window_len % 2:
            raise ValueError(f"window_len must be an even integer >= 2, got {self.window_len}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.space_depth < 1 or self.time_depth % self.space_depth:
            raise ValueError("time_depth must be a positive multiple of space_depth")
        if self.flow_embed_dim % 2:
            raise ValueError("flow_embed_dim must be even (sin/cos pairs)")

    @property
    def window_step(self) -> int:
        """Frames between consecutive window starts (50% overlap)."""
        return self.window_len // 2

    @property
    def corr_dim(self) -> int:
        """Correlation features per (frame, track): levels * (2r+1)^2 (196 for the official models)."""
        return self.corr_levels * (2 * self.corr_radius + 1) ** 2

    @property
    def flow_dim(self) -> int:
        """Flow embedding width: raw (dx, dy) + sin/cos features of each axis (130 officially)."""
        return 2 + 2 * self.flow_embed_dim

    @property
    def input_dim(self) -> int:
        """Token width: flow embedding + correlations + track feature + track mask + visibility (456)."""
        return self.flow_dim + self.corr_dim + self.latent_dim + 2

    @property
    def head_dim(self) -> int:
        """Width of one attention head (48 officially)."""
        return self.hidden_size // self.num_heads

    @property
    def output_dim(self) -> int:
        """UpdateFormer output: (dx, dy) + feature update (130 officially)."""
        return 2 + self.latent_dim
