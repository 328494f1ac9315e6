"""The weights shipped inside the package: format, size, loading as the default, and that they track."""
import os
import warnings

import numpy as np
import pytest
import torch

from cotracker_fast import CoTrackerPredictor
from cotracker_fast.models.registry import SHIPPED_MODEL, SHIPPED_WEIGHTS, create_model, model_overrides_from_checkpoint
from cotracker_fast.predictor import OFFICIAL_DEFAULT_CHECKPOINT, build_model, is_untrained


def fresh_shipped_architecture():
    """An untrained model of the architecture the shipped file records (its variant and any ``model_overrides``)."""
    return create_model(SHIPPED_MODEL, overrides=model_overrides_from_checkpoint(SHIPPED_WEIGHTS))


def test_file_is_fp16_safetensors_under_25_mb():
    from safetensors import safe_open

    assert os.path.getsize(SHIPPED_WEIGHTS) < 25 * 2**20
    with safe_open(SHIPPED_WEIGHTS, "pt") as f:
        assert f.metadata()["model_name"] == SHIPPED_MODEL
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
        keys = set(f.keys())
    assert dtypes == {torch.float16}
    assert keys == set(fresh_shipped_architecture().state_dict())


def test_default_predictor_uses_the_shipped_weights():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "RANDOM weights" warning
        p = CoTrackerPredictor(checkpoint=None)
    assert p.model_name == SHIPPED_MODEL and p.interp_shape == (576, 768)
    ref = fresh_shipped_architecture().state_dict()
    sd = p.model.state_dict()
    assert all(sd[k].dtype == torch.float32 for k in sd)  # fp16 on disk, fp32 in the model
    assert not torch.equal(sd["vis_predictor.0.weight"], ref["vis_predictor.0.weight"])  # not a fresh init
    assert not is_untrained(None, None) and is_untrained(None, "cotracker_stride_4_wind_8")


def test_missing_official_default_falls_back_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the official relative default path does not exist here
    with pytest.warns(UserWarning, match="does not exist here: using the weights shipped"):
        model, name = build_model(OFFICIAL_DEFAULT_CHECKPOINT, None, None)
    assert name == SHIPPED_MODEL


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory):
    """The demo's run (``make demo``): its clip encoded to MP4, tracked by the shipped weights through the CLI path,
    and the error against the ground truth."""
    from cotracker_fast.cli import track_video
    from cotracker_fast.demo_clip import make_demo_clip, tracking_error
    from cotracker_fast.io import VideoWriter

    clip = make_demo_clip(num_frames=24, size_hw=(384, 512), seed=0)
    path = str(tmp_path_factory.mktemp("demo") / "clip.mp4")
    with VideoWriter(path, fps=clip.fps) as w:
        for f in clip.frames:
            w.write(f)
    result = track_video(path, queries=clip.queries)
    return tracking_error(result.tracks, clip.gt_tracks, clip.gt_visible, query_frames=clip.queries[:, 0])


def test_demo_clip_beats_points_that_stay_still(demo_result):
    """What the shipped weights achieve today on ``make demo``'s clip (docs/ACCURACY.md), far below the static
    baseline's error (27.2 px mean, 27.6 px median, <delta_avg 4.9%), and within the 2 px mean-error target. Measured
    on a 2-core AMD EPYC (Zen 4, family 25 model 17), tracked at the model's 576x768: 1.56 px mean (1.75% of the
    point-frames are lost by more than 16 px and carry it), 1.05 px median, 86.4%; the median and <delta_avg bounds
    sit 0.2 px and 2.4 points of <delta_avg away, room for other CPUs' float rounding, not for a weaker tracker. The
    90% <delta_avg target is the strict expected failure below. (The weights shipped before, the AM average,
    measured 1.56 px, 1.04 px, 86.3% on an AMD EPYC Zen 3; the bounds follow the shipped file.)"""
    assert demo_result["epe_mean"] <= 2.0, demo_result
    assert demo_result["epe_median"] < 1.25, demo_result
    assert demo_result["delta_avg"] > 0.84, demo_result


