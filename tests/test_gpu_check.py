"""``make gpu-check`` (benchmarks/gpu_check.py): the dry run of every stage on the CPU, the time guard, the resume
logic, the per-test journal, the verdicts and the doc block. The dry run is what keeps the GPU script from rotting
between the rare sessions that are lent a GPU: any exception in a stage fails it here."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import gpu_check as gc
from benchmarks import gpu_check_tests as gct
from benchmarks import make_performance_doc as mpd

ROOT = Path(__file__).resolve().parents[1]


def _run(args, tmp_path, **env):
    """``python -m benchmarks.gpu_check --dry-run`` with its work and results folders in ``tmp_path``."""
    cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--dry-run", "--work-dir", str(tmp_path / "work"),
           "--out-dir", str(tmp_path / "results"), *args]
    full_env = {k: v for k, v in os.environ.items() if k != "OUT"}  # $OUT only where a test sets it
    full_env.update(PYTHONPATH=str(ROOT), **env)
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600)
    results = sorted((tmp_path / "results").glob("gpu_check-*.json"))
    data = json.loads(results[-1].read_text()) if results else None
    return proc, data, (results[-1] if results else None)


def _all_records(data):
    for name, st in data["stages"].items():
        for r in st.get("results", []):
            yield name, r.get("key"), r
        for key, item in (st.get("items") or {}).items():
            yield name, key, item


@pytest.mark.slow
def test_dry_run_runs_every_stage(tmp_path):
    """Every stage runs on the CPU at tiny sizes and passes; the CUDA-only calls are skipped as such; the results go
    to the given folder and to $OUT, never to benchmarks/results. About 50 s on the shared 2-core CI box."""
    before = sorted(gc.RESULTS_DIR.glob("gpu_check-*.json"))
    out = tmp_path / "out"
    t0 = time.time()
    proc, data, path = _run([], tmp_path, OUT=str(out))
    wall = time.time() - t0
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert data is not None and data["dry_run"] and data["device_kind"] == "cpu"
    assert list(data["stages"]) == list(gc.STAGES)
    bad = {s: st for s, st in data["stages"].items() if st["status"] != "passed"}
    assert not bad, bad
    failed = [(s, k, r.get("error", "")[-500:]) for s, k, r in _all_records(data) if r["status"] == "failed"]
    assert not failed, failed
    # the CUDA-only calls are reported as skipped, with that reason
    cuda_only = {(s, k) for s, k, r in _all_records(data) if r["status"] == "skipped" and "CUDA-only" in r["reason"]}
    assert ("build", "cuda_extension") in cuda_only and ("micro", "roofs") in cuda_only
    assert ("end_to_end", "fast-bf16-compile/N8") in cuda_only
    assert ("micro", "attention/cuda/time/bfloat16/N16") in cuda_only
    # what does run on the CPU ran: the Triton kernels in the interpreter, the predictor, the baselines
    measured = {(s, k) for s, k, r in _all_records(data) if r["status"] in ("measured", "passed")}
    assert {("build", "triton_corr_sample_float32"), ("build", "triton_corr_sample_bfloat16")} <= measured
    assert {("end_to_end", "reference/N8"), ("end_to_end", "auto-bf16/N8")} <= measured
    assert {("end_to_end", "v3-offline-bf16/N8"), ("end_to_end", "v3-online-bf16/N8")} <= measured
    assert {("micro", "corr4d/triton/fwd/bfloat16/N16"), ("micro", "corr4d/reference/fwd/float32/N16")} <= measured
    assert {("micro", "corr_sample/triton/fwd+bwd/bfloat16/N16"),
            ("micro", "attention/sdpa/group/bfloat16/N16")} <= measured
    assert {("speed", "cotracker-reference/N4"), ("speed", "pips-batched/N4")} <= measured
    # the GPU tests were collected and recorded one by one through the journal (skipped without CUDA)
    tests = data["stages"]["tests"]
    assert tests["counts"]["skipped"] >= 50 and tests["counts"]["failed"] == tests["counts"]["unfinished"] == 0
    assert any(n.startswith("tests/test_gpu_fast_path.py::") for n in tests["tests"])
    assert data["kernel_hash"] == gc.kernel_hash() and data["environment"]["torch"]
    # written to $OUT (the device tool brings those files back), with the log; the doc block rendered into a copy
    assert sorted(p.name for p in out.iterdir()) == sorted([path.name, "gpu_check.log"])  # a dry run's doc stays
    doc = Path(data["stages"]["doc"]["doc"]).read_text()
    assert mpd.GC_BEGIN in doc and "Dry run on the CPU" in doc and "### End to end" in doc
    assert sorted(gc.RESULTS_DIR.glob("gpu_check-*.json")) == before
    print(f"dry run: {wall:.1f} s")


def test_time_guard_skips_later_stages_with_the_reason(tmp_path):
    """With too little time the stages are skipped with the reason, and the results JSON is still written."""
    proc, data, _ = _run(["--budget", "4", "--stages", "env", "build", "tests"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert data["stages"]["env"]["status"] == "passed"
    for stage in ("build", "tests"):
        st = data["stages"][stage]
        assert st["status"] == "skipped" and st["reason"].startswith("deadline:"), st
    assert data["finished"] and "end_to_end" not in data["stages"]


def test_a_child_is_stopped_at_its_deadline(tmp_path):
    runner = gc.GpuCheck(gc.parse_args(["--dry-run", "--work-dir", str(tmp_path)]))
    t0 = time.time()
    run = runner._run_child([sys.executable, "-c", "import time; time.sleep(120)"], tmp_path / "sleep.log",
                            time.time() + 1.0)
    assert run["timed_out"] and run["rc"] != 0
    assert time.time() - t0 < 20


def test_journal_keeps_failures_the_test_in_flight_and_those_never_started(tmp_path):
    journal = tmp_path / "j.jsonl"
    events = [
        {"event": "collected", "nodeids": ["a::ok", "a::bad", "a::skip", "a::hung", "a::never"]},
        {"event": "start", "nodeid": "a::ok"},
        {"event": "report", "nodeid": "a::ok", "when": "call", "outcome": "passed", "duration": 0.5, "message": ""},
        {"event": "start", "nodeid": "a::bad"},
        {"event": "report", "nodeid": "a::bad", "when": "call", "outcome": "failed", "duration": 1.0, "message": "E x"},
        {"event": "report", "nodeid": "a::bad", "when": "teardown", "outcome": "passed", "duration": 0.1},
        {"event": "start", "nodeid": "a::skip"},
        {"event": "report", "nodeid": "a::skip", "when": "setup", "outcome": "skipped", "duration": 0.0,
         "message": "needs a CUDA GPU"},
        {"event": "start", "nodeid": "a::hung"},
    ]
    journal.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"event": "rep')  # a line cut by a kill
    got = gct.read_journal(journal)
    assert got["a::ok"]["outcome"] == "passed"
    assert got["a::bad"]["outcome"] == "failed" and got["a::bad"]["message"] == "E x"
    assert got["a::skip"] == {"outcome": "skipped", "duration_s": 0.0, "message": "needs a CUDA GPU"}
    assert got["a::hung"]["outcome"] == "unfinished" and got["a::never"]["outcome"] == "not_run"
    assert gct._count(got.values()) == {"passed": 1, "failed": 1, "skipped": 1, "unfinished": 1, "not_run": 1}


def test_resume_plans_only_what_did_not_pass():
    f_corr, f_attn, f_gpu, f_fast, f_corr4d = gct.TEST_FILES
    prev = {f"{f_corr}::t1": {"outcome": "passed"}, f"{f_corr}::t2": {"outcome": "skipped"},
            f"{f_attn}::t1": {"outcome": "passed"}, f"{f_attn}::t2[x]": {"outcome": "failed"},
            f"{f_gpu}::t1": {"outcome": "unfinished"}}
    plans = dict(gct.plan_tests(prev, dry=False))
    assert f_corr not in plans  # all passed or skipped there
    assert plans[f_attn][:1] == [f"{f_attn}::t2[x]"] and "--deselect" in plans[f_attn]
    assert plans[f_gpu] == [f"{f_gpu}::t1"]
    assert plans[f_corr4d][:1] == [f_corr4d]  # never run before: the whole file
    assert [args[:1] for name, args in gct.plan_tests(prev, dry=False) if name.startswith(f_fast)] == [[f_fast]] * 4
    fresh = gct.plan_tests({}, dry=False)  # split files: one process per -k expression and one for the rest
    assert [name for name, _ in fresh if name.startswith(f_gpu)] == [f_gpu]
    assert len(fresh) == len(gct.TEST_FILES) + sum(len(v) for v in gct.TEST_SPLITS.values())
    assert gct.plan_tests(prev, dry=True) == [("tests (all files, -m gpu)", [*gct.TEST_FILES, "-m", "gpu"])]


_COLLECT = """
import json, sys, pytest
class Ids:
    def pytest_collection_finish(self, session):
        self.ids = [item.nodeid for item in session.items]
