"""How the tracks change with the number of refinement iterations: ``python -m benchmarks.refinement_iterations``.

A CoTracker window refines every track ``iters`` times (the predictors and all scores of this project use the
official 6). A network trained with fewer iterations per window than it is run with was never told what to do after
its last trained one: if its update does not settle, the tracks keep moving. This script tracks one clip set once
per iteration count and saves, for each count:

* ``--set demo``: the demo clip (``make demo``'s photograph under its known similarity motion, 24 frames of 384x512,
  its 56 queries; the rendered frames, not the encoded video ``make demo`` reads). Figures of
  :func:`cotracker_fast.evaluation.metrics.tracking_error` (pixels, fractions) and the mean signed error
  ``(x, y)`` in pixels, a drift the same way for every point shows there.
* ``--set validation``: ``--num-videos`` validation clips of a training config's mix
  (:func:`cotracker_fast.training.trainer.validation_clip_scores`, the clips the checkpoint choice uses), tracked at the
  config's clip size, scored with the TAP-Vid metrics (AJ, ``< delta^x_avg``, OA).

It is a diagnostic; no choice is made from it. Results go to
``benchmarks/results/refinement-iterations-<set>-<name>-cpu.json`` (``--name``, default the weights file's stem),
with the CPU, the threads and the commit.
"""
from __future__ import annotations

import argparse
import datetime
import os
import time
from typing import Any, Dict, List, Sequence

import numpy as np
import torch

from benchmarks._common import RESULTS_DIR, cpu_name, git_commit, write_results

SETS = ("demo", "validation")
DEFAULT_ITERS = (1, 2, 3, 4, 5, 6, 8, 10)
KEYS = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")


def _predictor(weights: str):
    """A float32 :class:`CoTrackerPredictor` of the shipped small model with the package's weights (``"shipped"``)
    or ``weights`` (a ``.safetensors`` file of that variant)."""
    from cotracker_fast.models.registry import SHIPPED_MODEL
    from cotracker_fast.predictor import CoTrackerPredictor

    return CoTrackerPredictor(None if weights == "shipped" else weights, model_name=SHIPPED_MODEL)


def demo_rows(predictor, iters_list: Sequence[int]) -> List[Dict[str, Any]]:
    """One row per iteration count on the demo clip (see the module docstring)."""
    from cotracker_fast.demo_clip import make_demo_clip
    from cotracker_fast.demo import DEMO_SEED, DEMO_SIZE_HW
    from cotracker_fast.evaluation.metrics import tracking_error

    clip = make_demo_clip(num_frames=24, size_hw=DEMO_SIZE_HW, seed=DEMO_SEED)
    video = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)[None].float()
    queries = torch.from_numpy(clip.queries)[None].float()
    q = clip.queries[:, 0].astype(int)
    counted = clip.gt_visible & (np.arange(len(clip.frames))[:, None] > q[None])  # tracking_error's pairs
    rows = []
    for iters in iters_list:
        predictor.iters = iters
        t0 = time.time()
        tracks, _ = predictor(video, queries=queries)
        tracks = tracks[0].numpy()
        signed = (tracks - clip.gt_tracks)[counted]
        rows.append({"iters": iters, **tracking_error(tracks, clip.gt_tracks, clip.gt_visible, query_frames=q),
                     "signed_mean_px": [float(v) for v in signed.mean(0)], "time_s": round(time.time() - t0, 2)})
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    return rows


def validation_rows(predictor, iters_list: Sequence[int], config: str, num_videos: int) -> List[Dict[str, Any]]:
    """One row per iteration count on ``num_videos`` validation clips of ``config`` (see the module docstring)."""
    from cotracker_fast.evaluation.metrics import average_metrics
    from cotracker_fast.training.trainer import TrainConfig, validation_clip_scores

    cfg = TrainConfig.from_json(config)
    rows = []
    for iters in iters_list:
        t0 = time.time()
        per = validation_clip_scores(predictor.model, cfg, torch.device("cpu"), num_videos, iters=iters)
        avg = average_metrics(per)
        rows.append({"iters": iters, **{k: float(avg[k]) for k in KEYS}, "time_s": round(time.time() - t0, 2)})
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="shipped", help="'shipped' or a .safetensors file of the shipped small "
                                                        "model's variant")
    p.add_argument("--set", choices=SETS, default="demo")
    p.add_argument("--iters", type=int, nargs="+", default=list(DEFAULT_ITERS))
    p.add_argument("--config", default="train/configs/ship_small_n.json",
                   help="the training config whose validation clips --set validation scores")
    p.add_argument("--num-videos", type=int, default=10, help="validation clips (--set validation)")
    p.add_argument("--name", default=None, help="results file name part (default: the weights file's stem)")
    p.add_argument("--out", default=None, help="results file (default: see above)")
    args = p.parse_args(argv)
    if any(k < 1 for k in args.iters):
        raise SystemExit(f"--iters must all be >= 1, got {args.iters}")
    if args.num_videos < 1:
        raise SystemExit(f"--num-videos must be >= 1, got {args.num_videos}")
    if args.weights != "shipped" and not os.path.exists(args.weights):
        raise SystemExit(f"--weights {args.weights!r}: no such file")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    predictor = _predictor(args.weights)
    if args.set == "demo":
        rows = demo_rows(predictor, args.iters)
    else:
        rows = validation_rows(predictor, args.iters, args.config, args.num_videos)
    stem = os.path.splitext(os.path.basename(args.weights))[0]
    name = args.name or ("shipped" if args.weights == "shipped" else stem)
    record = {"set": args.set, "weights": args.weights, "rows": rows,
              **({"config": args.config, "num_videos": args.num_videos} if args.set == "validation" else {}),
              "machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__},
              "commit": git_commit(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    out = write_results(args.out or os.path.join(RESULTS_DIR, f"refinement-iterations-{args.set}-{name}-cpu.json"),
                        record)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
