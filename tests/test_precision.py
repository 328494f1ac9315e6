"""Compute dtypes on the CPU: the bf16 path (forced on any CPU: emulated bf16 rounds as native bf16 does), the
float32 fallback where bf16 is not native, the refusal of float16, and the float32 islands inside the model."""
import time
import warnings

import pytest
import torch
import torch.nn.functional as F

from cotracker_fast import ops, precision
from cotracker_fast.models.registry import create_model
from cotracker_fast.online import CoTrackerOnlinePredictor
from cotracker_fast.precision import parse_dtype_name, resolve_dtype


def _video(T=9, H=40, W=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(T, 3, 5, 7, generator=g)
    return (torch.nn.functional.interpolate(small, (H, W), mode="bilinear", align_corners=False) * 255)[None]


QUERIES = torch.tensor([[[0.0, 10, 12], [3.0, 40.5, 30.25], [5.0, 1.0, 39.0]]])


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(precision, "_WARNED_EMULATED", False)


def test_fp16_on_cpu_is_refused_before_any_work(make_predictor):
    p = make_predictor(dtype=torch.float16)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="float16 is not supported on the CPU.*bfloat16"):
        p(_video(), QUERIES)
    assert time.perf_counter() - t0 < 5.0  # refused up front, not after a slow emulated run
    online = make_predictor(cls=CoTrackerOnlinePredictor, dtype=torch.float16)
    online.start((40, 56), QUERIES)
    with pytest.raises(ValueError, match="bfloat16"):
        online.step(_video())


def test_bf16_without_native_support_runs_float32_and_says_so_once(make_predictor, monkeypatch, fresh_warning):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    p = make_predictor()
    ref, ref_vis = p(_video(), QUERIES)
    p.dtype = torch.bfloat16
    with pytest.warns(UserWarning, match="no native bf16.*running float32"):
        got, vis = p(_video(), QUERIES)
    assert p.compute_dtype == torch.float32
    assert torch.equal(got, ref) and torch.equal(vis, ref_vis)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process, not per call
        p(_video(), QUERIES)


def test_bf16_on_a_native_cpu_uses_autocast_and_channels_last(make_predictor, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    p = make_predictor(dtype=torch.bfloat16)
    assert p.compute_dtype == torch.bfloat16
    p(_video(), QUERIES)
    assert p.model.fnet.conv2.weight.is_contiguous(memory_format=torch.channels_last)


def test_dtype_names():
    assert parse_dtype_name("fp32", "cpu") == torch.float32
    assert parse_dtype_name("bfloat16", "cpu") == torch.bfloat16
    assert parse_dtype_name("auto", "cuda") == torch.float32
    native = precision.cpu_has_native_bf16()
    assert parse_dtype_name("auto", "cpu") == (torch.bfloat16 if native else torch.float32)
    with pytest.raises(ValueError, match="dtype must be one of auto"):
        parse_dtype_name("int8", "cpu")
    assert resolve_dtype(torch.float16, "cuda") == torch.float16


def test_cpu_capability_probe_matches_torch():
    caps = torch.cpu.get_capabilities()
    if caps.get("avx512_bf16") or caps.get("amx_bf16"):
        assert precision.cpu_has_native_bf16()
    elif caps.get("architecture", "").startswith("x86") or "avx2" in caps:
        assert not precision.cpu_has_native_bf16()


def test_coordinates_and_visibility_stay_float32_under_autocast():
    torch.manual_seed(0)
    model = create_model("cotracker_stride_4_wind_8").eval()
    video = _video(T=8, H=32, W=48)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fmaps = model.encode(video)
        assert fmaps.dtype == torch.bfloat16  # the feature CNN runs in bf16
        B, S = 1, 8
        coords = torch.rand(B, S, 3, 2) * 8
        preds, vis = model.forward_window(fmaps, coords, torch.randn(B, 3, model.config.latent_dim),
                                          torch.zeros(B, S, 3), torch.ones(B, S, 3), iters=2)
    assert all(p.dtype == torch.float32 for p in preds) and vis.dtype == torch.float32


@pytest.mark.parametrize("relu", [True, False])
def test_encoder_norm_keeps_channels_last_and_the_official_contiguous_float32(relu):
    """The encoder's instance norm: contiguous float32 inputs go through the module (bit-identical); channels-last
    inputs (float32 or bf16) take the channels-last group-norm form, which keeps the layout and is within float32
    rounding of the exact normalisation (float32), or within one bf16 rounding (bf16; statistics in float32)."""
    import torch.nn as nn

    from cotracker_fast.models.encoder import norm_act

    norm = nn.InstanceNorm2d(5)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 13, 7, generator=g) * 3 + 1
    assert torch.equal(norm_act(norm, x.clone(), relu), F.relu(norm(x)) if relu else norm(x))
    x = x.contiguous(memory_format=torch.channels_last)
    exact = F.instance_norm(x.double())
    exact = exact.relu() if relu else exact
    y = norm_act(norm, x.clone(), relu)
    assert y.dtype == torch.float32 and y.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(y.double(), exact, rtol=1e-5, atol=1e-6)
    xb = x.to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = norm_act(norm, xb, relu)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
    want = F.instance_norm(xb.double())  # the same bf16 inputs, exact arithmetic
    want = want.relu() if relu else want
    # one rounding to bf16 (relative 2^-8) of values up to ~4 in magnitude
    assert torch.allclose(y.double(), want, rtol=2**-8, atol=1e-6)


