"""CoTracker3's Triton 4D-correlation kernel (kernels/corr4d.py) against the reference: forward, backward, the model.

Without a GPU these run in the Triton interpreter on CPU tensors (TRITON_INTERPRET=1, set in conftest.py), so shapes
are small; on a CUDA machine the same tests run the compiled kernel.
"""
import pytest
import torch

from helpers import triton_test_device

DEVICE = triton_test_device()

from cotracker_fast import ops  # noqa: E402
from cotracker_fast.kernels.corr4d import corr4d_triton  # noqa: E402


def _inputs(B=2, T=3, N=5, C=16, H=7, W=9, radius=3, spread=3.0, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    level = torch.randn(B, T, C, H, W, generator=g)
    lo, hi = torch.tensor([-spread, -spread]), torch.tensor([W - 1 + spread, H - 1 + spread])
    xy = lo + torch.rand(B, T, N, 2, generator=g) * (hi - lo)  # some tracks outside the map: border padding
    query = torch.randn(B, N, (2 * radius + 1) ** 2, C, generator=g)
    return level.to(DEVICE, dtype), xy.to(DEVICE), query.to(DEVICE, dtype)


def _close(out, expect, rel=1e-5):
    """fp32: the kernel combines cell dot products with bilinear weights, the reference interpolates the features
    first (same products, other order): measured max |diff| 1e-5 for outputs of scale ~18 (5e-7 relative)."""
    scale = expect.abs().max().clamp_min(1.0)
    assert (out - expect).abs().max() <= rel * scale, float((out - expect).abs().max())


SHAPES = [dict(), dict(N=1, T=1, B=1), dict(C=48, H=5, W=13, N=7), dict(radius=1, C=8, H=4, W=4),
          dict(radius=0, N=3), dict(C=128, H=12, W=16, N=2, T=2, B=1)]


@pytest.mark.parametrize("shape", SHAPES, ids=["B2T3N5", "N1", "C48-odd", "r1-tiny", "r0", "C128"])
def test_forward_matches_reference(shape):
    level, xy, query = _inputs(**shape)
    r = shape.get("radius", 3)
    _close(corr4d_triton(level, xy, query, r), ops.corr4d_reference(level, xy, query, r))


def test_points_far_outside_take_the_edge_values():
    level, xy, query = _inputs(spread=40.0, seed=1)
    _close(corr4d_triton(level, xy, query, 3), ops.corr4d_reference(level, xy, query, 3))


@pytest.mark.parametrize("shape", [dict(), dict(N=1, B=1, T=2, C=32)], ids=["B2T3N5", "N1-C32"])
def test_backward_matches_reference(shape):
    level, xy, query = _inputs(**shape)
    level.requires_grad_(True)
    query.requires_grad_(True)
    out = corr4d_triton(level, xy, query, 3)
    go = torch.randn(out.shape, generator=torch.Generator().manual_seed(5)).to(out.device)
    got = torch.autograd.grad(out, (level, query), go)
    ref = ops.corr4d_reference(level, xy, query, 3)
    expect = torch.autograd.grad(ref, (level, query), go)
    for a, b in zip(got, expect):
        _close(a, b)


def test_op_dispatch_and_input_checks():
    level, xy, query = _inputs()
    _close(ops.corr4d(level, xy, query, 3, backend="triton"), ops.corr4d(level, xy, query, 3))
    with pytest.raises(ValueError, match="query_patches must be"):
        ops.corr4d(level, xy, query[:, :, :10], 3, backend="triton")
    with pytest.raises(ValueError, match="xy must be"):
        ops.corr4d(level, xy[:, :2], query, 3)


def test_cotracker3_with_the_kernel_matches_the_reference_path():
    from cotracker_fast.models.cotracker3 import CoTracker3Offline
    from helpers_v3 import synthetic_v3_state_dict

    model = CoTracker3Offline().eval()
    model.load_state_dict(synthetic_v3_state_dict(0, 60, tame=True))
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, 3, 3, 32, 48, generator=g) * 255
    queries = torch.tensor([[[0.0, 5.0, 6.0], [1.0, 40.0, 20.0]]])
    with torch.no_grad():
        ref = model(video, queries, iters=1)
        model.corr4d_backend = "triton"
        fast = model(video, queries, iters=1)
    assert torch.allclose(fast[0], ref[0], atol=1e-4) and torch.allclose(fast[1], ref[1], atol=1e-5)


def test_bf16_inputs_accumulate_in_fp32():
    level, xy, query = _inputs(dtype=torch.bfloat16)
    out = corr4d_triton(level, xy, query, 3)
    assert out.dtype == torch.float32
    _close(out, ops.corr4d_reference(level.float(), xy, query.float(), 3))
