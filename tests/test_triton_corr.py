"""Triton correlation kernel (kernels/corr_sample.py) against the references: forward, backward, registration.

Without a GPU these run in the Triton interpreter on CPU tensors (TRITON_INTERPRET=1, set in conftest.py), so shapes
are small; on a CUDA machine the same tests run the compiled kernel.
"""
import os

import pytest
import torch

from helpers import triton_test_device

DEVICE = triton_test_device()

from cotracker_fast import ops  # noqa: E402
from cotracker_fast.kernels.corr_sample import _corr_sample_op, corr_sample_triton  # noqa: E402
from cotracker_fast import ops as ref  # noqa: E402
from cotracker_fast.ops.backend import BackendUnavailableError  # noqa: E402


def _inputs(B=2, S=2, N=17, C=32, H=13, W=19, levels=3, seed=0, spread=4.0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    fmaps = torch.randn(B, S, C, H, W, generator=g)
    feats = torch.randn(B, S, N, C, generator=g)
    lo, hi = torch.tensor([-spread, -spread]), torch.tensor([W - 1 + spread, H - 1 + spread])
    coords = lo + torch.rand(B, S, N, 2, generator=g) * (hi - lo)
    pyr = [p.to(DEVICE, dtype) for p in ops.build_pyramid(fmaps, levels)]
    return pyr, feats.to(DEVICE, dtype), coords.to(DEVICE)


def _assert_fp32_close(out, expect):
    """fp32: the kernel and the reference take the same products in a different order (the reference combines
    rows then columns, the kernel weights four selections); measured max |diff| ~5e-7 for outputs of scale ~5.
    Bound: 1e-5 relative to the output scale."""
    scale = expect.abs().max().clamp_min(1.0)
    assert (out - expect).abs().max() <= 1e-5 * scale, float((out - expect).abs().max())


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 4])
@pytest.mark.parametrize(
    "shape",
    [dict(), dict(N=1), dict(B=1, S=1, N=5, H=17, W=11, C=64), dict(B=1, S=1, N=33, C=128, H=16, W=24, levels=4)],
    ids=["B2-N17", "N1", "odd-C64", "C128-L4"],
)
def test_forward_matches_reference(radius, shape):
    pyr, feats, coords = _inputs(**shape)
    out = corr_sample_triton(pyr, feats, coords, radius)
    expect = ref.corr_sample_torch(pyr, feats, coords, radius)
    assert out.shape == expect.shape and out.dtype == torch.float32
    _assert_fp32_close(out, expect)
    _assert_fp32_close(out, ref.corr_sample_reference(pyr, feats, coords, radius))


def test_adversarial_positions_and_cell_borders():
    """Cell centres, exact map borders, far outside (all zero), half cells, and points 1 ulp either side of a cell
    border. Both implementations floor the same fp32 value (coords / 2**level is exact), so the interior tolerance
    holds in the border band too; the check below makes that explicit per band."""
    pyr, feats, _ = _inputs(B=1, S=1, N=12, H=12, W=16, levels=2)
    border = torch.tensor(7.0)
    below, above = torch.nextafter(border, torch.tensor(0.0)), torch.nextafter(border, torch.tensor(100.0))
    pts = torch.tensor([[0, 0], [15, 11], [7, 5], [-0.5, 3], [15.5, 11.5], [100, 100], [-50, 3], [7.5, 5.25],
                        [float(below), 4], [float(border), 4], [float(above), 4], [3, float(above)]])
    coords = pts[None, None].to(DEVICE)
    feats[:, :, 8:11] = feats[:, :, 8:9]  # one track feature at the three positions around the border
    out = corr_sample_triton(pyr, feats, coords, 3)
    expect = ref.corr_sample_torch(pyr, feats, coords, 3)
    band = ((coords - coords.round()).abs() < 1e-3).any(-1)  # (1, 1, N): within 1e-3 cell of a border
    _assert_fp32_close(out[band], expect[band])
    _assert_fp32_close(out[~band], expect[~band])
    assert torch.all(out[:, :, [5, 6]] == 0)  # whole neighbourhood outside the map
    # continuity across the border: the same feature 1 ulp either side gives the same samples (measured ~1e-6)
    assert (out[0, 0, 8] - out[0, 0, 10]).abs().max() < 1e-4


