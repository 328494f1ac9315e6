"""``make gpu-check``: the one prepared command that proves the GPU path on one H100 or H200.

Stages, in order, each with a deadline (an "end by" time counted from the start, a fraction of ``--budget``; a stage
that starts early may use the time an earlier one left):

==============  ==========  ============================================================================================
stage           ends by     what
==============  ==========  ============================================================================================
``env``         6 %         GPU, driver, torch / Triton / CUDA / nvcc versions, commit, content hash of ``kernels/``
                            and ``csrc/`` (:func:`kernel_hash`)
``build``       30 %        JIT build of the CUDA extension (``csrc/``, for this GPU's architecture only, into a cache
                            the later processes load but never rebuild), Triton warm-up of ``corr_sample`` forward and
                            backward, a first call of the CUDA attention; times
``tests``       52 %        the GPU tests (``tests/test_triton_corr.py``, ``test_cuda_attention.py``, ``test_gpu.py``,
                            ``test_gpu_fast_path.py``, ``test_triton_corr4d.py``), one pytest process per file or ``-k``
                            split
                            (:data:`TEST_SPLITS`), all side by side so that their compile times overlap; every test's
                            result is recorded as it finishes (``benchmarks/_pytest_record.py``)
``end_to_end``  78 %        the predictor at T = 48, 384x512, N in 256, 1024, 4096: the reference maths (fp32), ``auto``
                            (bf16) and the fast path (Triton + CUDA kernels, bf16, compiled, CUDA graphs): ms per
                            frame, peak memory, speed-up over the reference; then CoTracker3 offline and online
                            (streamed), bf16 eager
``micro``       89 %        the two roofs measured (device copy GB/s, bf16 matmul TFLOP/s); corr_sample forward and
                            forward+backward, Triton against the torch path (N in 1024, 8192); CoTracker3's corr4d
                            forward, Triton against the reference; time and group attention, CUDA against SDPA;
                            achieved GB/s and TFLOP/s against the roofs
``speed``       96 %        the paper's comparison (CoTracker, PIPs, RAFT) at a reduced set of N, with what time is left
``doc``         100 %       the gpu-check block of ``docs/PERFORMANCE.md`` regenerated from the results
==============  ==========  ============================================================================================

The build and every benchmark stage run in a child process (``--child``) with a hard timeout at the stage's deadline,
and the children write their partial results after every case: a stage that runs out of time, or a CUDA fault that
kills its process, loses only the case in flight; later stages still run. A stage that cannot start because too
little time is left is skipped with the reason. The results JSON is written (atomically) after every stage, to
``benchmarks/results/gpu_check-<gpu>-<date>.json`` and, when ``$OUT`` is set (the device tool brings back what is
written there), to ``$OUT`` with the log and the regenerated doc. It holds the GPU name, driver, versions, commit,
kernel hash, every stage's status, wall time and figures, every test's outcome, and ``verdicts``: per kernel, whether
its tests passed and how it compares with the PyTorch path (the evidence for a ``backend="auto"`` change; this script
changes no backend).

``--resume [JSON]`` (``make gpu-check RESUME=1``: the newest saved GPU run) redoes only what the saved run did not
finish: tests that did not pass, benchmark cases without a figure, stages that failed or were skipped; what passed is
carried over. A saved run of other kernels (its kernel hash differs) is not resumed: everything runs again.

``--dry-run`` (``make gpu-check DRY_RUN=1``, and ``tests/test_gpu_check.py`` in ``make test``) runs every stage's
code on the CPU at tiny sizes: Triton in its interpreter, the CUDA-only calls (the nvcc build, the CUDA attention,
the roofs, compilation with CUDA graphs) recorded as skipped, and any exception a failure. Its results go to a
temporary folder, never to ``benchmarks/results``.

The device machine has no network and nothing may be installed there: this script needs only what its python3 has
(torch, Triton, pytest, numpy, pybind11 and nvcc for the build) with the repository on ``sys.path``; ``cotracker_fast``
finds ``kernels/`` itself when run from the source tree. Exit status: 0 when no stage failed, 1 otherwise, 2 for a
usage error (e.g. no CUDA device without ``--dry-run``).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file (python benchmarks/gpu_check.py) rather than with -m
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._common import RESULTS_DIR, device_info, write_results, write_text  # noqa: E402

SCHEMA = 1
STAGES = ("env", "build", "tests", "end_to_end", "micro", "speed", "doc")
#: Each stage must end by this fraction of the budget, counted from the start (see the module docstring).
DEADLINE_FRACTION = {"env": 0.06, "build": 0.30, "tests": 0.52, "end_to_end": 0.78, "micro": 0.89, "speed": 0.96,
                     "doc": 1.0}
#: A stage with less time than this left before its deadline is skipped (it could not finish anything useful).
MIN_START_S = {"env": 0.0, "build": 10.0, "tests": 15.0, "end_to_end": 20.0, "micro": 8.0, "speed": 15.0, "doc": 1.0}
#: Default budget in seconds: the 6-minute target less a margin for the start-up and the writing of the results.
GPU_BUDGET_S = 345.0
DRY_BUDGET_S = 300.0
#: The stages run in child processes (the others run in this one).
CHILD_STAGES = ("build", "end_to_end", "micro", "speed")

TEST_FILES = ("tests/test_triton_corr.py", "tests/test_cuda_attention.py", "tests/test_gpu.py",
              "tests/test_gpu_fast_path.py", "tests/test_triton_corr4d.py")
#: Files run as several pytest processes side by side, one per ``-k`` expression plus one for the rest (the
#: complement, so no test is left out): each compiled case of the fast-path test compiles the model's window step,
#: and the forward parity test compiles a Triton kernel per radius; in parallel these compile times overlap.
TEST_SPLITS = {"tests/test_triton_corr.py": ("forward_matches_reference",),
               "tests/test_gpu_fast_path.py": ("accuracy_bound and True and dtype0",
                                               "accuracy_bound and True and dtype1", "reduce_overhead")}
#: Compiles csrc/ a second time from scratch for two architectures (a minute of the budget); the build stage has
#: compiled the same sources, and the test's argument checks need no GPU (they run in `make test` where nvcc is).
GPU_DESELECT = ("tests/test_cuda_attention.py::test_sources_compile_and_check_arguments",)
#: The tests each kernel's verdict needs (node id prefixes).
KERNEL_TESTS = {"corr_sample/triton": ("tests/test_triton_corr.py",),
                "attention/cuda": ("tests/test_cuda_attention.py",),
                "corr4d/triton": ("tests/test_triton_corr4d.py",)}
KERNEL_SOURCES = ("kernels", "csrc")
SOURCE_SUFFIXES = {".py", ".cu", ".cuh", ".h", ".hpp", ".cpp", ".c"}
RECORD_ENV = "COTRACKER_GPU_CHECK_RECORD"
COMMIT_ENV = "COTRACKER_COMMIT"  # the commit, where the tree has no git metadata (the device machine's copy)
LOG_TAIL_CHARS = 40_000  # of each child's output, copied into the main log

#: Datasheet roofs (bytes/s of HBM, dense bf16 FLOP/s), leads only: the micro stage measures both and uses those.
DATASHEET = (("H200", 4.8e12, 989e12), ("H100 PCIe", 2.0e12, 756e12), ("H100 NVL", 3.9e12, 835e12),
             ("H100", 3.35e12, 989e12))

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


# ------------------------------------------------------------------------------------------------ small helpers
def now_iso() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def kernel_hash(root: Path = ROOT) -> Dict[str, str]:
    """Content hash of the kernels' sources: per folder of :data:`KERNEL_SOURCES` (``kernels/``, ``csrc/``) and
    ``combined``, each the first 16 hex digits of a sha256 over (relative path, file digest) of every source file in
    path order. A saved run whose hash equals the current one measured the current kernels."""
    out, total = {}, hashlib.sha256()
    for folder in KERNEL_SOURCES:
        h = hashlib.sha256()
        base = root / folder
        files = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES
                       and "__pycache__" not in p.parts) if base.is_dir() else []
        for p in files:
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
        out[folder] = h.hexdigest()[:16]
        total.update(h.digest())
    out["combined"] = total.hexdigest()[:16]
    return out


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _command_output(cmd: Sequence[str], timeout: float = 20.0) -> Optional[str]:
    """stdout of ``cmd`` stripped, or None when it is missing, fails or hangs."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _error_text(err: BaseException, limit: int = 4000) -> str:
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
        st.add({**base, "key": key, "status": "failed", "error": _error_text(err)})


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


