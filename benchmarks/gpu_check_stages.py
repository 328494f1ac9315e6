"""The measuring stages of ``make gpu-check`` (:mod:`benchmarks.gpu_check`), each run in a child process.

``build`` (the CUDA extension, the Triton kernels warmed), ``end_to_end`` (whole-video predictor calls) and ``speed``
(CoTracker, PIPs and RAFT) are here, ``micro`` (the roofs and the kernels against the PyTorch paths) in
:mod:`benchmarks.gpu_check_micro`: each gets a :class:`ChildStage`, whose record is written atomically after every
case so that the runner keeps the finished cases when it ends the child at the stage's deadline. The sizes of the real
run (``"cuda"``) and of the CPU dry run (``"dry"``) of every stage are here too. The runner, its deadlines and the
results file are in :mod:`benchmarks.gpu_check`, the tests stage's files and split in :mod:`benchmarks.gpu_check_tests`.
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import statistics
import subprocess
import sysconfig
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Sequence

import torch

from benchmarks._common import write_results

# Sizes: "cuda" the real run, "dry" the CPU dry run (tiny; its times mean nothing).
# The dry run checks the code in well under a minute of a small, shared CPU: no warm-up calls (one call per case),
# one refinement iteration instead of 6, and the bf16 methods in float32 (CPU bf16 autocast is ten times slower).
# 64x64 is the smallest input whose 4th pyramid level is 2x2, which the dense reference needs.
E2E = {"cuda": dict(T=48, H=384, W=512, Ns=[256, 1024, 4096], rounds=3, warmup=True, iters=6,
                    model="cotracker_stride_4_wind_8"),
       "dry": dict(T=8, H=64, W=64, Ns=[8], rounds=1, warmup=False, iters=1, model="cotracker_stride_4_wind_8")}
MICRO = {"cuda": dict(S=8, H=96, W=128, C=128, levels=4, radius=3, corr_Ns=[1024, 8192], attn_Ns=[1024, 8192],
                      heads=8, head_dim=48, time_L=8, dtypes=["float32", "bfloat16"]),
         "dry": dict(S=1, H=12, W=16, C=16, levels=2, radius=3, corr_Ns=[16], attn_Ns=[16], heads=2, head_dim=48,
                     time_L=8, dtypes=["float32", "bfloat16"])}
SPEED = {"cuda": dict(T=48, H=384, W=512, Ns=[256, 1024], rounds=1, warmup=True, iters=6,
                      methods=["cotracker-reference", "cotracker-fast", "pips-batched", "raft-large-12"]),
         "dry": dict(T=8, H=64, W=64, Ns=[4], rounds=1, warmup=False, iters=1,
                     methods=["cotracker-reference", "cotracker-fast", "pips-batched", "raft-large-12"])}
#: Methods whose cost does not depend on N: measured at the first N only.
FLAT_IN_N = ("raft-large-12",)
#: Least time left (s) to start a benchmark case; cases that compile need more.
MIN_CASE_S = {"eager": 5.0, "compile": 30.0, "micro": 2.0}


# ------------------------------------------------------------------------------------------------ helpers
def dist_version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def command_output(cmd: Sequence[str], timeout: float = 20.0) -> Optional[str]:
    """stdout of ``cmd`` stripped, or None when it is missing, fails or hangs."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def error_text(err: BaseException, limit: int = 4000) -> str:
    """An exception as ``Type: message`` plus the end of its traceback (compiler output included)."""
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return text[-limit:]


