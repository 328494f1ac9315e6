"""Train CoTracker: ``python train/train.py --config train/configs/tiny_cpu.json`` on one device, or
``torchrun --nproc_per_node K train/train.py --config ...`` on K (NCCL on GPUs, gloo on CPU).

``--set key=value`` overrides a config field (JSON values: ``--set num_steps=100 --set size_hw=[96,128]``).
A run resumes from ``<out_dir>/last.pt`` when it exists (``--no-resume`` starts over, refusing to overwrite).
"""
import argparse
import json
import os
import sys

from cotracker_fast.training import TrainConfig, train


def _parse_set(items):
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare string
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="JSON file of TrainConfig fields")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if last.pt exists")
    args = p.parse_args(argv)
    cfg = TrainConfig.from_json(args.config, **_parse_set(args.set))
    last = os.path.join(cfg.out_dir, "last.pt")
    if args.no_resume and os.path.exists(last):
        raise SystemExit(f"{last} exists; remove it or drop --no-resume to continue that run")
    result = train(cfg, device=args.device, resume=not args.no_resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"step": result["step"], "out_dir": result["out_dir"],
                          "last_loss": result["losses"][-1] if result["losses"] else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
