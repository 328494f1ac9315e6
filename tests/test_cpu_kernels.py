"""The C++ CPU kernels of ``cotracker_fast._cpu`` against their PyTorch references: fused correlation sampling
(float32, any CPU) and bf16 attention (CPUs with AVX512-BF16), on random and adversarial shapes."""
import pytest
import torch

from cotracker_fast import ops
from cotracker_fast.ops import _cpu_ext
from cotracker_fast.ops.op_corr4d import channels_last_level
from cotracker_fast.ops.op_attention import attention_cpu, attention_reference, attention_sdpa
from cotracker_fast.ops.op_corr_sample import corr_sample_cpu, corr_sample_reference, corr_sample_torch

pytestmark = pytest.mark.skipif(
    _cpu_ext.cpu_extension_error() is not None, reason=str(_cpu_ext.cpu_extension_error())
)
needs_bf16 = pytest.mark.skipif(
    not _cpu_ext.cpu_bf16_attention_supported(), reason="this CPU lacks AVX512-BF16 (the bf16 attention kernel's ISA)"
)

# Same arithmetic as corr_sample_torch up to the order of the float32 sums over channels (vectorised here).
# Measured max difference on these inputs: 7e-7 (C = 128).
CORR_ATOL, CORR_RTOL = 1e-5, 1e-5


def _corr_inputs(B=2, S=3, N=17, C=32, H=13, W=19, levels=3, seed=0, spread=4.0, channels_last=False):
    g = torch.Generator().manual_seed(seed)
    fmaps = torch.randn(B, S, C, H, W, generator=g)
    if channels_last:
        fmaps = channels_last_level(fmaps)
    feats = torch.randn(B, S, N, C, generator=g)
    lo = torch.tensor([-spread, -spread])
    hi = torch.tensor([W - 1 + spread, H - 1 + spread])
    coords = lo + torch.rand(B, S, N, 2, generator=g) * (hi - lo)
    pyr = ops.build_pyramid(fmaps, levels)
    if channels_last:
        pyr = [channels_last_level(p) for p in pyr]
    return pyr, feats, coords


@pytest.mark.parametrize("radius", [0, 1, 3, 4])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize(
    "shape",
    [dict(), dict(N=1), dict(B=1, S=1, N=5, H=17, W=11), dict(C=128, N=7, H=24, W=32), dict(C=3, H=2, W=3, levels=1)],
)
def test_corr_cpu_equals_torch_and_dense(radius, channels_last, shape):
    pyr, feats, coords = _corr_inputs(channels_last=channels_last, **shape)
    out = corr_sample_cpu(pyr, feats, coords, radius)
    expect = corr_sample_torch(pyr, feats, coords, radius)
    assert out.shape == expect.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, expect, atol=CORR_ATOL, rtol=CORR_RTOL)
    if min(p.shape[-1] for p in pyr) >= 2 and min(p.shape[-2] for p in pyr) >= 2:
        # the dense baseline's grid_sample round trip moves sample positions by ~1e-6 cells (see test_ops)
        torch.testing.assert_close(out, corr_sample_reference(pyr, feats, coords, radius), atol=2e-5, rtol=1e-5)


def test_corr_cpu_adversarial_positions():
    """Cell centres, exact borders, far outside (zeros), huge and non-finite coordinates."""
    pyr, feats, _ = _corr_inputs(B=1, S=2, N=10, H=12, W=16, levels=2)
    pts = torch.tensor(
        [[0, 0], [15, 11], [7, 5], [-0.5, 3], [15.5, 11.5], [100, 100], [-50, 3], [7.5, 5.25], [1e30, -1e30],
         [float("nan"), 2.0]], dtype=torch.float32,
    )
    coords = pts[None, None].expand(1, 2, 10, 2).contiguous()
    out = corr_sample_cpu(pyr, feats, coords, 3)
    expect = corr_sample_torch(pyr, feats[:, :, :8], coords[:, :, :8], 3)
    torch.testing.assert_close(out[:, :, :8], expect, atol=CORR_ATOL, rtol=CORR_RTOL)
    assert torch.all(out[:, :, [5, 6, 8]] == 0)  # the whole neighbourhood lies outside the map on every level
    assert torch.isnan(out[:, :, 9]).all()


