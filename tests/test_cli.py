"""The command-line interface streams a video file and gives the offline predictor's tracks."""
import numpy as np
import pytest
import torch

from cotracker_fast import cli
from cotracker_fast.io import VideoWriter, load_tracks, read_video
from cotracker_fast.models.checkpoint import save_safetensors
from cotracker_fast.online import CoTrackerOnlinePredictor
from cotracker_fast.predictor import CoTrackerPredictor

from helpers import synthetic_state_dict


@pytest.fixture
def small_resolution(monkeypatch):
    """Run the pipeline at 64x96 instead of 384x512 so the test stays fast on a 2-core CPU."""
    orig = CoTrackerOnlinePredictor.__init__

    def init(self, *a, **k):
        orig(self, *a, **k)
        self.interp_shape = (64, 96)

    monkeypatch.setattr(CoTrackerOnlinePredictor, "__init__", init)


@pytest.fixture
def clip(tmp_path):
    g = np.random.default_rng(0)
    small = g.random((13, 5, 7, 3))
    frames = np.stack([np.kron(f, np.ones((8, 8, 1))) for f in small])  # (13, 40, 56, 3)
    frames = (frames * 255).astype(np.uint8)
    path = tmp_path / "clip.gif"  # lossless for < 256 colours? not guaranteed: compare with what is read back
    with VideoWriter(str(path), fps=10) as w:
        for f in frames:
            w.write(f)
    ckpt = tmp_path / "cotracker_stride_4_wind_8.safetensors"
    save_safetensors(synthetic_state_dict(7, tame=True), str(ckpt))
    return str(path), str(ckpt)


def test_cli_equals_offline_predictor(tmp_path, clip, small_resolution):
    video_path, ckpt = clip
    qfile = tmp_path / "q.csv"
    qfile.write_text("t,x,y\n0,10,12\n9,40.5,30\n4,50,8\n")
    out = tmp_path / "tracks.npz"
    viz = tmp_path / "overlay.mp4"
    # --dtype fp32: the predictor's own default (the CLI's auto is bf16 on CPUs with native bf16)
    rc = cli.main(["track", video_path, "--checkpoint", ckpt, "--queries", str(qfile), "--backward",
                   "--device", "cpu", "--dtype", "fp32", "--out", str(out), "--viz", str(viz)])
    assert rc == 0
    res = load_tracks(str(out))
    frames = torch.from_numpy(read_video(video_path)).permute(0, 3, 1, 2)[None].float()
    off = CoTrackerPredictor(ckpt)
    off.interp_shape = (64, 96)
    q = torch.tensor([[[0.0, 10, 12], [9.0, 40.5, 30], [4.0, 50, 8]]])
    tracks, vis = off(frames, q, backward_tracking=True)
    # The streaming CLI feeds the model other tensor shapes (chunks) than the offline call, so matmul summation order
    # may differ by CPU kernel and thread count: bit-identical on the AVX-512 Xeon; on an AVX2-only AMD EPYC (Zen 2)
    # up to 9e-4 px apart with 2 threads and 2.2e-3 px with OMP_NUM_THREADS=1, where these untrained weights
    # amplify round-off over the windows.
    np.testing.assert_allclose(res["tracks"], tracks[0].numpy(), rtol=0, atol=3e-3)
    np.testing.assert_array_equal(res["visibility"], vis[0].numpy())
    np.testing.assert_allclose(res["queries"], q[0].numpy(), atol=1e-4)
    assert read_video(str(viz)).shape[0] == 13


def test_cli_grid_default_and_csv(tmp_path, clip, small_resolution, capsys):
    video_path, ckpt = clip
    out = tmp_path / "tracks.csv"
    assert cli.main(["track", video_path, "--checkpoint", ckpt, "--device", "cpu", "--out", str(out),
                     "--max-frames", "9"]) == 0
    res = load_tracks(str(out))
    assert res["tracks"].shape == (9, 100, 2)  # default 10 x 10 grid
    assert "tracked 100 points through 9 frames" in capsys.readouterr().out


