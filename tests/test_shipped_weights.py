"""The weights shipped inside the package: format, size, loading as the default, and that they track."""
import os
import warnings

import numpy as np
import pytest
import torch

from cotracker_fast import CoTrackerPredictor
from cotracker_fast.models.registry import SHIPPED_MODEL, SHIPPED_WEIGHTS, create_model
from cotracker_fast.predictor import OFFICIAL_DEFAULT_CHECKPOINT, build_model, is_untrained


def test_file_is_fp16_safetensors_under_25_mb():
    from safetensors import safe_open

    assert os.path.getsize(SHIPPED_WEIGHTS) < 25 * 2**20
    with safe_open(SHIPPED_WEIGHTS, "pt") as f:
        assert f.metadata()["model_name"] == SHIPPED_MODEL
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
        keys = set(f.keys())
    assert dtypes == {torch.float16}
    assert keys == set(create_model(SHIPPED_MODEL).state_dict())


def test_default_predictor_uses_the_shipped_weights():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "RANDOM weights" warning
        p = CoTrackerPredictor(checkpoint=None)
    assert p.model_name == SHIPPED_MODEL and p.interp_shape == (96, 128)
    ref = create_model(SHIPPED_MODEL).state_dict()
    sd = p.model.state_dict()
    assert all(sd[k].dtype == torch.float32 for k in sd)  # fp16 on disk, fp32 in the model
    assert not torch.equal(sd["vis_predictor.0.weight"], ref["vis_predictor.0.weight"])  # not a fresh init
    assert not is_untrained(None, None) and is_untrained(None, "cotracker_stride_4_wind_8")


def test_missing_official_default_falls_back_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the official relative default path does not exist here
    with pytest.warns(UserWarning, match="does not exist here: using the weights shipped"):
        model, name = build_model(OFFICIAL_DEFAULT_CHECKPOINT, None, None)
    assert name == SHIPPED_MODEL


def test_shipped_weights_improved_on_their_training_objective():
    """What the shipped CPU training achieved (docs/ACCURACY.md): on clips it never saw, its flow loss (the training
    objective: iteration-weighted L1 over every frame) is below that of its starting point, the zero-initialised
    coordinate head that leaves every point at its query. Measured on 8 held-out clips: 0.263 against 0.329 (lower
    on 7 of them, ratio 0.80); the test asks for a ratio below 0.9. It does NOT beat the static baseline on the TAP-Vid
    thresholds (docs/ACCURACY.md says so), so this is the claim the test holds."""
    from cotracker_fast.data.clip import collate_clips
    from cotracker_fast.training.trainer import TrainConfig, build_dataset, init_model, train_step_loss

    cfg = TrainConfig.from_json(os.path.join(os.path.dirname(__file__), "..", "train", "configs",
                                             "ship_small_cpu.json"))
    clips = build_dataset(cfg, seed=999, augment=False)  # item seeds disjoint from training's (seed 0)
    torch.manual_seed(cfg.seed)
    start = init_model(cfg).eval()
    shipped, _ = build_model(None, None, None)
    ours, base = [], []
    with torch.no_grad():
        for i in range(8):
            batch = collate_clips([clips[i]])
            ours.append(float(train_step_loss(shipped, batch, cfg)[1]["flow_loss"]))
            base.append(float(train_step_loss(start, batch, cfg)[1]["flow_loss"]))
    assert np.mean(ours) < 0.9 * np.mean(base), (ours, base)
