"""Tests for cotracker_fast.data.kubric on small folders written in the official Kubric MOVi-f format."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from cotracker_fast.data import Augmentations, KubricMovifDataset, collate_clips
from cotracker_fast.data.kubric import read_kubric_sequence

H, W, T = 48, 64, 10


@pytest.fixture(autouse=True)
def _one_thread():
    """Values, not speed: single-threaded like DataLoader workers (multi-threaded torch ops crawl on the shared,
    busy 2-core test machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def track_xy(n, t):
    """Ground truth of the fixture: track ``n`` at frame ``t``."""
    return 4.0 + n + 0.5 * t, 6.0 + (n % 10) * 3.0 + 0.25 * t


def write_sequence(root, name, num_tracks=40, occluded=None, num_frames=T):
    """One sequence in the official layout: ``root/name/frames/000.png ...`` whose pixels name their position and
    frame (R = 4 x, G = 5 y, B = 8 t) and ``root/name/name.npy``, a pickled dict with ``coords (N, T, 2)`` and
    ``visibility (N, T)`` that holds *occlusion* flags."""
    seq = root / name
    (seq / "frames").mkdir(parents=True)
    x = np.arange(W)[None, :].repeat(H, 0) * 4
    y = np.arange(H)[:, None].repeat(W, 1) * 5
    for t in range(num_frames):
        img = np.stack([x, y, np.full((H, W), 8 * t)], -1).astype(np.uint8)
        iio.imwrite(seq / "frames" / f"{t:03d}.png", img)
    n = np.arange(num_tracks)[:, None]
    t = np.arange(num_frames)[None, :]
    coords = np.stack(np.broadcast_arrays(*track_xy(n, t)), -1).astype(np.float32)
    if occluded is None:
        occluded = (n + t) % 4 == 0
    np.save(seq / f"{name}.npy", {"coords": coords, "visibility": np.asarray(occluded, bool)})
    return seq


@pytest.fixture()
def root(tmp_path):
    write_sequence(tmp_path, "seq_a")
    write_sequence(tmp_path, "seq_b")
    return tmp_path


def test_reader_inverts_the_occlusion_flags(root):
    files, tracks, visible = read_kubric_sequence(root / "seq_a")
    assert [f.name for f in files] == [f"{t:03d}.png" for t in range(T)]
    assert tracks.shape == (T, 40, 2) and visible.shape == (T, 40) and visible.dtype == bool
    n, t = np.arange(40)[None, :], np.arange(T)[:, None]
    assert np.array_equal(visible, (n + t) % 4 != 0)  # the file's "visibility" is occlusion
    assert np.allclose(tracks[..., 0], track_xy(n, t)[0])


def test_slice_crop_sampling_and_queries(root):
    ds = KubricMovifDataset(root, seq_len=6, num_points=30, crop_size=(32, 48), seed=1)
    assert len(ds) == 2 and ds.sequences == ["seq_a", "seq_b"]
    starts = set()
    for i in range(2):
        c = ds[i]
        assert c.name == ds.sequences[i]
        assert c.video.shape == (6, 3, 32, 48) and c.tracks.shape == (6, 30, 2) and c.queries.shape == (30, 3)
        v = c.video.numpy()
        frame = v[:, 2, 0, 0] / 8  # B channel: the source frame index
        start = int(frame[0])
        assert np.array_equal(frame, np.arange(start, start + 6))  # a contiguous slice
        starts.add(start)
        x0, y0 = v[0, 0, 0, 0] / 4, v[0, 1, 0, 0] / 5  # crop corner from the R, G ramps
        assert (v[:, 0, 0, 0] / 4 == x0).all()  # the same crop in every frame
        tr, vis = c.tracks.numpy(), c.visible.numpy()
        t_src = np.arange(start, start + 6)[:, None]
        n = np.rint(tr[..., 0] + x0 - 4.0 - 0.5 * t_src).astype(int)  # which source track each column is
        assert (n == n[:1]).all() and (0 <= n).all() and (n < 40).all()
        gx, gy = track_xy(n, t_src)
        assert np.allclose(tr[..., 0], gx - x0) and np.allclose(tr[..., 1], gy - y0)  # slice + crop shift
        inside = (tr[..., 0] >= 0) & (tr[..., 0] <= 47) & (tr[..., 1] >= 0) & (tr[..., 1] <= 31)
        assert np.array_equal(vis, ((n + t_src) % 4 != 0) & inside)  # inverted occlusion, outside the crop hidden
        assert (vis[0] | vis[3]).all()  # sampled from tracks visible in frame 0 or seq_len // 2
        qt = c.queries[:, 0].long().numpy()
        assert vis[qt, np.arange(30)].all()
        assert np.array_equal(c.queries[:, 1:].numpy(), tr[qt, np.arange(30)])
        assert np.array_equal(qt[30 // 4 :], np.argmax(vis, 0)[30 // 4 :])
    # deterministic per item, and the seed matters
    again = KubricMovifDataset(root, seq_len=6, num_points=30, crop_size=(32, 48), seed=1)
    assert torch.equal(again[1].tracks, ds[1].tracks) and torch.equal(again[1].video, ds[1].video)
    other = [KubricMovifDataset(root, seq_len=6, num_points=30, crop_size=(32, 48), seed=s)[0] for s in range(2, 6)]
    assert any(not torch.equal(o.tracks, ds[0].tracks) for o in other)
    assert len(starts | {int(o.video[0, 2, 0, 0]) // 8 for o in other}) > 1  # random slices


def test_concatenated_lists_can_draw_a_track_twice(tmp_path):
    write_sequence(tmp_path, "few", num_tracks=5, occluded=np.zeros((5, T), bool))
    ds = KubricMovifDataset(tmp_path, seq_len=6, num_points=8, crop_size=None)
    c = ds[0]
    n = np.rint(c.tracks[0, :, 0].numpy() - 4.0 - 0.5 * (c.video[0, 2, 0, 0].item() / 8)).astype(int)
    # 5 tracks listed twice (visible in frame 0 and frame 3): 8 draws from the 10 entries repeat >= 3 tracks
    assert len(n) == 8 and len(set(n.tolist())) == 5 and set(n.tolist()) <= set(range(5))
    assert c.video.shape == (6, 3, H, W)
    solo = KubricMovifDataset(tmp_path, seq_len=6, num_points=5, crop_size=None, mid_frame=False)[0]
    assert len(set(np.rint(solo.tracks[0, :, 0].numpy()).tolist())) == 5  # frame 0 only: no repeats


def test_too_few_tracks_retry_flag_raise(tmp_path):
    write_sequence(tmp_path, "a_few", num_tracks=5, occluded=np.zeros((5, T), bool))  # 10 listed < 12
    write_sequence(tmp_path, "b_many")
    kw = dict(seq_len=6, num_points=12, crop_size=(32, 48))
    c = KubricMovifDataset(tmp_path, **kw)[0]
    assert c.name == "b_many" and bool(c.valid)  # retried with the next sequence
    f = KubricMovifDataset(tmp_path, too_few="flag", **kw)[0]
    assert not bool(f.valid) and f.name == "a_few"
    assert f.video.shape == (6, 3, 32, 48) and f.tracks.shape == (6, 12, 2) and not f.visible.any()
    b = collate_clips([f, KubricMovifDataset(tmp_path, too_few="flag", **kw)[1]])
    assert b.valid.tolist() == [False, True]
    with pytest.raises(ValueError, match="fewer than 12 tracks"):
        KubricMovifDataset(tmp_path, too_few="raise", **kw)[0]
    with pytest.raises(ValueError, match="too_few"):
        KubricMovifDataset(tmp_path, too_few="skip", **kw)


def test_augmented_kubric_clip_is_exact(root):
    aug = Augmentations(
        crop_size=(32, 48), eraser=False, replace=False, color_jitter=False, blur=False, exact_flip=True
    )
    ds = KubricMovifDataset(root, seq_len=6, num_points=30, augment=aug, seed=3)
    from cotracker_fast.demo_clip import bilinear_sample

    checked = 0
    for i in range(2):
        c = ds[i]
        assert c.video.shape == (6, 3, 32, 48)
        v = c.video.permute(0, 2, 3, 1).numpy()
        for t in range(6):
            m = c.visible[t].numpy()
            col = bilinear_sample(v[t], c.tracks[t, m, 0].numpy(), c.tracks[t, m, 1].numpy())
            # the ramps are linear, so the augmented pixels decode to the source position of the track (8-bit PNG
            # ramps hold exact integers 4 x, 5 y). Measured max error 7.6e-6 px over 136 track-frames.
            xs, ys = col[:, 0] / 4.0, col[:, 1] / 5.0
            t_src = col[:, 2] / 8.0
            n = np.rint(xs - 4.0 - 0.5 * t_src).astype(int)
            gx, gy = track_xy(n, t_src)
            assert np.allclose(xs, gx, atol=2e-3) and np.allclose(ys, gy, atol=2e-3)
            assert ((n + np.rint(t_src).astype(int)) % 4 != 0).all()  # visible ones are not occluded in the file
            checked += m.sum()
    assert checked > 100


def test_official_layout_and_missing_files(tmp_path):
    write_sequence(tmp_path / "kubric_movi_f", "s0")
    assert KubricMovifDataset(tmp_path, seq_len=4, num_points=4, crop_size=None).sequences == ["s0"]
    with pytest.raises(FileNotFoundError, match="Kubric root not found"):
        KubricMovifDataset(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no sequence folders"):
        KubricMovifDataset(empty)
    bad = tmp_path / "bad"
    write_sequence(bad, "s1")
    (bad / "s1" / "s1.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"annotation not found.*s1\.npy"):
        KubricMovifDataset(bad)
    bad2 = tmp_path / "bad2"
    (bad2 / "s2").mkdir(parents=True)
    np.save(bad2 / "s2" / "s2.npy", {"coords": np.zeros((1, 1, 2))})
    with pytest.raises(FileNotFoundError, match="frames folder not found"):
        KubricMovifDataset(bad2)
    (bad2 / "s2" / "frames").mkdir()
    with pytest.raises(FileNotFoundError, match="no .png frames"):
        read_kubric_sequence(bad2 / "s2")


def test_malformed_annotations(tmp_path):
    seq = write_sequence(tmp_path, "s")
    np.save(seq / "s.npy", {"coords": np.zeros((3, T, 2))})  # no "visibility"
    with pytest.raises(ValueError, match="could not read Kubric annotation"):
        read_kubric_sequence(seq)
    np.save(seq / "s.npy", {"coords": np.zeros((3, T + 2, 2)), "visibility": np.zeros((3, T + 2), bool)})
    with pytest.raises(ValueError, match=r"expected coords \(N, 10, 2\)"):
        read_kubric_sequence(seq)
    np.save(seq / "s.npy", {"coords": np.zeros((3, T, 2)), "visibility": np.zeros((3, T), bool)})
    with pytest.raises(ValueError, match="fewer than seq_len=24"):
        KubricMovifDataset(tmp_path, crop_size=None)[0]
    with pytest.raises(ValueError, match="smaller than crop_size"):
        KubricMovifDataset(tmp_path, seq_len=4, num_points=1, crop_size=(100, 100))[0]
    with pytest.raises(ValueError, match="num_points"):
        KubricMovifDataset(tmp_path, num_points=0)