def test_non_contiguous_inputs():
    pyr, feats, coords = _inputs()
    nc_feats = feats.transpose(1, 2).contiguous().transpose(1, 2)
    nc_coords = coords.permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
    nc_pyr = [p.transpose(-1, -2).contiguous().transpose(-1, -2) for p in pyr]
    assert not nc_feats.is_contiguous() and not nc_coords.is_contiguous() and not nc_pyr[0].is_contiguous()
    _assert_fp32_close(corr_sample_triton(nc_pyr, nc_feats, nc_coords, 3), ref.corr_sample_torch(pyr, feats, coords, 3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_inputs(dtype):
    """Half inputs, fp32 accumulation: against the fp32 result on the unrounded inputs, the kernel's error must be
    within 2x that of the reference run on the same half inputs (flash-attention's rule)."""
    pyr32, feats32, coords = _inputs(C=64)
    exact = ref.corr_sample_torch(pyr32, feats32, coords, 3)
    pyr, feats = [p.to(dtype) for p in pyr32], feats32.to(dtype)
    out = corr_sample_triton(pyr, feats, coords, 3)
    assert out.dtype == torch.float32
    ref_err = (ref.corr_sample_torch(pyr, feats, coords, 3) - exact).abs().max()
    assert (out - exact).abs().max() <= 2 * ref_err


def _grads(fn, fm, feats, coords, radius, levels=3):
    fm = fm.clone().requires_grad_(True)
    feats = feats.clone().requires_grad_(True)
    out = fn(ops.build_pyramid(fm, levels), feats, coords, radius)
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype, device=out.device).reshape(out.shape)
    (out * w).sum().backward()
    return fm.grad, feats.grad


@pytest.mark.parametrize("radius", [0, 3])
def test_backward_matches_reference_autograd(radius):
    g = torch.Generator().manual_seed(1)
    fm = torch.randn(2, 2, 16, 11, 13, generator=g).to(DEVICE)
    feats = torch.randn(2, 2, 19, 16, generator=g).to(DEVICE)
    coords = (torch.rand(2, 2, 19, 2, generator=g) * 16 - 2).to(DEVICE)  # some neighbourhoods leave the map
    got = _grads(corr_sample_triton, fm, feats, coords, radius)
    expect = _grads(ref.corr_sample_torch, fm, feats, coords, radius)
    for a, b in zip(got, expect):
        # fp32 atomics and a different summation order: measured max |diff| ~5e-7 for gradients of scale ~1
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    fm = torch.randn(1, 1, 3, 5, 6, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_(True)
    ft = torch.randn(1, 1, 2, 3, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_(True)
    coords = torch.tensor([[[[1.3, 2.6], [4.7, -0.4]]]], dtype=torch.float64, device=DEVICE)
    assert torch.autograd.gradcheck(lambda a, b: corr_sample_triton(ops.build_pyramid(a, 2), b, coords, 1), (fm, ft))


def test_no_coordinate_gradient():
    pyr, feats, coords = _inputs(N=3)
    with pytest.raises(ValueError, match="no gradient for coords"):
        corr_sample_triton(pyr, feats, coords.requires_grad_(True), 3)
    with torch.no_grad():
        corr_sample_triton(pyr, feats, coords, 3)  # fine without grad mode


def test_torch_library_registration():
    """Schema, fake (meta) implementation and autograd registration of the custom op."""
    pyr, feats, coords = _inputs(B=1, S=1, N=3, C=8, H=6, W=7, levels=2)
    feats.requires_grad_(True)
    torch.library.opcheck(
        _corr_sample_op, (pyr, feats, coords, 1), test_utils=("test_schema", "test_autograd_registration", "test_faketensor")
    )
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(p) for p in pyr]
        out = torch.ops.cotracker_fast.corr_sample(fake, mode.from_tensor(feats), mode.from_tensor(coords), 2)
    assert out.shape == (1, 1, 3, 2 * 25) and out.dtype == torch.float32


def test_resolver():
    dev = torch.device(DEVICE)
    assert ops.resolve("corr_sample", "triton", dev, torch.float32)[0] == "triton"
    assert ops.resolve("corr_sample", None, dev, torch.float32)[0] != "triton"  # not automatic until measured on GPU
    if DEVICE == "cpu":
        os.environ["TRITON_INTERPRET"] = "0"
        try:
            with pytest.raises(BackendUnavailableError, match="TRITON_INTERPRET"):
                ops.resolve("corr_sample", "triton", dev, torch.float32)
        finally:
            os.environ["TRITON_INTERPRET"] = "1"
    pyr, feats, coords = _inputs(N=4)
    _assert_fp32_close(ops.corr_sample(pyr, feats, coords, backend="triton"), ref.corr_sample_torch(pyr, feats, coords))


@torch.no_grad()
def test_model_with_triton_matches_official():
    """The whole model (one window, one iteration) with the kernel against the official code's golden output."""
    import numpy as np

    import golden_inputs as gi
    from cotracker_fast.models.registry import create_model
    from helpers import synthetic_state_dict

    case = [c for c in gi.CASES if c["id"] == "w8_untamed_1win_1iter"][0]
    golden = np.load(os.path.join(os.path.dirname(__file__), "data", "official_v1_golden.npz"))
    model = create_model(case["model"], backend={"corr_sample": "triton"}).eval().to(DEVICE)
    model.load_state_dict(synthetic_state_dict(case["seed"], tame=False))
    tracks, _, _, _ = model(gi.make_video(case).to(DEVICE), gi.make_queries(case).to(DEVICE), iters=case["iters"])
    diff = (tracks.cpu() - torch.from_numpy(golden[case["id"] + "/tracks"])).abs()
    # same bound as the references' one-iteration case (test_official_parity.py): measured ~1e-4 px there
    assert diff.mean() <= 1e-3 and diff.max() <= 0.05
