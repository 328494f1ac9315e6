"""How much a training config's clips are really enlarged: the scale drawn against the scale of the clips kept.

    python train/augment_scales.py train/configs/ship_small_af.json --items 40 --pool-factor 12 \\
        --out benchmarks/results/augment-scales-ship_small_af-pool12.json

A synthetic clip is rendered with ``pool_factor * num_points`` tracks, augmented (its frames padded, scaled by a
factor drawn from ``scale_range``, and cropped), and kept only if ``num_points`` tracks are visible in the crop;
otherwise it is rendered and augmented again (:class:`cotracker_fast.data.synthetic.SyntheticTracks`). A crop of a
clip enlarged ``s`` times holds about ``1 / s^2`` of its tracks, so with a small pool the large scales are redrawn
more often than the small ones, and the clips trained on are enlarged less than ``scale_range`` says. This script
renders the config's first ``--items`` clips at its ``size_hw`` (no ``size_mix``) and reports the frame-0 scale of
every augmentation drawn and of those kept, the renders per clip and the clips that failed every retry. Nothing
trains; the training data of the config is unchanged by running it.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks._common

from benchmarks._common import write_results  # noqa: E402

from cotracker_fast.data.augment import Augmentations  # noqa: E402
from cotracker_fast.training.data import build_dataset  # noqa: E402
from cotracker_fast.training.trainer import TrainConfig  # noqa: E402


def measure(cfg: TrainConfig, items: int) -> dict:
    """Render ``items`` clips of ``cfg`` and return the drawn and kept frame-0 scales (see the module docstring)."""
    drawn = []
    spatial = Augmentations.spatial_params

    def recording(self, clip, rng=None):
        params = spatial(self, clip, rng)
        padded_h = clip.size_hw[0] + params["pad"][1] + params["pad"][3]
        drawn.append(float(params["size"][0, 0]) / padded_h)
        return params

    kept, failed = [], 0
    ds = build_dataset(cfg)
    Augmentations.spatial_params = recording
    try:
        for i in range(items):
            try:
                ds[i]
                kept.append(drawn[-1])  # the last augmentation drawn for an item is the one kept
            except RuntimeError:
                failed += 1
    finally:
        Augmentations.spatial_params = spatial

    def summary(v):
        a = np.asarray(v, np.float64)
        return {"mean": float(a.mean()), "median": float(np.median(a)), "fraction_above_1_5": float((a > 1.5).mean())}

    return {"items": items, "renders": len(drawn), "failed_items": failed, "drawn_scale": summary(drawn),
            "kept_scale": summary(kept) if kept else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a training config with data 'synthetic' and augment on")
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--pool-factor", type=int, default=None, help="override the config's pool_factor")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.items < 1:
        raise SystemExit("--items must be >= 1")
    over = {"num_workers": 0, "init_weights": None, "size_mix": []}
    if args.pool_factor is not None:
        over["pool_factor"] = args.pool_factor
    cfg = TrainConfig.from_json(args.config, **over)
    if cfg.data != "synthetic" or not cfg.augment:
        raise SystemExit(f"{args.config}: needs data 'synthetic' with augment on")
    t0 = time.time()
    res = {"config": args.config, "pool_factor": cfg.pool_factor, "size_hw": list(cfg.size_hw),
           "scale_range": list(cfg.augmentations(None).scale_range), **measure(cfg, args.items),
           "time_s": time.time() - t0}
    d, k = res["drawn_scale"], res["kept_scale"]
    print(f"{args.config} pool_factor {cfg.pool_factor}: {res['renders']} renders for {args.items} clips, "
          f"{res['failed_items']} failed; drawn scale mean {d['mean']:.2f}"
          + (f", kept {k['mean']:.2f}" if k else ""))
    if args.out:
        write_results(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
