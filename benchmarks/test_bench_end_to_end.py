"""End-to-end speed and memory of the drop-in predictor: the reference against the fast path (named
``test_*.py`` so that pytest collects it).

One whole-video ``CoTrackerPredictor`` call per timed round: resize, encoder, every sliding window, support grid, on
a random video with N random query points at frame 0 (the predictor adds the official 6x6 support grid: N + 36
tracks), random weights (speed does not depend on them), 6 refinement iterations. Methods (:data:`METHODS`):

* ``reference``: ``backend="reference"`` (the official maths: dense correlation volume, explicit softmax attention),
  float32 -- what the official code computes.
* ``fast-bf16``: ``backend="auto"`` (local correlation, fused attention), ``dtype=torch.bfloat16`` (autocast).
* ``fast-bf16-compile``: the same with ``compile=True``, when ``CoTrackerPredictor`` has such an option (checked with
  ``inspect.signature`` at import; skipped with the reason otherwise).

Cases:

* GPU (``@pytest.mark.gpu``, skipped without CUDA): T = 48 frames at 384x512, N in 256, 1024, 4096, 10000, the three
  official variants (``cotracker_stride_4_wind_8``, ``cotracker_stride_4_wind_12``, ``cotracker_stride_8_wind_16``).
  A case that runs out of GPU memory is recorded as skipped with that reason.
* CPU smoke (``@pytest.mark.speed_cpu``, part of ``make test``): T = 8 frames at 64x96, N = 16, stride 4 / window 8,
  one thread -- runs the harness in a few seconds; its times are no performance figure.

Before the timing, one warm-up call with the same inputs measures the one-off cost (kernel selection, compilation,
graph capture): ``extra_info["warmup_s"]``. Every timed call ends with ``torch.cuda.synchronize``; peak memory is
``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats`` (weights and inputs included).
``extra_info`` holds fps, ms per frame, peak memory in GB (1e9 bytes), the FLOP estimate
(:mod:`benchmarks.baselines.flops`, arithmetic, not a measurement), the fraction of the H100 compute floor (the
estimate's time at the H100's 790 TFLOP/s bf16 dense peak, over the measured
time), device name, torch version and git commit.

With ``COTRACKER_BENCH_SAVE=1`` (``make bench``) the records are written to
``benchmarks/results/end_to_end-<device>-<date>.json``; ``python -m benchmarks.make_performance_doc`` renders the GPU
ones into the end-to-end block of ``docs/PERFORMANCE.md`` and ``docs/performance_end_to_end.png``.
"""
from __future__ import annotations

import inspect
import platform
import time
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Optional

import pytest
import torch

from benchmarks._common import Recorder, device_name, git_commit, save_all, sync
from benchmarks.baselines import flops as F
from cotracker_fast.models.registry import get_config
from cotracker_fast.predictor import CoTrackerPredictor

MODELS = ("cotracker_stride_4_wind_8", "cotracker_stride_4_wind_12", "cotracker_stride_8_wind_16")
CONFIGS = {
    "cuda": dict(T=48, H=384, W=512, Ns=[256, 1024, 4096, 10000], models=list(MODELS), rounds=3),
    "cpu": dict(T=8, H=64, W=96, Ns=[16], models=[MODELS[0]], rounds=1),
}
ITERS = 6
SUPPORT_GRID = 36  # the predictor's 6x6 support grid, added to user queries
H100_BF16_DENSE_FLOPS = 790e12  # FLOP/s: the H100 SXM bf16 dense peak
HAS_COMPILE = "compile" in inspect.signature(CoTrackerPredictor).parameters


@dataclass
class Method:
    """A predictor setting: ``kwargs`` for :class:`CoTrackerPredictor`; ``unavailable`` a reason to skip or None."""

    key: str
    label: str
    kwargs: Dict[str, Any]
    dense_corr: bool  # the FLOP estimate's correlation form
    unavailable: Optional[str] = None
    kinds: tuple = ("cuda", "cpu")
    notes: str = ""


METHODS: Dict[str, Method] = {
    m.key: m
    for m in [
        Method(
            "reference",
            "reference (official maths, fp32)",
            dict(backend="reference", dtype=torch.float32),
            dense_corr=True,
            notes="backend='reference': dense correlation volume + explicit softmax attention, float32",
        ),
        Method(
            "fast-bf16",
            "fast path (auto, bf16)",
            dict(backend="auto", dtype=torch.bfloat16),
            dense_corr=False,
            notes="backend='auto' (local correlation, fused attention), bfloat16 autocast",
        ),
        Method(
            "fast-bf16-compile",
            "fast path (auto, bf16, compile)",
            dict(backend="auto", dtype=torch.bfloat16, compile=True),
            dense_corr=False,
            unavailable=None if HAS_COMPILE else "CoTrackerPredictor has no `compile` option (inspect.signature)",
            kinds=("cuda",),
            notes="as fast-bf16 with compile=True; the warm-up call holds the compilation",
        ),
    ]
}


# ------------------------------------------------------------------------------------------------ harness
def _inputs(cfg: dict, N: int, device) -> tuple:
    """Random video ``(1, T, 3, H, W)`` RGB 0..255 and ``(1, N, 3)`` queries at frame 0, uniform in the frame."""
    T, H, W = cfg["T"], cfg["H"], cfg["W"]
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, T, 3, H, W, generator=g) * 255
    xy = torch.rand(1, N, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])
    queries = torch.cat([torch.zeros(1, N, 1), xy], -1)
    return video.to(device), queries.to(device)


