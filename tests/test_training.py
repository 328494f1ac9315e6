"""Training: the official losses on hand-computed cases, the loop (overfitting, resume, DDP equivalence), config."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from cotracker_fast.models.cotracker import TrainData
from cotracker_fast.training import LossConfig, TrainConfig, train, window_losses
from cotracker_fast.data.clip import collate_clips
from cotracker_fast.models.cotracker import CoTracker
from cotracker_fast.training.trainer import (
    StepSampler,
    build_dataset,
    init_model,
    load_checkpoint_state,
    train_step_loss,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _td(starts, preds, logits, index, valid):
    return TrainData(list(starts), preds, logits, index, valid)


def test_flow_loss_hand_computed():
    """One window, 2 frames, tracks 0 and 1 (track 1 padding in sample 0), 2 iterations, gamma 0.5."""
    gt = torch.zeros(1, 3, 2, 2)
    p0 = torch.tensor([[[[1.0, 3.0], [100.0, 100.0]], [[2.0, 0.0], [100.0, 100.0]]]])  # (1, 2, 2, 2)
    p1 = torch.full_like(p0, 0.0)
    p1[0, 0, 0] = torch.tensor([4.0, 0.0])
    td = _td([0], [[p0, p1]], [torch.zeros(1, 2, 2)], [torch.tensor([[0, 1]])], [torch.tensor([[True, False]])])
    vis = torch.ones(1, 3, 2, dtype=torch.bool)
    flow, _ = window_losses(td, gt, vis, LossConfig(gamma=0.5))
    # iteration 0 (weight 0.5): per-entry |err| means over xy: frame0 2, frame1 1 -> mean 1.5
    # iteration 1 (weight 1):   frame0 2, frame1 0 -> mean 1;  (0.5*1.5 + 1) / I=2 / N_j=1
    assert flow.item() == pytest.approx((0.5 * 1.5 + 1.0) / 2 / 1)


def test_flow_loss_reads_ground_truth_in_the_window_order():
    """index permutes the tracks (the model's sort by query frame); the window at frame 4 reads GT frames 4.."""
    gt = torch.arange(2 * 8 * 3 * 2, dtype=torch.float32).reshape(2, 8, 3, 2)
    index = torch.tensor([[2, 0], [1, 2]])
    pred = torch.stack([gt[b, 4:8][:, index[b]] for b in range(2)])
    td = _td([4], [[pred]], [torch.zeros(2, 4, 2)], [index], [torch.ones(2, 2, dtype=torch.bool)])
    flow, _ = window_losses(td, gt, torch.ones(2, 8, 3, dtype=torch.bool))
    assert flow.item() == 0.0
    td = _td([4], [[pred + 1]], [torch.zeros(2, 4, 2)], [index], [torch.ones(2, 2, dtype=torch.bool)])
    flow, _ = window_losses(td, gt, torch.ones(2, 8, 3, dtype=torch.bool))
    assert flow.item() == pytest.approx(1.0 / 2)  # error 1 everywhere, / N_j = 2


@pytest.mark.parametrize("quirk", [True, False])
def test_visibility_loss_hand_computed(quirk):
    logits = torch.tensor([[[2.0, -1.0], [0.5, 3.0]]])  # (1, n=2, K=2)
    gv = torch.tensor([[[True, False], [True, True]]])
    td = _td([0], [[torch.zeros(1, 2, 2, 2)]], [logits], [torch.tensor([[0, 1]])], [torch.ones(1, 2, dtype=torch.bool)])
    _, vis = window_losses(td, torch.zeros(1, 2, 2, 2), gv, LossConfig(official_vis_quirk=quirk))
    x = torch.sigmoid(logits) if quirk else logits
    pos = (F.softplus(-x[0, 0, 0]) + F.softplus(-x[0, 1, 0]) + F.softplus(-x[0, 1, 1])) / 3
    neg = F.softplus(x[0, 0, 1])
    assert vis.item() == pytest.approx(((pos + neg) / 2).item(), rel=1e-6)


def test_losses_sum_windows_and_average_samples():
    gt = torch.zeros(2, 12, 1, 2)
    vis = torch.ones(2, 12, 1, dtype=torch.bool)
    one = torch.ones(2, 8, 1, 2)
    one[1] *= 3
    idx, val = torch.zeros(2, 1, dtype=torch.long), torch.ones(2, 1, dtype=torch.bool)
    td = _td([0, 4], [[one], [one]], [torch.zeros(2, 8, 1)] * 2, [idx, idx], [val, val])
    flow, _ = window_losses(td, gt, vis)
    assert flow.item() == pytest.approx((2 * 1 + 2 * 3) / 2)


def test_losses_reject_bad_shapes():
    td = _td([0], [[torch.zeros(1, 2, 1, 2)]], [torch.zeros(1, 2, 1)], [torch.zeros(1, 1, dtype=torch.long)],
             [torch.ones(1, 1, dtype=torch.bool)])
    with pytest.raises(ValueError, match="gt_tracks"):
        window_losses(td, torch.zeros(1, 2, 1), torch.ones(1, 2, 1))
    with pytest.raises(ValueError, match="gt_visible"):
        window_losses(td, torch.zeros(1, 2, 1, 2), torch.ones(1, 3, 1))


def test_step_sampler_partitions_items():
    one = list(StepSampler(0, 3, 2, 0, 1))
    ranks = [list(StepSampler(0, 3, 1, r, 2)) for r in range(2)]
    assert one == [0, 1, 2, 3, 4, 5]
    assert [x for pair in zip(*ranks) for x in pair] == one  # rank r, step s: item 2 s + r
    assert list(StepSampler(2, 3, 2, 0, 1)) == [4, 5]  # resuming at step 2


def test_zero_init_coord_head_starts_at_the_static_baseline():
    from cotracker_fast.training.trainer import init_model

    cfg = TrainConfig(**{**TINY, "zero_init_coord_head": True})
    clip = build_dataset(cfg)[0]
    with torch.no_grad():
        tracks, _, _, _ = init_model(cfg).eval()(clip.video[None], clip.queries[None], iters=3)
    q = clip.queries
    first = q[:, 0].long()
    tracked = torch.arange(8)[:, None] >= (first[None] // 4) * 4  # frames of each point's windows
    expected = q[None, :, 1:].expand(8, -1, -1)
    assert torch.equal(tracks[0][tracked], expected[tracked])


def test_init_weights_starts_from_an_fp16_export(tmp_path):
    """A run can start from the fp16 safetensors export of an earlier run (what the repository keeps between
    sessions): every parameter equals the export's, cast to float32."""
    from cotracker_fast.models.checkpoint import save_safetensors

    torch.manual_seed(5)
    src = init_model(TrainConfig(**TINY))
    path = str(tmp_path / "w.safetensors")
    save_safetensors({k: v.half() for k, v in src.state_dict().items()}, path, metadata={})
    got = init_model(TrainConfig(**{**TINY, "init_weights": path})).state_dict()
    for k, v in src.state_dict().items():
        assert got[k].dtype == torch.float32 and torch.equal(got[k], v.half().float()), k


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="model must be one of"):
        TrainConfig(model="nope")
    with pytest.raises(ValueError, match="data_root"):
        TrainConfig(data="kubric")
    with pytest.raises(ValueError, match="unknown CoTrackerConfig fields"):
        TrainConfig(model_overrides={"depth": 3})
    with pytest.raises(ValueError, match="synthetic_overrides has unknown or reserved fields \\['bogus'\\]"):
        TrainConfig(synthetic_overrides={"bogus": 1})
    with pytest.raises(ValueError, match="reserved"):
        TrainConfig(synthetic_overrides={"num_frames": 3})
    with pytest.raises(ValueError, match="camera_motion_probability"):
        TrainConfig(synthetic_overrides={"camera_motion_probability": 2.0})
    with pytest.raises(ValueError, match="photo_share'\\] needs photo_dir"):
        TrainConfig(synthetic_overrides={"photo_share": 0.5})
    with pytest.raises(ValueError, match="photo_share must be a number"):
        TrainConfig(synthetic_overrides={"photo_share": 2.0}, photo_dir=ROOT)
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"num_steps": 3, "typo": 1}))
    with pytest.raises(ValueError, match="typo"):
        TrainConfig.from_json(str(p))