def test_corr_cpu_strided_and_low_precision_inputs():
    pyr, feats, coords = _corr_inputs()
    nc_feats = feats.transpose(1, 2).contiguous().transpose(1, 2)
    nc_coords = coords.permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
    strided = [p[:, :, :, ::1, :] for p in pyr]
    expect = corr_sample_torch(pyr, feats, coords, 3)
    torch.testing.assert_close(corr_sample_cpu(strided, nc_feats, nc_coords, 3), expect, atol=CORR_ATOL, rtol=CORR_RTOL)
    half = corr_sample_cpu([p.bfloat16() for p in pyr], feats.bfloat16(), coords, 3)
    assert half.dtype == torch.float32
    expect16 = corr_sample_torch([p.bfloat16() for p in pyr], feats.bfloat16(), coords, 3)
    torch.testing.assert_close(half, expect16, atol=CORR_ATOL, rtol=CORR_RTOL)


def test_corr_cpu_under_autograd_gives_the_reference_gradients():
    """Forward-only kernel: with autograd recording it returns the local PyTorch form, gradients included."""
    pyr, feats, coords = _corr_inputs(B=1, S=2, N=5, C=8, H=9, W=11, levels=2)
    feats = feats.requires_grad_(True)
    out = corr_sample_cpu(pyr, feats, coords, 2)
    out.square().sum().backward()
    f2 = feats.detach().clone().requires_grad_(True)
    corr_sample_torch(pyr, f2, coords, 2).square().sum().backward()
    torch.testing.assert_close(feats.grad, f2.grad)


def test_corr_cpu_is_the_automatic_choice_on_cpu():
    assert ops.resolve("corr_sample", None, torch.device("cpu"), torch.float32)[0] == "cpu"
    with pytest.raises(ValueError, match="radius <= 15"):
        corr_sample_cpu(*_corr_inputs(levels=1), radius=16)


def _qkv(Bt, L, H, D, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(Bt, L, 3, H, D, generator=g) * scale).bfloat16()


def _check_attention(qkv, mask=None):
    """The kernel's error against fp32 attention of the same bf16 inputs stays within SDPA's bf16 error (both round
    the probabilities and the output to bf16) plus one bf16 rounding of the output."""
    ref = attention_reference(qkv.float(), mask)
    out = ops.attention(qkv, mask, backend="cpu").float()
    sdpa = attention_sdpa(qkv, mask).float()
    err, sdpa_err = (out - ref).abs().max(), (sdpa - ref).abs().max()
    one_rounding = ref.abs().max() * 2.0**-8
    assert out.shape == ref.shape
    assert err <= sdpa_err + one_rounding, (float(err), float(sdpa_err))
    # and on average the two agree to bf16 output rounding
    assert (out - ref).abs().mean() <= 1.5 * (sdpa - ref).abs().mean() + 1e-4


@needs_bf16
@pytest.mark.parametrize("L", [1, 7, 8, 16, 17, 33, 64, 65, 130, 300])
@pytest.mark.parametrize("D", [32, 48, 64])
def test_attention_cpu_matches_fp32_attention(L, D):
    _check_attention(_qkv(2, L, 3, D, seed=L + D))


