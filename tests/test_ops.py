"""Reference ops: dense vs local correlation, math vs SDPA attention, border sampling, and the backend resolver."""
import math

import pytest
import torch
import torch.nn.functional as F

from cotracker_fast import ops
from cotracker_fast import ops as ref
from cotracker_fast.ops.backend import BackendUnavailableError

# Both correlation references accumulate in fp32; the dense one goes through grid_sample's normalise/unnormalise
# round trip, so sample positions differ by ~1e-6 cells. Measured max difference on these inputs: ~5e-6.
CORR_ATOL, CORR_RTOL = 2e-5, 1e-5


def _inputs(B=2, S=3, N=17, C=32, H=13, W=19, levels=3, seed=0, spread=4.0):
    g = torch.Generator().manual_seed(seed)
    fmaps = torch.randn(B, S, C, H, W, generator=g)
    feats = torch.randn(B, S, N, C, generator=g)
    # positions inside and up to `spread` cells outside the map
    lo = torch.tensor([-spread, -spread])
    hi = torch.tensor([W - 1 + spread, H - 1 + spread])
    coords = lo + torch.rand(B, S, N, 2, generator=g) * (hi - lo)
    return ops.build_pyramid(fmaps, levels), feats, coords


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("shape", [dict(), dict(N=1), dict(B=1, S=1, N=5, H=17, W=11), dict(C=128, N=7, H=24, W=32)])
def test_corr_local_equals_dense(radius, shape):
    pyr, feats, coords = _inputs(**shape)
    a = ref.corr_sample_reference(pyr, feats, coords, radius)
    b = ref.corr_sample_torch(pyr, feats, coords, radius)
    B, S, N, _ = feats.shape
    assert a.shape == b.shape == (B, S, N, len(pyr) * (2 * radius + 1) ** 2)
    assert a.dtype == b.dtype == torch.float32
    torch.testing.assert_close(b, a, atol=CORR_ATOL, rtol=CORR_RTOL)


def test_corr_adversarial_positions():
    """Integer cell centres, exact borders, far outside (all zeros), and half-cell positions."""
    pyr, feats, _ = _inputs(B=1, S=2, N=8, H=12, W=16, levels=2)
    pts = torch.tensor(
        [[0, 0], [15, 11], [7, 5], [-0.5, 3], [15.5, 11.5], [100, 100], [-50, 3], [7.5, 5.25]], dtype=torch.float32
    )
    coords = pts[None, None].expand(1, 2, 8, 2).contiguous()
    a = ref.corr_sample_reference(pyr, feats, coords, 3)
    b = ref.corr_sample_torch(pyr, feats, coords, 3)
    torch.testing.assert_close(b, a, atol=CORR_ATOL, rtol=CORR_RTOL)
    far = [5, 6]  # the whole 7x7 neighbourhood lies outside the map on every level
    assert torch.all(b[:, :, far] == 0)


def test_corr_matches_explicit_formula_at_integer_point():
    """At an integer position the sample at offset (dx, dy) is <f, F[y+dy, x+dx]> / sqrt(C): checks the x-major
    order and the scale independently of grid_sample."""
    pyr, feats, _ = _inputs(B=1, S=1, N=1, C=16, H=12, W=16, levels=1)
    x, y, r = 6, 4, 2
    coords = torch.tensor([[[[float(x), float(y)]]]])
    out = ref.corr_sample_torch(pyr, feats, coords, r)[0, 0, 0]
    fm, f = pyr[0][0, 0], feats[0, 0, 0]
    d = 2 * r + 1
    for i in range(d):  # x offset: slow axis
        for j in range(d):  # y offset: fast axis
            expect = (f * fm[:, y + j - r, x + i - r]).sum() / math.sqrt(16)
            torch.testing.assert_close(out[i * d + j], expect, atol=1e-5, rtol=1e-5)


def test_corr_non_contiguous_and_half_precision_inputs():
    pyr, feats, coords = _inputs()
    nc_feats = feats.transpose(1, 2).contiguous().transpose(1, 2)
    nc_coords = coords.permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
    assert not nc_feats.is_contiguous() and not nc_coords.is_contiguous()
    expect = ref.corr_sample_torch(pyr, feats, coords, 3)
    torch.testing.assert_close(ref.corr_sample_torch(pyr, nc_feats, nc_coords, 3), expect)
    torch.testing.assert_close(ref.corr_sample_reference(pyr, nc_feats, nc_coords, 3), expect, atol=CORR_ATOL, rtol=CORR_RTOL)
    # bf16 inputs are upcast and accumulated in fp32: output is fp32 and equals the fp32 op on the rounded inputs
    out16 = ref.corr_sample_torch([p.bfloat16() for p in pyr], feats.bfloat16(), coords, 3)
    assert out16.dtype == torch.float32
    torch.testing.assert_close(out16, ref.corr_sample_torch([p.bfloat16().float() for p in pyr], feats.bfloat16().float(), coords, 3))


