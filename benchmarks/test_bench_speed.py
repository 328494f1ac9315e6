"""Speed comparison suite: CoTracker v1 (reference and fast path) against PIPs and RAFT, time against points.

The setting follows TAP-Vid-DAVIS and the paper's efficiency figure (appendix, Fig. 8): one video, N query points,
half of them queried on the first frame and the rest on random frames of the first half, as TAP-Vid's "first"
protocol spreads them. Random weights everywhere (speed does not depend on them).

* GPU (``@pytest.mark.gpu``): T = 48 frames at 384x512, N in 16, 64, 256, 1024, 2500, 4096.
* CPU (``@pytest.mark.speed_cpu``, part of ``make test``): T = 16 frames at 96x128, N in 16, 64, 256 -- a smoke
  run of the whole harness and a rough CPU reference, 2.3 to 3.5 minutes on the shared 2-core CI box.

Each timed call runs the whole video and ends with a device synchronisation (``torch.cuda.synchronize`` on GPU).
A warm-up call runs first, outside the timing; its time is reported as ``extra_info["warmup_s"]`` (GPU: before
every case; CPU: once per method with at most 8 points, enough to trigger the one-off initialisations).
``extra_info`` also holds the method, N, T, H, W, the FLOP estimate (:mod:`benchmarks.baselines.flops`), the
device, torch version, git commit, thread count and load average.

The CPU run uses one thread unless ``COTRACKER_BENCH_THREADS`` says otherwise: the CI box's two cores are shared,
and two OpenMP threads competing with another process were measured 40x slower than one.

With ``COTRACKER_BENCH_SAVE=1`` (``make bench``) the results are also written to
``benchmarks/results/speed-<device>-<date>.json`` (device, versions, commit, configuration, one record per case);
``python -m benchmarks.make_performance_doc`` turns them into ``docs/PERFORMANCE.md``.

Methods live in :data:`METHODS`, one :class:`Method` each: a later variant (a dtype, ``torch.compile``) is one more
entry.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import pytest
import torch

from benchmarks._common import Recorder, device_info, device_name, git_commit, save_all, sync
from benchmarks.baselines import flops as F
from benchmarks.baselines import pips as P
from benchmarks.baselines import raft as R

CONFIGS = {
    "cuda": dict(T=48, H=384, W=512, Ns=[16, 64, 256, 1024, 2500, 4096], rounds=3),
    "cpu": dict(T=16, H=96, W=128, Ns=[16, 64, 256], rounds=1),
}
ITERS = 6  # refinement iterations of CoTracker and PIPs (official evaluation setting)
MODEL_NAME = "cotracker_stride_4_wind_8"  # CoTracker v1 as in the paper's TAP-Vid evaluation
SUPPORT_GRID = 36  # the predictor adds the official 6x6 support grid (queried at frame 0) to user queries


# ------------------------------------------------------------------------------------------------ method table
@dataclass
class Method:
    """One tracker setting of the suite.

    Attributes:
        key: identifier used in test ids and result files.
        label: legend text.
        build: ``build(device) -> runner``; not timed.
        run: ``run(runner, video (T, 3, H, W) float 0..255, queries (N, 3) (t, x, y) px) -> result``; timed.
        flops: ``flops(cfg, queries, result) -> float``, the estimate for one call (see ``baselines/flops.py``).
        max_n: largest N per device kind (larger cases are not generated).
        unavailable: ``() -> reason or None``; a reason skips the method.
        warmup_points: ``(N, device_kind) -> points`` of the warm-up call.
        rounds: timed rounds per device kind, when not the configuration's.
        notes: one line for the performance doc.
    """

    key: str
    label: str
    build: Callable[[torch.device], Any]
    run: Callable[[Any, torch.Tensor, torch.Tensor], Any]
    flops: Callable[[dict, torch.Tensor, Any], float]
    max_n: Dict[str, int] = field(default_factory=lambda: {"cpu": 10**9, "cuda": 10**9})
    unavailable: Callable[[], Optional[str]] = lambda: None
    warmup_points: Callable[[int, str], int] = lambda n, kind: n if kind == "cuda" else min(n, 8)
    rounds: Dict[str, int] = field(default_factory=dict)
    notes: str = ""


def _cotracker(key: str, label: str, notes: str, **predictor_kw) -> Method:
    """CoTracker v1 through the drop-in predictor (queries + the official support grid), working at the video's
    own resolution."""

    def build(device):
        from cotracker_fast.predictor import CoTrackerPredictor

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the "random weights" warning
            # the official v1 architecture (stride 4, window 8) with random weights, named explicitly: a bare
            # checkpoint=None may mean other (shipped) weights
            p = CoTrackerPredictor(None, model_name=MODEL_NAME, device=device, iters=ITERS, **predictor_kw)
        return p

    def run(p, video, queries):
        p.interp_shape = tuple(video.shape[-2:])  # no resize: the suite's video is the working resolution
        return p(video[None], queries[None])

    def flops(cfg, queries, _result):
        frames = [int(t) for t in queries[:, 0].tolist()] + [0] * SUPPORT_GRID
        dense = predictor_kw.get("backend") == "reference"
        return F.cotracker_flops(frames, cfg["T"], cfg["H"], cfg["W"], iters=ITERS, dense_corr=dense)

    return Method(key, label, build, run, flops, notes=notes)


def _pips(key: str, label: str, track: Callable, full_res_corr: bool, notes: str, **method_kw) -> Method:
    """PIPs (random weights, seed 0) chained over the video by ``track`` (a ``pips.track_pips_*`` function); the FLOP
    estimate counts the windows and encoded frames the run reports."""

    def build(device):
        torch.manual_seed(0)
        return P.Pips(stride=4, full_res_corr=full_res_corr).eval().to(device)

    def run(model, video, queries):
        return track(model, video, queries, iters=ITERS)

    def flops(cfg, _queries, result):
        return F.pips_flops(result.point_windows, result.encoded_frames, cfg["H"], cfg["W"], iters=ITERS)

    return Method(key, label, build, run, flops, notes=notes, **method_kw)


def _raft(updates: int) -> Method:
    def build(device):
        return R.load_raft("large", device=device)

    def run(model, video, queries):
        return R.track_raft(model, video, queries, num_flow_updates=updates)

    def flops(cfg, _queries, _result):
        return F.raft_flops(cfg["T"], cfg["H"], cfg["W"], updates)

    def unavailable():
        ok, reason = R.raft_status()
        return None if ok else reason

    return Method(
        f"raft-large-{updates}",
        f"RAFT-large, {updates} updates (chained flow)",
        build,
        run,
        flops,
        unavailable=unavailable,
        notes=f"torchvision raft_large, {updates} flow updates per pair, T-1 forward pairs chained by bilinear lookup; "
        "cost flat in N",
    )


METHODS: Dict[str, Method] = {
    m.key: m
    for m in [
        _cotracker(
            "cotracker-reference",
            "CoTracker v1, reference (official maths)",
            "dense correlation volume + explicit softmax attention, fp32",
            backend="reference",
        ),
        _cotracker(
            "cotracker-fast",
            "CoTracker v1, fast path (backend=auto)",
            "backend='auto' (local correlation, SDPA), fp32",
            backend="auto",
        ),
        _pips(
            "pips-batched",
            "PIPs, batched chaining (7-frame advance)",
            P.track_pips_batched,
            full_res_corr=False,
            notes="all points of a query frame share 8-frame windows advancing 7 frames; every frame encoded once; "
            "training-only full-resolution correlation maps off",
        ),
        _pips(
            "pips-per-point",
            "PIPs, official per-point chaining",
            P.track_pips_per_point,
            full_res_corr=True,
            # N points x ~T/advance windows x 8 encoded frames each: linear in N with a large constant
            max_n={"cpu": 16, "cuda": 256},
            warmup_points=lambda n, kind: 1,  # every window holds one point: one point warms up every shape
            rounds={"cuda": 1},
            notes="the official loop: one point at a time, visibility-adaptive advance, each window re-encodes its "
            "8 frames; full-resolution correlation maps on (as the official forward)",
        ),
        _raft(12),
        _raft(32),
    ]
}


# ------------------------------------------------------------------------------------------------ harness
def _inputs(cfg: dict, N: int, device) -> tuple:
    """Random video ``(T, 3, H, W)`` in 0..255 and TAP-Vid-like queries ``(N, 3)``: half at frame 0, the rest on
    random frames of the first half of the video, positions uniform in the frame."""
    T, H, W = cfg["T"], cfg["H"], cfg["W"]
    g = torch.Generator().manual_seed(0)
    video = torch.rand(T, 3, H, W, generator=g) * 255
    t = torch.randint(0, T // 2, (N,), generator=g).float()
    t[: (N + 1) // 2] = 0
    xy = torch.rand(N, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])
    return video.to(device), torch.cat([t[:, None], xy], 1).to(device)


class _Recorder(Recorder):
    """The speed suite's records of one device kind (see :class:`benchmarks._common.Recorder`)."""

    suite = "speed"

    def environment(self) -> Dict[str, Any]:
        threads = max((r.get("threads") or 0 for r in self.records), default=None) or None
        return {**device_info(self.kind), "threads": threads}

    def config(self) -> Dict[str, Any]:
        return {**CONFIGS[self.kind], "iters": ITERS, "support_grid": SUPPORT_GRID}

    def methods(self) -> Dict[str, Method]:
        return METHODS


