"""Sin/cos embeddings of CoTracker v1 (flow, time, 2D position). Orders and frequencies follow the checkpoints."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """``(M,)`` positions -> ``(M, dim)`` float64: ``[sin(p w_k) for k < dim/2, cos(p w_k) for k < dim/2]`` with
    ``w_k = 10000 ** (-k / (dim/2))``."""
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.asarray(positions, dtype=np.float64).reshape(-1)[:, None] * omega[None, :]
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def time_embedding(dim: int, length: int) -> Tensor:
    """``(1, length, dim)`` float32 embedding of frame indices 0..length-1 within a window."""
    return torch.from_numpy(sincos_1d(dim, np.arange(length))).float()[None]


def position_table_2d(dim: int, height: int, width: int) -> Tensor:
    """``(1, dim, height, width)`` float32 table: the first dim/2 channels encode the column (x), the last dim/2
    the row (y), each as :func:`sincos_1d`."""
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4, got {dim}")
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    emb = np.concatenate([sincos_1d(dim // 2, xs), sincos_1d(dim // 2, ys)], axis=1)  # (H*W, dim)
    return torch.from_numpy(emb.T.reshape(dim, height, width)).float()[None]


def flow_embedding(flows: Tensor, dim: int = 64) -> Tensor:
    """``(..., 2)`` flows (x, y) -> ``(..., 2 + 2*dim)``: ``[x, y, pe_x(dim), pe_y(dim)]`` where
    ``pe[2k] = sin(v f_k)``, ``pe[2k+1] = cos(v f_k)``, ``f_k = k * 2000 / dim`` (31.25 k for dim = 64).
    ``dim = 0`` gives the raw flows alone."""
    if dim == 0:
        return flows[..., :2]
    freqs = torch.arange(0, dim, 2, device=flows.device, dtype=torch.float32) * (1000.0 / dim)
    parts = [flows[..., :2]]
    for axis in range(2):
        arg = flows[..., axis : axis + 1] * freqs
        parts.append(torch.stack([torch.sin(arg), torch.cos(arg)], dim=-1).flatten(-2))
    return torch.cat(parts, dim=-1)
