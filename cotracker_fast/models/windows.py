"""The sliding-window schedule of CoTracker v1: which windows a clip runs and which of their frames are new."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch
from torch import Tensor

__all__ = ["Window", "window_runs", "window_schedule"]


def window_runs(start: int, T: int, step: int) -> bool:
    """Whether the sliding window starting at frame ``start`` runs on a ``T``-frame video (``step`` = S/2).

    Windows run while ``start < T - step`` (the official schedule: the last window is the first one that reaches
    the end of the video), and the first window always runs: with ``T <= step`` the official condition holds for
    no window and the clip would get no tracks at all; its one window sees the ``T`` frames padded with the last
    one, as every window that runs past the end of a video does. For ``T > step`` the first window runs under
    both rules, so longer clips get the official windows unchanged. Every driver of
    :class:`SlidingWindowTracker` (the model, the predictors, the evaluation) uses this one rule.
    """
    return start == 0 or start < T - step


@dataclass(frozen=True)
class Window:
    """One sliding window of a clip: frames ``[start, start + S)``, of which ``[new_from, start + S)`` have not been
    seen by an earlier window (the first window's every frame; later windows' second half). Frames at or past the
    clip's end are the last frame repeated (``_pad_frames``)."""

    start: int
    new_from: int
    stop: int  # start + S

    def real_frames(self, T: int) -> int:
        """Frames of this window inside a ``T``-frame clip (``>= 1``)."""
        return min(self.stop, T) - self.start


def window_schedule(T: int, window_len: int) -> List[Window]:
    """The sliding windows of a ``T``-frame clip with windows of ``window_len`` frames advancing by half a window:
    starts ``0, S/2, S, ...`` for as long as :func:`window_runs` says. The one schedule of every driver of
    :class:`SlidingWindowTracker` (the model's forward, the predictors, the evaluation, the FLOP model)."""
    if T < 1 or window_len < 2:
        raise ValueError(f"need T >= 1 and window_len >= 2, got T={T}, window_len={window_len}")
    step = window_len // 2
    out, ind = [], 0
    while window_runs(ind, T, step):
        out.append(Window(ind, ind if ind == 0 else ind + step, ind + window_len))
        ind += step
    return out


def _pad_frames(frames: Tensor, length: int) -> Tensor:
    """Pad ``(B, F, ...)`` to ``length`` frames by repeating the last frame (the official short-window rule)."""
    missing = length - frames.shape[1]
    if missing <= 0:
        return frames
    return torch.cat([frames, frames[:, -1:].expand(-1, missing, *frames.shape[2:])], dim=1)