def _record_case_error(st, base: dict, key: str, err: BaseException) -> None:
    """Record a timed case that raised: out of GPU memory is a skip (the cache is emptied for the next case), anything
    else a failure with its error. The caller drops the objects the case held first."""
    if isinstance(err, torch.cuda.OutOfMemoryError):
        torch.cuda.empty_cache()
        st.add({**base, "key": key, "status": "skipped",
                "reason": f"out of GPU memory ({str(err).splitlines()[0][:160]})"})
    else:
        st.add({**base, "key": key, "status": "failed", "error": error_text(err)})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn: Callable[[], Any], device: torch.device, reps: int = 1) -> Dict[str, float]:
    """Median time of ``fn`` in ms: ``triton.testing.do_bench`` (CUDA events, warm-up and repeats in ms) on a GPU;
    on the CPU (dry run) the median of ``reps`` timed calls after one untimed one."""
    if device.type == "cuda":
        from triton.testing import do_bench

        p50, p20, p80 = do_bench(fn, warmup=25, rep=100, quantiles=[0.5, 0.2, 0.8])
        return {"ms": p50, "ms_p20": p20, "ms_p80": p80}
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"ms": statistics.median(times), "ms_p20": min(times), "ms_p80": max(times)}


# ------------------------------------------------------------------------------------------------ child stages
class ChildStage:
    """A stage running in a child process: its record (a dict) written atomically to ``out`` after every case, so
    the parent keeps the finished cases when it kills the child at the deadline."""

    def __init__(self, name: str, out: Path, deadline: float, dry: bool, skip_cases: Iterable[str]):
        self.name, self.out, self.deadline, self.dry = name, Path(out), deadline, dry
        self.skip_cases = set(skip_cases)
        self.cuda = torch.cuda.is_available() and not dry
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.kind = "cuda" if self.cuda else "dry"
        self.record: Dict[str, Any] = {"status": "running", "results": [], "items": {}}
        self.save()

    def left(self) -> float:
        return self.deadline - time.time()

    def save(self) -> None:
        write_results(self.out, self.record)

    def add(self, case: Dict[str, Any]) -> None:
        self.record["results"].append(case)
        self.save()

    def time_guard(self, key: str, base: Dict[str, Any], need_s: float) -> bool:
        """False (and the case recorded as skipped, or not at all when resumed) when the case is not to run."""
        if key in self.skip_cases:
            return False
        if self.left() < need_s:
            self.add({**base, "key": key, "status": "skipped",
                      "reason": f"deadline: {self.left():.0f} s left, the case needs about {need_s:.0f} s"})
            return False
        return True

    def finish(self) -> None:
        res = self.record["results"]
        items = self.record["items"].values()
        states = [r["status"] for r in res] + [i["status"] for i in items]
        if "failed" in states:
            self.record["status"] = "failed"
        elif any(r["status"] == "skipped" and r["reason"].startswith("deadline") for r in res):
            self.record["status"] = "partial"
        else:
            self.record["status"] = "passed"
        self.save()


def _cuda_only(what: str) -> Dict[str, Any]:
    return {"status": "skipped", "reason": f"CUDA-only ({what}); dry run on the CPU"}