def datasheet_roofs(gpu_name: str) -> Optional[Dict[str, float]]:
    """The datasheet's HBM bandwidth and dense bf16 rate for a GPU name (first match in :data:`DATASHEET`)."""
    for key, bw, flops in DATASHEET:
        if key.lower() in gpu_name.lower():
            return {"hbm_bytes_per_s": bw, "bf16_flops_per_s": flops, "source": f"datasheet ({key})"}
    return None


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
    version = (_command_output([nvcc, "--version"]) or "").splitlines()[-1:] if nvcc else None
    ext = {"nvcc": nvcc, "nvcc_version": version,
           "arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") or _cuda_build.DEFAULT_ARCHS,
           # what the build needs besides nvcc, recorded so that a failed build is quick to diagnose
           "python_h": Path(sysconfig.get_paths()["include"], "Python.h").exists(), "pybind11": _version("pybind11"),
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
        ext.update(status="failed", error=_error_text(err))
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
            items[key] = {"status": "failed", "error": _error_text(err)}
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
            items["cuda_attention_first_call"] = {"status": "failed", "error": _error_text(err)}
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

            t0 = time.perf_counter()
            for _ in range((2 if compiled else 1) if cfg["warmup"] else 0):  # reduce-overhead: the 1st call
                call()  # compiles, the 2nd captures the graphs
            warmup_s = time.perf_counter() - t0
            if st.cuda:
                torch.cuda.reset_peak_memory_stats(st.device)
            times = []
            for _ in range(cfg["rounds"]):
                t0 = time.perf_counter()
                call()
                times.append(time.perf_counter() - t0)
            peak = torch.cuda.max_memory_allocated(st.device) / 1e9 if st.cuda else None
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
                t0 = time.perf_counter()
                if cfg["warmup"]:
                    _track(p, video, queries)
                    _sync(st.device)
                warmup_s = time.perf_counter() - t0
                if st.cuda:
                    torch.cuda.reset_peak_memory_stats(st.device)
                times = []
                for _ in range(cfg["rounds"]):
                    t0 = time.perf_counter()
                    tracks = _track(p, video, queries)
                    _sync(st.device)
                    times.append(time.perf_counter() - t0)
                if tracks.shape != (1, cfg["T"], N, 2) or not bool(torch.isfinite(tracks).all()):
                    raise RuntimeError(f"bad tracks: shape {tuple(tracks.shape)}")
                t = statistics.median(times)
                window = None if name.endswith("offline") else p.model.window_len
                est = cotracker3_breakdown(cfg["T"], N + 36, cfg["H"], cfg["W"], iters=cfg["iters"],
                                           window=window)["total"]
                st.add({**base, "key": key, "status": "measured", "dtype": str(dtype).split(".")[-1],
                        "warmup_s": warmup_s, "rounds": cfg["rounds"], "time_s_median": t, "time_s_min": min(times),
                        "ms_per_frame": t / cfg["T"] * 1e3, "fps": cfg["T"] / t,
                        "peak_mem_GB": torch.cuda.max_memory_allocated(st.device) / 1e9 if st.cuda else None,
                        "flops_estimate": est, "achieved_tflops": est / t / 1e12, "speedup_vs_reference": None})
            except Exception as err:
                p = None
                _record_case_error(st, base, key, err)


