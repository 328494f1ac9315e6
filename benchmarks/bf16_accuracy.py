"""How far bf16 autocast moves the tracks from float32: ``python -m benchmarks.bf16_accuracy``.

The v1 predictor (``backend="auto"``, 6 iterations, the official support grid) tracks N query points through the
demo clip (the shipped photograph under a known similarity motion, T frames at 384x512) once in float32 and once per
bf16 variant, with the same weights and inputs; half the queries are at frame 0, half on random frames of the first
half, at random positions. Reported per variant, over every frame and query: the distance between the bf16 and the
float32 tracks in pixels of the video (mean, median, p99, max) and the fraction of equal visibility flags. The
stated bound of the bf16 path (README, docs/PERFORMANCE.md) is mean <= 0.1 px, p99 <= 1 px, visibility agreement >= 99%.

Weights: ``shipped`` (the package's trained small model) and ``official`` (the official v1 architecture
``cotracker_stride_4_wind_8`` with seeded random weights: the official checkpoints cannot be downloaded here).

Variants (the diagnostic ones say which part of the network the deviation comes from):

* ``bf16``: the predictor's bf16 path as shipped (the feature CNN and the transformer blocks in bf16);
* ``bf16-encoder-fp32``: the same with the feature CNN in float32;
* ``bf16-transformer-fp32``: the same with the transformer in float32;
* ``bf16-torch-ops``: the bf16 path on the PyTorch ops instead of the CPU kernels (local correlation in PyTorch,
  SDPA, the Linears through autocast's addmm with a separate GELU): whether the kernels move the tracks more than
  PyTorch's own bf16 does;
* ``fp32-perturbed``: no bf16 at all: float32 on the video plus Gaussian noise of standard deviation 0.01 grey
  levels by default (far below the 8-bit quantum of 1; ``--noise-std``: rounding the image to bf16 moves a pixel by
  up to about a quarter of a grey level). It measures how strongly the weights themselves amplify a tiny
  perturbation: a tracker whose iterations converge damps it, one whose iterations do not passes it on. No rounding
  scheme can hold the bound on weights whose own float32 tracks move more than it under such noise.

On a CPU without native bf16 the script forces the bf16 path anyway (emulated bf16 rounds exactly like native
bf16, only slower), so the deviations hold for any CPU; the times do not and are recorded only as context. Results go
to ``benchmarks/results/bf16-accuracy-<cpu>-<date>T<time>.json`` with the CPU, its bf16 capability, the threads and
the commit.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import re
import time
import warnings
from typing import Any, Dict, Iterator, List

import numpy as np
import torch

from benchmarks._common import RESULTS_DIR, cpu_name, git_commit, write_results
from cotracker_fast import precision
from cotracker_fast.models.registry import SHIPPED_MODEL, SHIPPED_WEIGHTS, get_config

VARIANTS = ("bf16", "bf16-encoder-fp32", "bf16-transformer-fp32", "bf16-torch-ops", "fp32-perturbed")
#: The ``bf16-torch-ops`` variant's backends: the PyTorch implementations of every op.
TORCH_OPS = {"corr_sample": "torch", "attention": "torch"}
NOISE_STD = 0.01  # grey levels (0..255), the ``fp32-perturbed`` variant's default (``--noise-std``)
WEIGHTS = ("shipped", "official")
BOUND = {"mean_px": 0.1, "p99_px": 1.0, "visibility_agreement": 0.99}


def make_inputs(num_frames: int, num_points: int, seed: int = 0):
    """The demo clip as a ``(1, T, 3, 384, 512)`` float video (0..255) and ``(1, N, 3)`` queries ``(t, x, y)``."""
    from cotracker_fast.demo_clip import make_demo_clip

    clip = make_demo_clip(num_frames=num_frames, size_hw=(384, 512), seed=0)
    video = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)[None].float()
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, max(num_frames // 2, 1), (num_points,), generator=g).float()
    t[: (num_points + 1) // 2] = 0
    xy = torch.rand(num_points, 2, generator=g) * torch.tensor([511.0, 383.0])
    return video, torch.cat([t[:, None], xy], 1)[None]


def make_predictor(weights: str, iters: int, backend="auto"):
    from cotracker_fast.predictor import CoTrackerPredictor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights
        if weights == "shipped":
            return CoTrackerPredictor(backend=backend, iters=iters)
        torch.manual_seed(0)  # the same random weights for every predictor
        return CoTrackerPredictor(None, model_name="cotracker_stride_4_wind_8", backend=backend, iters=iters)


@contextlib.contextmanager
def float32_module(module: torch.nn.Module) -> Iterator[None]:
    """Run ``module`` in float32 (autocast off, floating inputs cast up) inside an autocast region."""
    forward = module.forward

    def fp32_forward(*args, **kwargs):
        args = [a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args]
        with torch.autocast("cpu", enabled=False):
            return forward(*args, **kwargs)

    module.forward = fp32_forward
    try:
        yield
    finally:
        del module.forward  # the class's forward again


@contextlib.contextmanager
def autocast_linears() -> Iterator[None]:
    """The transformer blocks' Linears through autocast's own ops (``aten::addmm``, a separate GELU; no oneDNN
    epilogue fusion)."""
    from cotracker_fast.models import updateformer

    saved = updateformer._cpu_bf16_inference
    updateformer._cpu_bf16_inference = lambda x, layer: False
    try:
        yield
    finally:
        updateformer._cpu_bf16_inference = saved


def variant_context(predictor, variant: str):
    if variant in ("bf16", "fp32-perturbed"):
        return contextlib.nullcontext()
    if variant == "bf16-torch-ops":
        return autocast_linears()
    if variant == "bf16-encoder-fp32":
        return float32_module(predictor.model.fnet)
    if variant == "bf16-transformer-fp32":
        return float32_module(predictor.model.updateformer)
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def deviation(tracks: torch.Tensor, vis: torch.Tensor, ref_tracks: torch.Tensor, ref_vis: torch.Tensor):
    """Distances (px) between two ``(1, T, N, 2)`` track sets and the agreement of their visibility flags."""
    d = (tracks - ref_tracks).norm(dim=-1).flatten().double().numpy()
    return {
        "mean_px": float(d.mean()),
        "median_px": float(np.median(d)),
        "p99_px": float(np.quantile(d, 0.99)),
        "max_px": float(d.max()),
        "visibility_agreement": float((vis == ref_vis).float().mean()),
    }


def run(weights_list, variants, num_frames: int, num_points: int, iters: int, on_row=None,
        noise_std: float = NOISE_STD) -> List[Dict[str, Any]]:
    """Every (weights, variant) row; ``on_row(rows)`` is called after each one (to save partial results)."""
    video, queries = make_inputs(num_frames, num_points)
    rows = []
    native = precision.cpu_has_native_bf16()
    for weights in weights_list:
        p = make_predictor(weights, iters)
        p.dtype = torch.float32
        t0 = time.perf_counter()
        with torch.no_grad():
            ref_tracks, ref_vis = p(video, queries)
        t_ref = time.perf_counter() - t0
        print(f"{weights}: float32 in {t_ref:.1f} s", flush=True)
        for variant in variants:
            # the same weights on the PyTorch ops, or the predictor of the float32 tracks
            pv = make_predictor(weights, iters, backend=TORCH_OPS) if variant == "bf16-torch-ops" else p
            clip = video
            if variant == "fp32-perturbed":
                g = torch.Generator().manual_seed(1)
                clip = video + torch.randn(video.shape, generator=g) * noise_std
            pv.dtype = torch.float32 if variant.startswith("fp32") else torch.bfloat16
            with contextlib.ExitStack() as stack:
                if not native:  # emulated bf16 rounds as native bf16 does
                    stack.enter_context(_force_native_bf16())
                stack.enter_context(variant_context(pv, variant))
                assert pv.compute_dtype == pv.dtype
                t0 = time.perf_counter()
                with torch.no_grad():
                    tracks, vis = pv(clip, queries)
                elapsed = time.perf_counter() - t0
            row = {"weights": weights, "variant": variant, **deviation(tracks, vis, ref_tracks, ref_vis),
                   "time_s": elapsed, "time_fp32_s": t_ref}
            row["within_bound"] = (row["mean_px"] <= BOUND["mean_px"] and row["p99_px"] <= BOUND["p99_px"]
                                   and row["visibility_agreement"] >= BOUND["visibility_agreement"])
            print(f"  {variant:24s} mean {row['mean_px']:.3f} px, median {row['median_px']:.3f}, "
                  f"p99 {row['p99_px']:.3f}, max {row['max_px']:.2f}, "
                  f"visibility {100 * row['visibility_agreement']:.2f}%"
                  f" ({elapsed:.1f} s)", flush=True)
            rows.append(row)
            if on_row is not None:
                on_row(rows)
        p.dtype = torch.float32
    return rows


def _sha256(path) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@contextlib.contextmanager
def _force_native_bf16() -> Iterator[None]:
    saved = precision.cpu_has_native_bf16
    precision.cpu_has_native_bf16 = lambda: True
    try:
        yield
    finally:
        precision.cpu_has_native_bf16 = saved


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="+", default=list(WEIGHTS), choices=WEIGHTS)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--noise-std", type=float, default=NOISE_STD,
                    help="grey levels (0..255) of the fp32-perturbed variant's noise (default %(default)s)")
    ap.add_argument("--no-save", action="store_true", help="print only")
    args = ap.parse_args(argv)
    if args.frames < 1 or args.points < 1:
        ap.error("--frames and --points must be >= 1")
    if not args.noise_std >= 0:
        ap.error(f"--noise-std must be >= 0 grey levels, got {args.noise_std}")
    cpu = cpu_name()
    slug = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-") or "cpu"
    path = RESULTS_DIR / f"bf16-accuracy-{slug}-{datetime.datetime.now().strftime('%Y-%m-%dT%H%M')}.json"
    header = {
        "suite": "bf16-accuracy",
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": precision.cpu_has_native_bf16(),
        "bf16_emulated": not precision.cpu_has_native_bf16(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        **git_commit(),
        "config": {"clip": "demo clip, seed 0, 384x512", "frames": args.frames, "points": args.points,
                   "iters": args.iters, "support_grid": "official (6x6)", "backend": "auto",
                   "fp32_perturbed_noise_std": args.noise_std},
        "bound": BOUND,
        "shipped_weights_sha256": _sha256(SHIPPED_WEIGHTS) if "shipped" in args.weights else None,
        # the size the predictor resizes the clip to for the shipped weights (their model's working resolution)
        "shipped_working_resolution": (list(get_config(SHIPPED_MODEL).model_resolution)
                                       if "shipped" in args.weights else None),
    }

    def save(rows):  # after every row, atomically: an interrupted run keeps what it measured
        if not args.no_save:
            write_results(path, {**header, "complete": len(rows) == len(args.weights) * len(args.variants),
                                 "results": rows})

    run(args.weights, args.variants, args.frames, args.points, args.iters, on_row=save, noise_std=args.noise_std)
    if not args.no_save:
        print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