def stage_build(st: ChildStage) -> None:
    """The CUDA extension (JIT build for this GPU's architecture), the Triton kernels warmed, a first attention call."""
    from cotracker_fast import _cuda_build, ops
    from cotracker_fast import ops as ref
    from cotracker_fast.ops import op_attention as cuda_attention

    items = st.record["items"]
    nvcc = _cuda_build.nvcc_path()
    version = (command_output([nvcc, "--version"]) or "").splitlines()[-1:] if nvcc else None
    ext = {"nvcc": nvcc, "nvcc_version": version,
           "arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") or _cuda_build.DEFAULT_ARCHS,
           # what the build needs besides nvcc, recorded so that a failed build is quick to diagnose
           "python_h": Path(sysconfig.get_paths()["include"], "Python.h").exists(), "pybind11": dist_version("pybind11"),
           "ninja": shutil.which("ninja")}
    try:
        params = _cuda_build.build_params()
        dest = cuda_attention.jit_extension_path()
        ext.update(arch_flags=params["arch"], path=str(dest))
        if not st.cuda:
            ext.update(_cuda_only("the nvcc build: minutes on a 2-core CPU; tests/test_cuda_attention.py compiles "
                                  "csrc/ in make test where nvcc is installed"))
        elif nvcc is None:
            ext.update(status="failed", error="nvcc not found (PATH, CUDA_HOME)")
        else:
            ext["cached"] = dest.exists()
            t0 = time.perf_counter()
            if not dest.exists():
                _cuda_build.build(str(dest))
            ext["build_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            module = cuda_attention.load_extension()
            ext["load_s"] = time.perf_counter() - t0
            if module is None:
                raise RuntimeError("the extension was built but does not load (see the RuntimeWarning above)")
            ext.update(status="passed", module=getattr(module, "__file__", None))
    except Exception as err:
        ext.update(status="failed", error=error_text(err))
    items["cuda_extension"] = ext
    st.save()

    # Triton: compile (or, in the dry run, interpret) the kernels at the model's specialisation (radius 3, C and the
    # level sizes of a 384x512 input at stride 4), forward and backward, in the two dtypes the benchmarks use.
    cfg = MICRO[st.kind]
    for dtype_name in cfg["dtypes"]:
        key = f"triton_corr_sample_{dtype_name}"
        try:
            dtype = getattr(torch, dtype_name)
            pyr, feats, coords = _corr_inputs(cfg, 64 if st.cuda else cfg["corr_Ns"][0], dtype, st.device)
            t0 = time.perf_counter()
            out = ops.corr_sample(pyr, feats, coords, cfg["radius"], backend="triton")
            _sync(st.device)
            fwd_s = time.perf_counter() - t0
            leaves = [p.detach().requires_grad_(True) for p in pyr]
            f = feats.detach().requires_grad_(True)
            t0 = time.perf_counter()
            ops.corr_sample(leaves, f, coords, cfg["radius"], backend="triton").sum().backward()
            _sync(st.device)
            bwd_s = time.perf_counter() - t0
            diff = (out - ref.corr_sample_torch(pyr, feats, coords, cfg["radius"])).abs().max().item()
            items[key] = {"status": "passed" if diff < 1e-2 else "failed", "first_forward_s": fwd_s,
                          "first_forward_backward_s": bwd_s, "max_abs_diff_vs_torch": diff}
            if diff >= 1e-2:
                items[key]["error"] = f"max |triton - torch| = {diff:.3g} (a warm-up sanity bound of 1e-2)"
        except Exception as err:
            items[key] = {"status": "failed", "error": error_text(err)}
        st.save()

    if not st.cuda:
        items["cuda_attention_first_call"] = _cuda_only("the CUDA attention kernels")
    elif items["cuda_extension"]["status"] != "passed":
        items["cuda_attention_first_call"] = {"status": "skipped", "reason": "the extension did not build"}
    else:
        try:
            t0 = time.perf_counter()
            for batch, L in ((64, cfg["time_L"]), (8, 256)):  # a time block and a group block
                qkv = torch.randn(batch, L, 3, cfg["heads"], cfg["head_dim"], device=st.device, dtype=torch.bfloat16)
                cuda_attention.attention_cuda(qkv)
            _sync(st.device)
            items["cuda_attention_first_call"] = {"status": "passed", "first_call_s": time.perf_counter() - t0}
        except Exception as err:
            items["cuda_attention_first_call"] = {"status": "failed", "error": error_text(err)}
    st.save()


def _corr_inputs(cfg: dict, N: int, dtype: torch.dtype, device: torch.device, seed: int = 0):
    """Random pyramid (``cfg['levels']`` levels of a ``(1, S, C, H, W)`` map), track features and positions inside
    the level-0 map, in ``dtype`` (positions fp32)."""
    from cotracker_fast import ops

    g = torch.Generator().manual_seed(seed)
    S, C, H, W = cfg["S"], cfg["C"], cfg["H"], cfg["W"]
    fmaps = torch.randn(1, S, C, H, W, generator=g).to(device, dtype)
    feats = torch.randn(1, S, N, C, generator=g).to(device, dtype)
    coords = (torch.rand(1, S, N, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])).to(device)
    return ops.build_pyramid(fmaps, cfg["levels"]), feats, coords