def corr_bytes(cfg: dict, N: int, dtype: torch.dtype, backward: bool) -> float:
    """Bytes the correlation op must move at least: track features, positions and output, plus the pyramid cells it
    needs (at most the whole pyramid; ``benchmarks/test_bench_corr_triton.py``'s count); with the backward also the
    output gradient read, the feature gradient written, and the cells read again and their gradients written."""
    from benchmarks.test_bench_corr_triton import _must_move_bytes

    S, C, H, W, L, r = cfg["S"], cfg["C"], cfg["H"], cfg["W"], cfg["levels"], cfg["radius"]
    elt = torch.finfo(dtype).bits // 8
    fwd = _must_move_bytes(N, dtype, S=S, H=H, W=W, C=C, levels=L, radius=r)
    if not backward:
        return fwd
    pyramid = sum(S * C * (H >> lvl) * (W >> lvl) for lvl in range(L)) * elt
    cells = S * N * L * (2 * r + 2) ** 2 * C * elt
    return fwd + S * N * L * (2 * r + 1) ** 2 * 4 + S * N * C * elt + 2 * min(pyramid, cells)


def corr_flops(cfg: dict, N: int, backward: bool) -> float:
    """The dot products the op must do: (2r+2)^2 cells x C channels x 2 per (frame, track, level); the backward
    does two more contractions of the same size (feature and map gradients). The bilinear combination (< 2 %) is
    not counted."""
    S, C, L, r = cfg["S"], cfg["C"], cfg["levels"], cfg["radius"]
    dots = S * N * L * (2 * r + 2) ** 2 * C * 2
    return dots * (3 if backward else 1)


def stage_micro(st: ChildStage) -> None:
    """Roofs; corr_sample Triton vs torch; time and group attention CUDA vs SDPA."""
    from cotracker_fast import ops
    from cotracker_fast import ops as ref

    cfg = MICRO[st.kind]
    st.record["config"] = cfg
    roofs: Dict[str, Any] = {"datasheet": datasheet_roofs(torch.cuda.get_device_name(0)) if st.cuda else None}
    if st.cuda:
        try:
            src = torch.randn(2**28, device=st.device)  # 1 GiB: far beyond the L2
            dst = torch.empty_like(src)
            t = _median_ms(lambda: dst.copy_(src), st.device)["ms"]
            roofs["copy_bytes_per_s"] = 2 * src.numel() * 4 / (t / 1e3)  # read + write
            del src, dst
            a = torch.randn(8192, 8192, device=st.device, dtype=torch.bfloat16)  # random data: zeros run faster
            b = torch.randn(8192, 8192, device=st.device, dtype=torch.bfloat16)
            t = _median_ms(lambda: a @ b, st.device)["ms"]
            roofs["bf16_matmul_flops_per_s"] = 2 * 8192**3 / (t / 1e3)
            del a, b
            torch.cuda.empty_cache()
            roofs["status"] = "passed"
        except Exception as err:
            roofs.update(status="failed", error=_error_text(err))
    else:
        roofs.update(_cuda_only("device copy and matmul roofs"))
    st.record["items"]["roofs"] = roofs
    st.save()
    bw = roofs.get("copy_bytes_per_s") or (roofs["datasheet"] or {}).get("hbm_bytes_per_s")
    fl = roofs.get("bf16_matmul_flops_per_s") or (roofs["datasheet"] or {}).get("bf16_flops_per_s")

    def measure(key: str, base: Dict[str, Any], fn: Callable[[], Any], nbytes: float, flops: float,
                check: Optional[Callable[[], float]] = None) -> None:
        if not st.time_guard(key, base, MIN_CASE_S["micro"]):
            return
        try:
            diff = check() if check is not None else None
            t = _median_ms(fn, st.device)
            rec = {**base, "key": key, "status": "measured", **t, "bytes": nbytes, "flops": flops,
                   "gbps": nbytes / t["ms"] / 1e6, "tflops": flops / t["ms"] / 1e9, "max_abs_diff": diff}
            if bw:
                rec["fraction_of_bandwidth_roof"] = rec["gbps"] * 1e9 / bw
            if fl:
                rec["fraction_of_bf16_roof"] = rec["tflops"] * 1e12 / fl
            st.add(rec)
        except Exception as err:
            st.add({**base, "key": key, "status": "failed", "error": _error_text(err)})

    r = cfg["radius"]
    for N in cfg["corr_Ns"]:
        for dtype_name in cfg["dtypes"]:
            dtype = getattr(torch, dtype_name)
            pyr, feats, coords = _corr_inputs(cfg, N, dtype, st.device)
            leaves = [p.detach().requires_grad_(True) for p in pyr]
            f_leaf = feats.detach().requires_grad_(True)
            grad = torch.randn(1, cfg["S"], N, cfg["levels"] * (2 * r + 1) ** 2, device=st.device)
            impls = {"triton": lambda p, f: ops.corr_sample(p, f, coords, r, backend="triton"),
                     "torch": lambda p, f: ref.corr_sample_torch(p, f, coords, r)}

            def diff_vs_torch(fwd=impls["triton"]):
                with torch.no_grad():
                    return (fwd(pyr, feats) - ref.corr_sample_torch(pyr, feats, coords, r)).abs().max().item()

            for impl, fwd in impls.items():
                base = {"op": "corr_sample", "impl": impl, "N": N, "dtype": dtype_name}

                def forward(fwd=fwd):
                    with torch.no_grad():
                        return fwd(pyr, feats)

                def forward_backward(fwd=fwd):
                    for t in (*leaves, f_leaf):
                        t.grad = None
                    fwd(leaves, f_leaf).backward(grad)

                measure(f"corr_sample/{impl}/fwd/{dtype_name}/N{N}", {**base, "mode": "forward"}, forward,
                        corr_bytes(cfg, N, dtype, False), corr_flops(cfg, N, False),
                        diff_vs_torch if impl == "triton" else None)
                measure(f"corr_sample/{impl}/fwd+bwd/{dtype_name}/N{N}", {**base, "mode": "forward+backward"},
                        forward_backward, corr_bytes(cfg, N, dtype, True), corr_flops(cfg, N, True))

    # CoTracker3's 4D correlation at level 0 (the largest map): the fused kernel against the reference layout
    for N in cfg["corr_Ns"]:
        for dtype_name in cfg["dtypes"]:
            dtype = getattr(torch, dtype_name)
            g = torch.Generator(device="cpu").manual_seed(1)
            level = torch.randn(1, cfg["S"], cfg["C"], cfg["H"], cfg["W"], generator=g).to(st.device, dtype)
            xy = (torch.rand(1, cfg["S"], N, 2, generator=g) * torch.tensor([cfg["W"] - 1.0, cfg["H"] - 1.0]))
            xy = xy.to(st.device)
            query = torch.randn(1, N, (2 * r + 1) ** 2, cfg["C"], generator=g).to(st.device, dtype)
            rows, P = cfg["S"] * N, (2 * r + 1) ** 2
            esize = torch.finfo(dtype).bits // 8
            flops4d = 2.0 * rows * P * P * cfg["C"]

            def diff_vs_reference():
                with torch.no_grad():
                    a = ops.corr4d(level, xy, query, r, backend="triton").float()
                    return (a - ref.corr4d_reference(level.float(), xy, query.float(), r)).abs().max().item()

            for impl in ("triton", "reference"):
                # bytes: the kernel reads (K+1)^2 C per row and writes K^4 fp32; the reference also writes and
                # re-reads its K^2 C patches (4 taps each when sampling)
                nbytes = (rows * (2 * r + 2) ** 2 * cfg["C"] * esize + rows * P * P * 4 if impl == "triton" else
                          rows * P * cfg["C"] * esize * 6 + rows * P * P * esize)
                base = {"op": "corr4d", "impl": impl, "N": N, "dtype": dtype_name, "mode": "forward"}

                def fwd(impl=impl):
                    with torch.no_grad():
                        return ops.corr4d(level, xy, query, r, backend=impl)

                measure(f"corr4d/{impl}/fwd/{dtype_name}/N{N}", base, fwd, nbytes, flops4d,
                        diff_vs_reference if impl == "triton" else None)

    H, D = cfg["heads"], cfg["head_dim"]
    for N in cfg["attn_Ns"]:
        for kind, batch, L in (("time", N, cfg["time_L"]), ("group", 8, N)):
            qkv = torch.randn(batch, L, 3, H, D, device=st.device, dtype=torch.bfloat16)
            nbytes = 4 * batch * L * H * D * 2  # q, k, v read, the output written, bf16
            flops = 4 * batch * H * L * L * D  # q k^T and p v
            ref32 = None
            for impl in ("cuda", "sdpa"):
                key = f"attention/{impl}/{kind}/bfloat16/N{N}"
                base = {"op": "attention", "impl": impl, "kind": kind, "batch": batch, "L": L, "N": N,
                        "dtype": "bfloat16", "mode": "forward"}
                if impl == "cuda" and not st.cuda:
                    if key not in st.skip_cases:
                        st.add({**base, "key": key, **_cuda_only("the CUDA attention kernels")})
                    continue
                if impl == "cuda":
                    from cotracker_fast.ops.op_attention import attention_cuda as fn
                else:
                    fn = ref.attention_sdpa
                if ref32 is None:  # fp32 attention through SDPA: the explicit form would hold L^2 scores
                    ref32 = ref.attention_sdpa(qkv.float())

                def check(fn=fn):
                    return (fn(qkv).float() - ref32).abs().max().item()

                measure(key, base, lambda fn=fn: fn(qkv), nbytes, flops, check)


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


