"""Where a tracker's position error comes from, on clips of validation photographs: a precision floor or drift.

Two measurements, both on photographs that neither train nor measure the shipped weights (``--photo-dir``, as
``train/select_checkpoint.py --photo-dir``):

* **still**: each photograph as a still video (``--still-frames`` copies of it, resized to ``--size``), 64 points
  on an 8x8 grid queried at frame 0 and tracked at the working resolution. The true track is the query itself, so
  every pixel a point moves is error: at the query frame, and at the last frame, after 1 to 8 refinement iterations
  per window (``--still-iters``): motion that grows with the iterations is the update's own noise.
* **by frame gap**: the validation photo clips (the held-out photo clips' look, the validation seed), tracked as the
  validation scores track them, and OpenCV's Lucas-Kanade on the same clips. The median error over visible frames,
  grouped by the number of frames since the query, and the share of those errors within 0.5 to 16 pixels.

An error that is already there one frame after the query and on a still video is a precision floor of the tracker;
one that grows with the gap is drift. Errors are in pixels of the clips (``--size``). Example::

    python train/precision_probe.py cotracker_fast/assets/cotracker_fast_small.safetensors \\
        --photo-dir ~/.cache/cotracker_fast/validation_photos --out benchmarks/results/precision-probe.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks._common import cpu_name, git_commit, write_results  # noqa: E402
from cotracker_fast.models.cotracker import CoTracker  # noqa: E402
from cotracker_fast.models.registry import config_with_overrides, model_overrides_from_checkpoint  # noqa: E402
from cotracker_fast.training.data import photo_files  # noqa: E402
from cotracker_fast.training.trainer import VALIDATION_SEED  # noqa: E402

#: Frame-gap buckets ``[lo, hi)`` of the "by frame gap" measurement.
GAPS = ((1, 2), (2, 4), (4, 8), (8, 16), (16, 24))
#: Error thresholds (pixels of the clip) whose shares are reported.
THRESHOLDS = (0.5, 1, 2, 4, 8, 16)


def grid_points(size_hw, n: int = 8, margin: float = 0.125) -> np.ndarray:
    """``(n * n, 2)`` ``(x, y)`` points on a regular grid inside ``size_hw``, ``margin`` of each side left out."""
    h, w = size_hw
    ys, xs = np.meshgrid(np.linspace(margin * h, (1 - margin) * h, n), np.linspace(margin * w, (1 - margin) * w, n),
                         indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)


@torch.no_grad()
def still_video_motion(model, image: np.ndarray, frames: int, resolution, iters=(6,)) -> dict:
    """How far the model moves grid points of a still video: ``{k: (frames, 64) distances}`` in pixels of ``image``
    after ``k`` refinement iterations per window, for each ``k`` of ``iters``.

    Args:
        model: a v1-architecture :class:`CoTracker` in eval mode.
        image: ``(H, W, 3) uint8``, repeated ``frames`` times.
        resolution: ``(h, w)`` the video is resized to (bilinear, as the evaluation protocol).
        iters: refinement iteration counts (the features are computed once for all of them).
    """
    from cotracker_fast.evaluation.protocols import encode_video, multi_point_tracks

    H, W = image.shape[:2]
    rh, rw = resolution
    video = torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None].expand(frames, -1, -1, -1)  # writable copy
    video = F.interpolate(video, (rh, rw), mode="bilinear", align_corners=False)[None]
    fmaps = encode_video(model, video)
    pts = grid_points((H, W))
    q = torch.from_numpy(np.concatenate([np.zeros((len(pts), 1), np.float32), pts * [rw / W, rh / H]], 1)).float()
    out = {}
    for k in iters:
        tracks, _ = multi_point_tracks(model, video, q, iters=k, fmaps=fmaps)
        out[k] = np.linalg.norm(tracks.numpy() * [W / rw, H / rh] - pts[None], axis=-1)
    return out


def errors_by_gap(sample, tracks: np.ndarray) -> dict:
    """Position errors of ``tracks`` ``(T, N, 2)`` on ``sample``'s visible frames after each query, by frame gap:
    ``{"1-2": array, ...}`` (pixels of the sample's frames)."""
    err = np.linalg.norm(tracks - sample.tracks, axis=-1)
    gap = np.arange(sample.visible.shape[0])[:, None] - sample.query_frames[None]
    return {f"{lo}-{hi}": err[sample.visible & (gap >= lo) & (gap < hi)] for lo, hi in GAPS}


def summarise(errors: dict) -> dict:
    """Medians and threshold shares (%) of each bucket of :func:`errors_by_gap`, and of all of them."""
    out = {}
    for name, e in {**errors, "all": np.concatenate(list(errors.values()))}.items():
        out[name] = {"count": int(e.size), "median_px": float(np.median(e)) if e.size else None,
                     "within_px_%": {str(t): float((e < t).mean() * 100) if e.size else None for t in THRESHOLDS}}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights", help="a cotracker_fast_small weights file (.safetensors)")
    p.add_argument("--model-name", default="cotracker_fast_small")
    p.add_argument("--photo-dir", required=True, help="validation photographs (never training or held-out ones)")
    p.add_argument("--num-videos", type=int, default=12, help="validation photo clips for the frame-gap measurement")
    p.add_argument("--size", type=int, nargs=2, default=(256, 320), metavar=("H", "W"))
    p.add_argument("--num-frames", type=int, default=24, help="frames of each validation photo clip")
    p.add_argument("--still-frames", type=int, default=8)
    p.add_argument("--still-iters", type=int, nargs="+", default=[1, 2, 4, 6, 8],
                   help="refinement iteration counts of the still-video measurement")
    p.add_argument("--resolution", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="tracking resolution (default: the model's working resolution)")
    p.add_argument("--out", default=None, help="JSON file for the results (written atomically)")
    args = p.parse_args(argv)
    if args.num_videos < 1 or args.still_frames < 2 or args.num_frames < 2 or min(args.still_iters) < 1:
        raise SystemExit("--num-videos and --still-iters must be >= 1, --still-frames and --num-frames >= 2")

    from PIL import Image
    from tqdm import tqdm

    from cotracker_fast.baselines.lk import track_lk
    from cotracker_fast.evaluation.datasets import read_photo_clips
    from cotracker_fast.evaluation.run import predict_sample
    from cotracker_fast.models.checkpoint import read_state_dict

    photos = photo_files(os.path.expanduser(args.photo_dir))
    if not photos:
        raise SystemExit(f"--photo-dir {args.photo_dir!r} holds no .jpg/.jpeg/.png file")
    cfg = config_with_overrides(args.model_name, model_overrides_from_checkpoint(args.weights))  # a grown model, say
    res = tuple(args.resolution) if args.resolution else tuple(cfg.model_resolution)
    model = CoTracker(cfg)
    model.load_state_dict({k: v.float() for k, v in read_state_dict(args.weights).items()})
    model.eval()
    t0 = time.time()

    still = {}  # photo -> iterations -> the median motion at the query frame and at the last frame
    for path in tqdm(photos, desc="still videos", unit="photo"):
        img = np.asarray(Image.open(path).convert("RGB").resize(tuple(args.size[::-1]), Image.BILINEAR))
        moved = still_video_motion(model, img, args.still_frames, res, tuple(args.still_iters))
        still[os.path.basename(path)] = {str(k): {"query_frame_median_px": float(np.median(d[0])),
                                                  "last_frame_median_px": float(np.median(d[-1]))}
                                         for k, d in moved.items()}
    still_summary = {str(k): {f"{w}_median_px": float(np.median([v[str(k)][f"{w}_median_px"] for v in still.values()]))
                              for w in ("query_frame", "last_frame")} for k in args.still_iters}

    samples = list(read_photo_clips(photos, args.num_videos, num_frames=args.num_frames, size_hw=tuple(args.size),
                                    seed=VALIDATION_SEED))
    model_err, lk_err = {}, {}
    for s in tqdm(samples, desc="photo clips", unit="clip"):
        tracks, _ = predict_sample(model, s, "synthetic", single_point=False, iters=6, resolution=res)
        lk_tracks, _ = track_lk(s.video, s.queries)
        for store, tr in ((model_err, tracks), (lk_err, lk_tracks)):
            for k, v in errors_by_gap(s, tr).items():
                store.setdefault(k, []).append(v)
    model_err = {k: np.concatenate(v) for k, v in model_err.items()}
    lk_err = {k: np.concatenate(v) for k, v in lk_err.items()}

    result = {
        "weights": args.weights, "model_name": args.model_name, "resolution": list(res),
        "photo_dir": args.photo_dir, "clip": {"num_frames": args.num_frames, "size_hw": list(args.size)},
        "validation_seed": VALIDATION_SEED,
        "still": {"frames": args.still_frames, "by_iters": still_summary, "per_photo": still},
        "by_frame_gap": {"num_videos": len(samples), "model": summarise(model_err),
                         "lucas_kanade": summarise(lk_err)},
        "time_s": time.time() - t0, "machine": cpu_name(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), **git_commit(),
    }
    for k, v in still_summary.items():
        print(f"still video, {k} iterations: median motion {v['query_frame_median_px']:.2f} px at the query frame, "
              f"{v['last_frame_median_px']:.2f} px at frame {args.still_frames - 1}")
    for name in [*model_err, "all"]:
        m, lk = result["by_frame_gap"]["model"][name], result["by_frame_gap"]["lucas_kanade"][name]
        if not m["count"]:
            continue
        print(f"frames since query {name:>5}: median error {m['median_px']:.2f} px "
              f"(Lucas-Kanade {lk['median_px']:.2f}), within 1 px {m['within_px_%']['1']:.1f}% "
              f"({lk['within_px_%']['1']:.1f}%)")
    if args.out:
        write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