def _timed_rounds(st: "ChildStage", call: Callable[[], Any], warmups: int, rounds: int):
    """``(warm-up seconds, per-round seconds, peak GPU memory GB or None)`` of ``call`` (which synchronises):
    ``warmups`` untimed calls, then the peak-memory counter reset and ``rounds`` timed ones."""
    t0 = time.perf_counter()
    for _ in range(warmups):
        call()
    warmup_s = time.perf_counter() - t0
    if st.cuda:
        torch.cuda.reset_peak_memory_stats(st.device)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return warmup_s, times, torch.cuda.max_memory_allocated(st.device) / 1e9 if st.cuda else None


def stage_end_to_end(st: ChildStage) -> None:
    """Whole-video predictor calls: reference fp32, auto bf16, fast path (kernels, bf16, compile, CUDA graphs)."""
    import warnings

    from benchmarks.test_bench_end_to_end import Method, _inputs, flops_estimate
    from cotracker_fast.predictor import CoTrackerPredictor

    cfg = E2E[st.kind]
    methods = [
        Method("reference", "reference (official maths, fp32)", dict(backend="reference", dtype=torch.float32),
               dense_corr=True, notes="backend='reference': dense correlation volume, explicit softmax, float32"),
        Method("auto-bf16", "auto (bf16)", dict(backend="auto", dtype=torch.bfloat16), dense_corr=False,
               notes="backend='auto' (today: local correlation in PyTorch, SDPA), bfloat16 autocast, eager"),
        Method("fast-bf16-compile", "fast path (Triton + CUDA kernels, bf16, compiled, CUDA graphs)",
               dict(backend="fast", dtype=torch.bfloat16, compile=True), dense_corr=False, kinds=("cuda",),
               notes="backend='fast' (Triton corr_sample, CUDA attention), bfloat16 autocast, compile=True "
                     "(torch.compile mode='reduce-overhead': CUDA graphs); two warm-up calls hold the compilation "
                     "and the graph capture"),
    ]
    st.record["config"] = {**cfg, "support_grid": 36}
    st.record["methods"] = {m.key: {"label": m.label, "notes": m.notes} for m in methods}
    # the cheap eager methods at every N first, so that every N has its reference before the compile-heavy method
    order = [(m, N) for m in methods[:2] for N in cfg["Ns"]] + [(methods[2], N) for N in cfg["Ns"]]
    predictors: Dict[str, Any] = {}
    ref_times: Dict[int, float] = {r["N"]: r["time_s_median"] for r in st.record["results"] if "time_s_median" in r}
    for method, N in order:
        key = f"{method.key}/N{N}"
        base = {"method": method.key, "N": N, "T": cfg["T"], "H": cfg["H"], "W": cfg["W"], "model": cfg["model"]}
        if ("cuda" if st.cuda else "cpu") not in method.kinds:
            if key not in st.skip_cases:
                st.add({**base, "key": key, **_cuda_only("compile with CUDA graphs; CPU compilation takes minutes")})
            continue
        compiled = bool(method.kwargs.get("compile"))
        # every N of the compiled method compiles anew (a new track bucket): each needs the compile allowance
        if not st.time_guard(key, base, MIN_CASE_S["compile" if compiled else "eager"]):
            continue
        video, queries = _inputs(cfg, N, st.device)
        try:
            kwargs = dict(method.kwargs) if st.cuda else {**method.kwargs, "dtype": torch.float32}
            if method.key not in predictors:
                predictors.clear()  # one model in memory at a time
                if st.cuda:
                    torch.cuda.empty_cache()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # the "RANDOM weights" warning
                    p = CoTrackerPredictor(None, model_name=cfg["model"], device=st.device, iters=cfg["iters"],
                                           **kwargs)
                p.interp_shape = (cfg["H"], cfg["W"])  # work at the video's resolution
                predictors[method.key] = p
            p = predictors[method.key]
            out: Dict[str, Any] = {}

            def call():
                out["tracks"], out["vis"] = p(video, queries)
                _sync(st.device)

            # reduce-overhead: the 1st warm-up call compiles, the 2nd captures the graphs
            warmup_s, times, peak = _timed_rounds(st, call, (2 if compiled else 1) if cfg["warmup"] else 0,
                                                  cfg["rounds"])
            tracks = out["tracks"]
            if tracks.shape != (1, cfg["T"], N, 2) or not bool(torch.isfinite(tracks).all()):
                raise RuntimeError(f"bad tracks: shape {tuple(tracks.shape)}, "
                                   f"all finite {bool(torch.isfinite(tracks).all())}")
            t = statistics.median(times)
            if method.key == "reference":
                ref_times[N] = t
            est = flops_estimate(method, cfg["model"], cfg, N)
            st.add({**base, "key": key, "status": "measured", "dtype": str(kwargs["dtype"]).split(".")[-1],
                    "warmup_s": warmup_s, "rounds": cfg["rounds"], "time_s_median": t, "time_s_min": min(times),
                    "ms_per_frame": t / cfg["T"] * 1e3, "fps": cfg["T"] / t, "peak_mem_GB": peak,
                    "flops_estimate": est, "achieved_tflops": est / t / 1e12,
                    "speedup_vs_reference": ref_times[N] / t if N in ref_times else None})
        except Exception as err:
            predictors.clear()
            _record_case_error(st, base, key, err)
    predictors.clear()
    _end_to_end_v3(st, cfg)


