"""CPU end to end at full size: the reference maths against the fp32 fast path and bf16 (``@pytest.mark.cpu_e2e``).

The CoTracker v1 predictor (official architecture, random weights: speed does not depend on them), and CoTracker3's
offline and online predictors beside it, on T = 24 frames at 384x512 with N in 256 and 1024 queries, half at frame 0
and half on random frames of the first half, 6 iterations, the official support grid added, the same inputs for
every method. Methods:

* ``reference``: ``backend="reference"`` in fp32 (the official maths: dense correlation, explicit attention);
* ``fast-fp32``: ``backend="auto"`` in fp32 (the Python API's default);
* ``fast-bf16``: ``backend="auto"`` with ``dtype=torch.bfloat16``; on a CPU without native bf16 the predictor runs
  float32 instead, so the case is skipped with that reason rather than timed twice;
* ``v3-offline-fp32``, ``v3-online-fp32``, ``v3-online-bf16``: CoTracker3's predictors (the online one through the
  official streaming protocol), the bf16 case skipped like ``fast-bf16``.

One timed round per case after one warm-up call with 8 points per method. ``make bench`` runs it on machines without
CUDA; with ``COTRACKER_BENCH_SAVE=1`` the records go to ``benchmarks/results/cpu-e2e-<cpu>-<date>T<time>.json`` with
the CPU model, its bf16 capability, the thread count, the versions and the commit, and ``python -m
benchmarks.make_performance_doc`` turns every such file into the CPU section of docs/PERFORMANCE.md.
"""
from __future__ import annotations

import datetime
import os
import re
import time
import warnings
from typing import Any, Dict, List

import pytest
import torch

from benchmarks._common import RESULTS_DIR, SAVE_ENV, cpu_name, git_commit, write_results
from benchmarks.baselines import flops as F
from cotracker_fast import precision

T, H, W = 24, 384, 512
NS = (256, 1024)
ITERS = 6
MODEL_NAME = "cotracker_stride_4_wind_8"
SUPPORT_GRID = 36
METHODS = {
    "reference": dict(label="reference maths, fp32", backend="reference", dtype=torch.float32),
    "fast-fp32": dict(label="fast path (backend=auto), fp32", backend="auto", dtype=torch.float32),
    "fast-bf16": dict(label="fast path (backend=auto), bf16 autocast", backend="auto", dtype=torch.bfloat16),
    # CoTracker3 on the same inputs (PyTorch path, fp32): the offline predictor (one window over the clip) and the
    # online predictor through the official call protocol (chunks of 16 frames every 8; support grid added)
    "v3-offline-fp32": dict(label="CoTracker3 offline, fp32", backend="auto", dtype=torch.float32,
                            model="cotracker3_offline"),
    "v3-online-fp32": dict(label="CoTracker3 online (streamed), fp32", backend="auto", dtype=torch.float32,
                           model="cotracker3_online"),
    "v3-online-bf16": dict(label="CoTracker3 online (streamed), bf16 autocast", backend="auto",
                           dtype=torch.bfloat16, model="cotracker3_online"),
}
RECORDS: List[Dict[str, Any]] = []

pytestmark = pytest.mark.cpu_e2e


def _inputs(N: int):
    g = torch.Generator().manual_seed(0)
    video = torch.rand(T, 3, H, W, generator=g) * 255
    t = torch.randint(0, T // 2, (N,), generator=g).float()
    t[: (N + 1) // 2] = 0
    xy = torch.rand(N, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])
    return video[None], torch.cat([t[:, None], xy], 1)[None]


_PREDICTORS: Dict[str, Any] = {}


def _predictor(key: str):
    if key not in _PREDICTORS:
        from cotracker_fast.online import CoTrackerOnlinePredictor
        from cotracker_fast.predictor import CoTrackerPredictor

        _PREDICTORS.clear()
        m = METHODS[key]
        cls = CoTrackerOnlinePredictor if m.get("model") == "cotracker3_online" else CoTrackerPredictor
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # random weights
            torch.manual_seed(0)
            p = cls(None, model_name=m.get("model", MODEL_NAME), backend=m["backend"], dtype=m["dtype"], iters=ITERS)
        video, queries = _inputs(8)
        t0 = time.perf_counter()
        _track(p, video, queries)
        _PREDICTORS[key] = (p, time.perf_counter() - t0)
    return _PREDICTORS[key]


def _track(p, video, queries):
    """Tracks of the whole video: one predictor call, or the official online protocol for online predictors."""
    from cotracker_fast.online import CoTrackerOnlinePredictor

    if not isinstance(p, CoTrackerOnlinePredictor):
        return p(video, queries)[0]
    p(video_chunk=video, is_first_step=True, queries=queries, add_support_grid=True)
    step = p.model.config.window_step
    for i in range(0, max(video.shape[1] - step, 1), step):
        tracks, _ = p(video_chunk=video[:, i : i + 2 * step])
    return tracks


@pytest.fixture(scope="module", autouse=True)
def _save():
    yield
    if not os.environ.get(SAVE_ENV) or not RECORDS:
        return
    cpu = cpu_name()
    out = {
        "suite": "cpu-e2e",
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": precision.cpu_has_native_bf16(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        **git_commit(),
        "config": dict(T=T, H=H, W=W, Ns=list(NS), iters=ITERS, support_grid=SUPPORT_GRID, model=MODEL_NAME),
        "methods": {k: v["label"] for k, v in METHODS.items()},
        "results": RECORDS,
    }
    slug = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-") or "cpu"
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M")  # a second run on the same day keeps the first's file
    path = write_results(RESULTS_DIR / f"cpu-e2e-{slug}-{stamp}.json", out)
    print(f"\ncpu-e2e results written to {path}")


@pytest.mark.parametrize("N", NS, ids=lambda n: f"N{n}")
@pytest.mark.parametrize("key", list(METHODS))
def test_cpu_end_to_end(benchmark, key, N):
    m = METHODS[key]
    if m["dtype"] == torch.bfloat16 and not precision.cpu_has_native_bf16():
        reason = "this CPU has no native bf16 (AVX512-BF16/AMX/Arm BF16): the predictor runs float32 instead"
        RECORDS.append(dict(method=key, N=N, skipped=reason))
        pytest.skip(reason)
    p, warmup_s = _predictor(key)
    video, queries = _inputs(N)
    out = {}

    def call():
        with torch.no_grad():
            out["tracks"] = _track(p, video, queries)

    benchmark.group = f"cpu e2e T={T} {H}x{W} N={N}"
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    benchmark.pedantic(call, rounds=1, iterations=1, warmup_rounds=0)
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is None:  # --benchmark-disable: nothing timed, nothing recorded
        return
    assert torch.isfinite(out["tracks"]).all()
    frames = [int(t) for t in queries[0, :, 0].tolist()] + [0] * SUPPORT_GRID
    est = None  # CoTracker3: see benchmarks/profile_v3_cpu.py
    if "model" not in m:
        est = F.cotracker_flops(frames, T, H, W, iters=ITERS, dense_corr=m["backend"] == "reference")
    RECORDS.append(dict(method=key, label=m["label"], N=N, T=T, H=H, W=W, time_s=stats.median,
                        time_ms_per_frame=stats.median / T * 1e3, warmup_s=warmup_s, flops_estimate=est,
                        threads=torch.get_num_threads(),
                        load_avg_1min_before=load_before))
