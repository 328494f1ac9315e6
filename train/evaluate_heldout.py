"""Score a checkpoint on a held-out set (procedural clips, or real photographs) against two baselines anyone can run.

    python train/evaluate_heldout.py --checkpoint cotracker_fast/assets/cotracker_fast_small.safetensors \\
        --model-name cotracker_fast_small --set synthetic --out benchmarks/results/accuracy-heldout-synthetic.json

Methods: the model (multi-point protocol: all queries plus the 6x6 support grid in one call, 6 iterations, at the
model's working resolution), **static** (every point stays at its query position, always visible) and OpenCV
pyramidal **Lucas-Kanade** with a forward-backward check (``cotracker_fast/baselines/lk.py``). Metrics: TAP-Vid "query
first" (average Jaccard, <delta^x_avg, occlusion accuracy) in the 256x256 TAP-Vid space. ``--set synthetic``: clips of
:func:`cotracker_fast.data.synthetic.synthetic_eval_clips`, whose seeds never occur in training; ``--set photos``:
:func:`cotracker_fast.evaluation.datasets.read_heldout_photos`, real photographs that no training run uses, under
known camera motion with moving occluders.
"""
import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # benchmarks._common

from cotracker_fast.baselines.lk import track_lk  # noqa: E402
from cotracker_fast.evaluation.datasets import read_heldout_photos, read_synthetic  # noqa: E402
from cotracker_fast.evaluation.metrics import average_metrics  # noqa: E402
from cotracker_fast.evaluation.run import evaluate_sample, score_sample  # noqa: E402
from benchmarks._common import write_results  # noqa: E402
from cotracker_fast.predictor import build_model  # noqa: E402

KEYS = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")


def static_tracks(sample):
    """The 'points stay still' baseline: every point at its query position, always visible."""
    T, N = sample.tracks.shape[:2]
    qxy = sample.tracks[sample.query_frames, np.arange(N)]
    return np.broadcast_to(qxy, (T, N, 2)).copy(), np.ones((T, N), bool)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--model-name", default=None)
    p.add_argument("--set", default="synthetic", choices=["synthetic", "photos"],
                   help="synthetic: procedural clips (default 20 of 192x256); photos: the held-out real photographs "
                        "under camera motion with moving occluders (default 6 of 256x320)")
    p.add_argument("--num-videos", type=int, default=None)
    p.add_argument("--num-frames", type=int, default=24)
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None, help="JSON file for the results (written atomically)")
    args = p.parse_args(argv)

    model, name = build_model(args.checkpoint, args.model_name, None)
    model = model.to(args.device).eval()
    res = tuple(model.config.model_resolution)
    per = {"model": [], "static": [], "lucas_kanade": []}
    t0 = time.time()
    if args.set == "synthetic":
        args.num_videos = 20 if args.num_videos is None else args.num_videos
        args.size = (192, 256) if args.size is None else args.size
        samples = read_synthetic(args.num_videos, num_frames=args.num_frames, size_hw=tuple(args.size))
    else:
        args.num_videos = 6 if args.num_videos is None else args.num_videos
        args.size = (256, 320) if args.size is None else args.size
        samples = read_heldout_photos(args.num_videos, num_frames=args.num_frames, size_hw=tuple(args.size))
    for s in tqdm(samples, total=args.num_videos, desc=args.set, unit="clip"):
        per["model"].append(evaluate_sample(model, s, "synthetic", single_point=False, iters=6, resolution=res,
                                            device=args.device))
        per["static"].append(score_sample(s, "synthetic", *static_tracks(s)))
        qxy = s.tracks[s.query_frames, np.arange(s.tracks.shape[1])]
        queries = np.concatenate([s.query_frames[:, None].astype(np.float32), qxy], 1)
        per["lucas_kanade"].append(score_sample(s, "synthetic", *track_lk(s.video, queries)))
    avg = {m: {k: average_metrics(v)[k] for k in KEYS} for m, v in per.items()}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    result = {
        "set": args.set, "model": name, "checkpoint": args.checkpoint, "model_resolution": list(res), "num_videos": args.num_videos,
        "clip": {"num_frames": args.num_frames, "size_hw": list(args.size)}, "protocol": "multi_point, 6 iters",
        "average": avg, "per_video": per, "time_s": time.time() - t0, "device": args.device,
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__, "commit": commit,
    }
    print("| method | AJ | <delta_avg | OA |\n|---|---|---|---|")
    for m, a in avg.items():
        print(f"| {m} | {100 * a['average_jaccard']:.1f} | {100 * a['average_pts_within_thresh']:.1f} | "
              f"{100 * a['occlusion_accuracy']:.1f} |")
    if args.out:
        write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
