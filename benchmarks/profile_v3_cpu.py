"""Where CoTracker3's time goes on this CPU: the model's labelled regions (encoder, 4D correlation, correlation MLP,
transformer) under ``torch.profiler``, beside the FLOP estimates of :func:`benchmarks.baselines.flops.cotracker3_breakdown`.

    python -m benchmarks.profile_v3_cpu --frames 24 --points 256 [--save]

Random weights (time does not depend on them), T frames at 384x512, N queries plus the 6x6 support grid, 6
iterations, fp32, the offline model (one window) and the online model (whole-video mode, 16-frame windows).
``--save`` writes ``benchmarks/results/v3-profile-<cpu>-<date>.json``.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from benchmarks._common import save_cpu_suite
from benchmarks.baselines.flops import cotracker3_breakdown

H, W = 384, 512
REGIONS = ("cotracker3.encoder", "cotracker3.corr4d", "cotracker3.corr_mlp", "cotracker3.updateformer")


def profile(model_name: str, T: int, N: int, iters: int = 6) -> dict:
    from benchmarks.v3_memory import random_v3_case

    model, preset, video, queries = random_v3_case(model_name, T, N)
    M = N + 36
    with torch.no_grad():
        model(video[:, :2], queries[:, :8], iters=1)  # warm-up
        t0 = time.perf_counter()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model(video, queries, iters=iters)
        total = time.perf_counter() - t0
    spent = {e.key: e.cpu_time_total / 1e6 for e in prof.key_averages() if e.key in REGIONS}
    est = cotracker3_breakdown(T, M, H, W, iters=iters, window=None if preset["offline"] else preset["window_len"])
    return {"model": model_name, "T": T, "N": N, "iters": iters, "total_s": total,
            "regions_s": {k.split(".")[1]: spent.get(k, 0.0) for k in REGIONS},
            "flops_estimate": {k: est[k] for k in ("encoder", "corr_volume", "corr_mlp", "transformer", "total")},
            "corr_bytes_per_iter": {"reference": est["corr_bytes_reference_per_iter"],
                                    "fused": est["corr_bytes_fused_per_iter"]}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--points", type=int, nargs="+", default=[256])
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for name in ("cotracker3_offline", "cotracker3_online"):
        for N in args.points:
            r = profile(name, args.frames, N)
            regions = ", ".join(f"{k} {v:.1f} s" for k, v in r["regions_s"].items())
            print(f"{name} T={args.frames} N={N}: {r['total_s']:.1f} s ({regions}); "
                  f"estimated {r['flops_estimate']['total'] / 1e12:.2f} TFLOP")
            rows.append(r)
    if args.save:
        print(f"written to {save_cpu_suite('v3-profile', rows, dict(H=H, W=W, support_grid=36))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