CHILD_FUNCS = {"build": stage_build, "end_to_end": stage_end_to_end, "micro": stage_micro, "speed": stage_speed}


def child_main(args: argparse.Namespace) -> int:
    """Run one child stage (``--child``); exceptions outside a case are recorded as the stage's error."""
    skip = json.loads(Path(args.skip_cases).read_text()) if args.skip_cases else []
    st = ChildStage(args.child, Path(args.child_out), args.deadline, args.dry_run, skip)
    if args.dry_run:
        torch.set_num_threads(1)  # the dry run shares a small CPU; its times mean nothing
    try:
        CHILD_FUNCS[args.child](st)
    except Exception as err:
        st.record["error"] = _error_text(err)
        st.record["items"]["stage"] = {"status": "failed", "error": st.record["error"]}
    st.finish()
    return 0


# ------------------------------------------------------------------------------------------------ the runner
def _kill_group(proc: subprocess.Popen) -> None:
    """End a child and everything it started (compile workers): SIGTERM to its process group, SIGKILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def read_journal(path: Path) -> Dict[str, Dict[str, Any]]:
    """Per test node id, its result from a :mod:`benchmarks._pytest_record` journal. ``outcome``: ``failed`` when
    any phase failed, ``skipped`` (with the reason) when setup skipped it, ``passed`` when the call passed,
    ``unfinished`` for a test that started and never reported (the one running when the process ended), ``not_run``
    for a collected test that never started."""
    tests: Dict[str, Dict[str, Any]] = {}
    if not path.exists():
        return tests
    for line in path.read_text().splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut off by a kill
        if ev["event"] == "collected":
            for nodeid in ev["nodeids"]:
                tests.setdefault(nodeid, {"outcome": "not_run", "duration_s": 0.0})
            continue
        t = tests.setdefault(ev["nodeid"], {"outcome": "not_run", "duration_s": 0.0})
        if ev["event"] == "start":
            if t["outcome"] == "not_run":
                t["outcome"] = "unfinished"
            continue
        t["duration_s"] = round(t["duration_s"] + ev.get("duration", 0.0), 4)
        if t["outcome"] == "failed":
            continue  # a failure stays, whatever a later phase says
        if ev["outcome"] == "failed" or t["outcome"] in ("unfinished", "not_run", "passed"):
            t["outcome"] = ev["outcome"]
            if ev.get("message"):
                t["message"] = ev["message"]
    return tests


def plan_tests(prev_tests: Dict[str, Dict[str, Any]], dry: bool) -> List[tuple]:
    """``(name, pytest arguments)`` per pytest process of the tests stage.

    On a GPU: one process per file of :data:`TEST_FILES`, or per ``-k`` split of :data:`TEST_SPLITS`, all run side
    by side, minus :data:`GPU_DESELECT`. Resuming (``prev_tests``: the saved run's results by node id), only the tests
    that did not pass or skip there, one process per file, and none for a file whose tests all did. The dry run
    collects the four files in one process and selects the ``gpu`` tests, which skip without CUDA (a quarter of the
    start-up time on a small CPU).
    """
    if dry:
        return [("tests (all files, -m gpu)", [*TEST_FILES, "-m", "gpu"])]
    done = {n for n, t in prev_tests.items() if t["outcome"] in ("passed", "skipped")}
    plans = []
    for f in TEST_FILES:
        deselect = [a for d in GPU_DESELECT if d.startswith(f + "::") for a in ("--deselect", d)]
        mine = [n for n in prev_tests if n.startswith(f + "::")]
        redo = [n for n in mine if n not in done]
        if mine:
            if redo:
                plans.append((f, redo + deselect))
            continue
        splits = TEST_SPLITS.get(f, ())
        if not splits:
            plans.append((f, [f] + deselect))
            continue
        rest = "not (" + " or ".join(f"({e})" for e in splits) + ")"
        for expr in (*splits, rest):
            plans.append((f"{f} -k {expr}", [f, "-k", expr] + deselect))
    return plans


class GpuCheck:
    """The stage runner of ``make gpu-check`` (see the module docstring)."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.dry = bool(args.dry_run)
        self.t0 = time.time()
        self.budget = float(args.budget if args.budget is not None else (DRY_BUDGET_S if self.dry else GPU_BUDGET_S))
        self.cuda = torch.cuda.is_available() and not self.dry
        self.python = args.python or sys.executable
        if args.work_dir:
            self.work = Path(args.work_dir)
        elif self.dry:
            self.work = Path(tempfile.mkdtemp(prefix="cotracker_fast-gpu-check-dry-"))
        else:
            self.work = ROOT / "build" / "gpu-check"
        self.work.mkdir(parents=True, exist_ok=True)
        self.results_dir = Path(args.out_dir) if args.out_dir else (self.work if self.dry else RESULTS_DIR)
        self.out = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
        self.log_path = self.work / "gpu_check.log"
        self.log_path.write_text("")
        self.stages = [s for s in STAGES if s in (args.stages or STAGES)]
        self.deadlines = {s: self.t0 + DEADLINE_FRACTION[s] * self.budget for s in STAGES}
        name = torch.cuda.get_device_name(0) if self.cuda else "cpu dry run"
        slug = name.lower().replace(" ", "-")
        self.results_path = self.results_dir / f"gpu_check-{slug}-{datetime.date.today().isoformat()}.json"
        self.data: Dict[str, Any] = {
            "suite": "gpu_check", "schema": SCHEMA, "created": now_iso(), "finished": None, "dry_run": self.dry,
            "device_kind": "cuda" if self.cuda else "cpu", "device": name, "budget_s": self.budget,
            "deadlines_s": {s: round(DEADLINE_FRACTION[s] * self.budget, 1) for s in STAGES},
            "stages": {}, "verdicts": {}, "kernel_hash": kernel_hash(),
        }
        self.previous = self._load_resume(args.resume)
        self.env = self._child_env()

    # ---------------------------------------------------------------- plumbing
    def elapsed(self) -> float:
        return time.time() - self.t0

    def log(self, msg: str) -> None:
        line = f"[{self.elapsed():6.1f} s] {msg}"
        print(line, flush=True)
        with open(self.log_path, "a") as f:
            f.write(line + "\n")

    def _child_env(self) -> Dict[str, str]:
        """The children's environment: the repository on the path, one extension build and one Triton cache shared
        by every child (in the work folder, so a second call on a warm machine reuses them), this GPU's
        architecture only (half the compile time of the default two), no backend override of the user's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COTRACKER_FAST_BACKEND")}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("COTRACKER_FAST_CACHE", str(self.work / "ext-cache"))
        # the build stage compiles the extension into that cache; the processes after it only load it (were the
        # build to fail, eight test processes would otherwise start the same build in one folder)
        env["COTRACKER_FAST_NO_JIT"] = "1"
        env.setdefault("TRITON_CACHE_DIR", str(self.work / "triton-cache"))
        if self.cuda:
            major, minor = torch.cuda.get_device_capability(0)
            env.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
        else:
            env["TRITON_INTERPRET"] = "1"  # Triton kernels on CPU tensors (read when the kernels are defined)
            env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def _load_resume(self, resume: Optional[str]) -> Optional[Dict[str, Any]]:
        if not resume:
            return None
        if resume == "newest":
            runs = []
            for p in sorted(self.results_dir.glob("gpu_check-*.json")):
                with contextlib.suppress(ValueError, OSError):
                    d = json.loads(p.read_text())
                    if d.get("suite") == "gpu_check" and d.get("dry_run") == self.dry:
                        runs.append((d.get("created", ""), p, d))
            if not runs:
                self.log(f"--resume: no saved run in {self.results_dir}; running everything")
                return None
            _, path, prev = max(runs, key=lambda r: r[0])
        else:
            path = Path(resume)
            prev = json.loads(path.read_text())
        if prev.get("kernel_hash", {}).get("combined") != self.data["kernel_hash"]["combined"]:
            self.log(f"--resume: {path} measured other kernels (hash {prev.get('kernel_hash', {}).get('combined')} "
                     f"!= {self.data['kernel_hash']['combined']}); running everything")
            return None
        if prev.get("dry_run") != self.dry:
            self.log(f"--resume: {path} is {'a' if prev.get('dry_run') else 'not a'} dry run; running everything")
            return None
        self.log(f"--resume: redoing what {path} (created {prev.get('created')}) did not finish")
        self.data["resumed_from"] = {"path": str(path), "created": prev.get("created")}
        return prev

    def save(self) -> None:
        """The results JSON (atomically) to the results folder and to $OUT, with the log."""
        write_results(self.results_path, self.data)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            write_results(self.out / self.results_path.name, self.data)
            write_text(self.out / "gpu_check.log", self.log_path.read_text())

    def _run_child(self, cmd: List[str], log_file: Path, deadline: float, extra_env: Optional[dict] = None
                   ) -> Dict[str, Any]:
        """Run ``cmd`` (its output to ``log_file``) until it ends or the deadline passes; rc, wall time, timed_out."""
        t0 = time.time()
        with open(log_file, "w") as logf:
            proc = subprocess.Popen(cmd, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=logf,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc, timed_out = proc.wait(timeout=max(1.0, deadline - time.time())), False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                rc, timed_out = proc.returncode, True
        return {"rc": rc, "wall_s": round(time.time() - t0, 2), "timed_out": timed_out}

    def _append_log(self, title: str, log_file: Path) -> None:
        text = log_file.read_text(errors="replace") if log_file.exists() else ""
        if len(text) > LOG_TAIL_CHARS:
            text = f"... ({len(text) - LOG_TAIL_CHARS} characters cut)\n" + text[-LOG_TAIL_CHARS:]
        with open(self.log_path, "a") as f:
            f.write(f"----- {title} -----\n{text}\n----- end of {title} -----\n")

    # ---------------------------------------------------------------- stages
    def run(self) -> int:
        self.log(f"gpu-check {'(dry run, CPU) ' if self.dry else ''}on {self.data['device']}: budget "
                 f"{self.budget:.0f} s, stages {', '.join(self.stages)}; results -> {self.results_path}")
        for stage in STAGES:
            if stage not in self.stages:
                continue
            left = self.deadlines[stage] - time.time()
            carried = self._carried(stage)
            if carried is not None:
                self.data["stages"][stage] = carried
                self.log(f"{stage}: carried over from the resumed run (passed there)")
            elif left < MIN_START_S[stage]:
                self.data["stages"][stage] = {
                    "status": "skipped", "reason": f"deadline: {max(left, 0):.0f} s left before this stage's end "
                    f"({DEADLINE_FRACTION[stage]:.0%} of the {self.budget:.0f} s budget), it needs at least "
                    f"{MIN_START_S[stage]:.0f} s"}
                self.log(f"{stage}: skipped ({self.data['stages'][stage]['reason']})")
            else:
                t0 = time.time()
                self.log(f"{stage}: start, {left:.0f} s to its deadline")
                try:
                    rec = getattr(self, f"stage_{stage}")()
                except Exception as err:  # a bug of this runner: recorded, the later stages still run
                    rec = {"status": "failed", "error": _error_text(err)}
                rec["wall_s"] = round(time.time() - t0, 2)
                rec["ended_at_s"] = round(self.elapsed(), 2)
                self.data["stages"][stage] = rec
                note = stage_note(rec)
                self.log(f"{stage}: {rec['status']} in {rec['wall_s']:.1f} s" + (f" ({note})" if note else ""))
            self.data["verdicts"] = self.verdicts()
            self.save()
        self.data["finished"] = now_iso()
        self.data["wall_s"] = round(self.elapsed(), 2)
        self.save()
        self.log(f"results written to {self.results_path}" + (f" and {self.out}" if self.out else ""))
        print(self.summary(), flush=True)
        return 1 if any(s["status"] == "failed" for s in self.data["stages"].values()) else 0

    def _carried(self, stage: str) -> Optional[Dict[str, Any]]:
        """A stage that passed in the resumed run, which is not run again: not the environment (a new machine), not
        the build (this process's children need it; on a warm machine it is cached), not the doc."""
        if self.previous is None or stage in ("env", "build", "doc"):
            return None
        prev = self.previous.get("stages", {}).get(stage)
        if prev and prev.get("status") == "passed":
            return {**prev, "carried_from": self.previous.get("created")}
        return None

    def stage_env(self) -> Dict[str, Any]:
        info = device_info("cuda" if self.cuda else "cpu")
        if os.environ.get(COMMIT_ENV):
            info.update(commit=os.environ[COMMIT_ENV], commit_source=COMMIT_ENV)
        elif info.get("commit") is None:
            info["commit_source"] = f"unknown: no git metadata here (set {COMMIT_ENV}, or COMMIT= for make)"
        from cotracker_fast import _cuda_build

        nvcc = _cuda_build.nvcc_path()
        info.update(triton=_version("triton"), numpy=_version("numpy"), pytest=_version("pytest"),
                    nvcc=((_command_output([nvcc, "--version"]) or "").splitlines() or [None])[-1] if nvcc else None,
                    kernel_hash=self.data["kernel_hash"], argv=sys.argv[1:], python_executable=sys.executable)
        if self.cuda:
            props = torch.cuda.get_device_properties(0)
            info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", sm_count=props.multi_processor_count,
                        memory_GB=round(props.total_memory / 1e9, 1),
                        l2_MB=round(getattr(props, "L2_cache_size", 0) / 2**20, 1) or None,
                        cudnn=torch.backends.cudnn.version(),
                        driver=_command_output(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]))
        self.data["environment"] = info
        self.data["commit"] = info.get("commit")
        return {"status": "passed"}

    def _child_stage(self, stage: str, skip_cases: Sequence[str] = ()) -> Dict[str, Any]:
        out = self.work / f"{stage}.json"
        out.unlink(missing_ok=True)
        cmd = [self.python, "-m", "benchmarks.gpu_check", "--child", stage, "--child-out", str(out),
               "--deadline", str(self.deadlines[stage])]
        if skip_cases:
            skip_file = self.work / f"{stage}-skip.json"
            skip_file.write_text(json.dumps(sorted(skip_cases)))
            cmd += ["--skip-cases", str(skip_file)]
        if self.dry:
            cmd.append("--dry-run")
        log_file = self.work / f"{stage}.log"
        # the child's own guard ends it in time; the hard timeout (a few seconds later) catches a hang
        run = self._run_child(cmd, log_file, self.deadlines[stage] + 5.0)
        self._append_log(f"{stage} child output", log_file)
        try:
            rec = json.loads(out.read_text())
        except (OSError, ValueError):
            rec = {"status": "failed", "results": [], "items": {}}
        rec["process"] = run
        if run["timed_out"]:
            rec["status"] = "partial" if rec.get("results") else "failed"
            rec["reason"] = f"deadline: the child was stopped after {run['wall_s']:.0f} s"
        elif run["rc"] != 0:
            tail = log_file.read_text(errors="replace")[-3000:] if log_file.exists() else ""
            rec.update(status="failed", error=f"the child exited with {run['rc']}:\n{tail}")
        elif rec.get("status") == "running":
            rec["status"] = "failed"
            rec["error"] = "the child ended without finishing its record"
        return rec

    def stage_build(self) -> Dict[str, Any]:
        return self._child_stage("build")

    def _bench_stage(self, stage: str) -> Dict[str, Any]:
        """A benchmark stage; resumed, only the cases without a figure (or with an error) are run again."""
        prev = (self.previous or {}).get("stages", {}).get(stage) or {}
        kept = [r for r in prev.get("results", []) if r.get("status") == "measured"]
        rec = self._child_stage(stage, [r["key"] for r in kept])
        if kept:
            carried = [{**r, "carried_from": self.previous.get("created")} for r in kept]
            rec["results"] = carried + rec.get("results", [])
            for k in ("config", "methods"):
                rec.setdefault(k, prev.get(k))
        return rec

    def stage_end_to_end(self) -> Dict[str, Any]:
        return self._bench_stage("end_to_end")

    def stage_micro(self) -> Dict[str, Any]:
        return self._bench_stage("micro")

    def stage_speed(self) -> Dict[str, Any]:
        return self._bench_stage("speed")

    def stage_tests(self) -> Dict[str, Any]:
        """The pytest processes of :meth:`test_plans`, ``--jobs`` at a time, each recording its tests as they finish."""
        prev_tests = ((self.previous or {}).get("stages", {}).get("tests") or {}).get("tests", {})
        done = {n: t for n, t in prev_tests.items() if t["outcome"] in ("passed", "skipped")}
        plans = plan_tests(prev_tests, self.dry)
        files: Dict[str, Any] = {}
        tests: Dict[str, Any] = {n: {**t, "carried_from": self.previous.get("created")} for n, t in done.items()}
        jobs = max(1, self.args.jobs or len(plans))
        deadline = self.deadlines["tests"]
        running: List[tuple] = []
        pending = list(enumerate(plans))
        while pending or running:
            while pending and len(running) < jobs:
                i, (f, targets) = pending.pop(0)
                slug = f"tests-{i}"
                journal = self.work / f"{slug}.journal.jsonl"
                journal.unlink(missing_ok=True)
                log_file = self.work / f"{slug}.log"
                cmd = [self.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "benchmarks._pytest_record",
                       *targets]
                logf = open(log_file, "w")
                proc = subprocess.Popen(cmd, cwd=ROOT, env={**self.env, RECORD_ENV: str(journal)}, stdout=logf,
                                        stderr=subprocess.STDOUT, start_new_session=True)
                running.append((f, proc, logf, log_file, journal, time.time()))
                self.log(f"tests: {f} started ({len(targets)} target(s))")
            time.sleep(0.2)
            for entry in list(running):
                f, proc, logf, log_file, journal, started = entry
                timed_out = False
                if proc.poll() is None:
                    if time.time() < deadline:
                        continue
                    _kill_group(proc)
                    timed_out = True
                logf.close()
                running.remove(entry)
                found = read_journal(journal)
                tests.update(found)
                rc = proc.returncode
                counts = _count(found.values())
                files[f] = {"rc": rc, "timed_out": timed_out, "wall_s": round(time.time() - started, 2), **counts}
                # rc 0: all passed; 1: some failed; 5: nothing selected (expected only in the dry run, whose -m gpu
                # leaves some files empty; on a GPU a stale TEST_SPLITS expression); others: pytest itself broke
                if timed_out:
                    files[f]["reason"] = "deadline: the pytest process was stopped"
                elif rc not in (0, 1, 5) or (rc == 5 and not self.dry):
                    files[f]["error"] = f"pytest exited with {rc}: " + log_file.read_text(errors="replace")[-3000:]
                self._append_log(f"pytest {f}", log_file)
                self.log(f"tests: {f} rc={rc}{' (deadline)' if timed_out else ''} " + _fmt_counts(counts))
        counts = _count(tests.values())
        failed = counts["failed"] or any("error" in v for v in files.values())
        stopped = counts["unfinished"] or counts["not_run"] or any(v["timed_out"] for v in files.values())
        rec = {"status": "failed" if failed else ("partial" if stopped else "passed"), "counts": counts,
               "files": files, "tests": dict(sorted(tests.items()))}
        if stopped:
            rec["reason"] = "deadline: pytest stopped before every test ran (resume to run the rest)"
        return rec

    def stage_doc(self) -> Dict[str, Any]:
        """The gpu-check block of docs/PERFORMANCE.md from the results just written (a dry run renders into a copy in
        the work folder: the repository's doc holds GPU runs only)."""
        from benchmarks import make_performance_doc as mpd

        self.data["wall_s"] = round(self.elapsed(), 2)  # so far: the doc is written before the run ends
        self.save()  # the renderer reads the file
        doc = self.work / "PERFORMANCE.md" if self.dry else mpd.DOC
        if self.dry and mpd.DOC.exists():
            shutil.copyfile(mpd.DOC, doc)
        rc = mpd.main([str(self.results_path), "--blocks", "gpu-check", "--doc", str(doc)])
        if rc != 0:
            return {"status": "failed", "error": f"make_performance_doc returned {rc}"}
        if self.out is not None and not self.dry:
            shutil.copyfile(doc, self.out / "PERFORMANCE.md")
        return {"status": "passed", "doc": str(doc)}

    # ---------------------------------------------------------------- verdicts and summary
    def verdicts(self) -> Dict[str, Any]:
        """Per kernel: did its tests pass, and how does it compare with the PyTorch path (speed-up = the PyTorch
        path's time over the kernel's, per measured case). ``wins`` needs every test passed and a speed-up > 1 in
        every case; this is evidence for a ``backend="auto"`` change, which is made by hand."""
        tests = (self.data["stages"].get("tests") or {}).get("tests", {})
        micro = [r for r in (self.data["stages"].get("micro") or {}).get("results", [])
                 if r.get("status") == "measured"]
        out = {}
        for name, (op, impl, other) in {"corr_sample/triton": ("corr_sample", "triton", "torch"),
                                        "attention/cuda": ("attention", "cuda", "sdpa"),
                                        "corr4d/triton": ("corr4d", "triton", "reference")}.items():
            mine = [t for n, t in tests.items() if n.startswith(KERNEL_TESTS[name])]
            c = _count(mine)
            tests_ok = bool(mine) and c["passed"] > 0 and not (c["failed"] or c["unfinished"] or c["not_run"])
            speedups = {}
            for r in micro:
                if r["op"] == op and r["impl"] == impl:
                    twin = next((x for x in micro if x["op"] == op and x["impl"] == other and x["N"] == r["N"]
                                 and x["dtype"] == r["dtype"] and x["mode"] == r["mode"]
                                 and x.get("kind") == r.get("kind")), None)
                    if twin:
                        label = " ".join(str(v) for v in (r.get("kind"), r["mode"], r["dtype"], f"N={r['N']}") if v)
                        speedups[label] = twin["ms"] / r["ms"]
            wins = tests_ok and bool(speedups) and min(speedups.values()) > 1.0
            out[name] = {"tests": c, "tests_passed": tests_ok, "speedup_vs_pytorch": speedups,
                         "min_speedup": min(speedups.values()) if speedups else None, "wins": wins,
                         "recommendation": ("join backend='auto' on CUDA" if wins else "keep explicit-only")
                         + ("" if self.cuda else " (dry run: no GPU figure)")}
        return out

    def summary(self) -> str:
        lines = ["", f"gpu-check summary: {self.data['device']}, {self.data.get('wall_s', 0):.0f} s of "
                 f"{self.budget:.0f} s budget", "| stage | status | wall (s) | ended at (s) | deadline (s) | note |",
                 "|---|---|---:|---:|---:|---|"]
        for s in self.stages:
            r = self.data["stages"].get(s, {})
            note = stage_note(r)[:160]
            lines.append(f"| {s} | {r.get('status', '-')} | {r.get('wall_s', '-')} | {r.get('ended_at_s', '-')} "
                         f"| {self.data['deadlines_s'][s]} | {note} |")
        for name, v in self.data["verdicts"].items():
            sp = f"min speed-up {v['min_speedup']:.2f}x" if v["min_speedup"] else "no speed figure"
            lines.append(f"verdict {name}: tests {'passed' if v['tests_passed'] else 'NOT passed'}, {sp} -> "
                         f"{v['recommendation']}")
        failed = [n for n, t in ((self.data["stages"].get("tests") or {}).get("tests") or {}).items()
                  if t["outcome"] in ("failed", "unfinished", "not_run")]
        if failed:
            lines.append("tests not passed: " + ", ".join(failed[:20]) + (" ..." if len(failed) > 20 else ""))
        return "\n".join(lines)


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1]