def test_refinement_damps_a_tiny_input_change():
    """Noise of std 0.01 grey levels (a hundredth of the 8-bit quantum) on 8 frames of the demo clip barely moves the
    shipped weights' tracks: their iterations settle rather than amplify. Measured on a 2-core AMD EPYC (Zen 4,
    family 25 model 17), 64 points, 6 iterations, at the model's working resolution, 576x768: 0.0042 px mean, 0.155 px
    max (the AM average shipped before, on a Zen 3: 0.0060 px and 0.10 px; stage AD on an Intel Xeon: 0.0043 px and
    0.18 px, at 384x512 0.0015 px and 0.012 px); a 2+2-block network trained with the official sin/cos flow
    features gave 0.85 px mean and 10 px max on this probe, which is why the variant reads the raw flow only. The max
    bound was 0.2 px at 384x512; at 576x768 AD's 0.18 px sat too close to it for other CPUs' rounding, so it is 0.5 px
    (20x below the amplifying network's 10 px); the mean bound keeps a margin of 2.4x over the shipped weights'
    0.0042 px."""
    from cotracker_fast.demo_clip import make_demo_clip

    clip = make_demo_clip(num_frames=8, size_hw=(384, 512), seed=0)
    video = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)[None].float()
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(64, 2, generator=g) * torch.tensor([511.0, 383.0])
    queries = torch.cat([torch.zeros(64, 1), xy], 1)[None]
    noisy = video + torch.randn(video.shape, generator=g) * 0.01
    p = CoTrackerPredictor()
    with torch.no_grad():
        a, _ = p(video, queries)
        b, _ = p(noisy, queries)
    d = (a - b).norm(dim=-1)
    assert d.mean() < 0.01 and d.max() < 0.5, (float(d.mean()), float(d.max()))


# The targets the shipped weights are trained towards that are not met yet (on the demo clip <delta_avg 86.4%
# against 90%, while the 2 px mean-error target, 1.56 px, is met and held above; on the held-out photos AJ 72.7
# against Lucas-Kanade's 78.5, while occlusion accuracy, 96.1 against static's 94.9, is met; docs/ACCURACY.md);
# strict, so the markers must come off as soon as weights that meet them are shipped.
@pytest.mark.xfail(strict=True, reason="target not met yet: measured delta_avg 86.4% (mean error 1.56 px)")
def test_demo_clip_delta_avg_at_least_90(demo_result):
    """``make demo``'s clip (seed 0, 24 frames of 384x512): <delta_avg at least 90%."""
    assert demo_result["delta_avg"] >= 0.90, demo_result


@pytest.mark.xfail(strict=True, reason="target not met yet: AJ 72.7 against Lucas-Kanade's 78.5 (6 clips; OA 96.1 "
                                       "against static's 94.9 is met)")
def test_beats_lucas_kanade_and_static_on_heldout_photos():
    """Two clips of the held-out photo set (real photographs never used in training, camera motion, moving
    occluders; 24 frames of 256x320): the shipped weights' average Jaccard is above OpenCV Lucas-Kanade's, and every
    TAP-Vid measure is above that of points that stay where they were."""
    pytest.importorskip("cv2")
    from cotracker_fast.baselines.lk import track_lk
    from cotracker_fast.evaluation.datasets import read_heldout_photos
    from cotracker_fast.evaluation.metrics import average_metrics
    from cotracker_fast.evaluation.run import evaluate_sample, score_sample

    model, _ = build_model(None, None, None)
    model.eval()
    per = {"model": [], "lk": [], "static": []}
    for s in read_heldout_photos(2):
        per["model"].append(evaluate_sample(model, s, "synthetic", single_point=False, iters=6,
                                            resolution=tuple(model.config.model_resolution)))
        n = s.tracks.shape[1]
        qxy = s.tracks[s.query_frames, np.arange(n)]
        queries = np.concatenate([s.query_frames[:, None].astype(np.float32), qxy], 1)
        per["lk"].append(score_sample(s, "synthetic", *track_lk(s.video, queries)))
        static = np.broadcast_to(qxy, s.tracks.shape).copy()
        per["static"].append(score_sample(s, "synthetic", static, np.ones(s.visible.shape, bool)))
    avg = {k: average_metrics(v) for k, v in per.items()}
    assert avg["model"]["average_jaccard"] > avg["lk"]["average_jaccard"], avg
    for key in ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy"):
        assert avg["model"][key] > avg["static"][key], (key, avg)


def test_training_refuses_the_evaluation_photographs(tmp_path):
    """The demo's photograph and the held-out photographs never become training textures, whatever their name."""
    import shutil

    from cotracker_fast.demo_clip import ASSET_DIR, PHOTO_NAME
    from cotracker_fast.evaluation.datasets import heldout_photo_paths
    from cotracker_fast.training.trainer import TrainConfig, build_dataset

    for src in (str(ASSET_DIR / PHOTO_NAME), heldout_photo_paths()[0]):
        folder = tmp_path / os.path.basename(src)
        folder.mkdir()
        shutil.copy(src, folder / "innocent_name.jpg")
        cfg = TrainConfig(model=SHIPPED_MODEL, num_frames=4, size_hw=(32, 32), num_points=4, photo_dir=str(folder))
        with pytest.raises(ValueError, match="is the evaluation photograph"):
            build_dataset(cfg)