@needs_bf16
@pytest.mark.parametrize("L", [5, 40, 129])
def test_attention_cpu_key_mask(L):
    qkv = _qkv(3, L, 2, 48, seed=L)
    g = torch.Generator().manual_seed(L)
    mask = torch.rand(3, L, generator=g) > 0.5
    mask[:, -1] = True
    mask[1] = False
    mask[1, L // 2] = True  # one valid key in a row: every query copies its value
    _check_attention(qkv, mask)
    out = ops.attention(qkv, mask, backend="cpu").float()
    v = qkv[1, L // 2, 2].float().reshape(-1)
    torch.testing.assert_close(out[1], v.expand(L, -1), atol=0, rtol=0)


@needs_bf16
def test_attention_cpu_reads_strided_qkv_and_large_values():
    base = _qkv(4, 70, 2, 32, seed=3, scale=8.0)  # large scores: the running maximum must rescale correctly
    qkv = base[::2]  # batch stride of 2 rows
    assert not qkv.is_contiguous() and qkv.stride(-1) == 1
    _check_attention(qkv)


@needs_bf16
def test_attention_cpu_falls_back_to_sdpa_for_autograd_and_other_head_dims():
    qkv = _qkv(2, 9, 2, 40)
    torch.testing.assert_close(attention_cpu(qkv), attention_sdpa(qkv))
    q = _qkv(2, 9, 2, 32).requires_grad_(True)
    out = attention_cpu(q)
    assert out.grad_fn is not None
    torch.testing.assert_close(out, attention_sdpa(q))


@needs_bf16
def test_attention_cpu_is_the_automatic_choice_for_bf16_only(monkeypatch):
    from cotracker_fast.ops import op_attention

    monkeypatch.setattr(op_attention, "cpu_has_amx_bf16", lambda: False)
    cpu = torch.device("cpu")
    assert ops.resolve("attention", None, cpu, torch.bfloat16)[0] == "cpu"
    assert ops.resolve("attention", None, cpu, torch.float32)[0] == "torch"
    with pytest.raises(ops.BackendUnavailableError, match="bfloat16 only"):
        ops.resolve("attention", "cpu", cpu, torch.float32)


def test_attention_cpu_is_refused_without_avx512_bf16(monkeypatch):
    """On a CPU without the instructions the automatic choice is SDPA and an explicit request names the reason."""
    monkeypatch.setattr(_cpu_ext, "_bf16_kernel", False)
    cpu = torch.device("cpu")
    assert ops.resolve("attention", None, cpu, torch.bfloat16)[0] == "torch"
    with pytest.raises(ops.BackendUnavailableError, match="AVX512-BF16"):
        ops.resolve("attention", "cpu", cpu, torch.bfloat16)


@needs_bf16
def test_attention_cpu_amx_is_the_automatic_choice_with_amx(monkeypatch):
    """With AMX the automatic choice is ``cpu_amx``; the kernel alone still runs when asked for by name, and
    ``cpu_amx`` by name is refused on a CPU without AMX."""
    from cotracker_fast.ops import op_attention

    cpu = torch.device("cpu")
    monkeypatch.setattr(op_attention, "cpu_has_amx_bf16", lambda: True)
    assert ops.resolve("attention", None, cpu, torch.bfloat16)[0] == "cpu_amx"
    assert ops.resolve("attention", None, cpu, torch.float32)[0] == "torch"
    assert ops.resolve("attention", "cpu", cpu, torch.bfloat16)[0] == "cpu"
    monkeypatch.setattr(op_attention, "cpu_has_amx_bf16", lambda: False)
    with pytest.raises(ops.BackendUnavailableError, match="no AMX"):
        ops.resolve("attention", "cpu_amx", cpu, torch.bfloat16)


@needs_bf16
@pytest.mark.parametrize("L", [1, 8, 31, 32, 33, 70])
def test_attention_cpu_amx_splits_by_length(monkeypatch, L):
    """``cpu_amx`` runs the kernel up to 32 keys and SDPA beyond (each checked against fp32 attention by the tests
    above) and returns that backend's result, with and without a key mask."""
    from cotracker_fast.ops import op_attention

    calls = []
    for name in ("attention_cpu", "attention_sdpa"):
        fn = getattr(op_attention, name)
        monkeypatch.setattr(op_attention, name, lambda *a, _fn=fn, _n=name: calls.append(_n) or _fn(*a))
    qkv = _qkv(3, L, 2, 48, seed=L)
    mask = torch.rand(3, L, generator=torch.Generator().manual_seed(L)) > 0.3
    mask[:, 0] = True
    want = "attention_cpu" if L <= op_attention.CPU_AMX_KERNEL_MAX_LEN else "attention_sdpa"
    for m in (None, mask):
        out = op_attention.attention_cpu_amx(qkv, m)
        assert calls.pop() == want and not calls
        assert torch.equal(out, getattr(op_attention, want)(qkv, m))
        calls.clear()
