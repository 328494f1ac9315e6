"""How far the predictor's bf16 path moves candidate weights' tracks from float32, on validation clips.

    python train/bf16_check.py --config train/configs/ship_small_p.json --num-videos 8 \\
        runs/ship_small_ab_calibrated.safetensors --out benchmarks/results/bf16-check-ship_small_ab.json

The stated bound of the bf16 path (README, docs/PERFORMANCE.md: mean <= 0.1 px, p99 <= 1 px, visibility agreement
>= 99%; ``benchmarks.bf16_accuracy.BOUND``) holds for some weights and not for others: how strongly a network
amplifies bf16 rounding depends on its weights, so a new stage can break it. ``benchmarks.bf16_accuracy`` measures
it on the demo clip, which no choice of weights may look at; this script measures the same quantity on validation
clips instead (those of :func:`cotracker_fast.training.trainer.validation_clip_scores`: the config's own synthetic
mix and seed, at the clips' own size), which a choice may use, and which are harder: occluders cross the points and
points leave the frame.

Each candidate is run through :class:`cotracker_fast.predictor.CoTrackerPredictor` (the config's model variant,
``backend="auto"``, 6 iterations) on every clip's queries (``(t, x, y)`` at each track's query frame) once in float32
and once with ``dtype=torch.bfloat16``; on a CPU without native bf16 the bf16 path is forced (emulated bf16 rounds as
native bf16 does, only slower). The distances in pixels between the two track sets, pooled over the point-frames
where the ground truth sees the point in every clip, give the mean, median, p99 and max the verdict reads;
visibility agreement is the fraction of equal flags there. Where a point is hidden or outside the frame its track
has no target to agree on, so the figures over every point-frame are reported separately (``all_point_frames``) and
do not decide.
"""
import argparse
import contextlib
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks

from benchmarks._common import write_results  # noqa: E402
from benchmarks.bf16_accuracy import BOUND, _force_native_bf16, deviation  # noqa: E402

from cotracker_fast import precision
from cotracker_fast.training.trainer import VALIDATION_SEED, TrainConfig, validation_config


def within_bound(row: dict) -> bool:
    """Whether a deviation row (``mean_px``, ``p99_px``, ``visibility_agreement``) meets :data:`BOUND`."""
    return (row["mean_px"] <= BOUND["mean_px"] and row["p99_px"] <= BOUND["p99_px"]
            and row["visibility_agreement"] >= BOUND["visibility_agreement"])


def validation_inputs(cfg: TrainConfig, num_videos: int) -> list:
    """The config's validation clips as ``[(video (1, T, 3, H, W) float 0..255, queries (1, N, 3) (t, x, y),
    visible (1, T, N) bool ground truth)]``."""
    from cotracker_fast.evaluation.datasets import read_synthetic

    out = []
    for s in read_synthetic(num_videos, num_frames=cfg.num_frames, size_hw=cfg.size_hw, seed=VALIDATION_SEED,
                            config=validation_config(cfg)):
        video = torch.from_numpy(s.video).permute(0, 3, 1, 2)[None].float()
        queries = torch.as_tensor(s.extra["queries"], dtype=torch.float32)[None]  # the clip's own (t, x, y)
        out.append((video, queries, torch.from_numpy(s.visible)[None]))
    return out


def check(path: str, cfg: TrainConfig, inputs: list) -> dict:
    """One candidate's pooled bf16-against-float32 deviation over ``inputs`` (:func:`validation_inputs`)."""
    from cotracker_fast.predictor import CoTrackerPredictor

    p = CoTrackerPredictor(path, model_name=cfg.model, backend="auto", iters=6)
    ref_t, ref_v, t, v, seen = [], [], [], [], []
    t0 = time.time()
    for video, queries, visible in inputs:
        with torch.no_grad():
            p.dtype = torch.float32
            a, va = p(video, queries)
            p.dtype = torch.bfloat16
            with contextlib.ExitStack() as stack:
                if not precision.cpu_has_native_bf16():  # emulated bf16 rounds as native bf16 does
                    stack.enter_context(_force_native_bf16())
                b, vb = p(video, queries)
        ref_t.append(a.flatten(1, 2))
        ref_v.append(va.flatten(1, 2))
        t.append(b.flatten(1, 2))
        v.append(vb.flatten(1, 2))
        seen.append(visible.flatten(1, 2))
    # pooled over clips: (1, sum of T*N, 2) track sets, (1, sum of T*N) flags
    t, v, ref_t, ref_v, seen = (torch.cat(x, 1) for x in (t, v, ref_t, ref_v, seen))
    m = seen[0]
    row = {"candidate": path, **deviation(t[:, m], v[:, m], ref_t[:, m], ref_v[:, m]), "point_frames": int(m.sum()),
           "all_point_frames": {**deviation(t, v, ref_t, ref_v), "point_frames": int(m.numel())},
           "time_s": time.time() - t0}
    row["within_bound"] = within_bound(row)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidates", nargs="+", help="weights files of the config's model variant")
    ap.add_argument("--config", required=True, help="the training config whose validation clips are used")
    ap.add_argument("--num-videos", type=int, default=8)
    ap.add_argument("--out", default=None, help="save the rows as JSON")
    args = ap.parse_args(argv)
    if args.num_videos < 1:
        raise SystemExit("--num-videos must be >= 1")
    for path in args.candidates:
        if not os.path.isfile(path):
            raise SystemExit(f"candidate {path!r} is not a file")
    cfg = TrainConfig.from_json(args.config)
    inputs = validation_inputs(cfg, args.num_videos)
    rows = []
    for path in args.candidates:
        rows.append(check(path, cfg, inputs))
        r = rows[-1]
        a = r["all_point_frames"]
        print(f"{path}: visible point-frames: mean {r['mean_px']:.3f} px, median {r['median_px']:.3f}, "
              f"p99 {r['p99_px']:.3f}, max {r['max_px']:.2f}, visibility {100 * r['visibility_agreement']:.2f}% "
              f"({'within' if r['within_bound'] else 'outside'} the bound); every point-frame: mean "
              f"{a['mean_px']:.3f}, p99 {a['p99_px']:.3f} ({r['time_s']:.0f} s)", flush=True)
    if args.out:
        write_results(args.out, {"config": args.config, "num_videos": args.num_videos,
                                 "validation_seed": VALIDATION_SEED,
                                 "size_hw": list(cfg.size_hw), "num_frames": cfg.num_frames, "bound": BOUND,
                                 "native_bf16": precision.cpu_has_native_bf16(), "candidates": rows,
                                 "date": time.strftime("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
