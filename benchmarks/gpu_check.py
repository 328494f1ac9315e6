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
                            split (:data:`benchmarks.gpu_check_tests.TEST_SPLITS`), all side by side so that their
                            compile times overlap; every test's result is recorded as it finishes
                            (``benchmarks/_pytest_record.py``)
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

The build and every benchmark stage run in a child process (``--child``; their code and sizes are in
:mod:`benchmarks.gpu_check_stages` and :mod:`benchmarks.gpu_check_micro`; the test files and their split in
:mod:`benchmarks.gpu_check_tests`) with a hard timeout at the stage's deadline,
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
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file (python benchmarks/gpu_check.py) rather than with -m
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._common import RESULTS_DIR, device_info, write_results, write_text  # noqa: E402
from benchmarks import gpu_check_stages as stages  # noqa: E402
from benchmarks import gpu_check_micro as micro  # noqa: E402
from benchmarks.gpu_check_stages import ChildStage, command_output, dist_version, error_text  # noqa: E402
from benchmarks.gpu_check_tests import KERNEL_TESTS, _count, _fmt_counts, plan_tests, read_journal  # noqa: E402

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

#: What each child stage runs (``--child <stage>``).
CHILD_FUNCS = {"build": stages.stage_build, "end_to_end": stages.stage_end_to_end, "micro": micro.stage_micro,
               "speed": stages.stage_speed}
KERNEL_SOURCES = ("kernels", "csrc")
SOURCE_SUFFIXES = {".py", ".cu", ".cuh", ".h", ".hpp", ".cpp", ".c"}
RECORD_ENV = "COTRACKER_GPU_CHECK_RECORD"
COMMIT_ENV = "COTRACKER_COMMIT"  # the commit, where the tree has no git metadata (the device machine's copy)
LOG_TAIL_CHARS = 40_000  # of each child's output, copied into the main log


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


def child_main(args: argparse.Namespace) -> int:
    """Run one child stage (``--child``); exceptions outside a case are recorded as the stage's error."""
    skip = json.loads(Path(args.skip_cases).read_text()) if args.skip_cases else []
    st = ChildStage(args.child, Path(args.child_out), args.deadline, args.dry_run, skip)
    if args.dry_run:
        torch.set_num_threads(1)  # the dry run shares a small CPU; its times mean nothing
    try:
        CHILD_FUNCS[args.child](st)
    except Exception as err:
        st.record["error"] = error_text(err)
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
                    rec = {"status": "failed", "error": error_text(err)}
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
        info.update(triton=dist_version("triton"), numpy=dist_version("numpy"), pytest=dist_version("pytest"),
                    nvcc=((command_output([nvcc, "--version"]) or "").splitlines() or [None])[-1] if nvcc else None,
                    kernel_hash=self.data["kernel_hash"], argv=sys.argv[1:], python_executable=sys.executable)
        if self.cuda:
            props = torch.cuda.get_device_properties(0)
            info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", sm_count=props.multi_processor_count,
                        memory_GB=round(props.total_memory / 1e9, 1),
                        l2_MB=round(getattr(props, "L2_cache_size", 0) / 2**20, 1) or None,
                        cudnn=torch.backends.cudnn.version(),
                        driver=command_output(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]))
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
        """The pytest processes of :func:`benchmarks.gpu_check_tests.plan_tests`, ``--jobs`` at a time, each
        recording its tests as they finish."""
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
