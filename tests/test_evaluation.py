"""Evaluation protocols, runner, CLI and distributed sharding (metrics and readers have their own test files)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from cotracker_fast.evaluation import protocols, run
from cotracker_fast.evaluation.datasets import open_dataset
from cotracker_fast.models.checkpoint import save_safetensors
from cotracker_fast.models.registry import create_model

from helpers import smooth_video, synthetic_state_dict, tame_random_weights_


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tame_random_weights_(create_model()).eval()


def _video(T=14, seed=0):
    return smooth_video(T, seed)


@pytest.mark.parametrize("batch_size", [4, 16])
def test_batched_single_point_equals_one_by_one(model, batch_size):
    """The paper's protocol run one point at a time (the official loop, frames re-encoded per point) and batched
    over shared features, with problems of different query frames (crop lengths) in one batch, give the same
    tracks (measured: bit-identical on CPU; the bound allows for batched-matmul order on other machines).
    Query frames 10 and 12 leave crops of <= S/2 frames, on which the official loop would run no window (all 0);
    here their one window runs (models.cotracker.window_runs), in the batch as in the loop."""
    video = _video()
    q = torch.tensor(
        [[0.0, 10, 12], [0.0, 40, 30], [3.0, 20, 50], [9.0, 70, 20], [3.0, 5, 5], [0.0, 90, 60], [10.0, 30, 30],
         [12.0, 40, 40], [5.0, 60, 20]]
    )
    a = protocols.single_point_tracks(model, video, q, iters=2, batch_size=batch_size)
    b = protocols.single_point_tracks_one_by_one(model, video, q, iters=2)
    torch.testing.assert_close(a[0], b[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(a[1], b[1], atol=1e-5, rtol=0)
    assert torch.all(a[0][:9, 3] == 0) and torch.all(a[0][9:, 3] != 0)  # nothing before the query frame
    assert torch.all(a[0][5:, 8] != 0) and torch.all(a[0][:5, 8] == 0)
    assert torch.all(a[0][10:, 6] != 0) and torch.all(a[0][:10, 6] == 0)  # a 4-frame crop
    assert torch.all(a[0][12:, 7] != 0) and torch.all(a[0][:12, 7] == 0)  # a 2-frame crop


def test_track_from_features_zeroes_frames_past_each_crop(model):
    video = _video()
    fmaps = protocols.encode_video(model, video)
    q = torch.tensor([[[0.0, 10, 12]], [[0.0, 40, 30]]])
    tr, vi = protocols.track_from_features(model, fmaps, q, 1, starts=torch.tensor([0, 5]))
    assert tr.shape == (2, 14, 1, 2)
    assert torch.all(tr[1, 9:] == 0) and torch.all(vi[1, 9:] == 0)  # crop of sample 1: 9 frames
    assert torch.all(tr[1, :9] != 0) and torch.all(tr[0] != 0)


def test_track_from_features_rejects_bad_starts(model):
    fmaps = torch.zeros(1, 10, 128, 16, 24)
    q = torch.zeros(2, 3, 3)
    with pytest.raises(ValueError, match="starts"):
        protocols.track_from_features(model, fmaps, q, 1, starts=torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="fmaps must have batch"):
        protocols.track_from_features(model, torch.zeros(3, 10, 128, 16, 24), q, 1)


def test_local_grid_is_official(model):
    q = protocols._single_point_queries(torch.tensor([[200.0, 100.0]]), (384, 512), 6, 6)
    assert q.shape == (1, 1 + 36 + 36, 3) and torch.all(q[..., 0] == 0)
    local = q[0, 1:37, 1:]
    assert local[:6, 0].tolist() == [170, 180, 190, 200, 210, 220]  # x offsets -30..20 around x = 200
    assert local[::6, 1].tolist() == [70, 80, 90, 100, 110, 120]


def test_strided_backward_fill(model):
    video = _video(seed=1)
    q = torch.tensor([[9.0, 70, 20], [0.0, 10, 10]])
    fwd, _ = protocols.protocol_tracks(model, video, q, iters=1)
    both, _ = protocols.protocol_tracks(model, video, q, iters=1, backward=True)
    assert torch.all(fwd[:9, 0] == 0) and torch.all(both[:, 0] != 0)
    torch.testing.assert_close(both[9:], fwd[9:])


def test_runner_scores_a_perfect_tracker_perfectly(model, monkeypatch):
    """Plumbing check (resizing, query scaling, layouts, metric choice): a tracker that returns the ground truth
    scores 1 on every TAP-Vid metric."""
    sample = next(open_dataset("synthetic", num_videos=1, num_frames=10, size_hw=(64, 80)))
    H, W = sample.video.shape[1:3]

    def oracle(model, video, queries, **kw):
        gt = torch.as_tensor(sample.tracks, dtype=torch.float32)[:, : queries.shape[0]].clone()
        gt[..., 0] *= video.shape[-1] / W
        gt[..., 1] *= video.shape[-2] / H
        return gt, torch.as_tensor(sample.visible, dtype=torch.float32)[:, : queries.shape[0]]

    monkeypatch.setattr(run, "protocol_tracks", oracle)
    m = run.evaluate_sample(model, sample, "synthetic", resolution=(32, 48))
    assert m["average_jaccard"] == pytest.approx(1.0) and m["occlusion_accuracy"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "cotracker_stride_4_wind_8.safetensors"
    save_safetensors(synthetic_state_dict(2, tame=True), str(path))
    return str(path)


ARGS = ["--dataset", "synthetic", "--protocol", "multi", "--resolution", "64", "96", "--iters", "1",
        "--max-videos", "2", "--max-frames", "9", "--device", "cpu"]


def test_cli_evaluate_and_torchrun_sharding(tmp_path, checkpoint):
    """One process, then `torchrun --nproc_per_node 2` (gloo): the same per-video metrics, gathered on rank 0."""
    from cotracker_fast import cli

    single = tmp_path / "single"
    assert cli.main(["evaluate", *ARGS, "--checkpoint", checkpoint, "--out-dir", str(single)]) == 0
    one = json.loads((single / "result_eval_synthetic.json").read_text())
    assert one["num_videos"] == 2 and "| **average** |" in (single / "result_eval_synthetic.md").read_text()

    multi = tmp_path / "multi"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "cotracker_fast.cli", "evaluate", *ARGS, "--checkpoint", checkpoint, "--out-dir", str(multi)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads((multi / "result_eval_synthetic.json").read_text())
    assert two["world_size"] == 2 and two["num_videos"] == 2
    for name, metrics in one["per_video"].items():
        for k, v in metrics.items():
            assert (np.isnan(v) and np.isnan(two["per_video"][name][k])) or v == pytest.approx(
                two["per_video"][name][k], abs=1e-6)


def test_evaluate_rejects_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        run.evaluate("davis")


def test_cli_evaluate_on_format_fixtures(tmp_path, checkpoint):
    """The CLI end to end on small files in each dataset's on-disk format (writers shared with
    test_eval_datasets.py); the TAP-Vid sets use the paper's single-point protocol, strided DAVIS its backward pass."""
    import pickle

    from cotracker_fast import cli
    from test_eval_datasets import _tapvid_entry, _write_badja, _write_fastcapture, _write_kubric_seq

    davis = tmp_path / "davis"
    davis.mkdir()
    entry, _ = _tapvid_entry(t=9, n=3)
    (davis / "tapvid_davis.pkl").write_bytes(pickle.dumps({"bear": entry}))
    kinetics = tmp_path / "kinetics"
    kinetics.mkdir()
    (kinetics / "0000_of_0010.pkl").write_bytes(pickle.dumps([_tapvid_entry(t=9, n=3, seed=1)[0]]))
    kubric = tmp_path / "kubric"
    _write_kubric_seq(kubric, "seq0", t=9)
    badja = tmp_path / "badja"
    _write_badja(badja, t=9)
    fast = tmp_path / "fast"
    _write_fastcapture(fast, t=9)
    small = ["--resolution", "32", "48", "--iters", "1", "--device", "cpu", "--checkpoint", checkpoint]
    cases = [("tapvid_davis_first", davis, "single"), ("tapvid_davis_strided", davis, "single"),
             ("tapvid_kinetics_first", kinetics, "single"), ("kubric", kubric, "multi"), ("badja", badja, "multi"),
             ("fastcapture", fast, "multi")]
    for name, root, protocol in cases:
        out = tmp_path / f"out_{name}"
        assert cli.main(["evaluate", "--dataset", name, "--root", str(root), "--protocol", protocol, *small,
                         "--out-dir", str(out)]) == 0
        result = json.loads((out / f"result_eval_{name}.json").read_text())
        assert result["num_videos"] == 1, name
        expected = {"badja": "pck", "fastcapture": "accuracy_3px"}.get(name, "average_jaccard")
        assert expected in result["average"], (name, result["average"])


def test_cli_evaluate_cotracker3_uses_its_protocol(tmp_path):
    """``--model cotracker3_online`` with a CoTracker3 file: scored through the v3 protocol (streaming, vis * conf
    > 0.6); the model recorded in the result is the v3 one."""
    from cotracker_fast import cli
    from helpers_v3 import synthetic_v3_state_dict

    ckpt = tmp_path / "scaled_online.pth"
    torch.save(synthetic_v3_state_dict(1, 16, tame=True), str(ckpt))
    args = ["--dataset", "synthetic", "--protocol", "multi", "--resolution", "32", "48", "--iters", "1",
            "--max-videos", "1", "--max-frames", "9", "--device", "cpu", "--out-dir", str(tmp_path / "out")]
    assert cli.main(["evaluate", *args, "--checkpoint", str(ckpt), "--model", "cotracker3_online"]) == 0
    res = json.loads((tmp_path / "out" / "result_eval_synthetic.json").read_text())
    assert res["model"] == "cotracker3_online" and res["num_videos"] == 1
    assert 0 <= res["average"]["average_jaccard"] <= 1
