"""Shared test helpers."""
import os

import pytest
import torch


def triton_test_device() -> str:
    """The device of the Triton kernel tests, called at the top of their modules: CUDA when present, else the CPU
    through the Triton interpreter (TRITON_INTERPRET=1, set in conftest.py), where only small shapes are affordable.
    Skips the calling module when Triton is missing, or when there is no GPU and the interpreter is off."""
    pytest.importorskip("triton", reason="triton is not installed")
    if torch.cuda.is_available():
        return "cuda"
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("no GPU and TRITON_INTERPRET is not 1", allow_module_level=True)
    return "cpu"


@torch.no_grad()
def tame_random_weights_(model):
    """Make a randomly initialised CoTracker well-conditioned, in place, for equivalence tests.

    With random weights the official flow embedding (sin/cos at up to ~970 rad per feature cell) feeds the
    transformer directly, and the network is chaotic: a 1e-12 change of the input moves tracks by ~1 px after three
    windows, even in float64 (measured). Two changes make it tame while keeping every op exercised: the input
    columns of the sin/cos flow features are zeroed (the raw (dx, dy) columns stay), and the flow head is scaled by
    0.2. Measured: a 1e-3 input change then moves tracks by <2e-4 px, while tracks still move ~35 px per frame.
    Tests of exact parity with the untamed network use float64 and at most two windows instead.
    """
    model.updateformer.input_transform.weight[:, 2 : model.config.flow_dim] = 0
    model.updateformer.flow_head.weight.mul_(0.2)
    return model


def official_key_shapes():
    """Parameter names and shapes of the official v1 state dict (150 keys), written out by hand."""
    t = {"fnet.conv1.weight": (64, 3, 7, 7), "fnet.conv1.bias": (64,)}

    def block(prefix, cin, cout, down):
        t[f"{prefix}.conv1.weight"] = (cout, cin, 3, 3)
        t[f"{prefix}.conv1.bias"] = (cout,)
        t[f"{prefix}.conv2.weight"] = (cout, cout, 3, 3)
        t[f"{prefix}.conv2.bias"] = (cout,)
        if down:
            t[f"{prefix}.downsample.0.weight"] = (cout, cin, 1, 1)
            t[f"{prefix}.downsample.0.bias"] = (cout,)

    block("fnet.layer1.0", 64, 64, False)
    block("fnet.layer1.1", 64, 64, False)
    block("fnet.layer2.0", 64, 96, True)
    block("fnet.layer2.1", 96, 96, False)
    block("fnet.layer3.0", 96, 128, True)
    block("fnet.layer3.1", 128, 128, False)
    block("fnet.layer4.0", 128, 128, True)
    block("fnet.layer4.1", 128, 128, False)
    t.update({"fnet.conv2.weight": (256, 416, 3, 3), "fnet.conv2.bias": (256,)})
    t.update({"fnet.conv3.weight": (128, 256, 1, 1), "fnet.conv3.bias": (128,)})
    t.update({"updateformer.input_transform.weight": (384, 456), "updateformer.input_transform.bias": (384,)})
    t.update({"updateformer.flow_head.weight": (130, 384), "updateformer.flow_head.bias": (130,)})
    for kind in ("time_blocks", "space_blocks"):
        for i in range(6):
            p = f"updateformer.{kind}.{i}"
            t.update({f"{p}.attn.qkv.weight": (1152, 384), f"{p}.attn.qkv.bias": (1152,)})
            t.update({f"{p}.attn.proj.weight": (384, 384), f"{p}.attn.proj.bias": (384,)})
            t.update({f"{p}.mlp.fc1.weight": (1536, 384), f"{p}.mlp.fc1.bias": (1536,)})
            t.update({f"{p}.mlp.fc2.weight": (384, 1536), f"{p}.mlp.fc2.bias": (384,)})
    t.update({"norm.weight": (128,), "norm.bias": (128,)})
    t.update({"ffeat_updater.0.weight": (128, 128), "ffeat_updater.0.bias": (128,)})
    t.update({"vis_predictor.0.weight": (1, 128), "vis_predictor.0.bias": (1,)})
    return t


def synthetic_state_dict(seed: int = 0, tame: bool = False):
    """Deterministic random weights for the official architecture, independent of any model code: for each key
    in sorted order, ``randn * gain / sqrt(fan_in)`` (weights) or ``randn * 0.02`` (biases); GroupNorm weights
    around 1. With ``tame`` the result is made well-conditioned as :func:`tame_random_weights_` does.
    Used for golden outputs of the official code, so it must never change: tests check a checksum."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in sorted(official_key_shapes().items()):
        noise = torch.randn(shape, generator=g, dtype=torch.float32)
        if key == "norm.weight":
            sd[key] = 1.0 + 0.1 * noise
        elif key.endswith(".bias"):
            sd[key] = 0.02 * noise
        else:
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            sd[key] = noise * (2.0 / fan_in) ** 0.5
    if tame:
        sd["updateformer.input_transform.weight"][:, 2:130] = 0
        sd["updateformer.flow_head.weight"].mul_(0.2)
    return sd


def state_dict_checksum(sd) -> float:
    """Order-independent float64 checksum of a state dict (detects a changed random generator)."""
    total = 0.0
    for i, (k, v) in enumerate(sorted(sd.items())):
        total += (i + 1) * float(v.double().abs().sum())
    return total


def smooth_video(T, seed=0, hw=(64, 96)):
    """``(1, T, 3, H, W)`` RGB 0..255: random 8x12 frames upsampled bilinearly (smooth enough to track)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(T, 3, 8, 12, generator=g)
    return (torch.nn.functional.interpolate(small, hw, mode="bilinear", align_corners=False) * 255)[None]


def spy_compile_window(monkeypatch, model_cls):
    """Swap ``model_cls.compile_window`` for one that records ``(bucket, mode)`` and compiles with aot_eager (inductor
    on a CPU would spend the test compiling). Returns the list of recorded calls."""
    calls = []
    real = model_cls.compile_window

    def fake(self, bucket=64, **kw):
        calls.append((bucket, kw.get("mode")))
        real(self, bucket=bucket, backend="aot_eager", dynamic=False)

    monkeypatch.setattr(model_cls, "compile_window", fake)
    return calls


def eager_and_compiled_tracks(eager, compiled, video, queries, online: bool):
    """The tracks of an eager and a ``compile=True`` predictor on the same input: one call each (the compiled one
    twice, so a second call must reuse the graph), or ``start`` / ``step`` / ``finish`` for online predictors.
    Resets dynamo before and after, and uncompiles ``compiled``'s model."""
    torch._dynamo.reset()
    try:
        if online:
            outs = []
            for p in (eager, compiled):
                p.start(video.shape[-2:], queries)
                p.step(video)
                outs.append(p.finish()[0])
            return outs[0], outs[1]
        a, b = eager(video, queries)[0], compiled(video, queries)[0]
        compiled(video, queries)
        return a, b
    finally:
        compiled.model.uncompile_window()
        torch._dynamo.reset()
