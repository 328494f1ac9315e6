"""``make demo``: track a clip made from a real photograph moved by a known motion, print the error against the
ground truth beside two baselines (OpenCV Lucas-Kanade, and points that stay where they were), and write an overlay
video and one overlay frame as a picture.

Without ``--checkpoint`` it uses the weights shipped with the package (``cotracker_fast_small``, trained on
procedural clips on a CPU; docs/ACCURACY.md); ``--checkpoint cotracker_stride_4_wind_8.pth`` runs the official v1
weights.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import time
from typing import Dict

import numpy as np

from .cli import track_video, write_overlay
from .demo_clip import make_demo_clip, tracking_error
from .io import VideoReader, VideoWriter, atomic_output, save_tracks
from .models.registry import SHIPPED_MODEL, SHIPPED_WEIGHTS


#: The demo clip: frame size (H, W) and the seed of its motion and query points.
DEMO_SIZE_HW = (384, 512)
DEMO_SEED = 0


def _row(name: str, err: Dict[str, float]) -> str:
    return (f"  {name:<34} mean {err['epe_mean']:6.2f} px   median {err['epe_median']:6.2f} px   "
            f"delta_avg {100 * err['delta_avg']:5.1f}%")


def _static_tracks(queries: np.ndarray, num_frames: int) -> np.ndarray:
    """Every point stays at its query position: ``(T, N, 2)``."""
    return np.broadcast_to(queries[None, :, 1:3], (num_frames, len(queries), 2)).astype(np.float32)


def _cpu_model() -> str:
    """The CPU's model name with its family and model numbers where /proc/cpuinfo gives them (cloud CPUs report
    bare brands that hide their generation), else ``platform.processor()``."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json_figures(err):
    """``tracking_error``'s dict for JSON: the count stays an int, a non-finite figure becomes ``None``."""
    if err is None:
        return None
    return {k: (int(v) if k == "num_evaluated" else float(v) if np.isfinite(v) else None) for k, v in err.items()}


def save_results(path: str, record: dict) -> None:
    """Write the demo's figures (a JSON object) to ``path`` atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(record, f, indent=2, allow_nan=False)
            f.write("\n")


def save_picture(frame: np.ndarray, path: str) -> None:
    """Write one ``(H, W, 3) uint8`` RGB frame as an image file (format from the extension), atomically."""
    import imageio.v3 as iio

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    ext = os.path.splitext(path)[1]
    with atomic_output(path) as tmp:
        iio.imwrite(tmp, frame, extension=ext)


def main(argv=None) -> int:
    """Entry point of ``make demo`` (``python -m cotracker_fast.demo``); returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out-dir", default="demo_out")
    p.add_argument("--checkpoint", default=None,
                   help="official cotracker_stride_4_wind_8.pth (or other variant); default: the shipped weights")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--device", default=None)
    p.add_argument("--figure", default=None,
                   help="where to save the last overlay frame (with trails) as a picture; default "
                        "<out-dir>/overlay_frame.png")
    p.add_argument("--results", default=None,
                   help="where to save the error table as JSON (with the weights' sha256, the machine and the "
                        "date); default <out-dir>/errors.json")
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)

    clip = make_demo_clip(num_frames=args.frames, size_hw=DEMO_SIZE_HW, seed=DEMO_SEED)
    clip_path = os.path.join(args.out_dir, "clip.mp4")
    with VideoWriter(clip_path, fps=clip.fps) as w:
        for f in clip.frames:
            w.write(f)
    print(f"demo clip: {clip.description}")
    print(f"           {clip.frames.shape[0]} frames {clip.frames.shape[2]}x{clip.frames.shape[1]}, "
          f"{len(clip.queries)} query points -> {clip_path}")
    weights = os.path.basename(args.checkpoint) if args.checkpoint else f"shipped {SHIPPED_MODEL}"
    if args.checkpoint is None:
        print(f"weights: the ones shipped with cotracker_fast ({SHIPPED_MODEL}, trained on procedural clips on a "
              "CPU; docs/ACCURACY.md)")

    t0 = time.time()
    result = track_video(clip_path, checkpoint=args.checkpoint, queries=clip.queries, device=args.device)
    elapsed = time.time() - t0
    save_tracks(os.path.join(args.out_dir, "tracks.npz"), result.tracks, result.visibility,
                queries=result.queries, fps=result.fps)
    overlay = os.path.join(args.out_dir, "overlay.mp4")
    last = write_overlay(clip_path, result, overlay)
    figure = args.figure or os.path.join(args.out_dir, "overlay_frame.png")
    if last is not None:
        save_picture(last, figure)

    T, N = result.visibility.shape
    print(f"tracked {N} points through {T} frames in {elapsed:.1f} s")
    q = clip.queries[:, 0]
    print("error vs ground truth (visible frames after each query; the trackers read the same encoded video):")
    errors = {f"cotracker_fast ({weights})": tracking_error(result.tracks, clip.gt_tracks, clip.gt_visible,
                                                            query_frames=q)}
    print(_row(f"cotracker_fast ({weights})", errors[f"cotracker_fast ({weights})"]))
    from .baselines import lk_available

    if lk_available():
        from .baselines.lk import track_lk

        with VideoReader(clip_path) as reader:
            decoded = np.stack(list(reader))
        lk_tracks, _ = track_lk(decoded, clip.queries)
        errors["Lucas-Kanade (OpenCV)"] = tracking_error(lk_tracks, clip.gt_tracks, clip.gt_visible, query_frames=q)
        print(_row("Lucas-Kanade (OpenCV)", errors["Lucas-Kanade (OpenCV)"]))
    else:
        errors["Lucas-Kanade (OpenCV)"] = None
        print("  Lucas-Kanade (OpenCV)              skipped: OpenCV is not installed "
              "(pip install 'cotracker_fast[lk]')")
    errors["points stay where they were"] = tracking_error(_static_tracks(clip.queries, T), clip.gt_tracks,
                                                           clip.gt_visible, query_frames=q)
    print(_row("points stay where they were", errors["points stay where they were"]))
    if args.checkpoint is None:
        print("(for the official v1 weights: `make demo CHECKPOINT=path/to/cotracker_stride_4_wind_8.pth`)")
    results = args.results or os.path.join(args.out_dir, "errors.json")
    import torch

    weights_file = args.checkpoint or SHIPPED_WEIGHTS
    save_results(results, {
        "clip": {"description": clip.description, "frames": int(T), "size_hw": list(DEMO_SIZE_HW), "points": int(N),
                 "seed": DEMO_SEED},
        "weights": {"name": weights, "file": os.path.basename(weights_file), "sha256": _sha256(weights_file)},
        # per tracker: tracking_error's figures (epe_* in pixels, frac_within_* and delta_avg as fractions, the
        # count of scored (frame, point) pairs); None for a tracker that was skipped
        "errors": {name: _json_figures(err) for name, err in errors.items()},
        "machine": {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "device": str(torch.device(args.device)) if args.device else "cpu",
                    **({"gpu": torch.cuda.get_device_name(torch.device(args.device))}
                       if args.device and torch.device(args.device).type == "cuda" else {})},
        "track_video_s": round(elapsed, 2),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    print(f"overlay -> {overlay}; last frame -> {figure}; errors -> {results}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
