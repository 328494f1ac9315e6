"""Export a training checkpoint's model as fp16 safetensors (the format of the shipped weights).

    python train/export_weights.py runs/ship_small_cpu/last.pt cotracker_fast/assets/cotracker_fast_small.safetensors
"""
import argparse
import json
import sys

import torch

from cotracker_fast.models.checkpoint import save_safetensors
from cotracker_fast.models.cotracker import CoTracker
from cotracker_fast.training.trainer import TrainConfig, load_checkpoint_state


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a train/train.py checkpoint (last.pt)")
    p.add_argument("out", help="the .safetensors file to write (atomically)")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    args = p.parse_args(argv)
    state = load_checkpoint_state(args.checkpoint)
    cfg = TrainConfig(**json.loads(state["config"]))
    model = CoTracker(cfg.model_config())
    model.load_state_dict(state["model"])  # strict: the checkpoint matches its own config
    dtype = getattr(torch, args.dtype)
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    metadata = {"model_name": cfg.model, "train_step": state["step"], "train_config": state["config"]}
    note = ""
    if cfg.model_overrides:  # not the registered variant: the predictors and build_cotracker build the model from these
        metadata["model_overrides"] = json.dumps(cfg.model_overrides)
        note = f" with model_overrides {cfg.model_overrides} (recorded: the predictors build that model from it)"
    save_safetensors(sd, args.out, metadata=metadata)
    print(f"{args.out}: {cfg.model} at step {state['step']}, {args.dtype}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
