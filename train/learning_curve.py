"""The learning curve of a training run: every kept checkpoint (``<run>/step_*.pt`` and ``last.pt``) scored on held-out
clips, so a run's progress has a saved source.

    python train/learning_curve.py runs/ship_small_crops --num-videos 4 \\
        --out benchmarks/results/learning-curve-ship_small_crops.json

Per checkpoint: the training objective (flow loss, the iteration-weighted L1 of every window) on ``--num-videos``
unaugmented clips of the run's own look whose seeds training never uses, beside the run's starting point (the
static zero-initialised head when ``zero_init_coord_head``); and the TAP-Vid "query first" metrics on the first
``--num-videos`` held-out synthetic clips (``read_synthetic``, 24 frames of 192x256), the model at its working
resolution with the multi-point protocol (6 iterations).
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks._common

from benchmarks._common import write_results  # noqa: E402

from cotracker_fast.data.clip import collate_clips
from cotracker_fast.evaluation.datasets import read_synthetic
from cotracker_fast.evaluation.metrics import average_metrics
from cotracker_fast.evaluation.run import evaluate_sample
from cotracker_fast.training.trainer import (TrainConfig, build_dataset, init_model, load_checkpoint_state,
                                             train_step_loss)

#: Seed of the objective's clips (training items use the run's own seed, 0 by default).
OBJECTIVE_SEED = 999
KEYS = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a train/train.py out_dir")
    p.add_argument("--num-videos", type=int, default=4)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    paths = sorted(glob.glob(os.path.join(args.run, "step_*.pt"))) + [os.path.join(args.run, "last.pt")]
    paths = [q for q in paths if os.path.isfile(q)]
    if not paths:
        raise SystemExit(f"no checkpoint in {args.run!r}")
    cfg = TrainConfig(**json.loads(load_checkpoint_state(paths[-1])["config"]))
    clips = build_dataset(cfg, seed=OBJECTIVE_SEED, augment=False)
    batches = [collate_clips([clips[i]]) for i in range(args.num_videos)]
    samples = list(read_synthetic(args.num_videos, num_frames=24, size_hw=(192, 256)))

    def objective(model) -> float:
        with torch.no_grad():
            return float(np.mean([float(train_step_loss(model, b, cfg)[1]["flow_loss"]) for b in batches]))

    torch.manual_seed(cfg.seed)
    rows = [{"step": 0, "flow_loss": objective(init_model(cfg).eval())}]
    seen = set()
    for path in tqdm(paths, desc="checkpoints"):
        state = load_checkpoint_state(path)
        if state["step"] in seen:
            continue
        seen.add(state["step"])
        model = init_model(cfg)
        model.load_state_dict(state["model"])
        model.eval()
        res = tuple(model.config.model_resolution)
        scores = [evaluate_sample(model, s, "synthetic", single_point=False, iters=6, resolution=res) for s in samples]
        avg = average_metrics(scores)
        rows.append({"step": int(state["step"]), "flow_loss": objective(model), **{k: float(avg[k]) for k in KEYS}})
        print(json.dumps(rows[-1]), flush=True)
    result = {"run": os.path.abspath(args.run), "num_videos": args.num_videos, "objective_seed": OBJECTIVE_SEED,
              "heldout": "read_synthetic(num_videos, num_frames=24, size_hw=(192, 256))", "curve": rows,
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__}
    if args.out:
        write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
