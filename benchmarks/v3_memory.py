"""Peak host memory of CoTracker3 offline and online against the video length, on the CPU.

    python -m benchmarks.v3_memory --frames 24 48 96 --points 256 [--save]

The offline model runs with the default encoder chunk (16 frames) and with the official 200 frames. Each (model,
chunk, T) runs in a fresh process: random weights (memory does not depend on them), T frames at 384x512,
N queries at frame 0 plus the 6x6 support grid, one iteration (the working set of one iteration is what later ones
reuse), through the predictors' model calls: the offline model in one window over the clip, the online model
streamed in 16-frame chunks every 8 frames. Reported: the process's peak resident memory (``ru_maxrss``) minus its
resident memory after the model and the video were built, so the video itself (T x 384 x 512 x 3 float32) is not
counted. ``--save`` writes ``benchmarks/results/v3-memory-<cpu>-<date>.json`` with the CPU, threads, versions and
commit.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from benchmarks._common import save_cpu_suite

H, W = 384, 512


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def random_v3_case(model_name: str, T: int, N: int):
    """A CoTracker3 model with random (seeded) weights, in eval mode, its preset, a random ``(1, T, 3, 384, 512)``
    video and ``(1, N + 36, 3)`` queries at frame 0 (N points plus the 6x6 support grid's count)."""
    from cotracker_fast.models.registry import V3_MODELS, create_v3_model

    torch.manual_seed(0)
    preset = V3_MODELS[model_name]
    model = create_v3_model(bool(preset["offline"]), int(preset["window_len"])).eval()
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, T, 3, H, W, generator=g) * 255
    xy = torch.rand(N + 36, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])
    return model, preset, video, torch.cat([torch.zeros(N + 36, 1), xy], 1)[None]


def _child(model_name: str, T: int, N: int, chunk: int) -> dict:
    model, preset, video, queries = random_v3_case(model_name, T, N)
    base = _rss_mib()
    t0 = time.perf_counter()
    with torch.no_grad():
        if preset["offline"]:
            model(video, queries, iters=1, fmaps_chunk_size=chunk or None)
        else:
            model.init_video_online_processing()
            for i in range(0, max(T - 8, 1), 8):
                model(video[:, i : i + 16], queries, iters=1, is_online=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    return dict(model=model_name, T=T, N=N, encoder_chunk=chunk or "default", peak_mib=peak - base,
                time_s=time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[24, 48, 96])
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--save", action="store_true")
    ap.add_argument("--child", nargs=4, metavar=("MODEL", "T", "N", "CHUNK"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child[0], int(args.child[1]), int(args.child[2]), int(args.child[3]))))
        return 0
    rows = []
    # the offline model with our encoder chunk and with the official 200 frames; the online model streams
    for name, chunk in (("cotracker3_offline", 0), ("cotracker3_offline", 200), ("cotracker3_online", 0)):
        for T in args.frames:
            out = subprocess.run([sys.executable, "-m", "benchmarks.v3_memory", "--child", name, str(T),
                                  str(args.points), str(chunk)], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name:20s} chunk {row['encoder_chunk']!s:7s} T={T:4d} N={args.points}: peak "
                  f"{row['peak_mib']:.0f} MiB, {row['time_s']:.1f} s")
            rows.append(row)
    if args.save:
        print(f"written to {save_cpu_suite('v3-memory', rows, dict(H=H, W=W, iters=1, support_grid=36))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