def test_float32_cpu_fast_path_runs_the_encoder_channels_last():
    """On a CPU the float32 predictor keeps the encoder channels-last unless every op is the reference; both give
    the same tracks up to float32 rounding. The shipped weights, not random ones: random weights amplify rounding
    chaotically (measured up to 6 px between the layouts after 2 iterations). Measured on the AMD EPYC (Zen 3):
    this case 8.6e-6 px mean, 1.1e-4 px at most; the shipped weights on 16 frames, 256 points, at 576x768 2.4e-5 px
    mean, 6e-4 px at most. The bounds leave 10-100x for other CPUs' rounding."""
    from cotracker_fast.predictor import CoTrackerPredictor

    fast, exact = CoTrackerPredictor(checkpoint=None), CoTrackerPredictor(checkpoint=None)
    exact.reference_ops = True
    for p in (fast, exact):
        p.interp_shape = (96, 128)  # small, for the test's time; the model tracks at any size
    # a textured video (a featureless one is ill-conditioned for any tracker, and rounding then moves the tracks
    # further: 0.05 px mean on _video()), moving one pixel down and two right per frame
    g = torch.Generator().manual_seed(0)
    base = F.interpolate(torch.rand(1, 3, 24, 32, generator=g), size=(96, 128), mode="bilinear")[0] * 255
    video = torch.stack([torch.roll(base, shifts=(t, 2 * t), dims=(1, 2)) for t in range(12)])[None]
    queries = torch.cat([torch.zeros(64, 1), torch.rand(64, 2, generator=g) * torch.tensor([127.0, 95.0])], 1)[None]
    got, vis = fast(video, queries)
    ref, ref_vis = exact(video, queries)
    assert fast.model.fnet.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert exact.model.fnet.conv2.weight.is_contiguous()
    d = (got - ref).abs()
    assert d.mean() <= 1e-3 and d.max() <= 1e-2, f"mean {d.mean():.3g} max {d.max():.3g} px"
    assert torch.equal(vis, ref_vis)


def test_reference_backend_keeps_the_official_encoder_layout(make_predictor, monkeypatch):
    assert ops.requests_reference("reference")
    assert not ops.requests_reference(None) and not ops.requests_reference({"corr_sample": "reference"})
    p = make_predictor(backend="reference")
    ref, ref_vis = p(_video(), QUERIES)
    assert p.model.fnet.conv2.weight.is_contiguous()
    # a bf16 call puts the encoder channels-last; the next float32 call puts it back and gives the same tracks
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    p.dtype = torch.bfloat16
    p(_video(), QUERIES)
    assert p.model.fnet.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    p.dtype = torch.float32
    got, vis = p(_video(), QUERIES)
    assert p.model.fnet.conv2.weight.is_contiguous()
    assert torch.equal(got, ref) and torch.equal(vis, ref_vis)


def test_encoder_layout_follows_the_backend_environment_at_each_call(make_predictor, monkeypatch):
    """A predictor built with the automatic backend reads the environment at each call: with every op set to the
    reference there (after construction), the next float32 call keeps the official layout and gives the tracks of a
    predictor built with ``backend="reference"``; without it, the layout is channels-last again."""
    monkeypatch.delenv("COTRACKER_FAST_BACKEND", raising=False)
    auto, ref = make_predictor(), make_predictor(backend="reference")
    auto(_video(), QUERIES)
    assert auto.model.fnet.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    monkeypatch.setenv("COTRACKER_FAST_BACKEND", "reference")
    got, vis = auto(_video(), QUERIES)
    assert auto.model.fnet.conv2.weight.is_contiguous()
    want, want_vis = ref(_video(), QUERIES)
    assert torch.equal(got, want) and torch.equal(vis, want_vis)
    monkeypatch.delenv("COTRACKER_FAST_BACKEND")
    auto(_video(), QUERIES)
    assert auto.model.fnet.conv2.weight.is_contiguous(memory_format=torch.channels_last)