#: CoTracker3 in the end-to-end stage, after the v1 methods (so it never takes their time): eager, bf16 autocast on
#: the GPU (float32 in the dry run); the online model through the official streaming protocol.
V3_E2E = (("v3-offline-bf16", "CoTracker3 offline (bf16 autocast, eager)", "cotracker3_offline", {}),
          ("v3-online-bf16", "CoTracker3 online, streamed (bf16 autocast, eager)", "cotracker3_online", {}),
          # CUDA only: inductor on a CPU would spend the dry run compiling (the predictors' compile option has its
          # own tests)
          ("v3-online-bf16-compiled", "CoTracker3 online, streamed (bf16 autocast, compiled window, CUDA graphs)",
           "cotracker3_online", {"compile": True}))


def _end_to_end_v3(st: ChildStage, cfg: dict) -> None:
    import warnings

    from benchmarks.baselines.flops import cotracker3_breakdown
    from benchmarks.test_bench_cpu_e2e import _track
    from benchmarks.test_bench_end_to_end import _inputs
    from cotracker_fast.online import CoTrackerOnlinePredictor
    from cotracker_fast.predictor import CoTrackerPredictor

    dtype = torch.bfloat16 if st.cuda else torch.float32
    methods = [m for m in V3_E2E if st.cuda or not m[3].get("compile")]
    for key_m, label, name, _ in methods:
        st.record["methods"][key_m] = {"label": label, "notes": f"{name}, random weights, {cfg['iters']} iterations; "
                                       "speed-up column: not comparable with the v1 reference"}
    for key_m, label, name, extra in methods:
        p = None
        for N in cfg["Ns"]:
            key = f"{key_m}/N{N}"
            base = {"method": key_m, "N": N, "T": cfg["T"], "H": cfg["H"], "W": cfg["W"], "model": name}
            if not st.time_guard(key, base, MIN_CASE_S["compile" if extra.get("compile") else "eager"]):
                continue
            video, queries = _inputs(cfg, N, st.device)
            try:
                if p is None:
                    cls = CoTrackerOnlinePredictor if name.endswith("online") else CoTrackerPredictor
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # the "RANDOM weights" warning
                        p = cls(None, model_name=name, device=st.device, iters=cfg["iters"], dtype=dtype, **extra)
                    p.interp_shape = (cfg["H"], cfg["W"])  # work at the video's resolution
                out: Dict[str, Any] = {}

                def call():
                    out["tracks"] = _track(p, video, queries)
                    _sync(st.device)

                warmup_s, times, peak = _timed_rounds(st, call, 1 if cfg["warmup"] else 0, cfg["rounds"])
                tracks = out["tracks"]
                if tracks.shape != (1, cfg["T"], N, 2) or not bool(torch.isfinite(tracks).all()):
                    raise RuntimeError(f"bad tracks: shape {tuple(tracks.shape)}")
                t = statistics.median(times)
                window = None if name.endswith("offline") else p.model.window_len
                est = cotracker3_breakdown(cfg["T"], N + 36, cfg["H"], cfg["W"], iters=cfg["iters"],
                                           window=window)["total"]
                st.add({**base, "key": key, "status": "measured", "dtype": str(dtype).split(".")[-1],
                        "warmup_s": warmup_s, "rounds": cfg["rounds"], "time_s_median": t, "time_s_min": min(times),
                        "ms_per_frame": t / cfg["T"] * 1e3, "fps": cfg["T"] / t,
                        "peak_mem_GB": peak,
                        "flops_estimate": est, "achieved_tflops": est / t / 1e12, "speedup_vs_reference": None})
            except Exception as err:
                p = None
                _record_case_error(st, base, key, err)


