"""Training throughput: optimiser steps per second, clips per second and supervised point-frames per second of a
training recipe, in fp32 and under bf16 autocast, with the data rendered outside the timed region.

    python -m benchmarks.train_throughput [--recipe before after] [--steps 4] [--bf16-steps 1] [--out FILE]

Recipes:

* ``before``: the recipe of the first shipped weights (``train/configs/ship_small_cpu.json``: 16 frames of 96x128,
  48 tracks) with the model it trained (a 256-wide 3+3-block transformer with the absolute position embedding) and
  the local correlation op;
* ``after``: ``train/configs/ship_small_crops_stage2.json`` (12 frames of 96x128 crops, 256 tracks, augmentations
  scaled to the crop, the 128-wide 2+2-block model without position embedding, the dense correlation op, which is
  faster on small feature maps), started from a fresh initialisation here (the weights do not change the speed);
* ``shipped``: ``train/configs/ship_small_f_rawflow.json``, the clips and model of the shipped weights' last stages
  (F, and G, which differs only in its start, schedule and bf16 autocast: 12 frames of 96x128, 128 tracks, the
  raw-flow small model), also from a fresh initialisation;
* ``current`` and ``current_large``: the recipe of the latest stages (``train/configs/ship_small_ae.json``: 12 frames,
  128 tracks, 8 refinement iterations per window), on its 192x256 clips and on its 384x512 clips (each drawn for half
  of the steps), from a fresh initialisation;
* ``deep`` and ``deep_large``: the same clips with the 4 + 4-block model of the shipped average's stages
  (``train/configs/ship_small_an.json``), from a fresh initialisation.

Each case builds the model, renders ``warmup + steps`` clips first (the data time is reported separately: in
training a worker process renders them), runs ``warmup`` untimed steps (oneDNN primitive creation), then times
``steps`` full steps (forward through every window, backward, AdamW). torch uses every core
(``torch.get_num_threads()``). The result (machine, CPU flags that matter for bf16, versions, commit, every figure)
is written atomically to ``--out`` (default ``benchmarks/results/train-throughput-<cpu>-<date>.json``).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import re
import statistics
import sys
import time
from typing import Any, Dict, List

import torch

from benchmarks._common import RESULTS_DIR, ROOT, cpu_name, git_commit, write_results
from cotracker_fast.data.clip import collate_clips
from cotracker_fast.training.trainer import TrainConfig, build_dataset, init_model, train_step_loss

#: The model the "before" recipe trained (the registry's small variant has changed since).
BEFORE_MODEL = {"hidden_size": 256, "num_heads": 8, "time_depth": 3, "space_depth": 3, "pos_embed": True,
                "model_resolution": [96, 128]}


RECIPES = ("before", "after", "shipped", "current", "current_large", "deep", "deep_large")


def recipe(name: str) -> TrainConfig:
    """The :class:`TrainConfig` of a named recipe (see the module docstring)."""
    if name == "before":
        return TrainConfig.from_json(os.path.join(ROOT, "train", "configs", "ship_small_cpu.json"),
                                     model_overrides=BEFORE_MODEL, num_workers=0)
    if name == "after":
        return TrainConfig.from_json(os.path.join(ROOT, "train", "configs", "ship_small_crops_stage2.json"),
                                     num_workers=0, init_weights=None)
    if name == "shipped":
        return TrainConfig.from_json(os.path.join(ROOT, "train", "configs", "ship_small_f_rawflow.json"),
                                     num_workers=0, init_weights=None)
    if name in ("current", "current_large", "deep", "deep_large"):
        config = "ship_small_ae.json" if name.startswith("current") else "ship_small_an.json"
        cfg = TrainConfig.from_json(os.path.join(ROOT, "train", "configs", config), num_workers=0,
                                    init_weights=None)
        # One clip size per case: the recipe's own (size_hw), or the other one its size_mix draws for half of the
        # steps; keeping size_mix would mix 384x512 steps into the 192x256 case.
        if not name.endswith("_large"):
            return dataclasses.replace(cfg, size_mix=[])
        large = cfg.size_mix[0]
        return dataclasses.replace(cfg, size_hw=tuple(large["size_hw"]), size_mix=[],
                                   augment_overrides=large["augment_overrides"])
    raise ValueError(f"recipe must be one of {RECIPES}, got {name!r}")


def cpu_flags() -> List[str]:
    """The CPU flags that decide low-precision matmul speed (avx512_bf16, amx_bf16, avx512f, avx2), from
    /proc/cpuinfo; empty where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return []
    m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    have = set(m.group(1).split()) if m else set()
    return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in have]