def test_corr_gradients_local_vs_dense():
    pyr0, feats0, coords = _inputs(B=1, S=2, N=5, C=8, H=9, W=11, levels=2)
    grads = []
    for fn in (ref.corr_sample_reference, ref.corr_sample_torch):
        fmap = pyr0[0].clone().requires_grad_(True)
        feats = feats0.clone().requires_grad_(True)
        out = fn(ops.build_pyramid(fmap, 2), feats, coords, 2)
        w = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
        (out * w).sum().backward()
        grads.append((fmap.grad, feats.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grads[1][1], grads[0][1], atol=1e-5, rtol=1e-4)


def test_corr_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    fmap = torch.randn(1, 1, 3, 5, 6, dtype=torch.float64, generator=g, requires_grad=True)
    feats = torch.randn(1, 1, 2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    coords = torch.tensor([[[[1.3, 2.6], [4.7, -0.4]]]], dtype=torch.float64)

    def f(fm, ft):
        return ref.corr_sample_torch(ops.build_pyramid(fm, 2), ft, coords, 1)

    assert torch.autograd.gradcheck(f, (fmap, feats))


def test_corr_input_errors():
    pyr, feats, coords = _inputs()
    with pytest.raises(ValueError, match="coords"):
        ops.corr_sample(pyr, feats, coords[..., :1])
    with pytest.raises(ValueError, match="feats"):
        ops.corr_sample(pyr, feats[0], coords)
    with pytest.raises(ValueError, match="radius"):
        ops.corr_sample(pyr, feats, coords, radius=-1)
    with pytest.raises(ValueError, match=r"fmaps\[1\]"):
        ops.corr_sample([pyr[0], pyr[1][:, :, :5]], feats, coords)
    tiny = ops.build_pyramid(torch.randn(1, 1, 4, 2, 2), 2)
    with pytest.raises(ValueError, match="2x2"):
        ref.corr_sample_reference(tiny, torch.randn(1, 1, 1, 4), torch.zeros(1, 1, 1, 2))


@pytest.mark.parametrize("L", [1, 8, 37])
def test_attention_math_equals_sdpa(L):
    g = torch.Generator().manual_seed(L)
    qkv = torch.randn(3, L, 3, 8, 48, generator=g)
    a, b = ref.attention_reference(qkv), ref.attention_sdpa(qkv)
    assert a.shape == (3, L, 384)
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    mask = torch.rand(3, L, generator=g) > 0.4
    mask[:, 0] = True
    a, b = ref.attention_reference(qkv, mask), ref.attention_sdpa(qkv, mask)
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    # masked keys are ignored: dropping them gives the same output for every row
    keep = mask[0]
    alone = ref.attention_reference(qkv[:1, keep])
    torch.testing.assert_close(a[:1, keep], alone, atol=1e-5, rtol=1e-5)


def test_attention_errors():
    qkv = torch.randn(2, 5, 3, 2, 4)
    with pytest.raises(ValueError, match="qkv"):
        ops.attention(qkv[:, :, :2])
    with pytest.raises(ValueError, match="key_mask"):
        ops.attention(qkv, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="no valid key"):
        ops.attention(qkv, torch.zeros(2, 5, dtype=torch.bool))


def test_bilinear_sample_border_matches_grid_sample():
    g = torch.Generator().manual_seed(0)
    img = torch.randn(2, 5, 7, 9, generator=g)
    xy = torch.rand(2, 30, 2, generator=g) * torch.tensor([14.0, 11.0]) - torch.tensor([3.0, 2.0])
    xy[:, :4] = torch.tensor([[0.0, 0.0], [8.0, 6.0], [3.0, 2.0], [8.5, -0.5]])
    grid = (xy * torch.tensor([2 / 8, 2 / 6]) - 1)[:, None]
    expect = F.grid_sample(img, grid, align_corners=True, padding_mode="border")[:, :, 0].transpose(1, 2)
    torch.testing.assert_close(ops.bilinear_sample_border(img, xy), expect, atol=1e-5, rtol=1e-5)


def test_resolver_precedence(monkeypatch):
    dev, dt = torch.device("cpu"), torch.float32
    # automatic choice on CPU: the fused C++ kernel where the extension is built
    auto = "torch" if ops._cpu_ext.cpu_extension_error() else "cpu"
    assert ops.resolve("corr_sample", None, dev, dt)[0] == auto
    assert ops.resolve("corr_sample", "reference", dev, dt)[0] == "reference"
    monkeypatch.setenv("COTRACKER_FAST_BACKEND", "reference")
    assert ops.resolve("attention", None, dev, dt)[0] == "reference"
    monkeypatch.setenv("COTRACKER_FAST_BACKEND_ATTENTION", "torch")
    assert ops.resolve("attention", None, dev, dt)[0] == "torch"  # per-op variable beats the global one
    assert ops.resolve("corr_sample", None, dev, dt)[0] == "reference"
    assert ops.resolve("attention", "reference", dev, dt)[0] == "reference"  # explicit argument beats both
    assert ops.resolve("corr_sample", {"attention": "torch"}, dev, dt)[0] == "reference"


def test_resolver_errors_and_fallback():
    dev, dt = torch.device("cpu"), torch.float32
    with pytest.raises(BackendUnavailableError, match="no backend 'nope'"):
        ops.resolve("corr_sample", "nope", dev, dt)
    with pytest.raises(ValueError, match="unknown ops"):
        ops.resolve("corr_sample", {"corr": "torch"}, dev, dt)
    # a backend that cannot run: explicit request raises with the reason, automatic choice falls back
    ops.register_backend("attention", "_test_never", ref.attention_reference, check=lambda d, t: "needs a GPU", auto_priority=0)
    try:
        with pytest.raises(BackendUnavailableError, match="needs a GPU"):
            ops.resolve("attention", "_test_never", dev, dt)
        assert ops.resolve("attention", None, dev, dt)[0] == "torch"
    finally:
        ops.backend._REGISTRY["attention"].impls.pop("_test_never")
        ops.backend._REGISTRY["attention"].auto_order.remove("_test_never")