def stage_speed(st: ChildStage) -> None:
    """The paper's comparison (benchmarks/test_bench_speed.py's methods) at a reduced set of N."""
    from benchmarks import test_bench_speed
    from benchmarks.test_bench_speed import METHODS, _inputs

    cfg = SPEED[st.kind]
    # the suite's methods read their refinement iterations (CoTracker and PIPs) from this module constant when they
    # run; the dry run lowers it (see SPEED), the GPU run keeps the suite's 6
    test_bench_speed.ITERS = cfg["iters"]
    st.record["config"] = cfg
    st.record["methods"] = {k: {"label": METHODS[k].label, "notes": METHODS[k].notes} for k in cfg["methods"]}
    kind = "cuda" if st.cuda else "cpu"
    for mkey in cfg["methods"]:
        method = METHODS[mkey]
        runner = None
        for N in cfg["Ns"][:1] if mkey in FLAT_IN_N else cfg["Ns"]:
            key = f"{mkey}/N{N}"
            base = {"method": mkey, "N": N, "T": cfg["T"], "H": cfg["H"], "W": cfg["W"]}
            reason = method.unavailable()
            if reason:
                if key not in st.skip_cases:
                    st.add({**base, "key": key, "status": "skipped", "reason": reason})
                continue
            if not st.time_guard(key, base, MIN_CASE_S["eager"]):
                continue
            try:
                if runner is None:
                    if st.cuda:
                        torch.cuda.empty_cache()
                    runner = method.build(st.device)
                video, queries = _inputs(cfg, N, st.device)
                t0 = time.perf_counter()
                if cfg["warmup"]:
                    with torch.no_grad():
                        method.run(runner, video, queries[: method.warmup_points(N, kind)])
                    _sync(st.device)
                warmup_s = time.perf_counter() - t0
                if st.cuda:
                    torch.cuda.reset_peak_memory_stats(st.device)
                times, result = [], None
                for _ in range(cfg["rounds"]):
                    t0 = time.perf_counter()
                    with torch.no_grad():
                        result = method.run(runner, video, queries)
                    _sync(st.device)
                    times.append(time.perf_counter() - t0)
                t = statistics.median(times)
                est = float(method.flops(cfg, queries, result))
                st.add({**base, "key": key, "status": "measured", "label": method.label, "warmup_s": warmup_s,
                        "rounds": cfg["rounds"], "time_s_median": t, "ms_per_frame": t / cfg["T"] * 1e3,
                        "flops_estimate": est,
                        "peak_mem_GB": torch.cuda.max_memory_allocated(st.device) / 1e9 if st.cuda else None})
            except Exception as err:
                runner = None
                _record_case_error(st, base, key, err)
        del runner