def flops_estimate(method: Method, model_name: str, cfg: dict, N: int) -> float:
    """FLOP estimate of one predictor call (N points + the support grid, all at frame 0)."""
    mc = get_config(model_name)
    return F.cotracker_flops(
        [0] * (N + SUPPORT_GRID), cfg["T"], cfg["H"], cfg["W"], iters=ITERS, stride=mc.stride, S=mc.window_len,
        dense_corr=method.dense_corr,
    )


class _Recorder(Recorder):
    """The end-to-end suite's records of one device kind (see :class:`benchmarks._common.Recorder`)."""

    suite = "end_to_end"

    def environment(self) -> Dict[str, Any]:
        return {
            "device_kind": self.kind,
            "device": device_name(self.kind),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "python": platform.python_version(),
            **git_commit(),
        }

    def config(self) -> Dict[str, Any]:
        return {**CONFIGS[self.kind], "iters": ITERS, "support_grid": SUPPORT_GRID,
                "floor_flops_per_s": H100_BF16_DENSE_FLOPS}

    def methods(self) -> Dict[str, Method]:
        return METHODS


_RECORDERS: Dict[str, _Recorder] = {}
_PREDICTORS: Dict[tuple, CoTrackerPredictor] = {}


@pytest.fixture(scope="module")
def recorder():
    yield _RECORDERS
    save_all(_RECORDERS, "end-to-end")
    _PREDICTORS.clear()


def _predictor(method: Method, model_name: str, device: torch.device, hw: tuple) -> CoTrackerPredictor:
    """The predictor of (method, model), built on first use; one in memory at a time."""
    key = (method.key, model_name, str(device))
    if key not in _PREDICTORS:
        _PREDICTORS.clear()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the "RANDOM weights" warning
            p = CoTrackerPredictor(None, model_name=model_name, device=device, iters=ITERS, **method.kwargs)
        p.interp_shape = hw  # work at the video's resolution (384x512 on the GPU: the official one)
        _PREDICTORS[key] = p
    return _PREDICTORS[key]


def _run_case(benchmark, recorder, kind: str, method_key: str, model_name: str, N: int) -> None:
    method, cfg, device = METHODS[method_key], CONFIGS[kind], torch.device(kind)
    rec = recorder.setdefault(kind, _Recorder(kind))
    base = dict(method=method.key, label=method.label, model=model_name, N=N, T=cfg["T"], H=cfg["H"], W=cfg["W"])
    if method.unavailable:
        rec.records.append({**base, "skipped": method.unavailable})
        pytest.skip(method.unavailable)
    benchmark.group = f"end-to-end {kind} {model_name} T={cfg['T']} {cfg['H']}x{cfg['W']} N={N}"
    video, queries = _inputs(cfg, N, device)
    last: Dict[str, Any] = {}

    def call():
        last["out"] = p(video, queries)
        sync(device)

    try:
        p = _predictor(method, model_name, device, (cfg["H"], cfg["W"]))
        sync(device)
        t0 = time.perf_counter()
        call()  # warm-up: kernel choices, compilation, capture
        warmup_s = time.perf_counter() - t0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        benchmark.pedantic(call, rounds=cfg["rounds"], iterations=1, warmup_rounds=0)
        peak = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None
    except torch.cuda.OutOfMemoryError as e:
        _PREDICTORS.clear()
        last.clear()
        torch.cuda.empty_cache()
        reason = f"out of GPU memory ({str(e).splitlines()[0][:160]})"
        rec.records.append({**base, "skipped": reason})
        pytest.skip(reason)
    tracks, vis = last["out"]
    assert tracks.shape == (1, cfg["T"], N, 2) and vis.shape == (1, cfg["T"], N)
    assert bool(torch.isfinite(tracks).all())

    est = flops_estimate(method, model_name, cfg, N)
    info = {
        **base,
        "dtype": str(method.kwargs.get("dtype", torch.float32)).replace("torch.", ""),
        "warmup_s": warmup_s,
        "rounds": cfg["rounds"],
        "peak_mem_GB": peak,
        "flops_estimate": est,
        "device": device_name(kind),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        **git_commit(),
    }
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None:  # None under --benchmark-disable
        t = stats.median
        info.update(
            time_s_median=t, time_s_min=stats.min, time_s_mean=stats.mean, fps=cfg["T"] / t,
            ms_per_frame=t / cfg["T"] * 1e3, h100_floor_fraction=est / H100_BF16_DENSE_FLOPS / t,
        )
        rec.records.append(info)
    benchmark.extra_info.update(info)


def _cases(kind: str):
    cfg = CONFIGS[kind]
    return [
        pytest.param(key, model, N, id=f"{key}-{model}-N{N}")
        for key, m in METHODS.items()
        if kind in m.kinds
        for model in cfg["models"]
        for N in cfg["Ns"]
    ]


@pytest.mark.speed_cpu
@pytest.mark.parametrize("method_key, model_name, N", _cases("cpu"))
def test_end_to_end_cpu_smoke(benchmark, recorder, cpu_threads, method_key, model_name, N):
    """CPU smoke run: T = 8 frames at 64x96, N = 16 (the code path, not a performance figure)."""
    _run_case(benchmark, recorder, "cpu", method_key, model_name, N)


@pytest.mark.gpu
@pytest.mark.parametrize("method_key, model_name, N", _cases("cuda"))
def test_end_to_end_gpu(benchmark, recorder, method_key, model_name, N):
    """T = 48 frames at 384x512, the three official variants, N up to 10,000."""
    _run_case(benchmark, recorder, "cuda", method_key, model_name, N)