def test_config_extends_a_base(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "a.json").write_text(json.dumps(
        {"num_steps": 7, "lr": 1e-3, "size_hw": [32, 48], "synthetic_overrides": {"num_objects": [1, 2]}}))
    (tmp_path / "base" / "b.json").write_text(json.dumps({"extends": "a.json", "lr": 2e-3}))
    (tmp_path / "c.json").write_text(json.dumps(
        {"extends": "base/b.json", "seed": 5, "synthetic_overrides": {"camera_translation": 0.1}}))
    cfg = TrainConfig.from_json(str(tmp_path / "c.json"), num_steps=9)
    assert (cfg.num_steps, cfg.lr, cfg.seed, list(cfg.size_hw)) == (9, 2e-3, 5, [32, 48])
    # a nested object in the child replaces the base's whole: num_objects is not carried over
    assert cfg.synthetic_overrides == {"camera_translation": 0.1}
    (tmp_path / "base" / "a.json").write_text(json.dumps({"extends": "../c.json"}))
    with pytest.raises(ValueError, match="cycle"):
        TrainConfig.from_json(str(tmp_path / "c.json"))
    (tmp_path / "d.json").write_text(json.dumps({"extends": "missing.json"}))
    with pytest.raises(ValueError, match="missing.json"):
        TrainConfig.from_json(str(tmp_path / "d.json"))
    (tmp_path / "e.json").write_text(json.dumps({"extends": 3}))
    with pytest.raises(ValueError, match="'extends' must be"):
        TrainConfig.from_json(str(tmp_path / "e.json"))
    (tmp_path / "f.json").write_text(json.dumps({"extends": "g.json"}))
    (tmp_path / "g.json").write_text(json.dumps({"typo": 1}))
    with pytest.raises(ValueError, match="typo"):
        TrainConfig.from_json(str(tmp_path / "f.json"))


def test_every_shipped_config_loads(tmp_path):
    from PIL import Image

    from cotracker_fast.training.trainer import _read_config_json

    # the training photographs are fetched outside the repository; a stand-in folder satisfies the configs' check
    Image.new("RGB", (8, 8)).save(tmp_path / "stand_in.png")
    folder = os.path.join(ROOT, "train", "configs")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    assert len(names) >= 40

    def load(name):
        path = os.path.join(folder, name)
        photos = {"photo_dir": str(tmp_path)} if _read_config_json(path, ()).get("photo_dir") else {}
        return TrainConfig.from_json(path, **photos)

    for name in names:
        assert load(name).num_steps > 0, name
    # a stage that extends AD keeps AD's recipe where it does not say otherwise
    ad, ai = load("ship_small_ad.json"), load("ship_small_ai.json")
    assert (ai.train_iters, ai.seed, ai.size_mix, ai.lr) == (12, 28, ad.size_mix, ad.lr)


def test_synthetic_overrides_reach_the_dataset():
    cfg = TrainConfig(num_frames=5, size_hw=[32, 48], num_points=4, augment=False,
                      synthetic_overrides={"num_objects": [0, 0], "camera_motion_probability": 1.0})
    scfg = build_dataset(cfg).config
    assert scfg.num_objects == (0, 0) and scfg.camera_motion_probability == 1.0
    assert (scfg.num_frames, scfg.size_hw, scfg.num_points) == (5, (32, 48), 4)


def test_size_mix_validation():
    with pytest.raises(ValueError, match="sum to less than 1"):
        TrainConfig(size_mix=[{"size_hw": [64, 64], "fraction": 0.6}, {"size_hw": [32, 32], "fraction": 0.4}])
    with pytest.raises(ValueError, match=r"size_mix\[0\]\['fraction'\] must be in \(0, 1\)"):
        TrainConfig(size_mix=[{"size_hw": [64, 64], "fraction": 0.0}])
    with pytest.raises(ValueError, match=r"size_mix\[0\]\['size_hw'\]"):
        TrainConfig(size_mix=[{"size_hw": [64], "fraction": 0.5}])
    with pytest.raises(ValueError, match=r"size_mix\[0\] must be a dict"):
        TrainConfig(size_mix=[{"size": [64, 64], "fraction": 0.5}])
    with pytest.raises(ValueError, match="unknown .* Augmentations fields"):
        TrainConfig(size_mix=[{"size_hw": [64, 64], "fraction": 0.5, "augment_overrides": {"bogus": 1}}])
    with pytest.raises(ValueError, match="size_mix needs data='synthetic'"):
        build_dataset(TrainConfig(data="kubric", data_root="/nonexistent",
                                  size_mix=[{"size_hw": [64, 64], "fraction": 0.5}]))


def test_size_mix_draws_one_size_per_step():
    """Each step's clips share one size, drawn from (seed, step) alone with the configured odds; every size gets its
    own augmentations (crop size and overrides)."""
    cfg = TrainConfig(num_frames=4, size_hw=[32, 48], num_points=4, augment=True,
                      augment_overrides={"pad_range": [0, 2]},
                      size_mix=[{"size_hw": [48, 64], "fraction": 0.25, "augment_overrides": {"pad_range": [0, 4]}}])
    assert cfg.sizes() == [((32, 48), 0.75), ((48, 64), 0.25)]
    assert cfg.augmentations().pad_range == (0, 2) and cfg.augmentations(0).crop_size == (48, 64)
    assert cfg.augmentations(0).pad_range == (0, 4)
    ds = build_dataset(cfg, group=3)
    picks = [ds.size_index(i) for i in range(3 * 2000)]
    steps = [picks[3 * s: 3 * s + 3] for s in range(2000)]
    assert all(len(set(p)) == 1 for p in steps)
    share = sum(p[0] for p in steps) / len(steps)
    assert 0.22 < share < 0.28, share  # 2000 draws: 3 standard deviations of a 0.25 share are 0.029
    assert picks == [build_dataset(cfg, group=3).size_index(i) for i in range(3 * 2000)]
    small = next(i for i, k in enumerate(picks) if k == 0)
    large = next(i for i, k in enumerate(picks) if k == 1)
    assert ds[small].video.shape[-2:] == (32, 48) and ds[large].video.shape[-2:] == (48, 64)


