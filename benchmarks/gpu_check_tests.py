"""The tests stage of ``make gpu-check`` (:mod:`benchmarks.gpu_check`): which GPU test files run, how they are split
into pytest processes that run side by side (their compile times overlap), what a resumed run redoes, and the reading
of the per-test journal that ``benchmarks/_pytest_record.py`` appends to as each test finishes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, List

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
    collects the files in one process and selects the ``gpu`` tests, which skip without CUDA (a quarter of the
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


def _count(tests: Iterable[Dict[str, Any]]) -> Dict[str, int]:
    c = {"passed": 0, "failed": 0, "skipped": 0, "unfinished": 0, "not_run": 0}
    for t in tests:
        c[t["outcome"]] = c.get(t["outcome"], 0) + 1
    return c


def _fmt_counts(c: Dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in c.items() if v) or "no tests"
