"""Tests for cotracker_fast.viz: point/trail drawing, banner text, streaming overlay writer."""
import os

import numpy as np
import pytest

from cotracker_fast.io import VideoReader
from cotracker_fast.viz import (
    OverlayWriter,
    draw_banner,
    draw_frame,
    text_width,
    _hsv_to_rgb,
    track_colors,
)

RED = np.array([[255, 0, 0]], np.uint8)


def _blank(h=40, w=40, value=30):
    return np.full((h, w, 3), value, np.uint8)


def test_visible_point_is_a_filled_disk():
    frame = _blank()
    before = frame.copy()
    out = draw_frame(frame, np.array([[20.0, 15.0]]), np.array([True]), RED, radius=3)
    np.testing.assert_array_equal(frame, before)  # input untouched
    assert out is not frame and out.dtype == np.uint8 and out.shape == frame.shape
    # every pixel centre within 2.5 px of the point is fully covered (coverage = radius + 0.5 - d)
    for dx, dy in [(0, 0), (1, 0), (0, -2), (2, 1), (-1, -1)]:
        np.testing.assert_array_equal(out[15 + dy, 20 + dx], [255, 0, 0])
    # and nothing is drawn beyond radius + 0.5
    changed = np.any(out != before, axis=2)
    ys, xs = np.nonzero(changed)
    assert np.sqrt((xs - 20.0) ** 2 + (ys - 15.0) ** 2).max() < 3.5


def test_occluded_point_is_a_ring():
    frame = _blank()
    out = draw_frame(frame, np.array([[20.0, 15.0]]), np.array([False]), RED, radius=3)
    np.testing.assert_array_equal(out[15, 20], frame[15, 20])  # centre unchanged
    np.testing.assert_array_equal(out[15, 21], frame[15, 21])  # 1 px away: inside the ring, unchanged
    assert out[15, 22, 0] > 200 and out[13, 20, 0] > 200  # ~2 px away: on the ring
    assert out[15, 22, 1] < 30  # the ring is red, not a brightened background
    np.testing.assert_array_equal(out[15, 25], frame[15, 25])  # outside


def test_points_without_prediction_are_not_drawn():
    frame = _blank()
    pts = np.array([[10.0, 10.0], [30.0, 30.0]])
    trails = np.stack([pts - 5, pts - 2])
    out = draw_frame(
        frame, pts, np.array([True, False]), np.repeat(RED, 2, 0), trails=trails,
        has_prediction=np.array([False, False]),
    )
    np.testing.assert_array_equal(out, frame)
    out = draw_frame(frame, pts, np.array([True, False]), np.repeat(RED, 2, 0), has_prediction=np.array([True, False]))
    assert (out[10, 10] == [255, 0, 0]).all()
    np.testing.assert_array_equal(out[25:, 25:], frame[25:, 25:])


def test_points_outside_the_frame_are_skipped():
    frame = _blank()
    pts = np.array([[-100.0, 5.0], [5.0, 1e6], [np.nan, 3.0], [np.inf, np.inf], [41.0 + 3.6, 20.0]])
    out = draw_frame(frame, pts, np.ones(5, bool), np.repeat(RED, 5, 0), radius=3, trails=np.stack([pts * 2]))
    np.testing.assert_array_equal(out, frame)
    # a point just outside the left border still shows the part of its disk that is inside
    out = draw_frame(frame, np.array([[-1.0, 20.0]]), np.array([True]), RED, radius=3)
    assert (out[20, 0] == [255, 0, 0]).all() and (out[20, 1] == [255, 0, 0]).all()


def test_trails_fade_with_age():
    frame = np.zeros((20, 60, 3), np.uint8)
    # one track moving right along y = 10: oldest x = 5, then 25, then the current point at 45
    trails = np.array([[[5.0, 10.0]], [[25.0, 10.0]]])
    out = draw_frame(frame, np.array([[45.0, 10.0]]), np.array([True]), RED, radius=2, trails=trails)
    old, new = int(out[10, 15, 0]), int(out[10, 35, 0])
    assert 0 < old < new < 255  # both segments drawn, the older one fainter
    assert old == pytest.approx(255 / 3, abs=1) and new == pytest.approx(255 * 2 / 3, abs=1)  # alpha (j+1)/(K+1)
    assert (out[5] == 0).all()  # a 1 px line, nothing far above it
    # an invalid trail position removes the segments touching it
    out = draw_frame(
        frame, np.array([[45.0, 10.0]]), np.array([True]), RED, radius=2, trails=trails,
        trail_visible=np.array([[True], [False]]),
    )
    assert out[10, 15, 0] == 0 and out[10, 35, 0] == 0