# ------------------------------------------------------------------------------------------------ the loop

TINY = dict(
    model="cotracker_stride_4_wind_8",
    model_overrides={"hidden_size": 32, "num_heads": 2, "time_depth": 1, "space_depth": 1, "latent_dim": 34,
                     "corr_levels": 2, "corr_radius": 1, "flow_embed_dim": 8, "model_resolution": [32, 48]},
    num_frames=8, size_hw=[32, 48], num_points=8, augment=False, num_workers=0, log_every=1, save_every=0,
    amp="none",
)


def _cfg(tmp_path, name, **kw):
    return TrainConfig(**{**TINY, "out_dir": str(tmp_path / name), **kw})


def _params(path):
    return load_checkpoint_state(path)["model"]


def test_tiny_model_overfits_one_clip(tmp_path, monkeypatch):
    """Every step sees the same clip (the dataset is pinned to item 0): the loss must fall a lot.
    Measured on item 0 of the default look (procedural textures only, no photograph): 200 steps at lr 2e-3 take the
    mean of 5 losses from 4.72 to 1.30 (3.6x); the test asks for 3x. (With the demo photograph among the default
    textures, item 0 was another clip: 3.1 to 0.41.)"""
    import cotracker_fast.training.trainer as tr

    real = tr.build_dataset

    class One(torch.utils.data.Dataset):
        def __init__(self, ds):
            self.ds = ds

        def __len__(self):
            return len(self.ds)

        def __getitem__(self, i):
            return self.ds[0]

    monkeypatch.setattr(tr, "build_dataset", lambda cfg, **kw: One(real(cfg, **kw)))
    out = train(_cfg(tmp_path, "overfit", num_steps=200, lr=2e-3, log_every=0), device="cpu")
    first, last = sum(out["losses"][:5]) / 5, sum(out["losses"][-5:]) / 5
    assert last < first / 3, (first, last)


