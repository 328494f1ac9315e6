"""The training losses of CoTracker v1, computed from the sliding-window outputs (:class:`TrainData`).

As the official code computes them, per sample and per window ``j`` with ``N_j`` active tracks and ``I`` iterations:

* **flow**: ``sum_i gamma^(I-1-i) * mean_{frames, tracks}(mean_xy |pred_i - gt|) / I / N_j``, summed over windows.
  Pixels at the training resolution; every frame of the window is supervised, occluded ones and ones before the
  query included. ``occluded_flow_weight`` below 1 (not official) turns the inner mean into a weighted mean in which
  each occluded entry counts that much against a visible one's 1, so the loss favours precision where the point can
  be seen; 1 is the official mean.
* **visibility**: balanced binary cross-entropy, the mean over visible entries plus the mean over occluded
  entries, divided by ``N_j``, summed over windows. The official code feeds it the *sigmoid probability* of the
  visibility logit in place of the logit (``softplus(-label * sigmoid(logit))``); the v1 checkpoints were trained so
  and ``official_vis_quirk=True`` reproduces it; ``False`` uses the logit (the usual BCE).

A batch's loss is the mean of its samples' losses (the official code trains with one sample per GPU, so a batch of
B samples on one device gives the same gradient as B devices with one sample each).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.cotracker import TrainData, _gather_tracks


@dataclass(frozen=True)
class LossConfig:
    """``gamma``: iteration weight decay; ``vis_weight``: factor of the visibility loss (10 officially);
    ``official_vis_quirk``: see the module's docstring; ``occluded_flow_weight``: the weight of an occluded entry in
    the flow loss's mean over frames and tracks, in [0, 1] (1 officially, every entry alike)."""

    gamma: float = 0.8
    vis_weight: float = 10.0
    official_vis_quirk: bool = True
    occluded_flow_weight: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.occluded_flow_weight <= 1.0:
            raise ValueError(f"occluded_flow_weight must be in [0, 1], got {self.occluded_flow_weight}")


def window_losses(
    td: TrainData, gt_tracks: Tensor, gt_visible: Tensor, config: LossConfig = LossConfig()
) -> Tuple[Tensor, Tensor]:
    """Flow and visibility losses of one unrolled sliding-window run.

    Args:
        td: the model's per-window outputs (``CoTracker.forward(..., is_train=True)``).
        gt_tracks: ``(B, T, N, 2)`` ground-truth positions (x, y) in pixels of the model's input.
        gt_visible: ``(B, T, N)`` bool (or 0/1) ground-truth visibility.

    Returns:
        ``(flow_loss, vis_loss)`` scalars, each the mean over the batch of the per-sample sums over windows.
    """
    if gt_tracks.dim() != 4 or gt_tracks.shape[-1] != 2:
        raise ValueError(f"gt_tracks must be (B, T, N, 2), got {tuple(gt_tracks.shape)}")
    if gt_visible.shape != gt_tracks.shape[:3]:
        raise ValueError(f"gt_visible must be {tuple(gt_tracks.shape[:3])} (B, T, N), got {tuple(gt_visible.shape)}")
    if not td.window_starts:
        raise ValueError("no window ran: every query frame is past the last window (nothing to supervise)")
    B = gt_tracks.shape[0]
    flow = gt_tracks.new_zeros(B)
    vis = gt_tracks.new_zeros(B)
    for start, preds, logits, index, valid in zip(td.window_starts, td.coord_preds, td.vis_logits, td.index, td.valid):
        n = logits.shape[1]
        gt = _gather_tracks(gt_tracks[:, start : start + n], index, 2)  # (B, n, K, 2)
        gv = _gather_tracks(gt_visible[:, start : start + n].float(), index, 2)  # (B, n, K)
        mask = valid[:, None, :].expand_as(gv).float()  # (B, n, K): real tracks
        n_tracks = valid.sum(1).clamp(min=1).to(gt.dtype)  # N_j per sample
        w = config.occluded_flow_weight  # gv is 0/1, so the weight is exactly mask at the official w = 1
        flow_w = mask * (gv + w * (1.0 - gv))  # per-entry weight of the flow mean
        entries = flow_w.sum((1, 2)).clamp(min=1e-6)  # no entry: the numerator is 0 too
        I = len(preds)
        f = gt.new_zeros(B)
        for i, p in enumerate(preds):
            err = (p.float() - gt).abs().mean(-1)  # (B, n, K)
            f = f + config.gamma ** (I - 1 - i) * (err * flow_w).sum((1, 2)) / entries
        flow = flow + f / I / n_tracks

        x = torch.sigmoid(logits.float()) if config.official_vis_quirk else logits.float()
        pos = (gv > 0.95).float() * mask
        neg = (gv < 0.05).float() * mask
        lp = F.softplus(-x)  # label +1
        ln = F.softplus(x)  # label -1
        v = (lp * pos).sum((1, 2)) / pos.sum((1, 2)).clamp(min=1)
        v = v + (ln * neg).sum((1, 2)) / neg.sum((1, 2)).clamp(min=1)
        vis = vis + v / n_tracks
    return flow.mean(), vis.mean()


def total_loss(flow: Tensor, vis: Tensor, config: LossConfig = LossConfig()) -> Tensor:
    """``flow + vis_weight * vis``."""
    return flow + config.vis_weight * vis