def test_draw_frame_rejects_bad_input():
    frame = _blank()
    pts = np.array([[1.0, 2.0]])
    with pytest.raises(ValueError, match="frame"):
        draw_frame(frame.astype(np.float32), pts, np.array([True]), RED)
    with pytest.raises(ValueError, match=r"points must have shape \(N, 2\)"):
        draw_frame(frame, pts[:, :1], np.array([True]), RED)
    with pytest.raises(ValueError, match="visible"):
        draw_frame(frame, pts, np.array([True, False]), RED)
    with pytest.raises(ValueError, match="colors"):
        draw_frame(frame, pts, np.array([True]), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="radius"):
        draw_frame(frame, pts, np.array([True]), RED, radius=0)
    with pytest.raises(ValueError, match=r"trails must have shape \(K, N, 2\)"):
        draw_frame(frame, pts, np.array([True]), RED, trails=np.zeros((3, 2, 2)))


def test_track_colors_rainbow():
    assert _hsv_to_rgb(np.array([0.0, 1 / 3, 2 / 3]), 1.0, 1.0).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    pts = np.array([[5.0, 0.0], [5.0, 99.0], [7.0, 49.5], [0.0, np.nan], [0.0, -10.0]])
    c = track_colors(pts, height=100)
    assert c.dtype == np.uint8 and c.shape == (5, 3)
    assert c[0].tolist() == [255, 0, 0]  # top: red
    assert c[1].tolist() == [255, 0, 255]  # bottom: magenta (hue 300 degrees)
    assert c[2, 1] == 255 and c[2, 0] < 10  # middle: green-cyan
    assert c[3].tolist() == [128, 128, 128]  # unknown position: gray
    assert c[4].tolist() == c[0].tolist()  # clipped to the top
    with pytest.raises(ValueError, match="height"):
        track_colors(pts, height=0)


def test_banner():
    frame = np.full((60, 560, 3), 90, np.uint8)
    text = "UNTRAINED WEIGHTS - tracks are meaningless"
    out = draw_banner(frame, text)
    box = 11 * 2  # (7 px text + 2 + 2 px margins) x scale 2
    assert (out[box:] == frame[box:]).all()  # below the box: untouched
    assert (out[:box] != frame[:box]).any(axis=2).all()  # box filled (bg colour differs from the frame)
    ink = (out[:box] == 255).all(axis=2)
    assert 0 < ink.sum() < ink.size // 2  # some text pixels
    cols = np.nonzero(ink.any(axis=0))[0]
    assert 4 <= cols.min() and cols.max() < 4 + text_width(text)  # text starts after the 2 x 2 px margin
    rows = np.nonzero(ink.any(axis=1))[0]
    assert rows.min() >= 1 and rows.max() <= box - 2  # inside the box
    np.testing.assert_array_equal(frame, np.full((60, 560, 3), 90, np.uint8))  # input untouched
    other = draw_banner(frame, "OK")
    assert (other[:box] != out[:box]).any()
    assert 0 < text_width("AB") < text_width("ABAB") and text_width("") == 0
    # too wide for scale 2 in a 320 px frame: drawn at scale 1, an 11 px box
    narrow = draw_banner(frame[:, :320], text)
    assert (narrow[:11] != frame[:11, :320]).any(axis=2).all() and (narrow[11:] == frame[11:, :320]).all()
    assert (narrow[:11, :, 1] > 150).any()  # text drawn (antialiased: white over the box's green level of 20)


def test_overlay_writer(tmp_path):
    t_len, h, w = 5, 48, 64
    frames = np.full((t_len, h, w, 3), 60, np.uint8)
    pts = np.array([[10.0, 30.0], [40.0, 35.0]])
    path = tmp_path / "overlay.mp4"
    with OverlayWriter(path, fps=8, trail_length=3, untrained=True) as writer:
        for t in range(t_len):
            has_pred = np.array([True, t >= 2])
            writer.write(frames[t], pts + [2.0 * t, 0.0], np.array([True, t % 2 == 0]), has_prediction=has_pred)
        assert writer.num_written == t_len
        colors = writer.colors
    # colour of track 1 comes from its position at its first predicted frame
    np.testing.assert_array_equal(colors, track_colors(np.array([[10.0, 30.0], [44.0, 35.0]]), h))
    with VideoReader(path) as reader:
        assert reader.shape_hw == (h, w)
        video = np.stack(list(reader))
    assert video.shape == (t_len, h, w, 3)
    # banner: the top rows are reddish on every frame (lossy codec, so compare channel means)
    top = video[:, 2:20].astype(float)
    assert (top[..., 0].mean(axis=(1, 2)) > top[..., 2].mean(axis=(1, 2)) + 40).all()
    # the point of track 0 at the last frame is drawn in its colour (rough: H.264 is lossy)
    x, y = 10 + 2 * (t_len - 1), 30
    assert np.abs(video[-1, y, x].astype(int) - colors[0]).max() < 60
    assert np.abs(video[-1, 44, 60].astype(int) - 60).max() < 12  # background elsewhere


def test_overlay_writer_atomic_and_checks(tmp_path):
    path = tmp_path / "o.mp4"
    with pytest.raises(ValueError, match="N=3"):
        with OverlayWriter(path, fps=8) as writer:
            writer.write(_blank(), np.zeros((2, 2)), np.ones(2, bool))
            writer.write(_blank(), np.zeros((3, 2)), np.ones(3, bool))
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="trail_length"):
        OverlayWriter(path, fps=8, trail_length=-1)