def stage_note(rec: Dict[str, Any]) -> str:
    """One line on a stage's record: the test counts, the reason it was skipped or stopped, its error, or its first
    failed case or item (key and the last line of the error)."""
    if "counts" in rec:
        return _fmt_counts(rec["counts"]) + (f"; {rec['reason']}" if rec.get("reason") else "")
    if rec.get("reason"):
        return rec["reason"]
    if rec.get("error"):
        return _last_line(rec["error"])
    bad = [(r.get("key", "?"), r) for r in rec.get("results", []) if r.get("status") == "failed"]
    bad += [(k, i) for k, i in (rec.get("items") or {}).items() if i.get("status") == "failed"]
    if bad:
        key, r = bad[0]
        return f"{len(bad)} failed, first {key}: {_last_line(r.get('error', ''))}"
    skipped = [r for r in rec.get("results", []) if r.get("status") == "skipped"]
    if skipped:
        return f"{len(skipped)} case(s) skipped, first {skipped[0].get('key', '?')}: {skipped[0].get('reason', '')}"
    return ""


def _count(tests: Iterable[Dict[str, Any]]) -> Dict[str, int]:
    c = {"passed": 0, "failed": 0, "skipped": 0, "unfinished": 0, "not_run": 0}
    for t in tests:
        c[t["outcome"]] = c.get(t["outcome"], 0) + 1
    return c