def cpu_run_info() -> Dict[str, Any]:
    """``date``, ``machine`` (CPU, cores, the flags of :func:`cpu_flags`, threads, versions) and the commit fields of
    a CPU result file."""
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "cpu_flags": cpu_flags(),
                    "threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        **git_commit(),
    }


def write_cpu_result(suite: str, cases: List[Dict[str, Any]], out: str, **fields: Any) -> str:
    """Write ``{"suite", date, machine, commit, **fields, "cases"}`` (:func:`cpu_run_info`) atomically to ``out``,
    say where, and return ``out``."""
    write_results(out, {"suite": suite, **cpu_run_info(), **fields, "cases": cases})
    print(f"-> {out}")
    return out


def default_result_path(prefix: str) -> str:
    """``benchmarks/results/<prefix>-<cpu>-<date>.json``."""
    slug = re.sub(r"[^a-z0-9]+", "-", cpu_name().lower()).strip("-")[:40]
    return os.path.join(RESULTS_DIR, f"{prefix}-{slug}-{datetime.date.today().isoformat()}.json")


def measure(cfg: TrainConfig, amp: str, warmup: int, steps: int) -> Dict[str, Any]:
    """Time ``steps`` training steps of ``cfg`` with ``amp`` ("none" or "bf16") after ``warmup`` untimed ones."""
    cfg = TrainConfig(**{**cfg.__dict__, "amp": amp})
    torch.manual_seed(0)
    model = init_model(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    ds = build_dataset(cfg)
    n = (warmup + steps) * cfg.batch_size
    t0 = time.perf_counter()
    items = [ds[i] for i in range(n)]
    data_s = (time.perf_counter() - t0) / n
    times = []
    for s in range(warmup + steps):
        batch = collate_clips(items[s * cfg.batch_size:(s + 1) * cfg.batch_size])
        t0 = time.perf_counter()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if amp == "bf16" else torch.autocast("cpu", enabled=False)
        with ctx:
            loss, _ = train_step_loss(model, batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if s >= warmup:
            times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    return {
        "amp": amp, "warmup_steps": warmup, "timed_steps": steps, "step_times_s": times,
        "step_s_median": step_s, "steps_per_s": 1.0 / step_s, "clips_per_s": cfg.batch_size / step_s,
        "point_frames_per_s": cfg.batch_size * cfg.num_points * cfg.num_frames / step_s,
        "data_s_per_clip": data_s,
        "setup": {"num_frames": cfg.num_frames, "size_hw": list(cfg.size_hw), "num_points": cfg.num_points,
                  "batch_size": cfg.batch_size, "train_iters": cfg.train_iters, "backend": cfg.backend,
                  "model": cfg.model, "model_overrides": cfg.model_overrides,
                  "parameters": sum(p.numel() for p in model.parameters())},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", nargs="+", default=["before", "after"], choices=list(RECIPES))
    p.add_argument("--steps", type=int, default=4, help="timed fp32 steps per recipe")
    p.add_argument("--bf16-steps", type=int, default=1, help="timed bf16 steps per recipe (0: skip bf16)")
    p.add_argument("--warmup", type=int, default=1, help="untimed fp32 steps first")
    p.add_argument("--bf16-warmup", type=int, default=0,
                   help="untimed bf16 steps first (0 by default: a bf16 step takes minutes on CPUs without bf16 units)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    cases = []
    for name in args.recipe:
        cfg = recipe(name)
        for amp, steps, warm in (("none", args.steps, args.warmup), ("bf16", args.bf16_steps, args.bf16_warmup)):
            if steps <= 0:
                continue
            r = measure(cfg, amp, warm, steps)
            r["recipe"] = name
            cases.append(r)
            print(f"{name:6s} amp={amp:4s}: {r['step_s_median']:7.2f} s/step  {r['clips_per_s']:.3f} clips/s  "
                  f"{r['point_frames_per_s']:8.0f} point-frames/s  (data {r['data_s_per_clip']:.2f} s/clip)",
                  flush=True)
    write_cpu_result("train_throughput", cases, args.out or default_result_path("train-throughput"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