out = {}
for name, args in json.loads(sys.argv[1]):
    ids = Ids()
    rc = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *args], plugins=[ids])
    out[name] = [rc, getattr(ids, "ids", [])]
print("RESULT" + json.dumps(out))
"""


def test_test_splits_cover_each_file_once():
    """The -k splits of the GPU run select disjoint, non-empty sets of tests whose union is the whole file (a stale
    expression would otherwise leave tests out, or run nothing)."""
    plans = [(name, args) for name, args in gct.plan_tests({}, dry=False) if " -k " in name]
    whole = [(f, [f]) for f in gct.TEST_SPLITS]
    proc = subprocess.run([sys.executable, "-c", _COLLECT, json.dumps(plans + whole)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    got = json.loads(proc.stdout.split("RESULT", 1)[1])
    for f in gct.TEST_SPLITS:
        parts = [got[name][1] for name, _ in plans if name.startswith(f + " ")]
        assert all(parts), (f, parts)  # every split selects something
        union = [n for part in parts for n in part]
        assert sorted(union) == sorted(got[f][1]) and len(set(union)) == len(union), f


def test_resume_only_a_run_of_the_current_kernels(tmp_path):
    prev = {"suite": "gpu_check", "dry_run": True, "created": "2026-01-01T00:00:00", "kernel_hash": gc.kernel_hash(),
            "stages": {"micro": {"status": "passed", "results": []}}}
    path = tmp_path / "prev.json"
    path.write_text(json.dumps(prev))
    args = ["--dry-run", "--work-dir", str(tmp_path / "w"), "--resume", str(path)]
    assert gc.GpuCheck(gc.parse_args(args)).previous["created"] == prev["created"]
    assert gc.GpuCheck(gc.parse_args(args))._carried("micro")["carried_from"] == prev["created"]
    path.write_text(json.dumps({**prev, "kernel_hash": {"combined": "0" * 16}}))
    assert gc.GpuCheck(gc.parse_args(args)).previous is None  # other kernels: everything runs again


def test_kernel_hash_follows_the_kernel_sources(tmp_path):
    for d in gc.KERNEL_SOURCES:
        shutil.copytree(ROOT / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    h0 = gc.kernel_hash(tmp_path)
    assert h0 == gc.kernel_hash(ROOT)
    (tmp_path / "csrc" / "README.md").write_text("docs only")
    assert gc.kernel_hash(tmp_path) == h0  # not a source file
    cu = tmp_path / "csrc" / "attention.cu"
    cu.write_text(cu.read_text() + "\n// changed\n")
    h1 = gc.kernel_hash(tmp_path)
    assert h1["csrc"] != h0["csrc"] and h1["combined"] != h0["combined"] and h1["kernels"] == h0["kernels"]


def _gpu_like_run(corr_triton_ms, failed_test=False):
    tests = {"tests/test_triton_corr.py::test_a": {"outcome": "failed" if failed_test else "passed"},
             "tests/test_cuda_attention.py::test_b": {"outcome": "passed"}}
    micro = [
        {"key": "c1", "status": "measured", "op": "corr_sample", "impl": "triton", "mode": "forward",
         "dtype": "bfloat16", "N": 1024, "ms": corr_triton_ms, "gbps": 1.0, "tflops": 1.0},
        {"key": "c2", "status": "measured", "op": "corr_sample", "impl": "torch", "mode": "forward",
         "dtype": "bfloat16", "N": 1024, "ms": 1.0, "gbps": 1.0, "tflops": 1.0},
        {"key": "a1", "status": "measured", "op": "attention", "impl": "cuda", "kind": "group", "mode": "forward",
         "dtype": "bfloat16", "N": 1024, "batch": 8, "L": 1024, "ms": 2.0, "gbps": 1.0, "tflops": 1.0},
        {"key": "a2", "status": "measured", "op": "attention", "impl": "sdpa", "kind": "group", "mode": "forward",
         "dtype": "bfloat16", "N": 1024, "batch": 8, "L": 1024, "ms": 1.0, "gbps": 1.0, "tflops": 1.0},
    ]
    return {"tests": {"status": "passed", "tests": tests, "counts": gct._count(tests.values())},
            "micro": {"status": "passed", "results": micro, "items": {}}}


def test_verdicts_need_passed_tests_and_a_win_in_every_case(tmp_path):
    runner = gc.GpuCheck(gc.parse_args(["--dry-run", "--work-dir", str(tmp_path)]))
    runner.cuda = True  # the verdict text of a GPU run
    runner.data["stages"] = _gpu_like_run(corr_triton_ms=0.5)
    v = runner.verdicts()
    assert v["corr_sample/triton"]["wins"] and v["corr_sample/triton"]["min_speedup"] == pytest.approx(2.0)
    assert v["corr_sample/triton"]["recommendation"] == "join backend='auto' on CUDA"
    assert not v["attention/cuda"]["wins"] and v["attention/cuda"]["min_speedup"] == pytest.approx(0.5)
    assert v["attention/cuda"]["recommendation"] == "keep explicit-only"
    runner.data["stages"] = _gpu_like_run(corr_triton_ms=0.5, failed_test=True)
    assert not runner.verdicts()["corr_sample/triton"]["wins"]  # faster, but a test failed


def test_doc_block_picks_the_newest_gpu_run(tmp_path):
    base = {"suite": "gpu_check", "device": "NVIDIA H200", "device_kind": "cuda", "kernel_hash": gc.kernel_hash(),
            "environment": {"gpu": "NVIDIA H200", "commit": "abc"}, "deadlines_s": {}, "budget_s": 345}
    runs = {"old.json": {**base, "created": "2026-01-01T00:00:00", "dry_run": False},
            "new.json": {**base, "created": "2026-02-01T00:00:00", "dry_run": False},
            "dry.json": {**base, "created": "2026-03-01T00:00:00", "dry_run": True, "device_kind": "cpu"}}
    for name, run in runs.items():
        stages = _gpu_like_run(corr_triton_ms=0.5)
        (tmp_path / f"gpu_check-{name}").write_text(json.dumps({**run, "stages": stages}))
    assert mpd.default_gpu_check_input(tmp_path).name == "gpu_check-new.json"
    block = mpd.render_gpu_check_block(mpd.load_gpu_check(tmp_path / "gpu_check-new.json"))
    assert "### NVIDIA H200" in block and "the current kernels" in block and "### Kernels" in block
    assert "Tests that did not pass" not in block
    assert "No GPU has run it yet" in mpd.render_gpu_check_block(None)


def test_kernels_import_from_a_source_tree_without_an_install():
    """The device machine runs the repository with nothing installed: ``cotracker_fast.kernels`` (setup.py maps
    ``kernels/`` in at install time) must still import. The editable install's finder is removed to check that."""
    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
        "if not getattr(f, '__module__', '').startswith('__editable__')]; "  # the finder is a class
        "sys.modules.pop('cotracker_fast', None); "
        f"sys.path.insert(0, {str(ROOT)!r}); "
        "import cotracker_fast.kernels as k; from cotracker_fast.kernels import corr_sample; print(k.__file__)"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Path(proc.stdout.strip().splitlines()[-1]) == ROOT / "kernels" / "__init__.py"


