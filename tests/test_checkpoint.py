"""Checkpoint loading: official .pth layouts, safetensors, safety, and clear errors."""
import os
import pickle

import pytest
import torch

from cotracker_fast.models.checkpoint import CheckpointError, load_checkpoint, read_state_dict, save_safetensors
from cotracker_fast.models.registry import create_model


@pytest.fixture(scope="module")
def sd():
    torch.manual_seed(0)
    return create_model().state_dict()


def _same(a, b):
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_official_pth_layouts_round_trip(tmp_path, sd):
    flat = tmp_path / "cotracker_stride_4_wind_8.pth"
    torch.save(sd, flat)
    nested = tmp_path / "train_ckpt.pth"
    torch.save({"model": sd, "optimizer": {"lr": 1.0}, "total_steps": 7}, nested)
    ddp = tmp_path / "ddp.pth"
    torch.save({"module." + k: v for k, v in sd.items()}, ddp)
    for path in (flat, nested, ddp):
        _same(read_state_dict(str(path)), sd)
        m = load_checkpoint(create_model(), str(path))
        _same(m.state_dict(), sd)


def test_safetensors_round_trip_and_atomic_write(tmp_path, sd, monkeypatch):
    path = tmp_path / "cotracker_stride_4_wind_8.safetensors"
    save_safetensors(sd, str(path), metadata={"model_name": "cotracker_stride_4_wind_8"})
    _same(read_state_dict(str(path)), sd)
    # a failed write leaves neither the destination nor a temporary file behind
    import safetensors.torch as st

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(st, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_safetensors(sd, str(tmp_path / "other.safetensors"))
    assert sorted(os.listdir(tmp_path)) == ["cotracker_stride_4_wind_8.safetensors"]


def test_predictor_loads_checkpoints(tmp_path, sd):
    from cotracker_fast.predictor import CoTrackerPredictor

    path = tmp_path / "cotracker_stride_8_wind_16.safetensors"
    save_safetensors(sd, str(path))
    p = CoTrackerPredictor(str(path))  # the variant comes from the file name, as in the official builder
    assert p.model.stride == 8 and p.model.window_len == 16
    _same(p.model.state_dict(), sd)
    other = tmp_path / "my_weights.safetensors"
    save_safetensors(sd, str(other))
    p = CoTrackerPredictor(str(other), model_name="cotracker_stride_4_wind_12")
    assert p.model.window_len == 12


def test_build_cotracker_like_the_official_builder(tmp_path, sd):
    from cotracker_fast import build_cotracker

    path = tmp_path / "cotracker_stride_4_wind_12.pth"
    torch.save(sd, path)
    model = build_cotracker(str(path))
    assert model.window_len == 12 and model.stride == 4
    _same(model.state_dict(), sd)
    assert build_cotracker(None).window_len == 8


def test_wrong_keys_and_shapes_are_listed(tmp_path, sd):
    bad = dict(sd)
    bad.pop("norm.weight")
    bad["extra.weight"] = torch.zeros(3)
    bad["vis_predictor.0.weight"] = torch.zeros(2, 128)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(create_model(), str(path))
    msg = str(info.value)
    assert "bad.pth" in msg and "missing (1): ['norm.weight']" in msg and "unexpected (1): ['extra.weight']" in msg
    assert "vis_predictor.0.weight: checkpoint (2, 128) vs model (1, 128)" in msg


def test_corrupt_truncated_and_unsafe_files(tmp_path, sd):
    good = tmp_path / "good.pth"
    torch.save(sd, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(4096))
    for path in (truncated, garbage):
        with pytest.raises(CheckpointError, match="could not be read"):
            read_state_dict(str(path))
    # a pickle that would run code: refused by weights_only=True, never executed
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"model": Evil()}, f)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_state_dict(str(evil))
    assert not marker.exists()
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="safetensors"):
        read_state_dict(str(bad_st))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_state_dict(str(tmp_path / "nope.pth"))
    lst = tmp_path / "list.pth"
    torch.save([1, 2], lst)
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_state_dict(str(lst))


def test_files_recording_model_overrides_load_as_that_model(tmp_path):
    """A weights file whose metadata records ``model_overrides`` (an export of a config that changed the
    architecture) loads in the predictor and in build_cotracker as that model; a malformed record is an error."""
    import json

    from cotracker_fast.models.registry import build_cotracker, model_overrides_from_checkpoint
    from cotracker_fast.predictor import CoTrackerPredictor

    over = {"hidden_size": 32, "num_heads": 2, "time_depth": 2, "space_depth": 1, "latent_dim": 34,
            "corr_levels": 2, "corr_radius": 1, "flow_embed_dim": 8, "model_resolution": [32, 48]}
    torch.manual_seed(0)
    sd = create_model("cotracker_stride_4_wind_8", overrides=over).state_dict()
    path = tmp_path / "mine.safetensors"
    save_safetensors(sd, str(path), metadata={"model_name": "cotracker_stride_4_wind_8",
                                               "model_overrides": json.dumps(over)})
    assert model_overrides_from_checkpoint(str(path)) == over
    p = CoTrackerPredictor(str(path))
    assert len(p.model.updateformer.time_blocks) == 2 and tuple(p.model.config.model_resolution) == (32, 48)
    _same(p.model.state_dict(), sd)
    _same(build_cotracker(str(path)).state_dict(), sd)
    tracks, vis = p(torch.rand(1, 8, 3, 40, 56) * 255, queries=torch.tensor([[[0.0, 10.0, 12.0]]]))
    assert tracks.shape == (1, 8, 1, 2) and vis.shape == (1, 8, 1)
    # without the record, the registered variant's shape does not fit these weights
    plain = tmp_path / "plain.safetensors"
    save_safetensors(sd, str(plain), metadata={"model_name": "cotracker_stride_4_wind_8"})
    assert model_overrides_from_checkpoint(str(plain)) == {}
    with pytest.raises(Exception):
        CoTrackerPredictor(str(plain))
    bad = tmp_path / "bad.safetensors"
    save_safetensors(sd, str(bad), metadata={"model_name": "cotracker_stride_4_wind_8", "model_overrides": "[1]"})
    with pytest.raises(ValueError, match="model_overrides must be a JSON object"):
        CoTrackerPredictor(str(bad))
    typo = tmp_path / "typo.safetensors"
    save_safetensors(sd, str(typo), metadata={"model_name": "cotracker_stride_4_wind_8",
                                              "model_overrides": json.dumps({"depth": 3})})
    with pytest.raises(ValueError, match="unknown CoTrackerConfig fields"):
        CoTrackerPredictor(str(typo))
