"""Calibrate the visibility head of trained weights to the predictor's fixed threshold, on validation clips.

    python train/calibrate_visibility.py runs/ship_small_j/last.pt runs/ship_small_j_calibrated.safetensors \\
        --config train/configs/ship_small_j.json --num-videos 40 \\
        --out benchmarks/results/calibrate-ship_small_j.json

The predictors call a point visible when ``sigmoid(logit) > 0.9`` (the official rule, kept for drop-in parity), while
training fits the visibility head with a plain binary cross-entropy: a head whose probabilities are calibrated is
best thresholded near 0.5, so at 0.9 it calls many visible points occluded. Adding a constant ``b`` to the head's bias
turns the decision into ``sigmoid(logit + b) > 0.9``. In CoTracker v1 the logit is otherwise an output, except that a
window's logits initialise the next window's visibility input, so positions after the first window move slightly
(the sweep records <delta^x_avg beside the other measures). This script scores each ``b`` of ``--biases`` on the
validation clips of a training config (:func:`cotracker_fast.training.trainer.validate`: the config's synthetic mix,
a seed that neither training nor the held-out sets use), keeps the one with the highest average Jaccard (ties: the
smaller ``|b|``), and writes the weights with ``vis_predictor.0.bias`` shifted by it.

The output is a safetensors file (``--dtype``, float16 by default as the shipped weights; written atomically) whose
metadata carries the input's (a training checkpoint's step and config) and the shift; ``--out`` saves the sweep.
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from typing import List, Optional, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks._common
from benchmarks._common import write_results  # noqa: E402
from cotracker_fast.models.checkpoint import read_state_dict, save_safetensors  # noqa: E402
from cotracker_fast.models.cotracker import CoTracker  # noqa: E402
from cotracker_fast.models.registry import model_overrides_from_metadata  # noqa: E402
from cotracker_fast.training.trainer import VALIDATION_SEED, TrainConfig, load_checkpoint_state, validate  # noqa: E402

BIAS_KEY = "vis_predictor.0.bias"
KEYS = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")
DEFAULT_BIASES = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0]


def read_weights(path: str) -> Tuple[dict, dict]:
    """``(state dict, metadata)`` of a training checkpoint (``.pt``: its ``"model"``, step and config) or a weights
    file (a safetensors file's own metadata)."""
    if path.endswith(".pt"):
        ck = load_checkpoint_state(path)
        cfg = json.loads(ck["config"])
        return ck["model"], {"model_name": cfg.get("model", ""), "train_step": ck["step"], "train_config": ck["config"]}
    meta = {}
    if path.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            meta = dict(f.metadata() or {})
    return read_state_dict(path), meta


def recorded_overrides(meta: dict) -> Optional[dict]:
    """The model overrides that a weights file's metadata (from :func:`read_weights`) records: an export's or an
    average's ``model_overrides``, or a training checkpoint's config's; ``None`` when it records none (a file of the
    registered variant)."""
    if "model_overrides" in meta:
        return model_overrides_from_metadata(meta, "the weights file")
    if "train_config" in meta:
        return json.loads(meta["train_config"]).get("model_overrides") or {}
    return None


def config_for_weights(cfg: TrainConfig, meta: dict) -> TrainConfig:
    """``cfg`` with the model overrides the weights record (a deeper update transformer, say), so that the model
    built to score them has their shape; ``cfg`` itself when they record none or the same ones."""
    over = recorded_overrides(meta)
    if over is None or over == cfg.model_overrides:
        return cfg
    return dataclasses.replace(cfg, model_overrides=over)


def sweep(state: dict, cfg: TrainConfig, biases: List[float], num_videos: int, log=print) -> List[dict]:
    """Validation scores of ``state`` with ``b`` added to the visibility bias, one row per ``b``."""
    model = CoTracker(cfg.model_config())
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})  # strict
    model.eval()
    head = model.vis_predictor[0]
    base = head.bias.detach().clone()
    rows = []
    for b in biases:
        with torch.no_grad():
            head.bias.copy_(base + b)
        t0 = time.time()
        scores = validate(model, cfg, torch.device("cpu"), num_videos)
        rows.append({"bias": b, **{k: scores[f"val/{k}"] for k in KEYS}, "time_s": time.time() - t0})
        log(f"b = {b:+.2f}: AJ {100 * rows[-1]['average_jaccard']:.2f}, "
            f"delta_avg {100 * rows[-1]['average_pts_within_thresh']:.2f}, "
            f"OA {100 * rows[-1]['occlusion_accuracy']:.2f}")
    return rows


def best_bias(rows: List[dict]) -> float:
    """The ``b`` with the highest average Jaccard; among equal ones the smallest ``|b|``."""
    return max(rows, key=lambda r: (r["average_jaccard"], -abs(r["bias"])))["bias"]


def shifted(state: dict, b: float) -> dict:
    """``state`` with ``b`` added to the visibility head's bias (in the bias's own dtype)."""
    if BIAS_KEY not in state:
        raise KeyError(f"{BIAS_KEY!r} not in the weights: not a CoTracker v1 state dict")
    out = dict(state)
    bias = state[BIAS_KEY]
    out[BIAS_KEY] = (bias.double() + b).to(bias.dtype)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", help="weights file or training checkpoint (.pt)")
    p.add_argument("output", help="calibrated weights (.safetensors)")
    p.add_argument("--config", required=True, help="the training config whose validation clips decide")
    p.add_argument("--num-videos", type=int, default=40)
    p.add_argument("--biases", type=float, nargs="+", default=DEFAULT_BIASES,
                   help="candidate shifts of the visibility logit (default: %(default)s)")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--out", default=None, help="JSON file for the sweep (written atomically)")
    args = p.parse_args(argv)
    if args.num_videos < 1:
        p.error(f"--num-videos must be >= 1, got {args.num_videos}")
    if not args.output.endswith(".safetensors"):
        p.error(f"output must be a .safetensors file, got {args.output!r}")
    cfg = TrainConfig.from_json(args.config)
    state, meta = read_weights(args.weights)
    rows = sweep(state, config_for_weights(cfg, meta), args.biases, args.num_videos)
    b = best_bias(rows)
    print(f"best by validation average Jaccard: b = {b:+.2f}")
    dtype = getattr(torch, args.dtype)
    out = {k: v.to(dtype) if v.is_floating_point() else v for k, v in shifted(state, b).items()}
    save_safetensors(out, args.output, metadata={**meta, "visibility_bias_shift": b,
                                                 "visibility_calibration": f"{args.config}, {args.num_videos} clips"})
    print(f"wrote {args.output} ({args.dtype})")
    if args.out:
        write_results(args.out, {"weights": args.weights, "output": args.output, "config": args.config,
                                 "num_videos": args.num_videos, "validation_seed": VALIDATION_SEED, "sweep": rows,
                                 "bias": b, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
