"""The gpu-check block of ``docs/PERFORMANCE.md``: a ``make gpu-check`` results file (``benchmarks/gpu_check.py``)
rendered as its environment and kernel hash, stage by stage status and time, the tests that did not pass, the
end-to-end, kernel and speed-comparison tables and the kernels' verdicts. ``benchmarks/make_performance_doc.py``
writes it between :data:`GC_BEGIN` and :data:`GC_END`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from benchmarks._common import RESULTS_DIR
from benchmarks.perfdoc_format import commit_label as _commit
from benchmarks.perfdoc_format import fmt_flops as _fmt_flops
from benchmarks.perfdoc_format import num as _num
from benchmarks.perfdoc_format import wrap as _wrap

GC_BEGIN, GC_END = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"


def load_gpu_check(path: Path) -> Optional[dict]:
    """A ``make gpu-check`` results file, or None when ``path`` holds something else."""
    data = json.loads(Path(path).read_text())
    if data.get("suite") != "gpu_check":
        return None
    data.setdefault("source", str(path))
    return data


def default_gpu_check_input(results_dir: Path = RESULTS_DIR) -> Optional[Path]:
    """The newest GPU run (by ``created``) among ``gpu_check-*.json``; dry runs and CPU runs are not picked."""
    best = None
    for p in sorted(results_dir.glob("gpu_check-*.json")):
        try:
            d = load_gpu_check(p)
        except (ValueError, OSError):
            continue
        if d and not d.get("dry_run") and d.get("device_kind") == "cuda":
            if best is None or d.get("created", "") >= best[0]:
                best = (d.get("created", ""), p)
    return best[1] if best else None


def _cell(x: Optional[float], fmt: Callable[[float], str] = _num) -> str:
    return "-" if x is None else fmt(x)


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.3g}%"


def _not_measured(results: Sequence[dict]) -> List[str]:
    """One line per case that has no figure: skipped (with the reason) or failed (last line of its error)."""
    lines = []
    for r in results:
        if r.get("status") in ("skipped", "failed"):
            why = r.get("reason") or (r.get("error", "").strip().splitlines() or ["?"])[-1]
            lines.append(f"- `{r.get('key', '?')}`: {r['status']}: {why[:200]}")
    return (["", "Not measured:", ""] + lines) if lines else []


def _gc_environment(run: dict) -> List[str]:
    from benchmarks.gpu_check import kernel_hash

    env = run.get("environment", {})
    kh = run.get("kernel_hash", {})
    current = kernel_hash().get("combined")
    same = "the current kernels" if kh.get("combined") == current else f"**not** the current kernels ({current})"
    rows = [("GPU", f"{env.get('gpu', run.get('device'))}, compute capability {env.get('capability', '?')}, "
                    f"{env.get('sm_count', '?')} SMs, {env.get('memory_GB', '?')} GB"),
            ("driver / CUDA (torch) / nvcc",
             f"{env.get('driver', '?')} / {env.get('cuda', '?')} / {env.get('nvcc', '?')}"),
            ("torch / Triton / Python",
             f"{env.get('torch', '?')} / {env.get('triton', '?')} / {env.get('python', '?')}"),
            ("commit", _commit(env) if env.get("commit") else f"unknown ({env.get('commit_source', 'no git')})"),
            ("kernel hash (kernels/, csrc/)", f"{kh.get('combined', '?')}: {same}"),
            ("run", f"{run.get('created', '?')}, {run.get('wall_s', '?')} s of a {run.get('budget_s', '?')} s budget"
                    + (f"; resumed from {run['resumed_from']['created']}" if run.get("resumed_from") else ""))]
    return ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]


def _gc_stages(run: dict) -> List[str]:
    lines = ["| stage | status | wall (s) | ended at (s) | deadline (s) | note |", "|---|---|---:|---:|---:|---|"]
    from benchmarks.gpu_check import stage_note

    for name, st in run.get("stages", {}).items():
        note = stage_note(st)[:200]
        if name == "build":
            ext = st.get("items", {}).get("cuda_extension", {})
            if ext.get("build_s") is not None:
                note = (f"CUDA extension {'loaded from the cache' if ext.get('cached') else 'built'} in "
                        f"{ext['build_s']:.1f} s ({ext.get('arch_list')}); ") + note
        if st.get("carried_from"):
            note = f"carried from {st['carried_from']}; " + note
        lines.append(f"| {name} | {st.get('status', '-')} | {st.get('wall_s', '-')} | {st.get('ended_at_s', '-')} "
                     f"| {run.get('deadlines_s', {}).get(name, '-')} | {note.replace('|', '/')} |")
    return lines


def _gc_tests(run: dict) -> List[str]:
    st = run.get("stages", {}).get("tests") or {}
    tests = st.get("tests", {})
    if not tests:
        return []
    lines = ["", "| pytest process | passed | failed | skipped | unfinished | not run | wall (s) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for f, v in st.get("files", {}).items():
        lines.append(f"| `{f}` | {v.get('passed', 0)} | {v.get('failed', 0)} | {v.get('skipped', 0)} "
                     f"| {v.get('unfinished', 0)} | {v.get('not_run', 0)} | {v.get('wall_s', '-')} |")
    bad = [(n, t) for n, t in tests.items() if t["outcome"] in ("failed", "unfinished", "not_run")]
    if bad:
        lines += ["", "Tests that did not pass:", ""]
        for n, t in bad:
            last = (t.get("message", "").strip().splitlines() or [""])[-1][:200]
            lines.append(f"- `{n}`: {t['outcome']}" + (f": {last}" if last else ""))
    return lines


def _gc_end_to_end(run: dict) -> List[str]:
    st = run.get("stages", {}).get("end_to_end") or {}
    res, cfg = st.get("results", []), st.get("config") or {}
    done = [r for r in res if r.get("status") == "measured"]
    if not res:
        return []
    labels = {k: m["label"] for k, m in (st.get("methods") or {}).items()}
    lines = ["", "### End to end", ""]
    lines += _wrap(
        f"The drop-in predictor, one whole-video call per round: T = {cfg.get('T')} frames at {cfg.get('H')}x"
        f"{cfg.get('W')}, {cfg.get('model')}, N random query points at frame 0 plus the 6x6 support grid, random "
        f"weights, {cfg.get('iters', 6)} refinement iterations; median of {cfg.get('rounds')} timed call(s) "
        f"{'after the warm-up' if cfg.get('warmup', True) else 'without a warm-up (dry run)'}. Peak memory is "
        "`torch.cuda.max_memory_allocated` over the timed calls (weights included), GB of 1e9 bytes. The speed-up is "
        "the reference's time over the method's, same N. TFLOP/s: the FLOP estimate (`benchmarks/baselines/flops.py`, "
        "arithmetic) over the time."
    )
    lines += ["", "| method | N | ms / frame | fps | speed-up over the reference | peak memory (GB) | TFLOP/s "
              "| warm-up (s) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(done, key=lambda r: (list(labels).index(r["method"]) if r["method"] in labels else 99, r["N"])):
        sp = r.get("speedup_vs_reference")
        lines.append(f"| {labels.get(r['method'], r['method'])} | {r['N']:,} | {_num(r['ms_per_frame'])} "
                     f"| {_num(r['fps'])} | {'-' if sp is None else f'{sp:.2f}x'} | {_cell(r.get('peak_mem_GB'))} "
                     f"| {_cell(r.get('achieved_tflops'))} | {_num(r['warmup_s'])} |")
    return lines + _not_measured(res)


def _gc_micro(run: dict) -> List[str]:
    st = run.get("stages", {}).get("micro") or {}
    res = st.get("results", [])
    if not res:
        return []
    roofs = (st.get("items") or {}).get("roofs") or {}
    ds = roofs.get("datasheet") or {}
    lines = ["", "### Kernels", ""]
    bw, fl = roofs.get("copy_bytes_per_s"), roofs.get("bf16_matmul_flops_per_s")
    lines += _wrap(
        "Roofs measured on this GPU: "
        + (f"device-to-device copy {bw / 1e9:,.0f} GB/s (bytes read + written), " if bw else "copy not measured, ")
        + (f"bf16 8192^3 matmul {fl / 1e12:,.0f} TFLOP/s" if fl else "matmul not measured")
        + (f" (datasheet, {ds['source']}: {ds['hbm_bytes_per_s'] / 1e9:,.0f} GB/s, "
           f"{ds['bf16_flops_per_s'] / 1e12:,.0f} TFLOP/s dense bf16)" if ds else "")
        + ". Times are medians of `triton.testing.do_bench` (on a GPU). GB/s and TFLOP/s count what the op must "
        "move and "
        "compute at least (corr_sample: features, positions, output and the cells it needs, at most the pyramid; the "
        "(2r+2)^2 x C dot products per level, x3 with the backward; attention: q, k, v read and the output written, "
        "4 L^2 D per head), so the fractions of the roofs are lower bounds. The max |diff| column compares the "
        "output with the torch path (corr_sample) or with fp32 attention."
    )
    lines += ["", "| op | impl | mode | dtype | shape | ms | GB/s | % of copy roof | TFLOP/s | % of bf16 roof "
              "| max abs diff |", "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in (r for r in res if r.get("status") == "measured"):
        shape = (f"N={r['N']:,}" if r["op"] in ("corr_sample", "corr4d")
                 else f"{r['kind']}: batch {r['batch']:,}, L {r['L']:,}")
        diff = "-" if r.get("max_abs_diff") is None else f"{r['max_abs_diff']:.2g}"
        lines.append(f"| {r['op']} | {r['impl']} | {r['mode']} | {r['dtype']} | {shape} | {_num(r['ms'])} "
                     f"| {_num(r['gbps'])} | {_pct(r.get('fraction_of_bandwidth_roof'))} | {_num(r['tflops'])} "
                     f"| {_pct(r.get('fraction_of_bf16_roof'))} | {diff} |")
    return lines + _not_measured(res)


def _gc_speed(run: dict) -> List[str]:
    st = run.get("stages", {}).get("speed") or {}
    res, cfg = st.get("results", []), st.get("config") or {}
    if not res:
        return []
    labels = {k: m["label"] for k, m in (st.get("methods") or {}).items()}
    lines = ["", "### The paper's comparison (reduced)", ""]
    lines += _wrap(
        f"`benchmarks/test_bench_speed.py`'s methods at T = {cfg.get('T')} frames, {cfg.get('H')}x{cfg.get('W')}, "
        f"N in {cfg.get('Ns')} (RAFT at the first N only: its cost is flat in N), {cfg.get('iters', 6)} refinement "
        f"iterations, {cfg.get('rounds')} timed call(s) "
        f"{'after a warm-up' if cfg.get('warmup', True) else 'without a warm-up (dry run)'}; run with the time left "
        "after the other stages."
    )
    lines += ["", "| method | N | ms / frame | FLOP estimate / video | peak memory (GB) |", "|---|---:|---:|---:|---:|"]
    for r in (r for r in res if r.get("status") == "measured"):
        lines.append(f"| {labels.get(r['method'], r['method'])} | {r['N']:,} | {_num(r['ms_per_frame'])} "
                     f"| {_fmt_flops(r['flops_estimate'])} | {_cell(r.get('peak_mem_GB'))} |")
    return lines + _not_measured(res)


def _gc_verdicts(run: dict) -> List[str]:
    v = run.get("verdicts") or {}
    if not v:
        return []
    lines = ["", "### Verdicts", ""]
    lines += _wrap(
        "A kernel joins `backend='auto'` on CUDA only when all its tests passed on the GPU and it beat the PyTorch "
        "path in every measured case (speed-up = the PyTorch path's time over the kernel's); the change is made by "
        "hand in `cotracker_fast/ops/__init__.py`, citing these figures."
    )
    lines += ["", "| kernel | tests | speed-up over PyTorch (min; per case) | verdict |", "|---|---|---|---|"]
    for name, x in v.items():
        t = x.get("tests", {})
        cases = "; ".join(f"{k} {s:.2f}x" for k, s in x.get("speedup_vs_pytorch", {}).items())
        mn = f"{x['min_speedup']:.2f}x" if x.get("min_speedup") else "-"
        lines.append(f"| {name} | {'passed' if x.get('tests_passed') else 'not passed'} ({t.get('passed', 0)} passed, "
                     f"{t.get('failed', 0)} failed, {t.get('unfinished', 0) + t.get('not_run', 0)} not finished) "
                     f"| {mn}; {cases or '-'} "
                     f"| {x.get('recommendation', '-')} |")
    return lines


def render_gpu_check_block(run: Optional[dict]) -> str:
    """The markdown between the gpu-check markers for one run (None: not run on a GPU yet)."""
    lines = ["## GPU check (`make gpu-check`)", ""]
    lines += _wrap(
        "Generated by `make gpu-check-doc` (`python -m benchmarks.make_performance_doc --blocks gpu-check`) from the "
        "newest `benchmarks/results/gpu_check-*.json` (`make gpu-check`, `benchmarks/gpu_check.py`): one command "
        "that builds the CUDA extension, runs every GPU test, and times the end-to-end predictor, the kernels and "
        "the paper's comparison under a time guard."
    )
    lines.append("")
    if run is None:
        lines += _wrap(
            "**No GPU has run it yet.** No GPU run of `make gpu-check` exists in `benchmarks/results/`: the Triton "
            "and CUDA kernels have been checked on the CPU only (Triton interpreter, nvcc compile), and "
            "`backend='auto'` keeps to the PyTorch paths. The first session lent a GPU runs `make gpu-check`."
        )
        lines.append("")
        return "\n".join(lines)
    if run.get("dry_run"):
        lines += _wrap("**Dry run on the CPU**: every stage's code at tiny sizes; no figure below is a GPU figure.")
        lines.append("")
    lines += [f"### {run.get('device', '?')}", ""] + _gc_environment(run) + [""] + _gc_stages(run)
    lines += _gc_tests(run) + _gc_end_to_end(run) + _gc_micro(run) + _gc_speed(run) + _gc_verdicts(run)
    lines.append("")
    return "\n".join(lines)