_RECORDERS: Dict[str, _Recorder] = {}


@pytest.fixture(scope="module")
def recorder():
    yield _RECORDERS
    save_all(_RECORDERS, "speed-suite")


_RUNNERS: Dict[tuple, list] = {}


def _runner(method: Method, device: torch.device) -> list:
    """``[runner, warmed_up]`` for the method on the device, built on first use (one model in memory at a time)."""
    key = (method.key, str(device))
    if key not in _RUNNERS:
        _RUNNERS.clear()
        _RUNNERS[key] = [method.build(device), False]
    return _RUNNERS[key]


def _run_case(benchmark, recorder, kind: str, method_key: str, N: int) -> None:
    method = METHODS[method_key]
    cfg = CONFIGS[kind]
    device = torch.device(kind)
    rec = recorder.setdefault(kind, _Recorder(kind))
    base = dict(method=method.key, label=method.label, N=N, T=cfg["T"], H=cfg["H"], W=cfg["W"])
    reason = method.unavailable()
    if reason:
        rec.records.append({**base, "skipped": reason})
        pytest.skip(reason)
    benchmark.group = f"speed {kind} T={cfg['T']} {cfg['H']}x{cfg['W']} N={N}"
    entry = _runner(method, device)
    runner = entry[0]
    video, queries = _inputs(cfg, N, device)

    # Warm-up, outside the timing and reported apart. On the GPU before every case (kernel choices, compilation and
    # the caching allocator depend on the shapes); on the CPU once per method, with at most 8 points: it only has to
    # trigger the one-off initialisations (its later cases record warmup_s = 0).
    wq = queries[: method.warmup_points(N, kind)]
    warmup_s = 0.0
    if kind == "cuda" or not entry[1]:
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            method.run(runner, video, wq)
        sync(device)
        warmup_s = time.perf_counter() - t0
        entry[1] = True

    last = {}

    def call():
        with torch.no_grad():
            last["result"] = method.run(runner, video, queries)
        sync(device)

    if kind == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rounds = method.rounds.get(kind, cfg["rounds"])
    benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=0)
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if "result" not in last:  # --benchmark-disable runs nothing through pedantic's timer; run once untimed
        call()
    est = float(method.flops(cfg, queries, last["result"]))
    info = {
        **base,
        "flops_estimate": est,
        "flops_estimate_per_frame": est / cfg["T"],
        "warmup_s": warmup_s,
        "warmup_points": int(wq.shape[0]) if warmup_s else 0,
        "rounds": rounds,
        "device": device_name(kind),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_avg_1min_before": load_before,
        **git_commit(),
    }
    result = last["result"]
    if isinstance(result, P.ChainResult):
        info.update(calls=result.calls, point_windows=result.point_windows, encoded_frames=result.encoded_frames)
    if kind == "cuda":
        info["peak_mem_MiB"] = torch.cuda.max_memory_allocated(device) / 2**20
    benchmark.extra_info.update(info)
    if stats is not None:
        rec.records.append(
            {**info, "time_s_median": stats.median, "time_s_min": stats.min, "time_s_mean": stats.mean,
             "time_ms_per_frame": stats.median / cfg["T"] * 1e3}
        )


def _cases(kind: str):
    cfg = CONFIGS[kind]
    return [
        pytest.param(key, N, id=f"{key}-N{N}")
        for key, m in METHODS.items()
        for N in cfg["Ns"]
        if N <= m.max_n[kind]
    ]


@pytest.mark.speed_cpu
@pytest.mark.parametrize("method_key, N", _cases("cpu"))
def test_speed_cpu(benchmark, recorder, cpu_threads, method_key, N):
    """Small CPU run: T = 16 frames at 96x128."""
    _run_case(benchmark, recorder, "cpu", method_key, N)


@pytest.mark.gpu
@pytest.mark.parametrize("method_key, N", _cases("cuda"))
def test_speed_gpu(benchmark, recorder, method_key, N):
    """TAP-Vid-DAVIS-like GPU run: T = 48 frames at 384x512."""
    _run_case(benchmark, recorder, "cuda", method_key, N)
