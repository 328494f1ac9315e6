"""Tests for cotracker_fast.io: video reading/writing, queries, masks and track files."""
import json
import os
import subprocess

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from cotracker_fast.io import (
    VideoReadError,
    VideoReader,
    VideoWriter,
    load_mask,
    load_queries,
    load_tracks,
    read_video,
    save_tracks,
)


def _synthetic_frames(t=6, h=40, w=58):
    """A horizontal gradient with a white square moving right by 3 px per frame."""
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[..., 0] = np.linspace(0, 255, w).astype(np.uint8)[None, None, :]
    frames[..., 2] = np.linspace(255, 0, h).astype(np.uint8)[None, :, None]
    for i in range(t):
        frames[i, 10:22, 5 + 3 * i : 17 + 3 * i] = 255
    return frames


def _write(path, frames, fps=12.0):
    with VideoWriter(path, fps=fps) as w:
        for f in frames:
            w.write(f)


def _leftovers(directory, keep):
    return sorted(n for n in os.listdir(directory) if n not in keep)


# --------------------------------------------------------------------------------------------------------
# video round trips
# --------------------------------------------------------------------------------------------------------


def test_mp4_roundtrip(tmp_path):
    frames = _synthetic_frames()
    path = tmp_path / "clip.mp4"
    _write(path, frames, fps=12.0)
    with VideoReader(path) as reader:
        assert reader.shape_hw == (40, 58)
        assert reader.fps == pytest.approx(12.0)
        assert reader.num_frames == 6
        got = list(reader)
    assert len(got) == 6
    assert all(f.shape == (40, 58, 3) and f.dtype == np.uint8 for f in got)
    # H.264 at crf 18 with 4:2:0 chroma is lossy; on this smooth content the error measures ~1 grey level.
    # 6 is generous for codec differences yet far below what a wrong frame order/shift gives (>20).
    mae = np.abs(np.stack(got).astype(int) - frames).mean()
    assert mae < 6
    # frames come back in order: the moving square is where it was written
    wrong_order = np.abs(np.stack(got)[::-1].astype(int) - frames).mean()
    assert wrong_order > 4 * mae


def test_mp4_odd_size_is_padded_to_even(tmp_path):
    frames = _synthetic_frames(t=3, h=33, w=47)
    path = tmp_path / "odd.mp4"
    _write(path, frames)
    video = read_video(path)
    assert video.shape == (3, 34, 48, 3)  # one row / column of edge padding, as documented
    mae = np.abs(video[:, :33, :47].astype(int) - frames).mean()
    assert mae < 6  # lossy codec, see test_mp4_roundtrip


