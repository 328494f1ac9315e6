"""Evaluation-set readers on tiny fixture files written in each dataset's on-disk format."""
import io
import json
import pickle

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from cotracker_fast.evaluation.datasets import (
    DATASET_NAMES,
    EvalSample,
    first_queries,
    open_dataset,
    read_badja,
    read_fastcapture,
    read_kubric,
    read_synthetic,
    read_tapvid_davis,
    read_tapvid_kinetics,
    sample_queries,
    strided_queries,
)

H, W = 32, 40


def _video(t, seed=0):
    """Smooth seeded frames (moving colour gradients), so JPEG round trips stay close."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:H, 0:W]
    phase = rng.uniform(0, 2 * np.pi, size=3)
    frames = [
        np.stack([127 + 120 * np.sin(0.15 * xs + 0.1 * ys + 0.3 * k + phase[c]) for c in range(3)], -1)
        for k in range(t)
    ]
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def _jpeg_list(video):
    out = []
    for f in video:
        buf = io.BytesIO()
        iio.imwrite(buf, f, extension=".jpg")
        out.append(buf.getvalue())
    return out


def _tapvid_entry(t=6, n=3, seed=0, jpeg=False):
    rng = np.random.default_rng(seed)
    video = _video(t, seed)
    points = rng.uniform(0, 1, size=(n, t, 2)).astype(np.float32)
    occluded = np.zeros((n, t), bool)
    occluded[0, :2] = True  # point 0 first visible at frame 2
    occluded[1, 5] = True  # point 1 visible at 0, hidden at 5
    occluded[2, :] = True  # point 2 never visible
    return {"video": _jpeg_list(video) if jpeg else video, "points": points, "occluded": occluded}, video


def _check_types(s: EvalSample):
    t, n = s.visible.shape
    assert s.video.dtype == np.uint8 and s.video.ndim == 4 and s.video.shape[0] == t and s.video.shape[3] == 3
    assert s.tracks.dtype == np.float32 and s.tracks.shape == (t, n, 2)
    assert s.visible.dtype == bool
    assert s.query_frames.dtype == np.int64 and s.query_frames.shape == (n,)
    assert s.extra["point_index"].shape == (n,)
    # every column is visible at its query frame
    assert s.visible[s.query_frames, np.arange(n)].all()


# ---------------------------------------------------------------------------- query sampling


def test_first_queries_hand_checked():
    vis = np.array(
        [
            [0, 1, 0, 0],
            [0, 1, 1, 0],
            [1, 0, 1, 0],
        ],
        bool,
    )  # (T=3, N=4)
    p, f = first_queries(vis)
    assert p.tolist() == [0, 1, 2] and f.tolist() == [2, 0, 1]
    assert p.dtype == np.int64 and f.dtype == np.int64
    p, f = first_queries(np.zeros((3, 2), bool))
    assert p.size == 0 and f.size == 0


def test_strided_queries_hand_checked():
    vis = np.zeros((12, 3), bool)
    vis[:, 0] = True  # frames 0, 5, 10
    vis[5, 1] = True  # frame 5 only
    vis[3, 2] = True  # never on a stride frame
    p, f = strided_queries(vis, stride=5)
    assert list(zip(p.tolist(), f.tolist())) == [(0, 0), (0, 5), (1, 5), (0, 10)]
    p2, f2 = sample_queries(vis, "strided")
    assert p2.tolist() == p.tolist() and f2.tolist() == f.tolist()
    with pytest.raises(ValueError):
        strided_queries(vis, stride=0)
    with pytest.raises(ValueError, match="query_mode"):
        sample_queries(vis, "middle")


# ---------------------------------------------------------------------------- TAP-Vid DAVIS


def test_tapvid_davis_array_frames_first(tmp_path):
    e1, v1 = _tapvid_entry(t=6, seed=1)
    e0, _ = _tapvid_entry(t=7, seed=2)
    path = tmp_path / "tapvid_davis.pkl"
    path.write_bytes(pickle.dumps({"zebra": e1, "ant": e0}))
    samples = list(read_tapvid_davis(path, "first", resize_to=(64, 80)))
    assert [s.name for s in samples] == ["ant", "zebra"]  # sorted
    s = samples[1]
    _check_types(s)
    assert s.video.shape == (6, 64, 80, 3)
    assert s.extra["point_index"].tolist() == [0, 1]  # never-visible point 2 dropped
    assert s.query_frames.tolist() == [2, 0]
    pts = e1["points"]
    np.testing.assert_allclose(s.tracks[:, 0, 0], pts[0, :, 0] * 80, rtol=1e-6)
    np.testing.assert_allclose(s.tracks[:, 1, 1], pts[1, :, 1] * 64, rtol=1e-6)
    assert s.visible[:, 1].tolist() == [True] * 5 + [False]
    # resize: a 2x bilinear upsample of a constant video stays constant
    e_const = dict(e1, video=np.full((6, H, W, 3), 77, np.uint8))
    path.write_bytes(pickle.dumps({"c": e_const}))
    (s,) = read_tapvid_davis(tmp_path, "first")  # folder containing tapvid_davis.pkl, default 256x256
    assert s.video.shape == (6, 256, 256, 3) and (s.video == 77).all()
    np.testing.assert_allclose(s.tracks[:, 0], pts[0] * 256, rtol=1e-6)
    # bilinear 2x downsample of 2x2-constant blocks samples block centres: the block values exactly
    blocks = np.random.default_rng(0).integers(0, 256, size=(6, H // 2, W // 2, 3), dtype=np.uint8)
    e_blocks = dict(e1, video=blocks.repeat(2, axis=1).repeat(2, axis=2))
    path.write_bytes(pickle.dumps({"b": e_blocks}))
    (s,) = read_tapvid_davis(path, "first", resize_to=(H // 2, W // 2))
    np.testing.assert_array_equal(s.video, blocks)
    np.testing.assert_allclose(s.tracks[:, 0], pts[0] * [W // 2, H // 2], rtol=1e-6)
    # no resize keeps the original size and scales by it
    (s,) = read_tapvid_davis(path, "first", resize_to=None)
    assert s.video.shape == (6, H, W, 3)
    np.testing.assert_allclose(s.tracks[:, 0], pts[0] * [W, H], rtol=1e-6)


def test_tapvid_davis_jpeg_frames_strided(tmp_path):
    e, video = _tapvid_entry(t=8, seed=3, jpeg=True)
    path = tmp_path / "davis.pkl"
    path.write_bytes(pickle.dumps({"v": e}))
    (s,) = read_tapvid_davis(path, "strided", resize_to=None)
    _check_types(s)
    assert s.video.shape == (8, H, W, 3)
    # JPEG is lossy but close on average
    assert np.abs(s.video.astype(float) - video.astype(float)).mean() < 8
    np.testing.assert_array_equal(s.video[0], iio.imread(e["video"][0], extension=".jpg"))
    # point 0 visible from 2: strided frames 0,5 -> only 5; point 1 visible at 0 (hidden at 5)
    assert list(zip(s.extra["point_index"].tolist(), s.query_frames.tolist())) == [(1, 0), (0, 5)]
    via = list(open_dataset("tapvid_davis_strided", path, resize_to=None))
    assert via[0].query_frames.tolist() == [0, 5]


def test_tapvid_davis_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        read_tapvid_davis(tmp_path / "missing.pkl", "first")
    with pytest.raises(FileNotFoundError, match="tapvid_davis.pkl"):
        read_tapvid_davis(tmp_path, "first")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="bad.pkl"):
        next(read_tapvid_davis(bad, "first"))
    with pytest.raises(ValueError, match="query_mode"):
        read_tapvid_davis(bad, "sideways")


# ---------------------------------------------------------------------------- TAP-Vid Kinetics


def test_tapvid_kinetics_reads_one_file_at_a_time(tmp_path):
    entries = [_tapvid_entry(t=6, seed=10 + i, jpeg=True)[0] for i in range(2)]
    (tmp_path / "0000_of_0010.pkl").write_bytes(pickle.dumps(entries))
    (tmp_path / "0001_of_0010.pkl").write_bytes(b"\x80\x04corrupt")  # unreadable second file
    (tmp_path / "other.pkl").write_bytes(b"ignored")
    it = read_tapvid_kinetics(tmp_path, "first", resize_to=(32, 32))
    a = next(it)
    b = next(it)
    assert [a.name, b.name] == ["0000_of_0010/0", "0000_of_0010/1"]
    _check_types(a)
    assert a.video.shape == (6, 32, 32, 3)
    np.testing.assert_allclose(a.tracks[:, 0], entries[0]["points"][0] * 32, rtol=1e-6)
    # the first file's videos all arrived before the corrupt second file was opened
    with pytest.raises(ValueError, match="0001_of_0010.pkl"):
        next(it)


def test_tapvid_kinetics_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_tapvid_kinetics(tmp_path / "nowhere", "first")
    with pytest.raises(FileNotFoundError, match="_of_0010"):
        read_tapvid_kinetics(tmp_path, "first")
    (tmp_path / "0000_of_0010.pkl").write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="list"):
        next(open_dataset("tapvid_kinetics_first", tmp_path))


# ---------------------------------------------------------------------------- Kubric


def _write_kubric_seq(root, name, t=6, n=4, seed=0):
    rng = np.random.default_rng(seed)
    seq = root / name
    (seq / "frames").mkdir(parents=True)
    video = _video(t, seed)
    for i, f in enumerate(video):
        iio.imwrite(seq / "frames" / f"{i:03d}.png", f)
    coords = rng.uniform(0, W - 1, size=(n, t, 2)).astype(np.float32)
    occl = np.zeros((n, t), bool)
    occl[0, 0] = True  # occluded at 0 -> first visible at 1
    occl[1] = True  # always occluded -> dropped
    np.save(seq / f"{name}.npy", {"coords": coords, "visibility": occl}, allow_pickle=True)
    return video, coords, occl


def test_kubric(tmp_path):
    video, coords, occl = _write_kubric_seq(tmp_path, "seq_b", seed=1)
    _write_kubric_seq(tmp_path, "seq_a", t=7, seed=2)
    samples = list(read_kubric(tmp_path))
    assert [s.name for s in samples] == ["seq_a", "seq_b"]
    s = samples[1]
    _check_types(s)
    np.testing.assert_array_equal(s.video, video)  # PNG is lossless
    assert s.extra["point_index"].tolist() == [0, 2, 3]
    assert s.query_frames.tolist() == [1, 0, 0]
    np.testing.assert_array_equal(s.visible, ~occl[[0, 2, 3]].T)  # "visibility" stores occlusion
    np.testing.assert_allclose(s.tracks, coords[[0, 2, 3]].transpose(1, 0, 2))
    (s2,) = [x for x in open_dataset("kubric", tmp_path, query_mode="strided") if x.name == "seq_b"]
    assert s2.query_frames.tolist() == [0, 0, 5, 5, 5]


def test_kubric_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such"):
        read_kubric(tmp_path / "no_such")
    (tmp_path / "seq" / "frames").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="seq.npy"):
        next(read_kubric(tmp_path))


# ---------------------------------------------------------------------------- BADJA


def _write_badja(root, animal="dog", t=7, json_name=None):
    img_dir = root / "DAVIS" / "JPEGImages" / "Full-Resolution" / animal
    seg_dir = root / "DAVIS" / "Annotations" / "Full-Resolution" / animal
    img_dir.mkdir(parents=True)
    seg_dir.mkdir(parents=True)
    for i, f in enumerate(_video(t, 5)):
        iio.imwrite(img_dir / f"{i:05d}.jpg", f)
    frames = []
    for i in (0, 3):  # annotated frames; the others are not
        mask = np.zeros((H, W), np.uint8)
        mask[: 4 + i, :10] = 255
        iio.imwrite(seg_dir / f"{i:05d}.png", mask)
        joints = [[0.0, 0.0]] * 20
        joints = [list(j) for j in joints]
        joints[0] = [5.0 + i, 9.0]  # (y, x)
        joints[1] = [7.0, 11.0 + i]
        joints[2] = [3.0, 4.0]  # annotated but flagged invisible
        vis = [0] * 20
        vis[0] = vis[1] = 1
        vis[3] = 1  # flagged visible but [0, 0]: not annotated
        frames.append(
            {"frame_name": f"{i:05d}.jpg", "segmentation": f"{i:05d}.png", "joints": joints, "visibility": vis}
        )
    (root / "joint_annotations").mkdir(exist_ok=True)
    ann = json.dumps({"animal": animal, "frames": frames})
    (root / "joint_annotations" / (json_name or f"{animal}.json")).write_text(ann)


def test_badja(tmp_path):
    _write_badja(tmp_path, "dog", t=7)
    _write_badja(tmp_path, "extra_videos_cat", t=6)
    _write_badja(tmp_path, "horse", t=6, json_name="extra_videos_horse.json")
    samples = list(read_badja(tmp_path))
    assert [s.name for s in samples] == ["dog"]
    (s,) = samples
    _check_types(s)
    assert s.video.shape == (7, H, W, 3)
    assert s.extra["point_index"].tolist() == [0, 1]
    assert s.query_frames.tolist() == [0, 0]
    np.testing.assert_allclose(s.tracks[0], [[9, 5], [11, 7]])  # (y, x) flipped to (x, y)
    np.testing.assert_allclose(s.tracks[3], [[9, 8], [14, 7]])
    assert s.visible[:, 0].tolist() == [True, False, False, True, False, False, False]
    assert s.tracks[1].sum() == 0
    assert s.extra["annotated"].tolist() == [True, False, False, True, False, False, False]
    seg = s.extra["seg_area"]
    assert seg.dtype == np.float32 and seg.shape == (7,)
    assert seg.tolist() == [40.0, 0, 0, 70.0, 0, 0, 0]
    assert list(open_dataset("badja", tmp_path))[0].name == "dog"


def test_badja_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="joint_annotations"):
        read_badja(tmp_path)
    _write_badja(tmp_path, "dog", t=6)
    (tmp_path / "DAVIS" / "Annotations" / "Full-Resolution" / "dog" / "00003.png").unlink()
    with pytest.raises(FileNotFoundError, match="00003.png"):
        next(read_badja(tmp_path))


# ---------------------------------------------------------------------------- FastCapture


def _write_fastcapture(root, seq="s1", t=8, n=30, ext="png"):
    d = root / "renders_local_rm" / seq
    d.mkdir(parents=True)
    video = _video(t, 7)
    for i, f in enumerate(video):
        iio.imwrite(d / f"{i:04d}.{ext}", f)
    g = torch.Generator().manual_seed(1)
    traj = torch.rand(n, 2, t, generator=g) * 30
    vis = torch.ones(n, t, dtype=torch.bool)
    vis[::3, 0] = False  # every third point is hidden at frame 0
    (root / "zju_tracking").mkdir(exist_ok=True)
    torch.save({"traj_2d": traj, "visibility": vis}, root / "zju_tracking" / f"{seq}.pth")
    return video, traj, vis


def test_fastcapture(tmp_path):
    video, traj, vis = _write_fastcapture(tmp_path)
    (s,) = read_fastcapture(tmp_path, max_frames=6, num_points=5, seed=3)
    _check_types(s)
    assert s.video.shape == (6, H, W, 3)
    np.testing.assert_array_equal(s.video, video[:6])
    cand = torch.nonzero(vis[:, 0]).flatten()
    torch.manual_seed(3)
    expect = cand[torch.randperm(len(cand))[:5]]
    assert s.extra["point_index"].tolist() == expect.tolist()
    assert all(i % 3 != 0 for i in expect.tolist())
    assert s.query_frames.tolist() == [0] * 5
    np.testing.assert_allclose(s.tracks, traj[expect, :, :6].permute(2, 0, 1).numpy(), rtol=1e-6)
    # same seed, same choice; different seed, (almost surely) different
    (again,) = open_dataset("fastcapture", tmp_path, max_frames=6, num_points=5, seed=3)
    assert again.extra["point_index"].tolist() == expect.tolist()
    (other,) = read_fastcapture(tmp_path, max_frames=6, num_points=5, seed=4)
    assert other.extra["point_index"].tolist() != expect.tolist()
    # fewer visible points than asked: all of them
    (alls,) = read_fastcapture(tmp_path, num_points=100)
    assert sorted(alls.extra["point_index"].tolist()) == cand.tolist() and alls.video.shape[0] == 8


def test_fastcapture_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="renders_local_rm"):
        read_fastcapture(tmp_path)
    (tmp_path / "renders_local_rm" / "s9").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="s9.pth"):
        next(read_fastcapture(tmp_path))


# ---------------------------------------------------------------------------- synthetic and dispatch


def test_synthetic():
    """The evaluation set is the generator's held-out clips, in the readers' layout."""
    import dataclasses

    from cotracker_fast.data.synthetic import EVAL_CONFIG, synthetic_eval_clips

    samples = list(read_synthetic(2, num_frames=6, size_hw=(48, 64), seed=5))
    assert [s.name for s in samples] == ["synthetic_000", "synthetic_001"]
    clip = list(synthetic_eval_clips(2, 5, dataclasses.replace(EVAL_CONFIG, num_frames=6, size_hw=(48, 64))))[1]
    s = samples[1]
    _check_types(s)
    assert s.video.shape == (6, 48, 64, 3)
    np.testing.assert_allclose(s.video, clip.video.permute(0, 2, 3, 1).numpy(), atol=0.5)  # uint8 rounding
    np.testing.assert_array_equal(s.tracks, clip.tracks.numpy())
    np.testing.assert_array_equal(s.visible, clip.visible.numpy())
    assert s.query_frames.tolist() == clip.queries[:, 0].long().tolist()
    # query first: the query frame is each track's first visible frame
    assert s.query_frames.tolist() == np.argmax(s.visible, axis=0).tolist()
    np.testing.assert_allclose(s.queries, clip.queries.numpy(), atol=1e-4)
    assert len(list(open_dataset("synthetic", "ignored", num_videos=1, num_frames=4, size_hw=(32, 32)))) == 1
    with pytest.raises(ValueError, match="num_videos"):
        read_synthetic(-1)


def test_open_dataset_names_and_errors(tmp_path):
    assert set(DATASET_NAMES) == {
        "tapvid_davis_first",
        "tapvid_davis_strided",
        "tapvid_kinetics_first",
        "badja",
        "fastcapture",
        "kubric",
        "synthetic",
    }
    with pytest.raises(ValueError, match="tapvid_davis_first"):
        open_dataset("davis")
    with pytest.raises(ValueError, match="root"):
        open_dataset("kubric")
    with pytest.raises(FileNotFoundError, match="gone"):
        open_dataset("badja", tmp_path / "gone")