def _one_line_error(capsys, match):
    """stderr is exactly one line ``cotracker-fast: error: ...`` containing ``match``, with no traceback."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cotracker-fast: error: ") and match in lines[0], err
    assert "Traceback" not in err


@pytest.fixture
def no_tracking(monkeypatch):
    """Fail the test if the model is built or a video is tracked."""

    def forbidden(*a, **k):
        raise AssertionError("tracking started although the arguments were invalid")

    monkeypatch.setattr(cli, "track_video", forbidden)
    monkeypatch.setattr(CoTrackerOnlinePredictor, "__init__", forbidden)


def test_cli_missing_video(tmp_path, clip, capsys, no_tracking):
    _, ckpt = clip
    assert cli.main(["track", str(tmp_path / "nope.mp4"), "--checkpoint", ckpt]) == 2
    _one_line_error(capsys, "nope.mp4")


def test_cli_corrupt_video(tmp_path, clip, capsys, no_tracking):
    _, ckpt = clip
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    assert cli.main(["track", str(bad), "--checkpoint", ckpt]) == 2
    _one_line_error(capsys, "bad.mp4")


@pytest.mark.parametrize("text", ["t,x,y\n0,10\n", "0,ten,12\n", "t,x,y\n"])
def test_cli_malformed_queries(tmp_path, clip, capsys, no_tracking, text):
    video_path, ckpt = clip
    qfile = tmp_path / "q.csv"
    qfile.write_text(text)
    assert cli.main(["track", video_path, "--checkpoint", ckpt, "--queries", str(qfile)]) == 2
    _one_line_error(capsys, "q.csv")


@pytest.mark.parametrize("option, name", [("--out", "tracks.txt"), ("--viz", "overlay.avi"), ("--out", "tracks")])
def test_cli_bad_output_extension_before_tracking(tmp_path, clip, capsys, no_tracking, option, name):
    video_path, ckpt = clip
    extra = ["--out", str(tmp_path / "t.npz")] if option == "--viz" else []
    assert cli.main(["track", video_path, "--checkpoint", ckpt, option, str(tmp_path / name), *extra]) == 2
    _one_line_error(capsys, option)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    "args, match",
    [
        (["--grid-size", "-1"], "--grid-size must be >= 0"),
        (["--max-frames", "0"], "--max-frames must be >= 1"),
        (["--out", "{tmp}/missing_dir/t.npz"], "does not exist"),
        (["--checkpoint", "{tmp}/absent.pth"], "absent.pth"),
        (["--checkpoint", "{ckpt_other}"], "cannot infer the model variant"),
        (["--backend", "nonsense"], "--backend 'nonsense'"),
        (["--device", "cuda:7"], "--device 'cuda:7'"),
        (["--queries", "{late}"], "number of frames (13)"),
        (["--queries", "{q}", "--grid-size", "3"], "not both"),
        (["--dtype", "fp16"], "--dtype fp16: dtype=torch.float16 is not supported on the CPU"),
    ],
)
def test_cli_options_checked_before_tracking(tmp_path, clip, capsys, no_tracking, args, match):
    video_path, ckpt = clip
    other = tmp_path / "weights.pth"  # a v1 state dict whose file name names no variant
    torch.save(synthetic_state_dict(0), str(other))
    (tmp_path / "late.csv").write_text("20,10,12\n")
    (tmp_path / "q.csv").write_text("0,10,12\n")
    fill = dict(tmp=str(tmp_path), ckpt_other=str(other), late=str(tmp_path / "late.csv"), q=str(tmp_path / "q.csv"))
    args = [a.format(**fill) for a in args]
    if "--checkpoint" not in args:
        args += ["--checkpoint", ckpt]
    assert cli.main(["track", video_path, "--device", "cpu", *args] if "--device" not in args else
                    ["track", video_path, *args]) == 2
    _one_line_error(capsys, match)


def test_cli_errors_found_while_tracking_are_one_line(tmp_path, clip, capsys, monkeypatch):
    """A video whose length is only known once read (here: counting reports unknown) and is shorter than a query
    frame fails during tracking, also as one line."""
    video_path, ckpt = clip
    monkeypatch.setattr(cli.VideoReader, "num_frames", property(lambda self: None))
    late = tmp_path / "late.csv"
    late.write_text("20,10,12\n")
    assert cli.main(["track", video_path, "--checkpoint", ckpt, "--queries", str(late), "--device", "cpu"]) == 2
    _one_line_error(capsys, "number of frames (13)")


def test_python_dash_m_runs_the_cli(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "cotracker_fast", "track", str(tmp_path / "nope.mp4")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"cotracker-fast: error: video not found: {str(tmp_path / 'nope.mp4')!r}"]
    help_ = subprocess.run([sys.executable, "-m", "cotracker_fast", "--help"], capture_output=True, text=True,
                           timeout=300)
    assert help_.returncode == 0 and help_.stdout.startswith("usage: cotracker-fast")


@pytest.fixture
def v3_checkpoints(tmp_path):
    from helpers_v3 import synthetic_v3_state_dict

    online, offline = tmp_path / "scaled_online.pth", tmp_path / "scaled_offline.pth"
    torch.save(synthetic_v3_state_dict(3, 16, tame=True), str(online))
    torch.save(synthetic_v3_state_dict(4, 60, tame=True), str(offline))
    return str(online), str(offline)


@pytest.fixture
def small_v3_resolution(monkeypatch, small_resolution):
    """CoTracker3 runs at 64x96 too (the offline path uses CoTrackerPredictor)."""
    orig = CoTrackerPredictor.__init__

    def init(self, *a, **k):
        orig(self, *a, **k)
        self.interp_shape = (64, 96)

    monkeypatch.setattr(CoTrackerPredictor, "__init__", init)


def test_cli_cotracker3_online_streams_like_the_official_protocol(tmp_path, clip, v3_checkpoints, small_v3_resolution):
    video_path, _ = clip
    online_ckpt, _ = v3_checkpoints
    qfile = tmp_path / "q.csv"
    qfile.write_text("t,x,y\n0,10,12\n9,40.5,30\n4,50,8\n")
    out = tmp_path / "tracks.npz"
    rc = cli.main(["track", video_path, "--checkpoint", online_ckpt, "--queries", str(qfile), "--device", "cpu",
                   "--dtype", "fp32", "--out", str(out)])
    assert rc == 0
    res = load_tracks(str(out))
    frames = torch.from_numpy(read_video(video_path)).permute(0, 3, 1, 2)[None].float()
    pred = CoTrackerOnlinePredictor(online_ckpt)
    q = torch.tensor([[[0.0, 10, 12], [9.0, 40.5, 30], [4.0, 50, 8]]])
    pred(video_chunk=frames, is_first_step=True, queries=q, add_support_grid=True)
    tracks, vis = pred(video_chunk=frames)  # 13 frames: one window
    np.testing.assert_allclose(res["tracks"], tracks[0].numpy(), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(res["visibility"], vis[0].numpy())


def test_cli_cotracker3_offline_equals_the_predictor(tmp_path, clip, v3_checkpoints, small_v3_resolution):
    video_path, _ = clip
    _, offline_ckpt = v3_checkpoints
    out = tmp_path / "tracks.npz"
    rc = cli.main(["track", video_path, "--checkpoint", offline_ckpt, "--model", "cotracker3_offline",
                   "--grid-size", "3", "--grid-query-frame", "5", "--backward", "--device", "cpu", "--dtype", "fp32",
                   "--out", str(out)])
    assert rc == 0
    res = load_tracks(str(out))
    frames = torch.from_numpy(read_video(video_path)).permute(0, 3, 1, 2)[None].float()
    tracks, vis = CoTrackerPredictor(offline_ckpt)(frames, grid_size=3, grid_query_frame=5, backward_tracking=True)
    np.testing.assert_array_equal(res["tracks"], tracks[0].numpy())
    np.testing.assert_array_equal(res["visibility"], vis[0].numpy())
    assert res["queries"].shape == (9, 3) and np.all(res["queries"][:, 0] == 5)


def test_cli_model_family_must_match_the_checkpoint(tmp_path, clip, v3_checkpoints, capsys, no_tracking):
    video_path, v1_ckpt = clip
    rc = cli.main(["track", video_path, "--checkpoint", v1_ckpt, "--model", "cotracker3_offline"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "CoTracker v1 checkpoint, but --model is cotracker3_offline" in err[0]
    rc = cli.main(["track", video_path, "--checkpoint", v3_checkpoints[0], "--model", "cotracker_v1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "CoTracker3 checkpoint, but --model is cotracker_v1" in err[0]
