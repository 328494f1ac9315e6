"""``make demo`` (cotracker_fast.demo): the error table beside the baselines, and the overlay picture."""
import os

import numpy as np
import pytest


def _check_saved_figures(out: str, path, expected_rows) -> None:
    """The demo's JSON file holds the printed table (to the printed precision) and the weights' sha256."""
    import hashlib
    import json

    from cotracker_fast.models.registry import SHIPPED_WEIGHTS

    with open(path) as f:
        rec = json.load(f)
    with open(SHIPPED_WEIGHTS, "rb") as f:
        assert rec["weights"]["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert rec["errors"].keys() == expected_rows.keys()
    assert rec["clip"]["frames"] == 8 and rec["machine"]["cpu"] and rec["date"]
    for name, printed in expected_rows.items():
        err = rec["errors"][name]
        if not printed:
            assert err is None, name
            continue
        line = next(line for line in out.splitlines() if name in line)
        assert (f"mean {err['epe_mean']:6.2f} px" in line and f"median {err['epe_median']:6.2f} px" in line
                and f"{100 * err['delta_avg']:5.1f}%" in line), (line, err)


def _run(tmp_path, capsys, monkeypatch, lk: bool, extra=()):
    from cotracker_fast import baselines, demo

    if not lk:
        monkeypatch.setattr(baselines, "lk_available", lambda: False)
    fig = str(tmp_path / "fig.png")
    assert demo.main(["--out-dir", str(tmp_path / "out"), "--frames", "8", "--figure", fig, *extra]) == 0
    return capsys.readouterr().out, fig


def test_demo_prints_the_model_beside_lucas_kanade_and_writes_the_picture(tmp_path, capsys, monkeypatch):
    pytest.importorskip("cv2")
    import imageio.v3 as iio

    out, fig = _run(tmp_path, capsys, monkeypatch, lk=True)
    rows = {name: line for line in out.splitlines() for name in ("cotracker_fast (shipped", "Lucas-Kanade (OpenCV)",
                                                                 "points stay where they were") if name in line}
    assert len(rows) == 3, out
    for line in rows.values():
        assert "mean" in line and "delta_avg" in line and "nan" not in line
    img = iio.imread(fig)
    assert img.shape == (384, 512, 3) and img.dtype == np.uint8
    assert os.path.isfile(tmp_path / "out" / "overlay.mp4") and os.path.isfile(tmp_path / "out" / "tracks.npz")
    _check_saved_figures(out, tmp_path / "out" / "errors.json", {
        "cotracker_fast (shipped cotracker_fast_small)": True, "Lucas-Kanade (OpenCV)": True,
        "points stay where they were": True})



def test_demo_says_when_opencv_is_missing(tmp_path, capsys, monkeypatch):
    results = tmp_path / "results" / "demo.json"  # a folder that does not exist yet
    out, _ = _run(tmp_path, capsys, monkeypatch, lk=False, extra=("--results", str(results)))
    assert "Lucas-Kanade (OpenCV)              skipped: OpenCV is not installed" in out
    assert "points stay where they were" in out
    # the saved file says the baseline was skipped rather than leaving it out
    assert not (tmp_path / "out" / "errors.json").exists()
    _check_saved_figures(out, results, {
        "cotracker_fast (shipped cotracker_fast_small)": True, "Lucas-Kanade (OpenCV)": False,
        "points stay where they were": True})
