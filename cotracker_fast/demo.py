"""``make demo``: track a clip made from a real photograph moved by a known motion, print the error against the
ground truth, and write an overlay video.

Without ``--checkpoint`` it uses the weights shipped with the package (``cotracker_fast_small``, trained on the
procedural clips; docs/ACCURACY.md); ``--checkpoint cotracker_stride_4_wind_8.pth`` runs the official v1 weights.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .cli import track_video, write_overlay
from .demo_clip import make_demo_clip, tracking_error
from .io import VideoWriter, save_tracks
from .models.registry import SHIPPED_MODEL


def main(argv=None) -> int:
    """Entry point of ``make demo`` (``python -m cotracker_fast.demo``); returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out-dir", default="demo_out")
    p.add_argument("--checkpoint", default=None,
                   help="official cotracker_stride_4_wind_8.pth (or other variant); default: the shipped weights")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)

    clip = make_demo_clip(num_frames=args.frames, size_hw=(384, 512), seed=0)
    clip_path = os.path.join(args.out_dir, "clip.mp4")
    with VideoWriter(clip_path, fps=clip.fps) as w:
        for f in clip.frames:
            w.write(f)
    print(f"demo clip: {clip.description}")
    print(f"           {clip.frames.shape[0]} frames {clip.frames.shape[2]}x{clip.frames.shape[1]}, "
          f"{len(clip.queries)} query points -> {clip_path}")
    if args.checkpoint is None:
        print(f"weights: the ones shipped with cotracker_fast ({SHIPPED_MODEL}, ~50 min of CPU training on synthetic "
              "clips). They are WEAK (they lose to a 'points stay still' baseline, docs/ACCURACY.md): expect large "
              "errors below.")

    t0 = time.time()
    result = track_video(clip_path, checkpoint=args.checkpoint, queries=clip.queries, device=args.device)
    elapsed = time.time() - t0
    save_tracks(os.path.join(args.out_dir, "tracks.npz"), result.tracks, result.visibility,
                queries=result.queries, fps=result.fps)
    overlay = os.path.join(args.out_dir, "overlay.mp4")
    write_overlay(clip_path, result, overlay)

    err = tracking_error(result.tracks, clip.gt_tracks, clip.gt_visible, query_frames=clip.queries[:, 0])
    T, N = result.visibility.shape
    print(f"tracked {N} points through {T} frames in {elapsed:.1f} s")
    print(f"error vs ground truth (visible frames after each query): mean {err['epe_mean']:.2f} px, "
          f"median {err['epe_median']:.2f} px, delta_avg {100 * err['delta_avg']:.1f}%")
    if args.checkpoint is None:
        print("(for the official v1 weights: `make demo CHECKPOINT=path/to/cotracker_stride_4_wind_8.pth`)")
    print(f"overlay -> {overlay}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