def test_cpu_block_reports_bf16_accuracy_runs(tmp_path):
    """The bf16 accuracy results go into the generated CPU section, one row per weights and variant."""
    from benchmarks.perfdoc_cpu import render_bf16_accuracy_block

    assert "No bf16 accuracy run" in "\n".join(render_bf16_accuracy_block(tmp_path))
    row = {"weights": "shipped", "variant": "bf16", "mean_px": 0.05, "median_px": 0.02, "p99_px": 0.4, "max_px": 1.5,
           "visibility_agreement": 0.995, "within_bound": True}
    run = {"suite": "bf16-accuracy", "cpu": "Test CPU", "threads": 2, "bf16_emulated": True,
           "shipped_working_resolution": [576, 768],
           "config": {"clip": "demo clip", "frames": 24, "points": 256, "iters": 6, "fp32_perturbed_noise_std": 0.01},
           "bound": {"mean_px": 0.1, "p99_px": 1.0, "visibility_agreement": 0.99}, "results": [row]}
    (tmp_path / "bf16-accuracy-test-cpu-2026-12-02T0700.json").write_text(json.dumps(run))
    text = "\n".join(render_bf16_accuracy_block(tmp_path))
    assert "| shipped | bf16 | 0.050 | 0.020 | 0.400 | 1.50 | 99.50% | yes |" in text
    assert "**Test CPU**" in text and "emulated" in text
    assert "track the clip at their working resolution, 576x768" in text