def test_resume_continues_the_same_run(tmp_path):
    """Stopping after 3 of 6 steps and resuming gives the uninterrupted run's parameters and losses."""
    full = train(_cfg(tmp_path, "full", num_steps=6), device="cpu")
    part1 = train(_cfg(tmp_path, "split", num_steps=6, max_steps_this_run=3), device="cpu")
    assert part1["step"] == 3 and load_checkpoint_state(str(tmp_path / "split" / "last.pt"))["step"] == 3
    part2 = train(_cfg(tmp_path, "split", num_steps=6), device="cpu")
    assert part2["step"] == 6
    assert part1["losses"] + part2["losses"] == full["losses"]
    a, b = _params(str(tmp_path / "full" / "last.pt")), _params(str(tmp_path / "split" / "last.pt"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    logged = [json.loads(line)["loss"] for line in open(tmp_path / "split" / "metrics.jsonl")]
    assert logged == full["losses"]


def test_training_with_a_size_mix_runs_both_sizes(tmp_path):
    """A run with two clip sizes trains on both (one size per step) and resumes to the same parameters."""
    mix = [{"size_hw": [40, 56], "fraction": 0.5}]
    cfg = _cfg(tmp_path, "mix", num_steps=4, size_mix=mix)
    ds = build_dataset(cfg)
    assert {ds.size_index(i) for i in range(4)} == {0, 1}  # seed 0's first four steps draw both sizes
    full = train(cfg, device="cpu")
    assert len(full["losses"]) == 4 and all(torch.isfinite(torch.tensor(full["losses"])))
    train(_cfg(tmp_path, "split", num_steps=4, size_mix=mix, max_steps_this_run=2), device="cpu")
    part2 = train(_cfg(tmp_path, "split", num_steps=4, size_mix=mix), device="cpu")
    assert full["losses"][2:] == part2["losses"]


def test_periodic_validation_is_logged_and_keeps_the_best(tmp_path):
    train(_cfg(tmp_path, "ev", num_steps=2, eval_every=1, eval_videos=1), device="cpu")
    rows = [json.loads(line) for line in open(tmp_path / "ev" / "metrics.jsonl")]
    evals = [r for r in rows if "val/average_jaccard" in r]
    assert [r["step"] for r in evals] == [1, 2] and all(0 <= r["val/occlusion_accuracy"] <= 1 for r in evals)
    best = max(evals, key=lambda r: r["val/average_jaccard"])  # the first one on a tie
    assert load_checkpoint_state(str(tmp_path / "ev" / "best.pt"))["step"] == best["step"]


def test_validation_clips_follow_the_training_mix_not_the_held_out_set():
    from cotracker_fast.training.trainer import validation_config

    cfg = TrainConfig(num_frames=8, size_hw=(64, 96), num_points=16, synthetic_overrides={"num_objects": [0, 0]})
    v = validation_config(cfg)
    assert v.num_objects == (0, 0) and v.size_hw == (64, 96) and v.num_frames == 8 and v.random_query_fraction == 0


def test_resume_refuses_a_different_run(tmp_path):
    train(_cfg(tmp_path, "r", num_steps=2, max_steps_this_run=1), device="cpu")
    with pytest.raises(ValueError, match="cannot resume"):
        train(_cfg(tmp_path, "r", num_steps=2, lr=1e-3), device="cpu")


@pytest.mark.parametrize("optimizer,steps", [("sgd", 1), ("adamw", 3)])
def test_ddp_two_processes_equal_one_process_on_the_combined_batch(tmp_path, optimizer, steps):
    """torchrun with 2 gloo processes x 1 clip and one process x 2 clips take the same steps.

    One SGD step compares the gradients themselves (the update is linear in them). Over several steps the two runs
    drift apart: the unrolled tracker amplifies the ~1e-5 float difference of the first update (measured with SGD:
    1.1e-5 after 1 step, 0.12 after 3), so the 3-step AdamW case only bounds the drift."""
    cfg_path = tmp_path / "tiny.json"
    cfg_path.write_text(json.dumps({**TINY, "num_steps": steps, "optimizer": optimizer, "lr": 1e-2}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           os.path.join(ROOT, "train", "train.py"), "--config", str(cfg_path), "--device", "cpu",
           "--set", f"out_dir={json.dumps(str(tmp_path / 'ddp'))}", "--set", "batch_size=1"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    single = train(_cfg(tmp_path, "single", num_steps=steps, batch_size=2, optimizer=optimizer, lr=1e-2),
                   device="cpu")
    assert single["step"] == steps
    assert load_checkpoint_state(str(tmp_path / "ddp" / "last.pt"))["world_size"] == 2
    a, b = _params(str(tmp_path / "ddp" / "last.pt")), _params(str(tmp_path / "single" / "last.pt"))
    torch.manual_seed(0)  # as train() does before building the model
    init = init_model(TrainConfig(**TINY)).state_dict()
    upd_a = torch.cat([(a[k].float() - init[k].float()).flatten() for k in a])
    upd_b = torch.cat([(b[k].float() - init[k].float()).flatten() for k in a])
    rel = float((upd_a - upd_b).norm() / upd_b.norm())
    ddp_losses = [json.loads(line)["loss"] for line in open(tmp_path / "ddp" / "metrics.jsonl")]
    assert ddp_losses[0] == pytest.approx(single["losses"][0], rel=1e-6)  # same parameters, same batch
    print("ddp rel", optimizer, rel)
    if optimizer == "sgd":
        # Only float summation order differs (gradient all-reduce vs the batched loss). Measured: 1.1e-5 to 1.4e-5.
        assert rel < 1e-4, rel
    else:
        # Adam divides by sqrt(v), so entries whose gradient is ~0 move by ~lr with the sign of their float noise,
        # and the tracker amplifies the difference from step to step. Measured: 0.094 of the update norm (lr 1e-2).
        assert rel < 0.2, rel


def test_batch_gradient_is_the_mean_of_sample_gradients():
    """What DDP relies on: a batch of 2 clips gives the mean of the two clips' gradients (the loss is a mean of
    per-sample losses, and batching is exact: padding tracks do not touch real ones)."""
    cfg = TrainConfig(**{**TINY, "out_dir": "unused"})
    torch.manual_seed(0)
    model = CoTracker(cfg.model_config()).train()
    ds = build_dataset(cfg)

    def grads(clips):
        model.zero_grad()
        train_step_loss(model, collate_clips(clips), cfg)[0].backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    both = grads([ds[0], ds[1]])
    mean = (grads([ds[0]]) + grads([ds[1]])) / 2
    assert float((both - mean).norm() / both.norm()) < 1e-5  # measured 1.0e-6 (float32 summation order)


def test_a_training_step_leaves_no_graph_alive():
    """Once a step's loss is dropped, none of its autograd graph survives: the predicted tracks are written into
    the video-long track tensor without autograd saving the slice it overwrites (a saved slice of that tensor closes a
    reference cycle through its graph, invisible to Python's collector, and kept tens of MB per step alive)."""
    import gc

    cfg = TrainConfig(**{**TINY, "out_dir": "unused", "num_frames": 12})  # two windows: the second overwrites
    torch.manual_seed(0)
    model = CoTracker(cfg.model_config()).train()
    batch = collate_clips([build_dataset(cfg)[0]])

    def graph_tensors():
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor) and o.grad_fn is not None)

    before = graph_tensors()
    for _ in range(2):
        loss, _ = train_step_loss(model, batch, cfg)
        loss.backward()
        del loss, _
    assert graph_tensors() == before


def _script_module(name):
    """The script ``train/<name>.py`` imported as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "train", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_visibility_calibration_shifts_only_the_visibility_bias(tmp_path):
    """train/calibrate_visibility.py: the sweep scores each shift on validation clips, positions do not move with
    it within a window (these clips are one window long, so delta_avg is the same for every shift), the choice is
    the best average Jaccard, and the written fp16 file differs from the input only in the visibility bias, by the
    chosen shift."""
    from cotracker_fast.models.checkpoint import read_state_dict, save_safetensors

    cal = _script_module("calibrate_visibility")
    torch.manual_seed(3)
    src = {k: v.half() for k, v in init_model(TrainConfig(**TINY)).state_dict().items()}
    w = str(tmp_path / "w.safetensors")
    save_safetensors(src, w, metadata={"model_name": TINY["model"]})
    cfg_path = tmp_path / "tiny.json"
    cfg_path.write_text(json.dumps({**TINY, "out_dir": str(tmp_path / "run")}))
    out = str(tmp_path / "cal.safetensors")
    sweep_json = tmp_path / "sweep.json"
    assert cal.main([w, out, "--config", str(cfg_path), "--num-videos", "2", "--biases", "0", "1", "60",
                     "--out", str(sweep_json)]) == 0
    res = json.loads(sweep_json.read_text())
    rows = res["sweep"]
    assert [r["bias"] for r in rows] == [0.0, 1.0, 60.0]
    assert len({r["average_pts_within_thresh"] for r in rows}) == 1  # positions are untouched by the shift
    assert res["bias"] == max(rows, key=lambda r: (r["average_jaccard"], -abs(r["bias"])))["bias"]
    got = read_state_dict(out)
    assert set(got) == set(src)
    for k, v in src.items():
        if k == cal.BIAS_KEY:
            assert torch.allclose(got[k].float(), v.float() + res["bias"], atol=0.05)  # fp16 of |bias| < 64
        else:
            assert torch.equal(got[k], v), k


def test_visibility_calibration_prefers_the_smallest_shift_on_a_tie():
    cal = _script_module("calibrate_visibility")
    rows = [{"bias": b, "average_jaccard": aj} for b, aj in ((0.0, 0.3), (2.0, 0.5), (-1.0, 0.5), (3.0, 0.4))]
    assert cal.best_bias(rows) == -1.0
    with pytest.raises(KeyError, match="vis_predictor"):
        cal.shifted({"other": torch.zeros(1)}, 1.0)


def test_weight_averaging_is_the_uniform_mean_and_refuses_mismatches(tmp_path):
    """train/average_weights.py: every floating tensor is the mean of the inputs (checked against a hand average of
    three saved models), the variant name carries over, and inputs of other keys, shapes or variants fail."""
    from cotracker_fast.models.checkpoint import read_state_dict, save_safetensors

    avg = _script_module("average_weights")
    paths, sds = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        sd = {k: v.half() for k, v in init_model(TrainConfig(**TINY)).state_dict().items()}
        paths.append(str(tmp_path / f"w{seed}.safetensors"))
        save_safetensors(sd, paths[-1], metadata={"model_name": TINY["model"]})
        sds.append(sd)
    out = str(tmp_path / "avg.safetensors")
    assert avg.main([*paths, "--out", out, "--dtype", "float32"]) == 0
    got = read_state_dict(out)
    assert set(got) == set(sds[0])
    for k, v in got.items():
        want = (sds[0][k].float() + sds[1][k].float() + sds[2][k].float()) / 3
        assert torch.allclose(v, want, atol=1e-6), k
    from safetensors import safe_open

    with safe_open(out, "pt") as f:
        assert f.metadata()["model_name"] == TINY["model"]
    one = dict(sds[0])
    first = next(iter(one))
    with pytest.raises(ValueError, match="different keys"):
        avg.average_state_dicts([sds[0], {k: v for k, v in one.items() if k != first}])
    with pytest.raises(ValueError, match="shape"):
        avg.average_state_dicts([sds[0], {**one, first: torch.zeros(2, 2, 2, 2, 2)}])
    with pytest.raises(ValueError, match="integer tensor differs"):
        avg.average_state_dicts([{"n": torch.tensor([1])}, {"n": torch.tensor([2])}])
    other = str(tmp_path / "other.safetensors")
    save_safetensors(sds[1], other, metadata={"model_name": "cotracker_fast_other"})
    with pytest.raises(SystemExit, match="different model variants"):
        avg.main([paths[0], other, "--out", str(tmp_path / "bad.safetensors")])
    overridden = str(tmp_path / "overridden.safetensors")
    save_safetensors(sds[1], overridden, metadata={"model_name": TINY["model"],
                                                   "model_overrides": json.dumps(TINY["model_overrides"])})
    with pytest.raises(SystemExit, match="different model variants"):
        avg.main([paths[0], overridden, "--out", str(tmp_path / "bad.safetensors")])
    assert avg.main([overridden, overridden, "--out", out]) == 0
    with safe_open(out, "pt") as f:
        assert json.loads(f.metadata()["model_overrides"]) == TINY["model_overrides"]
    with pytest.raises(SystemExit, match="at least two"):
        avg.main([paths[0], "--out", str(tmp_path / "bad.safetensors")])


def _score_file(path, config, candidates=None, calibrated=None, num_videos=4, seed=7):
    """A selection file (``candidates``: name -> AJ, or name -> per-clip AJs whose mean is the AJ) or a calibration
    file (``calibrated``: (output, bias, sweep))."""
    d = {"config": config, "num_videos": num_videos, "validation_seed": seed}
    if candidates is not None:
        d["candidates"] = [{"candidate": c, "average_jaccard": aj} if isinstance(aj, float) else
                           {"candidate": c, "average_jaccard": sum(aj) / len(aj), "per_clip_average_jaccard": aj}
                           for c, aj in candidates.items()]
    else:
        out, bias, sweep = calibrated
        d.update(output=out, bias=bias, sweep=[{"bias": b, "average_jaccard": aj} for b, aj in sweep])
    path.write_text(json.dumps(d))
    return str(path)


def test_ship_gate_reproduces_stage_p_decision():
    """train/ship_gate.py on the committed score files of stage P: the three-checkpoint average wins the pick
    (46.67 against the last step's 46.38) and its calibrated file loses the gate to the shipped O (47.84 < 49.20)."""
    gate = _script_module("ship_gate")
    r = os.path.join(ROOT, "benchmarks", "results")
    best, means = gate.pick([os.path.join(r, f"select-ship_small_p-val{s}.json")
                             for s in ("96x128", "192x256", "384x512")])
    assert best == "runs/ship_small_p_avg3.safetensors"
    assert set(means) == {best, "runs/ship_small_p/last.pt"}  # O's entry is only in one file
    assert means[best] == pytest.approx(0.4667, abs=5e-5) and means["runs/ship_small_p/last.pt"] < means[best]
    record = gate.gate(
        "runs/ship_small_p_calibrated.safetensors",
        [os.path.join(r, f) for f in ("calibrate-ship_small_p.json", "select-ship_small_p-calibrated-val192x256.json",
                                      "select-ship_small_p-calibrated-val384x512.json")],
        "runs/ship_small_o_calibrated.safetensors",
        [os.path.join(r, f) for f in ("calibrate-ship_small_o.json", "select-ship_small_o-calibrated-val192x256.json",
                                      "select-ship_small_p-val384x512.json=runs/ship_small_o_shipped.safetensors")])
    assert not record["ship"]
    assert record["new_mean"] == pytest.approx(0.4784, abs=5e-5)
    assert record["old_mean"] == pytest.approx(0.4920, abs=5e-5)
    assert [s["config"] for s in record["sets"]] == [f"train/configs/ship_small_{x}.json" for x in "jnp"]


def test_ship_gate_ships_only_a_strict_win_on_the_same_sets(tmp_path):
    """The gate copies the new file only when its mean is strictly higher, reads a calibration file at its chosen
    bias, refuses scores of different validation sets, and the CLI reports a bad spec in one line with status 2."""
    gate = _script_module("ship_gate")
    new_w, old_w, shipped = tmp_path / "new.safetensors", tmp_path / "old.safetensors", tmp_path / "ship.safetensors"
    new_w.write_bytes(b"new weights")
    old_w.write_bytes(b"old weights")
    shipped.write_bytes(b"old weights")
    # the new file: 0.50 at its chosen bias 3 (0.90 at bias 0 must not be read), then 0.60: mean 0.55
    n1 = _score_file(tmp_path / "n1.json", "a.json", calibrated=(str(new_w), 3.0, [(0.0, 0.9), (3.0, 0.5)]))
    n2 = _score_file(tmp_path / "n2.json", "b.json", candidates={str(new_w): 0.6, "other": 0.99})
    o1 = _score_file(tmp_path / "o1.json", "a.json", candidates={"old-name": 0.5})
    o2 = _score_file(tmp_path / "o2.json", "b.json", candidates={str(old_w): 0.6})
    tie = gate.gate(str(new_w), [n1, n2], str(old_w), [f"{o1}=old-name", o2])
    assert tie["new_mean"] == pytest.approx(0.55) and tie["old_mean"] == pytest.approx(0.55) and not tie["ship"]

    o2_low = _score_file(tmp_path / "o2l.json", "b.json", candidates={str(old_w): 0.58})
    out = tmp_path / "gate.json"
    args = ["gate", "--new", str(new_w), "--new-scores", n1, n2, "--old", str(old_w),
            "--old-scores", f"{o1}=old-name", o2_low, "--ship-to", str(shipped), "--out", str(out)]
    assert gate.main(args) == 0
    assert shipped.read_bytes() == b"new weights"
    saved = json.loads(out.read_text())
    assert saved["ship"] and saved["shipped_to"] == str(shipped) and saved["old_mean"] == pytest.approx(0.54)

    other_set = _score_file(tmp_path / "o2s.json", "b.json", candidates={str(old_w): 0.1}, seed=8)
    with pytest.raises(ValueError, match="different validation sets"):
        gate.gate(str(new_w), [n1, n2], str(old_w), [f"{o1}=old-name", other_set])
    # a photo-validation file of the same config, clip count and seed is another set
    photo_set = tmp_path / "o2p.json"
    photo_set.write_text(json.dumps({**json.loads(open(o2_low).read()), "photos": ["a.jpg"],
                                     "clip": {"num_frames": 24, "size_hw": [256, 320]}}))
    with pytest.raises(ValueError, match="different validation sets"):
        gate.gate(str(new_w), [n1, n2], str(old_w), [f"{o1}=old-name", str(photo_set)])
    with pytest.raises(ValueError, match="same number"):
        gate.gate(str(new_w), [n1, n2], str(old_w), [f"{o1}=old-name"])
    with pytest.raises(ValueError, match="not scored|no candidate"):
        gate.pick([n2, o2])
    shipped.write_bytes(b"old weights")
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "train", "ship_gate.py"), "gate", "--new", str(new_w),
                          "--new-scores", n1, "--old", str(old_w), "--old-scores", o1, "--ship-to", str(shipped)],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "old-name" in bad.stderr
    assert shipped.read_bytes() == b"old weights"


def test_ship_gate_margin_in_standard_errors_of_the_paired_lead(tmp_path):
    """``--min-lead-se K`` ships only a lead larger than K standard errors of the paired per-clip lead, computed as
    sqrt(sum_s var_s / n_s) / S, and refuses scores without per-clip lists."""
    gate = _script_module("ship_gate")
    old_a, old_b = [0.40, 0.50, 0.60, 0.50], [0.30, 0.30, 0.30, 0.30]
    # set a: differences 0.02, 0.04, 0.00, 0.02 (mean 0.02, sample variance 8/3e-4); set b: all 0.01 (variance 0)
    new_a, new_b = [0.42, 0.54, 0.60, 0.52], [0.31, 0.31, 0.31, 0.31]
    n = [_score_file(tmp_path / "na.json", "a.json", candidates={"new": new_a}),
         _score_file(tmp_path / "nb.json", "b.json", candidates={"new": new_b})]
    o = [_score_file(tmp_path / "oa.json", "a.json", candidates={"old": old_a}),
         _score_file(tmp_path / "ob.json", "b.json", candidates={"old": old_b})]
    se = math.sqrt(8 / 3 * 1e-4 / 4) / 2
    assert gate.lead_standard_error([(new_a, old_a), (new_b, old_b)]) == pytest.approx(se)
    lead = 0.015  # the mean over the two sets of the mean differences 0.02 and 0.01
    passes = gate.gate("new", n, "old", o, min_lead_se=lead / se - 0.01)
    assert passes["ship"] and passes["lead_standard_error"] == pytest.approx(se)
    assert passes["new_mean"] - passes["old_mean"] == pytest.approx(lead)
    assert not gate.gate("new", n, "old", o, min_lead_se=lead / se + 0.01)["ship"]
    assert gate.gate("new", n, "old", o)["ship"] and "lead_standard_error" not in gate.gate("new", n, "old", o)
    plain = _score_file(tmp_path / "pa.json", "a.json", candidates={"old": 0.5})
    with pytest.raises(ValueError, match="no per-clip scores"):
        gate.gate("new", n, "old", [plain, o[1]], min_lead_se=2)
    short = _score_file(tmp_path / "sa.json", "a.json", candidates={"old": [0.4, 0.5, 0.6]})
    with pytest.raises(ValueError, match="expected num_videos"):
        gate.gate("new", n, "old", [short, o[1]], min_lead_se=2)
    with pytest.raises(ValueError, match="min_lead_se"):
        gate.gate("new", n, "old", o, min_lead_se=-1)
    # scores tracked at different working resolutions do not pair, unless the decision compares resolutions
    for path, res in ((n[0], [576, 768]), (o[0], [384, 512])):
        d = json.loads(open(path).read())
        d["resolution"] = res
        open(path, "w").write(json.dumps(d))
    with pytest.raises(ValueError, match=r"at \[576, 768\] .* at \[384, 512\]"):
        gate.gate("new", n, "old", o)
    record = gate.gate("new", n, "old", o, across_resolutions=True)
    assert record["ship"] and record["sets"][0]["new"]["resolution"] == [576, 768]
    assert record["sets"][1]["new"]["resolution"] is None
    # likewise scores refined with different iteration counts (a file without ``iters`` used the official 6)
    d = json.loads(open(n[1]).read())
    d["iters"] = 4
    open(n[1], "w").write(json.dumps(d))
    with pytest.raises(ValueError, match="4 times and .* 6 times"):
        gate.gate("new", n, "old", o, across_resolutions=True)
    record = gate.gate("new", n, "old", o, across_resolutions=True, across_iters=True)
    assert [s["new"]["iters"] for s in record["sets"]] == [6, 4] and record["sets"][1]["old"]["iters"] == 6


def test_bf16_check_measures_the_bf16_path_on_validation_clips(tmp_path):
    """train/bf16_check.py runs the predictor in float32 and bf16 on the config's validation clips and saves the
    pooled deviation with its verdict over the visible point-frames; identical track sets deviate by nothing."""
    from cotracker_fast.models.registry import SHIPPED_WEIGHTS

    check = _script_module("bf16_check")
    cfg_path = tmp_path / "cfg.json"
    cfg = json.loads(open(os.path.join(ROOT, "train", "configs", "ship_small_n.json")).read())
    cfg.update(num_frames=8, size_hw=[64, 96])
    cfg.pop("size_mix", None)
    cfg_path.write_text(json.dumps(cfg))
    out = tmp_path / "check.json"
    assert check.main([SHIPPED_WEIGHTS, "--config", str(cfg_path), "--num-videos", "1", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    row = saved["candidates"][0]
    assert row["candidate"] == SHIPPED_WEIGHTS and row["all_point_frames"]["point_frames"] == 8 * 64
    # the verdict's figures pool the point-frames the ground truth sees, fewer than all of them on this clip
    visible = check.validation_inputs(TrainConfig.from_json(str(cfg_path)), 1)[0][2]
    assert row["point_frames"] == int(visible.sum()) < 8 * 64
    assert 0 < row["mean_px"] <= row["p99_px"] <= row["max_px"]  # bf16 rounding moves the tracks, a little
    assert row["within_bound"] == check.within_bound(row) and saved["bound"]["p99_px"] == 1.0
    tracks, vis = torch.ones(1, 4, 2), torch.ones(1, 4, dtype=torch.bool)
    same = check.deviation(tracks, vis, tracks, vis)
    assert same["p99_px"] == 0 and same["visibility_agreement"] == 1
    with pytest.raises(SystemExit, match="not a file"):
        check.main([str(tmp_path / "missing.safetensors"), "--config", str(cfg_path)])


def _photo(path, seed):
    """A smooth random colour image (a stand-in photograph) saved at ``path``."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    small = torch.rand(3, 6, 8, generator=g)
    img = F.interpolate(small[None], size=(60, 80), mode="bilinear", align_corners=False)[0]
    Image.fromarray((img.permute(1, 2, 0) * 255).byte().numpy()).save(path)
    return str(path)


def test_photo_validation_scores_candidates_on_other_photographs(tmp_path, monkeypatch):
    """select_checkpoint --photo-dir scores candidates (and static, Lucas-Kanade) on clips of the validation
    photographs, and refuses a validation photograph that trains the model or measures it."""
    import shutil

    from safetensors.torch import save_file

    from cotracker_fast.demo_clip import ASSET_DIR, PHOTO_NAME
    from cotracker_fast.evaluation.datasets import read_photo_clips

    train_dir, val_dir = tmp_path / "train", tmp_path / "val"
    train_dir.mkdir()
    val_dir.mkdir()
    _photo(train_dir / "t.png", 0)
    val = [_photo(val_dir / "a.png", 1), _photo(val_dir / "b.png", 2)]
    clips = list(read_photo_clips(val, 2, num_frames=4, size_hw=(32, 48), seed=5))
    assert len(clips) == 2 and clips[0].video.shape == (4, 32, 48, 3)
    with pytest.raises(ValueError, match="at least one"):
        read_photo_clips([], 1)

    cfg = {**TINY, "photo_dir": str(train_dir), "out_dir": str(tmp_path / "run")}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    cand = str(tmp_path / "cand.safetensors")
    save_file(CoTracker(TrainConfig(**cfg).model_config()).state_dict(), cand)
    sel = _script_module("select_checkpoint")
    out = tmp_path / "scores.json"
    args = [cand, "--config", str(tmp_path / "cfg.json"), "--num-videos", "2", "--photo-dir", str(val_dir),
            "--size", "32", "48", "--num-frames", "8"]
    assert sel.main([*args, "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["photos"] == ["a.png", "b.png"] and res["clip"] == {"num_frames": 8, "size_hw": [32, 48]}
    for scores in (res["candidates"][0], res["static"], res["lucas_kanade"]):
        assert all(0.0 <= scores[k] <= 1.0 for k in sel.KEYS)
    assert res["best"] == cand
    # every clip's AJ is saved in clip order (what ship_gate's --min-lead-se pairs), here and on the config's clips
    out2 = tmp_path / "config_scores.json"
    assert sel.main([cand, "--config", str(tmp_path / "cfg.json"), "--num-videos", "2", "--out", str(out2)]) == 0
    for row in (res["candidates"][0], json.loads(out2.read_text())["candidates"][0]):
        per_clip = row["per_clip_average_jaccard"]
        assert len(per_clip) == 2 and sum(per_clip) / 2 == pytest.approx(row["average_jaccard"])

    # --resolution tracks the clips at another working resolution: at the clips' own size it is the default, and
    # the resolution is recorded; a size the model cannot take is refused with its name
    out3, out4 = tmp_path / "at_own_size.json", tmp_path / "at_double.json"
    base = [cand, "--config", str(tmp_path / "cfg.json"), "--num-videos", "2"]
    assert sel.main([*base, "--resolution", "32", "48", "--out", str(out3)]) == 0
    assert sel.main([*base, "--resolution", "64", "96", "--out", str(out4)]) == 0
    own, double = json.loads(out3.read_text()), json.loads(out4.read_text())
    default = json.loads(out2.read_text())
    assert own["resolution"] == [32, 48] and double["resolution"] == [64, 96] and default["resolution"] is None
    assert own["candidates"][0]["per_clip_average_jaccard"] == default["candidates"][0]["per_clip_average_jaccard"]
    import cotracker_fast.evaluation.run as run_module

    seen, evaluate = [], run_module.evaluate_sample
    monkeypatch.setattr(run_module, "evaluate_sample",
                        lambda *a, **k: seen.append(k["resolution"]) or evaluate(*a, **k))
    assert sel.main([*base, "--resolution", "64", "96"]) == 0 and seen == [(64, 96)] * 2
    with pytest.raises(SystemExit, match="--resolution must be two multiples of 8"):
        sel.main([*base, "--resolution", "30", "48"])
    # --iters refines every window that many times, on the config's clips and on the photo clips, and is recorded
    seen_iters = []
    monkeypatch.setattr(run_module, "evaluate_sample",
                        lambda *a, **k: seen_iters.append(k["iters"]) or evaluate(*a, **k))
    out5, out6 = tmp_path / "iters4.json", tmp_path / "photo_iters4.json"
    assert sel.main([*base, "--iters", "4", "--out", str(out5)]) == 0
    assert sel.main([*args, "--iters", "4", "--out", str(out6)]) == 0 and seen_iters == [4] * 4
    assert json.loads(out5.read_text())["iters"] == 4 and json.loads(out6.read_text())["iters"] == 4
    assert default["iters"] == 6
    with pytest.raises(SystemExit, match="--iters must be >= 1"):
        sel.main([*base, "--iters", "0"])

    shutil.copy(train_dir / "t.png", val_dir / "c.png")
    with pytest.raises(ValueError, match="is the training photo 't.png'"):
        sel.main(args)
    os.remove(val_dir / "c.png")
    # photographs of another training folder (--training-photo-dir) are refused too, and an empty folder is an error
    more_dir = tmp_path / "more"
    more_dir.mkdir()
    with pytest.raises(SystemExit, match="--training-photo-dir .* holds no"):
        sel.main([*args, "--training-photo-dir", str(more_dir)])
    shutil.copy(val_dir / "a.png", more_dir / "m.png")
    with pytest.raises(ValueError, match="is the training photo 'm.png'"):
        sel.main([*args, "--training-photo-dir", str(more_dir)])
    shutil.copy(ASSET_DIR / PHOTO_NAME, val_dir / "d.jpg")
    with pytest.raises(ValueError, match=f"is the evaluation photograph '{PHOTO_NAME}'"):
        sel.main(args)


def test_augment_scales_reports_drawn_and_kept_scales(tmp_path):
    """train/augment_scales.py renders a config's clips and reports the frame-0 scale of every augmentation drawn and
    of the clips kept; a larger track pool keeps more of the large scales; the augmentation is restored afterwards."""
    from cotracker_fast.data.augment import Augmentations

    tool = _script_module("augment_scales")
    spatial = Augmentations.spatial_params
    cfg = {**TINY, "size_hw": [48, 64], "augment": True, "num_points": 16,
           "synthetic_overrides": {"num_objects": [1, 1]},
           "augment_overrides": {"scale_range": [2.5, 3.0], "scale_clip": [0.2, 3.2], "pad_range": [0, 2],
                                 "crop_offset": 2, "crop_margin": 2, "eraser_size": [2, 8], "replace_size": [2, 8]}}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    small, large = tmp_path / "pool1.json", tmp_path / "pool16.json"
    assert tool.main([str(path), "--items", "6", "--pool-factor", "1", "--out", str(small)]) == 0
    assert tool.main([str(path), "--items", "6", "--pool-factor", "16", "--out", str(large)]) == 0
    assert Augmentations.spatial_params is spatial
    a, b = json.loads(small.read_text()), json.loads(large.read_text())
    assert a["pool_factor"] == 1 and b["pool_factor"] == 16 and a["scale_range"] == [2.5, 3.0]
    for r in (a, b):
        assert r["renders"] >= r["items"] - r["failed_items"] and 2.4 <= r["drawn_scale"]["mean"] <= 3.1
    assert b["failed_items"] == 0 and b["renders"] < a["renders"]  # the larger pool redraws less
    with pytest.raises(SystemExit, match="--items"):
        tool.main([str(path), "--items", "0"])


def test_precision_probe_measures_still_motion_and_errors_by_frame_gap(tmp_path):
    """train/precision_probe.py: a model whose update head is zero does not move a still video's points; errors are
    grouped by frames since the query and counted against the thresholds; the script writes its JSON."""
    import numpy as np
    from safetensors.torch import save_file

    from cotracker_fast.evaluation.datasets import read_photo_clips
    from cotracker_fast.models.registry import get_config

    probe = _script_module("precision_probe")
    val_dir = tmp_path / "val"
    val_dir.mkdir()
    photos = [_photo(val_dir / "a.png", 1), _photo(val_dir / "b.png", 2)]
    torch.manual_seed(0)
    model = CoTracker(get_config("cotracker_fast_small")).eval()
    with torch.no_grad():
        model.updateformer.flow_head.weight[:2].zero_()
        model.updateformer.flow_head.bias[:2].zero_()
    img = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
    moved = probe.still_video_motion(model, img, 8, (64, 96), iters=(1, 3))
    assert set(moved) == {1, 3} and all(d.shape == (8, 64) and np.all(d < 1e-4) for d in moved.values())

    sample = next(iter(read_photo_clips(photos, 1, num_frames=8, size_hw=(32, 48), seed=3)))
    exact = probe.summarise(probe.errors_by_gap(sample, sample.tracks.copy()))
    off = probe.summarise(probe.errors_by_gap(sample, sample.tracks + np.float32([3.0, 4.0])))  # 5 px everywhere
    assert exact["all"]["count"] == off["all"]["count"] > 0 and exact["8-16"]["count"] == 0  # 8 frames: no gap 8+
    assert exact["all"]["median_px"] == 0.0 and abs(off["all"]["median_px"] - 5.0) < 1e-5
    assert off["all"]["within_px_%"]["4"] == 0.0 and off["all"]["within_px_%"]["8"] == 100.0
    assert exact["8-16"]["median_px"] is None

    weights, out = str(tmp_path / "w.safetensors"), tmp_path / "probe.json"
    save_file(model.state_dict(), weights)
    assert probe.main([weights, "--photo-dir", str(val_dir), "--num-videos", "1", "--size", "32", "48",
                       "--num-frames", "8", "--resolution", "64", "96", "--still-iters", "1", "2",
                       "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["still"]["per_photo"]) == {"a.png", "b.png"} and set(res["still"]["by_iters"]) == {"1", "2"}
    assert res["still"]["by_iters"]["2"]["query_frame_median_px"] < 1e-4
    assert res["by_frame_gap"]["model"]["all"]["count"] == res["by_frame_gap"]["lucas_kanade"]["all"]["count"] > 0
    with pytest.raises(SystemExit, match="--num-videos and --still-iters must be >= 1"):
        probe.main([weights, "--photo-dir", str(val_dir), "--num-videos", "0"])


def test_grow_updateformer_keeps_the_tracks(tmp_path):
    """Appending identity blocks to the update transformer leaves the model's output unchanged, the grown file
    records its depths, and select_checkpoint builds the deeper model from that record."""
    from cotracker_fast.models.checkpoint import save_safetensors
    from cotracker_fast.models.cotracker import CoTracker

    grow, sel = _script_module("grow_updateformer"), _script_module("select_checkpoint")
    over = {**TINY["model_overrides"], "time_depth": 2, "space_depth": 2}
    cfg = TrainConfig(**{**TINY, "model_overrides": over})
    torch.manual_seed(0)
    model = CoTracker(cfg.model_config()).eval()
    with torch.no_grad():  # non-zero biases everywhere, so a block left non-identity would show
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    src, dst = str(tmp_path / "w.safetensors"), str(tmp_path / "deep.safetensors")
    save_safetensors(model.state_dict(), src, metadata={"model_name": cfg.model, "model_overrides": json.dumps(over)})
    assert grow.main([src, dst, "--time-depth", "4", "--space-depth", "4", "--dtype", "float32"]) == 0
    deep = sel.load_model(dst, cfg)  # cfg says 2 + 2 blocks; the file's metadata says 4 + 4
    assert (len(deep.updateformer.time_blocks), len(deep.updateformer.space_blocks)) == (4, 4)
    g = torch.Generator().manual_seed(1)
    video = torch.rand(1, 8, 3, 32, 48, generator=g) * 255
    queries = torch.cat([torch.randint(0, 4, (1, 5, 1), generator=g).float(),
                         torch.rand(1, 5, 2, generator=g) * torch.tensor([47.0, 31.0])], dim=-1)
    with torch.no_grad():
        a, b = model(video, queries, iters=3), deep.eval()(video, queries, iters=3)
    for x, y in zip(a[:2], b[:2]):
        torch.testing.assert_close(y, x, rtol=0, atol=1e-5)
    # the new blocks are not dead: their non-zero layers differ from zero, so training can move them
    assert deep.updateformer.time_blocks[3].attn.qkv.weight.abs().sum() > 0
    # the old order must stay the front of the new one: 2 + 2 (every time block followed by a space block) cannot
    # become 4 + 2 (every other one)
    with pytest.raises(SystemExit, match="not the front"):
        grow.main([src, str(tmp_path / "x.safetensors"), "--time-depth", "4", "--space-depth", "2"])
    with pytest.raises(SystemExit, match="only grow"):
        grow.main([src, str(tmp_path / "x.safetensors"), "--time-depth", "1", "--space-depth", "1"])


def test_occluded_flow_weight_reweights_the_flow_mean():
    """Weight 1 is the official mean; weight w counts each occluded point-frame w against a visible one's 1."""
    gt = torch.zeros(1, 2, 2, 2)
    pred = torch.tensor([[[[1.0, 1.0], [3.0, 3.0]], [[2.0, 2.0], [5.0, 5.0]]]])  # errors: (1, 3), (2, 5)
    vis = torch.tensor([[[True, False], [True, True]]])  # the entry with error 3 is occluded
    td = _td([0], [[pred]], [torch.zeros(1, 2, 2)], [torch.tensor([[0, 1]])], [torch.ones(1, 2, dtype=torch.bool)])
    official, _ = window_losses(td, gt, vis)
    assert official.item() == pytest.approx((1 + 3 + 2 + 5) / 4 / 2)
    same, _ = window_losses(td, gt, vis, LossConfig(occluded_flow_weight=1.0))
    assert same.item() == official.item()
    half, _ = window_losses(td, gt, vis, LossConfig(occluded_flow_weight=0.5))
    assert half.item() == pytest.approx((1 + 0.5 * 3 + 2 + 5) / 3.5 / 2)
    visible_only, _ = window_losses(td, gt, vis, LossConfig(occluded_flow_weight=0.0))
    assert visible_only.item() == pytest.approx((1 + 2 + 5) / 3 / 2)
    with pytest.raises(ValueError, match="occluded_flow_weight"):
        LossConfig(occluded_flow_weight=1.5)


def test_train_throughput_recipes_time_one_clip_size_each():
    """Each benchmark case times one clip size and model: the size-mixed recipes are split into their two sizes."""
    from benchmarks.train_throughput import RECIPES, recipe

    for name in RECIPES:
        cfg = recipe(name)
        assert cfg.size_mix == [] and cfg.num_workers == 0 and cfg.init_weights is None, name
    for small, large in (("current", "current_large"), ("deep", "deep_large")):
        assert recipe(small).size_hw == (192, 256) and recipe(large).size_hw == (384, 512)
        # the large case takes the augmentations its size_mix entry sizes for 384x512 (erased boxes to 100 px)
        assert recipe(large).augment_overrides["eraser_size"] == [8, 100]
        assert recipe(small).augment_overrides["eraser_size"] == [4, 50]
    for name in ("deep", "deep_large"):
        assert recipe(name).model_overrides == {"time_depth": 4, "space_depth": 4}
    assert "time_depth" not in recipe("current").model_overrides
    with pytest.raises(ValueError, match="recipe must be one of"):
        recipe("fastest")