def test_cpu_bf16_mlp_runs_fused_only_for_inference():
    """Under CPU bf16 autocast without autograd, each of the MLP's matmuls is one oneDNN call (fc1 with its GELU in
    the epilogue): one bf16 rounding of the hidden activations instead of two, so the error against float32 is no
    larger than autocast's own path's. Training (anything that records autograd) keeps autograd's ops."""
    from cotracker_fast.models import updateformer as U

    torch.manual_seed(0)
    mlp = U.Mlp(384, 1536).eval()
    x = torch.randn(2, 50, 384)
    with torch.no_grad():
        ref = mlp(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if not U._cpu_bf16_inference(x, mlp.fc1):
                pytest.skip("oneDNN cannot build its fused bf16 linear (not in this build, or this CPU lacks bf16)")
            fused = mlp(x)
            unfused = mlp.fc2(F.gelu(mlp.fc1(x), approximate="tanh"))
    assert fused.dtype == torch.bfloat16
    err, err_unfused = (fused.float() - ref).abs().max(), (unfused.float() - ref).abs().max()
    # measured on an Intel Xeon (AMX): 0.0034 fused, 0.0039 through autocast's ops (outputs up to 0.84)
    assert err <= err_unfused * 1.1, (float(err), float(err_unfused))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not U._cpu_bf16_inference(x.requires_grad_(True), mlp.fc1)  # input records autograd
        x = x.detach()
        assert not U._cpu_bf16_inference(x, mlp.fc1)  # grad enabled, parameters require grad: training
        for p in mlp.parameters():
            p.requires_grad_(False)
        mlp.fc1.bias.requires_grad_(True)
        assert not U._cpu_bf16_inference(x, mlp.fc1)  # only the bias trains
        assert U._cpu_bf16_inference(x, mlp.fc2)  # nothing of fc2 records autograd
        assert not U._cpu_bf16_inference(x.double(), mlp.fc2)  # float64 is left to the module, as autocast does
    assert not U._cpu_bf16_inference(x, mlp.fc2)  # no autocast: float32 as written


def test_cpu_bf16_blocks_train_under_autocast():
    """A backward pass through a transformer block under CPU bf16 autocast reaches every parameter (the fused
    inference op, which has no autograd formula, is not used while autograd records)."""
    from cotracker_fast.models import updateformer as U

    torch.manual_seed(0)
    block = U.AttnBlock(64, 4, 4.0).train()
    x = torch.randn(3, 9, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        block(x).float().square().mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("shape", [(1, 384), (1, 1, 384), (3, 7, 384), (1060, 8, 384), "strided"])
def test_cpu_bf16_linear_matches_autocast(shape):
    """The blocks' Linears under CPU bf16 autocast (one oneDNN matmul, bias in the epilogue) give autocast's own
    ``F.linear`` up to one bf16 rounding of the output, and the module itself outside autocast; 2D, 3D and
    non-contiguous inputs."""
    from cotracker_fast.models import updateformer as U

    torch.manual_seed(0)
    layer = torch.nn.Linear(384, 1152).eval()
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(5, 768)[:, ::2] if shape == "strided" else torch.randn(shape)
    with torch.no_grad():
        exact = F.linear(x.bfloat16().double(), layer.weight.bfloat16().double(), layer.bias.bfloat16().double())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if not U._cpu_bf16_inference(x, layer):
                pytest.skip("oneDNN cannot build its fused bf16 linear (not in this build, or this CPU lacks bf16)")
            ours = U.linear(layer, x)
            theirs = layer(x)
        assert torch.equal(U.linear(layer, x), layer(x))  # no autocast: the module itself
    assert ours.dtype == theirs.dtype == torch.bfloat16 and ours.shape == (*x.shape[:-1], 1152)
    # both sum the same bf16 products in fp32 (error ~1e-6 here) and round once to bf16: a relative error of at most
    # 2^-9, and 2^-8 covers it; atol only for outputs near 0, where one rounding is below 1e-5
    for y in (ours, theirs):
        assert torch.allclose(y.double(), exact, rtol=2**-8, atol=1e-5)


def test_cpu_bf16_linear_leaves_compiled_graphs_to_inductor():
    """Under torch.compile the blocks' Linears stay ``aten.linear`` in the graph: inductor has no lowering for the GELU
    epilogue of ``mkldnn._linear_pointwise`` (a LoweringException) and picks its own CPU kernels for a plain
    linear."""
    from cotracker_fast.models import updateformer as U

    targets = []

    def backend(gm, example_inputs):
        targets.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    torch._dynamo.reset()
    torch.manual_seed(0)
    mlp = U.Mlp(32, 128).eval()
    x = torch.randn(2, 5, 32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        compiled = torch.compile(mlp, backend=backend, fullgraph=True)(x)
        eager = mlp(x)
    torch._dynamo.reset()
    assert any("linear" in t for t in targets) and not any("_linear_pointwise" in t for t in targets), targets
    assert compiled.dtype == eager.dtype == torch.bfloat16
    # the two round the hidden activations differently (once in the fused epilogue, twice unfused): measured max
    # difference 0.0039 on outputs up to 0.6, about one bf16 ulp at that size
    torch.testing.assert_close(compiled.float(), eager.float(), atol=8e-3, rtol=0)


def test_training_bf16_runs_float32_on_a_cpu_without_native_bf16(monkeypatch):
    """``TrainConfig.amp="bf16"`` autocasts to bf16 on a CPU with native bf16 and runs float32 (with the predictors'
    warning) on one without, where emulated bf16 is far slower; ``"none"`` never autocasts."""
    from cotracker_fast.training.trainer import TrainConfig, _autocast

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    with _autocast(TrainConfig(amp="bf16"), cpu):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with _autocast(TrainConfig(amp="none"), cpu):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(precision, "_WARNED_EMULATED", False)
    with pytest.warns(UserWarning, match="no native bf16"):
        with _autocast(TrainConfig(amp="bf16"), cpu):
            assert not torch.is_autocast_enabled("cpu")
