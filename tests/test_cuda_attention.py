"""CUDA attention kernels (csrc/): the build and boundary checks on any machine with nvcc, parity on a GPU."""
import importlib.util
import os

import pytest
import torch

from cotracker_fast import _cuda_build
from cotracker_fast import ops as ref

needs_nvcc = pytest.mark.skipif(_cuda_build.nvcc_path() is None, reason="nvcc is not installed")


def _load(path):
    spec = importlib.util.spec_from_file_location("cotracker_fast._C", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Compile csrc/ from scratch with the machine's nvcc (no GPU needed: the sources include no torch headers)."""
    pytest.importorskip("pybind11", reason="pybind11 is needed to build the extension")
    if _cuda_build.nvcc_path() is None:
        pytest.skip("nvcc is not installed")
    dest = tmp_path_factory.mktemp("cuda") / _cuda_build.extension_filename()
    return _load(_cuda_build.build(str(dest), arch_list="8.0;9.0"))


@needs_nvcc
def test_sources_compile_and_check_arguments(built):
    """The module builds and imports without a GPU; its launchers reject bad arguments before touching CUDA."""
    t, g = built.time_attention_fwd_cuda, built.group_attention_fwd_cuda
    ok = dict(qkv=1, out=2, batch=4, L=8, heads=8, head_dim=48, sb=0, sl=0, s3=0, sh=0, scale=0.1, dtype=0, stream=0)
    for bad, match in [
        (dict(head_dim=40), "head_dim must be 32, 48 or 64, got 40"),
        (dict(L=33), "time attention supports L <= 32, got L = 33"),
        (dict(dtype=7), "dtype code must be 0"),
        (dict(qkv=0), "null pointer"),
        (dict(batch=0), "batch, L and heads must be >= 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            t(**{**ok, **bad})
    gok = {**ok, "key_mask": 0, "mask_sb": 0}
    with pytest.raises(ValueError, match="L <= 65536"):
        g(**{**gok, "L": 65537})


@needs_nvcc
@pytest.mark.skipif(os.environ.get("COTRACKER_FAST_NO_CUDA", "0") not in ("", "0"), reason="build disabled")
def test_setup_built_the_extension():
    """`pip install` (make setup) compiled cotracker_fast._C because nvcc is present."""
    from cotracker_fast.ops.op_attention import load_extension

    ext = load_extension()
    assert ext is not None and hasattr(ext, "group_attention_fwd_cuda")


def test_arch_flags():
    assert _cuda_build.arch_flags("8.0;9.0+PTX") == [
        "-gencode", "arch=compute_80,code=sm_80",
        "-gencode", "arch=compute_90,code=sm_90", "-gencode", "arch=compute_90,code=compute_90",
    ]
    assert _cuda_build.arch_flags("sm_86") == ["-gencode", "arch=compute_86,code=sm_86"]
    with pytest.raises(_cuda_build.CudaBuildError, match="cannot parse"):
        _cuda_build.arch_flags("ampere")


def test_python_boundary_validation():
    from cotracker_fast.ops.op_attention import attention_cuda

    with pytest.raises(ValueError, match="must be a CUDA tensor"):
        attention_cuda(torch.randn(2, 8, 3, 8, 48))
    with pytest.raises(ValueError, match=r"qkv must be \(batch, L, 3, heads, head_dim\)"):
        attention_cuda(torch.randn(2, 8, 8, 48))


# ------------------------------------------------------------------------------------------------ GPU parity
def _qkv(batch, L, D, dtype, seed=0, heads=8):
    """A packed projection output sliced out of a wider buffer, so its strides are not the contiguous ones."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    wide = torch.randn(batch, L, 3 * heads * D + 16, device="cuda", generator=g).to(dtype)
    return wide[..., : 3 * heads * D].view(batch, L, 3, heads, D)


def _check_rule(qkv, mask=None):
    """max|kernel - ref32| <= 2 max|torch same dtype - ref32| (half types); fp32: summation order only."""
    from cotracker_fast.ops.op_attention import attention_cuda

    out = attention_cuda(qkv, mask).float()
    ref32 = ref.attention_reference(qkv.float(), mask)
    err = (out - ref32).abs().max()
    if qkv.dtype == torch.float32:
        # fp32 with a different summation order (online softmax, key by key); bound set from fp32 epsilon times
        # the accumulation length, not yet measured on a GPU
        assert err <= 1e-5 * max(1.0, qkv.shape[1] ** 0.5), float(err)
    else:
        same = ref.attention_sdpa(qkv, mask).float()
        assert err <= 2 * (same - ref32).abs().max() + 1e-6, (float(err), float((same - ref32).abs().max()))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("D", [32, 48, 64])
@pytest.mark.parametrize("L, batch", [(1, 8), (7, 8192), (8, 1024), (13, 3), (32, 5), (97, 8), (1025, 2), (4099, 1)])
def test_parity_with_reference(dtype, D, L, batch):
    _check_rule(_qkv(batch, L, D, dtype))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("L", [8, 97, 1025])
def test_masked_group_attention(dtype, L):
    qkv = _qkv(4, L, 48, dtype)
    g = torch.Generator(device="cuda").manual_seed(1)
    mask = torch.rand(4, L, device="cuda", generator=g) > 0.3
    mask[:, 0] = True
    _check_rule(qkv, mask)


@pytest.mark.gpu
def test_backward_fallback_matches_reference():
    from cotracker_fast.ops.op_attention import attention_cuda

    qkv = _qkv(3, 13, 48, torch.float32).detach().requires_grad_(True)
    w = torch.randn(3, 13, 384, device="cuda")
    (attention_cuda(qkv) * w).sum().backward()
    g_cuda = qkv.grad.clone()
    qkv.grad = None
    (ref.attention_reference(qkv) * w).sum().backward()
    torch.testing.assert_close(g_cuda, qkv.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
def test_opcheck_and_model_backend():
    from cotracker_fast.ops.op_attention import _attention_op

    qkv = _qkv(2, 8, 48, torch.float32)
    torch.library.opcheck(_attention_op, (qkv, None, 48**-0.5), test_utils=("test_schema", "test_faketensor"))
    from cotracker_fast.models.registry import create_model

    torch.manual_seed(0)
    model = create_model().cuda().eval()
    video = torch.rand(1, 10, 3, 64, 96, device="cuda") * 255
    q = torch.tensor([[[0.0, 10, 12], [4.0, 50, 30]]], device="cuda")
    with torch.no_grad():
        model.set_backend({"attention": "torch"})
        a = model(video, q, iters=1)[0]
        model.set_backend({"attention": "cuda"})
        b = model(video, q, iters=1)[0]
    # one iteration of random weights (chaos stays small, see tests/test_official_parity.py): fp32 order only
    assert (a - b).abs().max() < 1e-2
