"""The fast path's CPU-checkable parts: the compiled, bucketed window step (one graph, no graph breaks, same
tracks), the host-sync-free window schedule, and the "fast" backend preset."""
import pytest
import torch

from cotracker_fast import ops
from cotracker_fast.models.cotracker import SlidingWindowTracker, mask_vis_channels
from cotracker_fast.models.registry import create_model

from helpers import eager_and_compiled_tracks, smooth_video, spy_compile_window, tame_random_weights_


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tame_random_weights_(create_model()).eval()


def _video(T=12, seed=0):
    return smooth_video(T, seed)


QUERIES = torch.tensor([[[0.0, 10, 12], [0, 40, 30], [3, 20, 50], [9, 70, 20], [3, 5, 5]]])


class CountingBackend:
    """A torch.compile backend that records every graph it is given and runs it eagerly."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        return gm.forward


def test_compiled_bucketed_window_equals_eager(model):
    """fullgraph=True: the whole window step (custom ops included) is one graph; padding 5 tracks to a bucket of 8
    gives the eager tracks (measured: bit-identical on CPU)."""
    torch._dynamo.reset()
    video = _video()
    with torch.no_grad():
        ref = model(video, QUERIES, iters=2)
        model.compile_window(bucket=8, backend="aot_eager", fullgraph=True, dynamic=False)
        try:
            out = model(video, QUERIES, iters=2)
        finally:
            model.uncompile_window()
    # Measured: bit-identical on this CPU. The padded path masks attention keys, which other SDPA kernels (other
    # CPUs, GPUs) may sum in another order, so the bound is the float-order one used across the suite.
    torch.testing.assert_close(out[0], ref[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(out[2], ref[2], atol=1e-5, rtol=0)


def test_bucketing_avoids_recompiles(model):
    """Windows with 4 and 5 active tracks (query frames 0, 3, 9) share one bucket of 8: one graph. A sixth track
    added mid-stream stays in the bucket (no recompile); a ninth crosses it (one more graph)."""
    torch._dynamo.reset()
    counter = CountingBackend()
    video = _video(T=16)
    model.compile_window(bucket=8, backend=counter, dynamic=False)
    try:
        with torch.no_grad():
            model(video, QUERIES, iters=1)
            assert counter.graphs == 1
            state = SlidingWindowTracker(model, 1, 1, video.device)
            state.add_queries(QUERIES)
            state.run_window(video[:, :8], 8)
            state.add_queries(torch.tensor([[[8.0, 30, 30]]]))  # 6 tracks
            state.run_window(video[:, 8:12], 8)
            assert counter.graphs == 1
            state.add_queries(torch.tensor([[[10.0, 30, 30], [10, 40, 40], [11, 50, 20]]]))  # 9 tracks
            state.run_window(video[:, 12:16], 4)
            assert counter.graphs == 2
    finally:
        model.uncompile_window()
        torch._dynamo.reset()


def test_window_schedule_reads_counts_on_the_host(model, monkeypatch):
    """The per-window active counts come from the host copy of the query frames: no device tensor is read back
    (Tensor.tolist / item on the state would be a host-device sync per window on a GPU)."""
    state = SlidingWindowTracker(model, 1, 1, "cpu")
    state.add_queries(QUERIES)
    assert state.q_t_host.device.type == "cpu" and state.q_t_host.tolist() == [[0, 0, 3, 9, 3]]
    calls = []
    real_tolist = torch.Tensor.tolist

    def spy(self):
        calls.append(tuple(self.shape))
        return real_tolist(self)

    monkeypatch.setattr(torch.Tensor, "tolist", spy)
    with torch.no_grad():
        state.run_window(_video()[:, :8], 8)
    assert calls == []


def test_mask_vis_layout_by_indexing_equals_per_sample_layout():
    """The counts path (pure indexing, compile-friendly) equals the layout built sample by sample at N = count."""
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(3, 8, 7, generator=g) > 0.5
    vis = torch.randn(3, 8, 7, generator=g)
    counts = torch.tensor([7, 4, 1])
    out = mask_vis_channels(mask, vis, counts)
    for b, c in enumerate(counts.tolist()):
        torch.testing.assert_close(out[b : b + 1, :, :c], mask_vis_channels(mask[b : b + 1, :, :c], vis[b : b + 1, :, :c]),
                                   rtol=0, atol=0)
        assert torch.all(out[b, :, c:] == 0)


@pytest.mark.parametrize("bucket", [0, -8, 8.0, True, "8"])
def test_compile_window_rejects_bad_bucket(model, bucket):
    with pytest.raises(ValueError, match="bucket must be an int >= 1"):
        model.compile_window(bucket=bucket)


def test_fast_preset_names_the_gpu_kernels(monkeypatch):
    """backend="fast" = Triton correlation + CUDA attention; on a CPU tensor it refuses, naming why."""
    x = torch.zeros(1, 2, 3, 8)
    with pytest.raises(ops.BackendUnavailableError, match="attention backend 'cuda'"):
        ops.resolve("attention", "fast", x.device, x.dtype)
    monkeypatch.setenv("COTRACKER_FAST_BACKEND", "fast")
    with pytest.raises(ops.BackendUnavailableError, match="attention backend 'cuda'"):
        ops.resolve("attention", None, x.device, x.dtype)
    monkeypatch.delenv("COTRACKER_FAST_BACKEND")
    assert ops.resolve("attention", "auto", x.device, x.dtype)[0] == "torch"


@pytest.mark.parametrize("online", [False, True])
def test_predictor_compile_option(make_predictor, monkeypatch, online):
    """compile=True compiles the window step once, on the first call (inductor on CPU is swapped for aot_eager
    here to keep the test fast; the GPU tests run inductor), and gives the eager predictor's tracks."""
    from cotracker_fast.models.cotracker import CoTracker
    from cotracker_fast.online import CoTrackerOnlinePredictor

    calls = spy_compile_window(monkeypatch, CoTracker)
    cls = CoTrackerOnlinePredictor if online else None
    eager, comp = make_predictor(cls), make_predictor(cls, compile=True, compile_bucket=16)
    for p in (eager, comp):
        tame_random_weights_(p.model)
    a, b = eager_and_compiled_tracks(eager, comp, _video(T=10), QUERIES.clone(), online)
    assert calls == [(16, "default")]
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)  # float-order bound, as above (measured: identical)


def test_predictor_compile_bucket_checked(make_predictor):
    with pytest.raises(ValueError, match="compile_bucket"):
        make_predictor(compile=True, compile_bucket=0)
