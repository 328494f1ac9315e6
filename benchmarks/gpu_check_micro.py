"""The ``micro`` stage of ``make gpu-check`` (:mod:`benchmarks.gpu_check`), run in a child process like the stages of
:mod:`benchmarks.gpu_check_stages`: the two roofs measured (device copy bytes/s, bf16 matmul FLOP/s), ``corr_sample``
Triton against the torch path (forward, forward+backward), CoTracker3's corr4d Triton against its reference, and time
and group attention CUDA against SDPA, each with the bytes and FLOPs it must move and do and the achieved fraction of
the roofs. Its sizes are :data:`benchmarks.gpu_check_stages.MICRO`.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import torch

from benchmarks.gpu_check_stages import (
    MICRO, MIN_CASE_S, ChildStage, _corr_inputs, _cuda_only, _median_ms, error_text,
)

#: Datasheet roofs (bytes/s of HBM, dense bf16 FLOP/s), leads only: the micro stage measures both and uses those.
DATASHEET = (("H200", 4.8e12, 989e12), ("H100 PCIe", 2.0e12, 756e12), ("H100 NVL", 3.9e12, 835e12),
             ("H100", 3.35e12, 989e12))


def datasheet_roofs(gpu_name: str) -> Optional[Dict[str, float]]:
    """The datasheet's HBM bandwidth and dense bf16 rate for a GPU name (first match in :data:`DATASHEET`)."""
    for key, bw, flops in DATASHEET:
        if key.lower() in gpu_name.lower():
            return {"hbm_bytes_per_s": bw, "bf16_flops_per_s": flops, "source": f"datasheet ({key})"}
    return None


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
            roofs.update(status="failed", error=error_text(err))
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
            st.add({**base, "key": key, "status": "failed", "error": error_text(err)})

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