def _fmt_counts(c: Dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in c.items() if v) or "no tests"


# ------------------------------------------------------------------------------------------------ entry point
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="every stage's code on the CPU at tiny sizes")
    ap.add_argument("--budget", type=float, help=f"seconds for the whole run (default {GPU_BUDGET_S:.0f}; "
                    f"dry run {DRY_BUDGET_S:.0f}); the stage deadlines are fractions of it")
    ap.add_argument("--stages", nargs="+", choices=STAGES, help="run only these stages (in the fixed order)")
    ap.add_argument("--resume", nargs="?", const="newest", metavar="JSON",
                    help="redo only what a saved run did not finish (default: the newest in the results folder)")
    ap.add_argument("--out-dir", help="results folder (default benchmarks/results; dry run: the work folder)")
    ap.add_argument("--work-dir", help="logs, journals, caches (default build/gpu-check; dry run: a temporary one)")
    ap.add_argument("--jobs", type=int, help="pytest processes run side by side (default: all of them)")
    ap.add_argument("--python", help="interpreter of the children (default: this one)")
    ap.add_argument("--doc", action="store_true",
                    help="only regenerate the gpu-check block of docs/PERFORMANCE.md from the newest saved GPU run")
    # internal: one child stage
    ap.add_argument("--child", choices=CHILD_STAGES, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--skip-cases", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    if args.doc:
        from benchmarks import make_performance_doc as mpd

        return mpd.main(["--blocks", "gpu-check"])
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu-check: no CUDA device here. Run it on a GPU machine, or `make gpu-check DRY_RUN=1` "
              "(python -m benchmarks.gpu_check --dry-run) for the CPU dry run.", file=sys.stderr)
        return 2
    return GpuCheck(args).run()


if __name__ == "__main__":
    sys.exit(main())