@pytest.fixture(scope="module")
def bf16_deviation():
    """How far the bf16 path moves the shipped weights' tracks from float32 at a small size: 8 frames of the demo
    clip, 256 points (as many as ``benchmarks/bf16_accuracy.py`` at full size; half at frame 0, half on frames 1-3),
    6 iterations, the bf16 path forced (emulated bf16 rounds as native bf16 does). Returns the per-point-frame
    distances (px) and the fraction of equal visibility flags. With 256 points a single point that the weights track
    poorly moves the mean by a few thousandths of a pixel.
    On the shipped weights (AMD EPYC Zen 4, native bf16, tracked at their 576x768) this sample gave 0.064 px mean,
    0.55 px p99, 100.00% agreement with 256 points (one-off run; the AM average shipped before, on a Zen 3 with bf16
    emulated: 0.060 px, 0.41 px, 99.90%)."""
    from cotracker_fast import precision
    from cotracker_fast.demo_clip import make_demo_clip

    clip = make_demo_clip(num_frames=8, size_hw=(384, 512), seed=0)
    video = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)[None].float()
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(256, 2, generator=g) * torch.tensor([511.0, 383.0])
    t = torch.randint(0, 4, (256, 1), generator=g).float()
    t[:128] = 0
    queries = torch.cat([t, xy], 1)[None]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(precision, "cpu_has_native_bf16", lambda: True)
        with torch.no_grad():
            a, va = CoTrackerPredictor()(video, queries)
            b, vb = CoTrackerPredictor(dtype=torch.bfloat16)(video, queries)
    return (a - b).norm(dim=-1).flatten(), (va == vb).float().mean()


def test_bf16_tracks_stay_close_to_float32(bf16_deviation):
    """A looser check of the bf16 path on the shipped weights at the fixture's size (the stated bound is the next
    test): on another CPU a few chaotic points can move the mean across 0.1 px (on earlier weights the same clip gave
    0.109 px on this Intel Xeon and the full-size run 0.093), and this check still separates that from a broken bf16
    path. Measured on an AMD EPYC (Zen 4, native bf16): 0.064 px mean, 0.55 px p99, 100.00% equal visibility flags
    (one-off run)."""
    d, agree = bf16_deviation
    assert torch.quantile(d, 0.99) <= 1.0 and agree >= 0.99 and d.mean() <= 0.2, (
        float(d.mean()), float(torch.quantile(d, 0.99)), float(agree))


def test_bf16_tracks_stay_within_the_stated_bound(bf16_deviation):
    """The bf16 path's stated bound (mean <= 0.1 px, p99 <= 1 px, visibility agreement >= 99%; README, ``--dtype``
    help) on the shipped weights at the fixture's size. Measured on an AMD EPYC (Zen 4, native bf16): at this size
    0.064 px mean, 0.55 px p99, 100.00% agreement; at full size (``benchmarks/bf16_accuracy.py``: 24 frames, 256
    points) 0.076 px mean, 0.86 px p99, 99.98% (the AM average shipped before, on a Zen 3 with bf16 emulated:
    0.067 px, 0.53 px, 99.95%)."""
    d, agree = bf16_deviation
    assert d.mean() <= 0.1 and torch.quantile(d, 0.99) <= 1.0 and agree >= 0.99, (
        float(d.mean()), float(torch.quantile(d, 0.99)), float(agree))


def test_refinement_iterations_script(tmp_path):
    """``benchmarks/refinement_iterations.py`` scores one row per iteration count, and rejects bad arguments."""
    import json

    from benchmarks import refinement_iterations as ri

    out = tmp_path / "r.json"
    assert ri.main(["--set", "validation", "--config", "train/configs/tiny_cpu.json", "--num-videos", "1",
                    "--iters", "1", "3", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["set"] == "validation" and rec["weights"] == "shipped" and rec["num_videos"] == 1
    assert [r["iters"] for r in rec["rows"]] == [1, 3]
    for r in rec["rows"]:
        assert all(0.0 <= r[k] <= 1.0 for k in ri.KEYS), r
    demo = tmp_path / "d.json"
    assert ri.main(["--set", "demo", "--iters", "1", "--out", str(demo)]) == 0
    (row,) = json.loads(demo.read_text())["rows"]
    assert row["iters"] == 1 and row["num_evaluated"] > 0 and len(row["signed_mean_px"]) == 2
    assert 0.0 <= row["delta_avg"] <= 1.0 and row["epe_median"] < 27.0, row  # 27 px: points that stay still
    for bad, match in ((["--iters", "0"], "--iters"), (["--num-videos", "0"], "--num-videos"),
                       (["--weights", str(tmp_path / "missing.safetensors")], "no such file")):
        with pytest.raises(SystemExit, match=match):
            ri.main(bad)