def test_gif_roundtrip(tmp_path):
    frames = (_synthetic_frames(t=4) // 64) * 85  # 4 levels per channel: fewer than 256 colours
    path = tmp_path / "clip.gif"
    _write(path, frames, fps=10.0)
    with VideoReader(path) as reader:
        assert reader.shape_hw == (40, 58)
        assert reader.num_frames == 4
        assert reader.fps == pytest.approx(10.0)
        got = np.stack(list(reader))
    # the frames use fewer than 256 colours, so the GIF palette represents them exactly
    np.testing.assert_array_equal(got, frames)


def test_reader_max_frames_and_reiteration(tmp_path):
    frames = _synthetic_frames(t=6)
    path = tmp_path / "clip.mp4"
    _write(path, frames)
    with VideoReader(path, max_frames=2) as reader:
        assert reader.num_frames == 2
        first = [f.copy() for f in reader]
        second = [f.copy() for f in reader]  # every pass restarts at frame 0
    assert len(first) == 2 and len(second) == 2
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert read_video(path, max_frames=3).shape == (3, 40, 58, 3)
    with pytest.raises(ValueError, match="max_frames"):
        VideoReader(path, max_frames=0)


def test_reader_streams_lazily(tmp_path):
    """Frames are decoded one by one: a corrupt 4th image only fails when it is reached."""
    frames = _synthetic_frames(t=3, h=20, w=24)
    for i, f in enumerate(frames):
        iio.imwrite(tmp_path / f"frame{i + 1}.png", f)
    (tmp_path / "frame4.png").write_bytes(b"this is not a png")
    (tmp_path / "frame10.png").write_bytes(b"")  # natural sort puts it last, never reached below

    with VideoReader(tmp_path, max_frames=3) as reader:
        assert reader.num_frames == 3
        np.testing.assert_array_equal(np.stack(list(reader)), frames)

    reader = VideoReader(tmp_path)
    assert reader.num_frames == 5
    it = iter(reader)
    for i in range(3):
        np.testing.assert_array_equal(next(it), frames[i])
    with pytest.raises(VideoReadError, match="frame4.png"):
        next(it)
    reader.close()


def test_reader_grayscale_and_rgba_become_rgb(tmp_path):
    gray = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    rgba = np.zeros((12, 16, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 0
    iio.imwrite(tmp_path / "a.png", gray)
    iio.imwrite(tmp_path / "b.png", rgba)
    video = read_video(tmp_path)
    assert video.shape == (2, 12, 16, 3)
    np.testing.assert_array_equal(video[0], np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(video[1], rgba[..., :3])
    # an explicit list keeps the given order; a single image is a one-frame video
    video = read_video([tmp_path / "b.png", tmp_path / "a.png"])
    np.testing.assert_array_equal(video[0], rgba[..., :3])
    assert read_video(tmp_path / "a.png").shape == (1, 12, 16, 3)


def test_reader_directory_with_mixed_sizes_fails(tmp_path):
    iio.imwrite(tmp_path / "0.png", np.zeros((8, 8, 3), np.uint8))
    iio.imwrite(tmp_path / "1.png", np.zeros((8, 10, 3), np.uint8))
    with pytest.raises(VideoReadError, match="1.png"):
        read_video(tmp_path)


# --------------------------------------------------------------------------------------------------------
# reader errors
# --------------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        VideoReader(path)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        VideoReader([tmp_path / "missing.png"])


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoReadError, match="corrupt.mp4") as info:
        VideoReader(path)
    assert isinstance(info.value, OSError)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty.mp4"):
        read_video(empty)
    bad_gif = tmp_path / "bad.gif"
    bad_gif.write_bytes(b"GIF89a garbage")
    with pytest.raises(VideoReadError, match="bad.gif"):
        VideoReader(bad_gif)


def test_zero_frames(tmp_path):
    with pytest.raises(VideoReadError, match="no frames"):
        VideoReader(tmp_path)  # empty directory
    # a valid mp4 container holding only an audio stream: zero video frames
    audio_only = tmp_path / "audio.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "anullsrc=r=8000:cl=mono", "-t", "0.2", str(audio_only)],
        check=True,
    )
    with pytest.raises(VideoReadError, match="audio.mp4.*zero video frames"):
        VideoReader(audio_only)


# --------------------------------------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------------------------------------


def test_writer_is_atomic_on_exception(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(path, fps=10) as w:
            w.write(_synthetic_frames(t=1)[0])
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []  # neither the destination nor a temporary file

    path.write_bytes(b"previous content")
    with pytest.raises(RuntimeError):
        with VideoWriter(path, fps=10) as w:
            w.write(_synthetic_frames(t=1)[0])
            raise RuntimeError("boom")
    assert path.read_bytes() == b"previous content"
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_writer_replaces_only_at_close(tmp_path):
    path = tmp_path / "out.gif"
    path.write_bytes(b"old")
    w = VideoWriter(path, fps=5)
    w.write(_synthetic_frames(t=1)[0])
    assert path.read_bytes() == b"old"
    w.close()
    assert read_video(path).shape == (1, 40, 58, 3)
    assert os.listdir(tmp_path) == ["out.gif"]


def test_writer_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4, \.gif"):
        VideoWriter(tmp_path / "out.avi", fps=10)
    with pytest.raises(ValueError, match="fps"):
        VideoWriter(tmp_path / "out.mp4", fps=0)
    with pytest.raises(FileNotFoundError):
        VideoWriter(tmp_path / "no_dir" / "out.mp4", fps=10)
    w = VideoWriter(tmp_path / "out.mp4", fps=10)
    with pytest.raises(ValueError, match="uint8"):
        w.write(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        w.write(np.zeros((8, 8, 5), np.uint8))
    w.write(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="differs"):
        w.write(np.zeros((8, 10, 3), np.uint8))
    w.abort()
    with pytest.raises(ValueError, match="no frames"):
        VideoWriter(tmp_path / "none.mp4", fps=10).close()
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------------------------
# queries
# --------------------------------------------------------------------------------------------------------

EXPECTED_QUERIES = np.array([[0, 10.5, 20.0], [3, 1.0, 2.25]], np.float32)


def test_load_queries_formats(tmp_path):
    files = {
        "q.csv": "t,x,y\n0,10.5,20\n3,1,2.25\n",
        "q2.csv": "# comment\n0, 10.5, 20\n\n3 ,1,2.25\n",
        "q.txt": "0 10.5 20\n3\t1 2.25\n",
        "q.json": json.dumps([[0, 10.5, 20], [3, 1, 2.25]]),
        "q2.json": json.dumps([{"t": 0, "x": 10.5, "y": 20}, {"t": 3, "x": 1, "y": 2.25}]),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    np.save(tmp_path / "q.npy", EXPECTED_QUERIES.astype(np.float64))
    for name in list(files) + ["q.npy"]:
        q = load_queries(tmp_path / name)
        assert q.dtype == np.float32 and q.shape == (2, 3), name
        np.testing.assert_array_equal(q, EXPECTED_QUERIES, err_msg=name)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("cols.csv", "t,x,y\n0,1,2\n1,2\n", r"cols\.csv.*line 3.*3 columns"),
        ("nan.csv", "0,1,2\n1,nan,3\n", r"nan\.csv.*line 2.*non-finite"),
        ("inf.txt", "0 1 inf\n", r"inf\.txt.*line 1.*non-finite"),
        ("neg.csv", "0,1,2\n-1,2,3\n", r"neg\.csv.*line 2.*>= 0"),
        ("frac.csv", "0.5,1,2\n", r"frac\.csv.*line 1.*integer"),
        ("word.csv", "0,1,2\n1,a,3\n", r"word\.csv.*line 2.*numbers"),
        ("empty.csv", "t,x,y\n", r"empty\.csv.*no queries"),
        ("neg.json", json.dumps([[0, 1, 2], [-2, 1, 1]]), r"neg\.json.*item 1.*>= 0"),
        ("cols.json", json.dumps([[0, 1, 2, 3]]), r"cols\.json.*item 0.*3 columns"),
        ("key.json", json.dumps([{"t": 0, "x": 1}]), r"key\.json.*item 0.*missing"),
        ("null.json", json.dumps([[0, None, 1]]), r"null\.json.*item 0"),
        ("bad.json", "[[0, 1, 2]", r"bad\.json.*invalid JSON"),
        ("q.yaml", "0,1,2", r"q\.yaml.*unsupported"),
    ],
)
def test_load_queries_errors(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=match):
        load_queries(tmp_path / name)


def test_load_queries_npy_errors(tmp_path):
    np.save(tmp_path / "shape.npy", np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"shape\.npy.*\(N, 3\)"):
        load_queries(tmp_path / "shape.npy")
    np.save(tmp_path / "nan.npy", np.array([[0, 1, 2], [1, np.nan, 2]]))
    with pytest.raises(ValueError, match=r"nan\.npy.*row 1.*non-finite"):
        load_queries(tmp_path / "nan.npy")
    np.save(tmp_path / "neg.npy", np.array([[-3.0, 1, 2]]))
    with pytest.raises(ValueError, match=r"neg\.npy.*row 0.*>= 0"):
        load_queries(tmp_path / "neg.npy")
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        load_queries(tmp_path / "absent.csv")


# --------------------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------------------


def test_load_mask(tmp_path):
    expected = np.zeros((9, 11), bool)
    expected[2:5, 3:8] = True
    iio.imwrite(tmp_path / "gray.png", expected.astype(np.uint8) * 255)
    rgb = np.zeros((9, 11, 3), np.uint8)
    rgb[expected, 1] = 7  # only the green channel is set
    iio.imwrite(tmp_path / "rgb.png", rgb)
    rgba = np.zeros((9, 11, 4), np.uint8)
    rgba[expected, 2] = 200  # blue inside, alpha 0 everywhere: alpha is ignored
    rgba[~expected, 3] = 255  # opaque black outside is still outside
    iio.imwrite(tmp_path / "rgba.png", rgba)
    for name in ("gray.png", "rgb.png", "rgba.png"):
        mask = load_mask(tmp_path / name)
        assert mask.dtype == np.bool_ and mask.shape == (9, 11), name
        np.testing.assert_array_equal(mask, expected, err_msg=name)
    with pytest.raises(FileNotFoundError, match="nomask.png"):
        load_mask(tmp_path / "nomask.png")
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.png"):
        load_mask(tmp_path / "junk.png")


# --------------------------------------------------------------------------------------------------------
# tracks
# --------------------------------------------------------------------------------------------------------


def _tracks():
    rng = np.random.default_rng(0)
    tracks = (rng.random((5, 4, 2)) * [640, 480]).astype(np.float32)
    tracks[0, 3] = np.nan  # "no position" survives every format
    visibility = rng.random((5, 4)) > 0.3
    queries = np.array([[0, 1, 2], [1, 3, 4], [2, 5, 6], [4, 7.5, 8.25]], np.float32)
    return tracks, visibility, queries


@pytest.mark.parametrize("ext", [".npz", ".json", ".csv"])
def test_tracks_roundtrip(tmp_path, ext):
    tracks, visibility, queries = _tracks()
    path = tmp_path / f"tracks{ext}"
    save_tracks(path, tracks, visibility, queries=queries, fps=24.0)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind
    data = load_tracks(path)
    # all three formats store float32 values exactly (shortest round-tripping decimals for text formats)
    np.testing.assert_array_equal(data["tracks"], tracks)
    np.testing.assert_array_equal(data["visibility"], visibility)
    if ext == ".csv":  # csv holds per-(frame, track) rows only
        assert data["queries"] is None and data["fps"] is None
    else:
        np.testing.assert_array_equal(data["queries"], queries)
        assert data["fps"] == 24.0


def test_tracks_csv_layout(tmp_path):
    tracks, visibility, _ = _tracks()
    save_tracks(tmp_path / "t.csv", tracks, visibility)
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "frame,track,x,y,visible"
    assert len(lines) == 1 + 5 * 4
    frame, track, x, y, vis = lines[1 + 2 * 4 + 1].split(",")  # frame 2, track 1
    assert (int(frame), int(track), int(vis)) == (2, 1, int(visibility[2, 1]))
    assert np.float32(x) == tracks[2, 1, 0] and np.float32(y) == tracks[2, 1, 1]


def test_tracks_json_layout(tmp_path):
    tracks, visibility, queries = _tracks()
    save_tracks(tmp_path / "t.json", tracks, visibility, queries=queries)
    doc = json.loads((tmp_path / "t.json").read_text())
    assert set(doc) == {"tracks", "visibility", "queries"}
    assert len(doc["tracks"]) == 5 and len(doc["tracks"][0]) == 4 and len(doc["tracks"][0][0]) == 2
    assert doc["tracks"][0][3] == [None, None]
    assert doc["visibility"][1] == visibility[1].tolist()


def test_save_tracks_errors(tmp_path):
    tracks, visibility, queries = _tracks()
    with pytest.raises(ValueError, match=r"\.npz, \.csv, \.json"):
        save_tracks(tmp_path / "t.txt", tracks, visibility)
    with pytest.raises(ValueError, match=r"tracks must have shape \(T, N, 2\)"):
        save_tracks(tmp_path / "t.npz", tracks[..., 0], visibility)
    with pytest.raises(ValueError, match=r"visibility must have shape"):
        save_tracks(tmp_path / "t.npz", tracks, visibility[:, :2])
    with pytest.raises(ValueError, match=r"queries must have shape"):
        save_tracks(tmp_path / "t.npz", tracks, visibility, queries=queries[:2])
    assert os.listdir(tmp_path) == []
