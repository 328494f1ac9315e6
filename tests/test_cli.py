"""The command-line interface streams a video file and gives the offline predictor's tracks."""
import numpy as np
import pytest
import torch

from cotracker_fast import cli
from cotracker_fast.io import VideoReadError, VideoWriter, load_tracks, read_video
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
    rc = cli.main(["track", video_path, "--checkpoint", ckpt, "--queries", str(qfile), "--backward",
                   "--device", "cpu", "--out", str(out), "--viz", str(viz)])
    assert rc == 0
    res = load_tracks(str(out))
    frames = torch.from_numpy(read_video(video_path)).permute(0, 3, 1, 2)[None].float()
    off = CoTrackerPredictor(ckpt)
    off.interp_shape = (64, 96)
    q = torch.tensor([[[0.0, 10, 12], [9.0, 40.5, 30], [4.0, 50, 8]]])
    tracks, vis = off(frames, q, backward_tracking=True)
    np.testing.assert_array_equal(res["tracks"], tracks[0].numpy())
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


def test_cli_errors(tmp_path, clip):
    video_path, ckpt = clip
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        cli.main(["track", str(tmp_path / "nope.mp4"), "--checkpoint", ckpt])
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoReadError, match="bad.mp4"):
        cli.main(["track", str(bad), "--checkpoint", ckpt])
    qfile = tmp_path / "q.csv"
    qfile.write_text("0,10,12\n")
    with pytest.raises(SystemExit, match="not both"):
        cli.main(["track", video_path, "--queries", str(qfile), "--grid-size", "3"])
    late = tmp_path / "late.csv"
    late.write_text("20,10,12\n")
    with pytest.raises(ValueError, match="number of frames"):
        cli.main(["track", video_path, "--checkpoint", ckpt, "--queries", str(late), "--device", "cpu"])
