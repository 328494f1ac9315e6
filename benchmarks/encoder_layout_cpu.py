"""The feature CNN's memory layout on a CPU in float32: the official contiguous layout (``nn.InstanceNorm2d``)
against the predictors' channels-last form (channels-last weights, the instance norm as a one-group-per-channel
``F.group_norm``; :func:`cotracker_fast.models.encoder.norm_act`).

    python -m benchmarks.encoder_layout_cpu [--repeats 2] [--out FILE]

Two cases, each timed ``repeats`` times per layout after one untimed call (the minimum is reported):

* ``encoder``: the shipped small model's encoder alone, 8 frames at 576x768 (the working resolution), no autograd;
* ``predictor``: the shipped ``CoTrackerPredictor()`` in float32 on a textured 16-frame 384x512 clip (smooth noise
  moving one pixel down and two right per frame) with 256 queries in frame 0: the official layout is what
  ``backend="reference"`` keeps (set here through ``reference_ops``, so the other ops stay the same), the
  channels-last form is the default. The tracks' difference between the layouts is recorded beside the times.

torch uses every core (``torch.get_num_threads()``). The result (CPU, flags, versions, commit, every time) is written
atomically to ``--out`` (default ``benchmarks/results/encoder-layout-<cpu>-<date>.json``).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from typing import Any, Callable, Dict, List

import torch
import torch.nn.functional as F

from benchmarks.train_throughput import default_result_path, write_cpu_result


def _times(fn: Callable[[], Any], repeats: int) -> List[float]:
    fn()  # untimed: oneDNN creates its primitives on the first call
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def textured_clip(frames: int = 16, hw=(384, 512), points: int = 256, seed: int = 0):
    """``(video (1, T, 3, H, W) in 0..255, queries (1, N, 3))``: smooth noise moving (down 1, right 2) px a frame."""
    g = torch.Generator().manual_seed(seed)
    H, W = hw
    base = F.interpolate(torch.rand(1, 3, H // 8, W // 8, generator=g), size=hw, mode="bilinear")[0] * 255
    video = torch.stack([torch.roll(base, shifts=(t, 2 * t), dims=(1, 2)) for t in range(frames)])[None]
    xy = torch.rand(points, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])
    return video, torch.cat([torch.zeros(points, 1), xy], 1)[None]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2, help="timed calls per case and layout")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from cotracker_fast.predictor import CoTrackerPredictor

    cases: List[Dict[str, Any]] = []
    official = CoTrackerPredictor(checkpoint=None)
    official.reference_ops = True
    fast = CoTrackerPredictor(checkpoint=None)

    enc = copy.deepcopy(official.model.fnet).eval()
    enc_cl = copy.deepcopy(enc).to(memory_format=torch.channels_last)
    x = torch.rand(8, 3, *official.interp_shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        t_off = _times(lambda: enc(x), args.repeats)
        t_cl = _times(lambda: enc_cl(x), args.repeats)
        y = enc(x)
        d = (y - enc_cl(x)).abs()
    cases.append({"case": "encoder", "frames": 8, "size_hw": list(official.interp_shape),
                  "official_s": t_off, "channels_last_s": t_cl, "speedup": min(t_off) / min(t_cl),
                  "feature_max_abs_diff": float(d.max()), "feature_rms": float(y.square().mean().sqrt())})
    print(f"encoder: official {min(t_off):.2f} s, channels-last {min(t_cl):.2f} s ({min(t_off) / min(t_cl):.2f}x)")

    video, queries = textured_clip()
    res = {}
    for name, pred in (("official", official), ("channels_last", fast)):
        res[name + "_s"] = _times(lambda: pred(video, queries), args.repeats)
        res[name + "_tracks"] = pred(video, queries)
    (ta, va), (tb, vb) = res.pop("official_tracks"), res.pop("channels_last_tracks")
    diff = (ta - tb).abs()
    speed = min(res["official_s"]) / min(res["channels_last_s"])
    cases.append({"case": "predictor", "frames": video.shape[1], "video_hw": list(video.shape[-2:]),
                  "points": queries.shape[1], "working_hw": list(fast.interp_shape), "iters": fast.iters, **res,
                  "speedup": speed, "tracks_mean_abs_diff_px": float(diff.mean()),
                  "tracks_max_abs_diff_px": float(diff.max()), "visibility_equal": float((va == vb).float().mean())})
    print(f"predictor: official {min(res['official_s']):.2f} s, channels-last {min(res['channels_last_s']):.2f} s "
          f"({speed:.2f}x); tracks differ by {float(diff.mean()):.2g} px mean, {float(diff.max()):.2g} px max")

    write_cpu_result("encoder_layout_cpu", cases, args.out or default_result_path("encoder-layout"), dtype="float32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
