"""Unrolled sliding-window training of CoTracker on one device or many (``torchrun``).

The recipe is the official one: the model runs every window of a clip with ``train_iters`` refinement
iterations; the losses of :mod:`cotracker_fast.training.losses` are summed over windows; AdamW, a linear one-cycle
schedule over ``num_steps + 100`` steps with 5% warm-up, gradient clipping at norm 10. On a GPU the forward runs
under bf16 autocast (``amp="auto"``); ``compile=True`` compiles the UpdateFormer with ``torch.compile``.

Data are deterministic per step: the items of step ``s`` on rank ``r`` of ``W`` are dataset indices
``(s W + r) B .. (s W + r) B + B - 1``, and every item is generated from its index alone. So a resumed run sees
exactly the batches the interrupted one would have, and ``W`` processes with ``B`` samples each see the same items as
one process with ``W B`` samples (their averaged gradients are that process's gradient).

Checkpoints (``<out_dir>/last.pt``, and ``step_<n>.pt`` every ``keep_every`` steps) hold the model, optimiser,
scheduler, step and RNG states and the config; they are written atomically and read with ``weights_only=True``.
Logs: ``<out_dir>/metrics.jsonl`` (one JSON object per logged step) and TensorBoard event files when the
``tensorboard`` package is installed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader

from ..distributed import dist_info, distributed_session
from ..io import atomic_output
from ..models.config import CoTrackerConfig
from ..models.cotracker import CoTracker
from ..models.registry import MODEL_CONFIGS, config_with_overrides
from ..precision import resolve_dtype
from .data import StepSampler, build_dataset, check_training_photos, photo_files
from .losses import LossConfig, total_loss, window_losses


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved in every checkpoint; JSON-serialisable).

    Attributes:
        model: a registered variant (:func:`cotracker_fast.models.registry.list_models`).
        model_overrides: :class:`CoTrackerConfig` fields changed from the variant's (e.g. a smaller transformer).
        data: ``"synthetic"`` (:class:`cotracker_fast.data.synthetic.SyntheticTracks`) or ``"kubric"``
            (:class:`cotracker_fast.data.kubric.KubricMovifDataset`, needs ``data_root``).
        num_frames / size_hw / num_points: clip length, frame size (H, W) in pixels, tracks per clip.
        size_mix: other clip sizes drawn within the run, each ``{"size_hw": [H, W], "fraction": f,
            "augment_overrides": {...}}`` (``augment_overrides`` replaces the run's for that size; omitted, the run's
            apply). Each step draws one size for all its clips, deterministically from ``(seed, step)``: size ``k``
            with probability ``fraction_k``, ``size_hw`` with what is left. Validation uses ``size_hw``. Mixing
            keeps the model trained at every size the predictors meet, where alternating stages forget one.
        augment: the paper's augmentations (:mod:`cotracker_fast.data.augment`).
        augment_overrides: :class:`~cotracker_fast.data.augment.Augmentations` fields changed from the paper's
            values, which are sized for 384x512 crops (erased boxes up to 100 px, crops jittered by 15 px per
            frame): small crops need them scaled down. A ``scale_range`` above 1 enlarges (and so blurs) the
            rendered clip before the crop, as when a small video is tracked at the model's larger working
            resolution.
        synthetic_overrides: :class:`~cotracker_fast.data.synthetic.SyntheticConfig` fields changed from its
            defaults for ``data="synthetic"`` (e.g. ``camera_motion_probability``, ``object_travel``); the clip
            length, size, point count and textures always come from this config.
        pool_factor: with ``data="synthetic"`` and ``augment``, each clip is rendered with ``pool_factor *
            num_points`` tracks and ``num_points`` of those visible after the augmentation are kept; a clip with too
            few is rendered and augmented again (up to 8 times, then an error). A crop of a clip enlarged ``s`` times
            holds about ``1 / s^2`` of its tracks, so a ``scale_range`` reaching far above 1 needs a larger pool, or
            the large scales are often redrawn and the clips seen are enlarged less than the range says.
        photo_dir: a folder of photographs (``.jpg``/``.png``) that synthetic layers may be textured with, besides
            the procedural textures (None: procedural only).
        batch_size: clips per process and step.
        num_steps: optimiser steps of the whole run (the schedule's length).
        lr / weight_decay / grad_clip / train_iters: the official 5e-4, 1e-5, 10 and 4.
        gamma / vis_weight / official_vis_quirk / occluded_flow_weight: the loss
            (:class:`~cotracker_fast.training.losses.LossConfig`); ``occluded_flow_weight`` below the official 1
            weighs occluded point-frames less than visible ones in the flow loss.
        amp: ``"auto"`` (bf16 autocast on CUDA, none on CPU), ``"bf16"`` or ``"none"``. On a CPU without native
            bf16 arithmetic ``"bf16"`` runs float32 with a warning, as the predictors do
            (:func:`cotracker_fast.precision.resolve_dtype`): emulated bf16 runs far slower than float32 there.
        compile: ``torch.compile`` the UpdateFormer.
        save_every / keep_every / log_every / eval_every: in steps (0 disables).
        eval_videos: validation clips scored every ``eval_every`` steps (:func:`validate`: the training clips'
            distribution, seeds disjoint from training); the best by average Jaccard is kept as ``best.pt``.
        max_steps_this_run: stop (after saving) once this many steps ran in this process; for time-boxed jobs.
        max_time_s: stop (after saving) once this much wall time passed in this process.
        init_weights: start the model from these weights (a ``.safetensors`` or ``.pth`` state dict of the same
            variant, e.g. the fp16 export of an earlier run) instead of a fresh initialisation; the optimiser and
            schedule start fresh. Ignored when the run resumes from its own ``last.pt``.
        zero_init_coord_head: start the coordinate rows of the UpdateFormer's output head at zero, so the untrained
            model predicts "every point stays at its query" and training starts from that baseline (not in the
            official recipe; it speeds up short runs such as the shipped CPU-trained weights).
        optimizer: ``"adamw"`` (official) or ``"sgd"`` (plain SGD with the same schedule: its update is linear in
            the gradient, which makes distributed runs comparable entry by entry in tests).
    """

    model: str = "cotracker_stride_4_wind_8"
    model_overrides: Dict[str, Any] = field(default_factory=dict)
    data: str = "synthetic"
    data_root: Optional[str] = None
    num_frames: int = 24
    size_hw: Tuple[int, int] = (384, 512)
    size_mix: List[Dict[str, Any]] = field(default_factory=list)
    num_points: int = 256
    augment: bool = True
    augment_overrides: Dict[str, Any] = field(default_factory=dict)
    synthetic_overrides: Dict[str, Any] = field(default_factory=dict)
    pool_factor: int = 2
    photo_dir: Optional[str] = None
    batch_size: int = 1
    num_workers: int = 2
    num_steps: int = 50_000
    lr: float = 5e-4
    weight_decay: float = 1e-5
    grad_clip: float = 10.0
    train_iters: int = 4
    gamma: float = 0.8
    vis_weight: float = 10.0
    official_vis_quirk: bool = True
    occluded_flow_weight: float = 1.0
    amp: str = "auto"
    compile: bool = False
    backend: Optional[str] = None
    seed: int = 0
    out_dir: str = "runs/cotracker"
    save_every: int = 200
    keep_every: int = 0
    log_every: int = 10
    eval_every: int = 0
    eval_videos: int = 4
    max_steps_this_run: Optional[int] = None
    max_time_s: Optional[float] = None
    init_weights: Optional[str] = None
    zero_init_coord_head: bool = False
    optimizer: str = "adamw"

    def __post_init__(self):
        self.size_hw = tuple(int(v) for v in self.size_hw)
        self.augmentations()  # validates the overrides
        self._check_size_mix()
        self._check_synthetic_overrides()
        if self.photo_dir is not None:
            self.photo_dir = os.path.expanduser(self.photo_dir)
        if self.photo_dir is not None and not photo_files(self.photo_dir):
            raise ValueError(f"photo_dir {self.photo_dir!r} holds no .jpg/.jpeg/.png file")
        if self.model not in MODEL_CONFIGS:
            raise ValueError(f"model must be one of {sorted(MODEL_CONFIGS)}, got {self.model!r}")
        if self.data not in ("synthetic", "kubric"):
            raise ValueError(f"data must be 'synthetic' or 'kubric', got {self.data!r}")
        if self.data == "kubric" and not self.data_root:
            raise ValueError("data='kubric' needs data_root (the folder of MOVi-f sequences)")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.amp not in ("auto", "bf16", "none"):
            raise ValueError(f"amp must be 'auto', 'bf16' or 'none' (fp16 would need loss scaling), got {self.amp!r}")
        for name in ("batch_size", "num_steps", "train_iters", "num_frames", "num_points", "pool_factor"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self.model_config()  # validates the overrides

    def model_config(self) -> CoTrackerConfig:
        """The variant's config with :attr:`model_overrides` applied."""
        return config_with_overrides(self.model, self.model_overrides)

    def _check_synthetic_overrides(self) -> None:
        from ..data.synthetic import SyntheticConfig

        reserved = {"num_frames", "size_hw", "num_points", "textures", "photo_paths"}
        known = {f.name for f in dataclasses.fields(SyntheticConfig)} - reserved
        bad = sorted(set(self.synthetic_overrides) - known)
        if bad:
            raise ValueError(f"synthetic_overrides has unknown or reserved fields {bad}; allowed: {sorted(known)}")
        over = dict(self.synthetic_overrides)
        if over.get("photo_share") is not None:
            if not self.photo_dir:
                raise ValueError("synthetic_overrides['photo_share'] needs photo_dir (the photographs to draw)")
            over.update(textures=SyntheticConfig.textures + ("photo",), photo_paths=(self.photo_dir,))
        SyntheticConfig(**over)  # validates the values (ValueError names the field)

    def _check_size_mix(self) -> None:
        total = 0.0
        for k, entry in enumerate(self.size_mix):
            if not isinstance(entry, dict) or set(entry) - {"size_hw", "fraction", "augment_overrides"} \
                    or not {"size_hw", "fraction"} <= set(entry):
                raise ValueError(f"size_mix[{k}] must be a dict with keys 'size_hw', 'fraction' and optionally "
                                 f"'augment_overrides', got {entry!r}")
            hw = entry["size_hw"]
            if not isinstance(hw, (list, tuple)) or len(hw) != 2 \
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 16 for v in hw):
                raise ValueError(f"size_mix[{k}]['size_hw'] must be [H, W], integers >= 16, got {hw!r}")
            frac = float(entry["fraction"])
            if not 0.0 < frac < 1.0:
                raise ValueError(f"size_mix[{k}]['fraction'] must be in (0, 1), got {frac}")
            total += frac
            self.augmentations(k)  # validates that size's overrides
        if total >= 1.0:
            raise ValueError(f"size_mix fractions must sum to less than 1 (size_hw takes the rest), got {total}")

    def sizes(self) -> List[Tuple[Tuple[int, int], float]]:
        """``[(size_hw, fraction), ...]`` of every clip size of the run: ``size_hw`` first, then :attr:`size_mix`."""
        mix = [(tuple(int(v) for v in e["size_hw"]), float(e["fraction"])) for e in self.size_mix]
        return [(self.size_hw, 1.0 - sum(f for _, f in mix)), *mix]

    def augmentations(self, mix_index: Optional[int] = None):
        """The :class:`~cotracker_fast.data.augment.Augmentations` of this run (crop to ``size_hw``, with
        :attr:`augment_overrides`; JSON lists become tuples), or of ``size_mix[mix_index]``."""
        from ..data.augment import Augmentations

        size, overrides = self.size_hw, self.augment_overrides
        if mix_index is not None:
            entry = self.size_mix[mix_index]
            size = tuple(int(v) for v in entry["size_hw"])
            overrides = entry.get("augment_overrides", overrides)
        over = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        bad = set(over) - {f.name for f in dataclasses.fields(Augmentations)} | ({"crop_size"} & set(over))
        if bad:
            raise ValueError(f"augment_overrides has unknown (or fixed) Augmentations fields {sorted(bad)}")
        return Augmentations(crop_size=size, **over)

    def loss_config(self) -> LossConfig:
        return LossConfig(self.gamma, self.vis_weight, self.official_vis_quirk, self.occluded_flow_weight)

    @classmethod
    def from_json(cls, path: str, **overrides: Any) -> "TrainConfig":
        """Read a JSON object of fields (unknown keys are an error), then apply ``overrides``.

        The optional key ``"extends"`` names another config file (relative to this file's folder) whose fields this
        one starts from; every other key of this file then replaces the base's value of that field whole (a nested
        object such as ``size_mix`` is replaced, not merged). Bases may extend bases; a cycle is an error.
        """
        data = _read_config_json(path, ())
        data.update(overrides)
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown TrainConfig fields {sorted(unknown)}")
        return cls(**data)


# ------------------------------------------------------------------------------------------------ helpers


def _read_config_json(path: str, chain: Tuple[str, ...]) -> Dict[str, Any]:
    """The fields of the config file ``path`` with its ``"extends"`` chain resolved (see
    :meth:`TrainConfig.from_json`); ``chain`` holds the real paths of the files that extend this one."""
    real = os.path.realpath(path)
    if real in chain:
        raise ValueError(f"{path}: 'extends' makes a cycle: {' -> '.join(chain + (real,))}")
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a JSON object of TrainConfig fields, got {type(data).__name__}")
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ValueError(f"{path}: 'extends' must be the path of another config file, got {base!r}")
    base_path = os.path.join(os.path.dirname(path), base)
    if not os.path.isfile(base_path):
        raise ValueError(f"{path}: 'extends' names {base!r}, but {base_path} is not a file")
    return {**_read_config_json(base_path, chain + (real,)), **data}


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig):
    """AdamW (or SGD, see :attr:`TrainConfig.optimizer`) and the official one-cycle schedule (linear, 5% warm-up,
    ``num_steps + 100`` steps)."""
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, eps=1e-8)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.num_steps + 100, pct_start=0.05, cycle_momentum=False,
        anneal_strategy="linear",
    )
    return opt, sched


def _autocast(cfg: TrainConfig, device: torch.device):
    mode = cfg.amp if cfg.amp != "auto" else ("bf16" if device.type == "cuda" else "none")
    if mode == "none" or resolve_dtype(torch.bfloat16, device) != torch.bfloat16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def train_step_loss(model: torch.nn.Module, batch, cfg: TrainConfig) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Forward one batch through every window and return ``(loss, parts)``: ``parts`` holds the detached scalar
    tensors ``loss``, ``flow_loss`` and ``vis_loss`` (left on the device: the loop reads them once per step)."""
    _, _, _, td = model(batch.video, batch.queries, iters=cfg.train_iters, is_train=True)
    lc = cfg.loss_config()
    flow, vis = window_losses(td, batch.tracks, batch.visible, lc)
    loss = total_loss(flow, vis, lc)
    return loss, {"loss": loss.detach(), "flow_loss": flow.detach(), "vis_loss": vis.detach()}


def checkpoint_state(model, opt, sched, step: int, cfg: TrainConfig) -> Dict[str, Any]:
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
        "config": json.dumps(dataclasses.asdict(cfg)),
        "rng_cpu": torch.get_rng_state(),
        "world_size": dist_info()[1],
    }
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(path: str, state: Dict[str, Any]) -> None:
    """Atomic ``torch.save`` (a crash mid-write leaves the previous file intact)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint_state(path: str) -> Dict[str, Any]:
    """Read a training checkpoint safely (``weights_only=True``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


#: Fields that may differ between a run and its resumption (they do not change the maths or the data).
RUN_CONTROL_FIELDS = frozenset(
    {"out_dir", "save_every", "keep_every", "log_every", "eval_every", "eval_videos", "max_steps_this_run",
     "max_time_s", "num_workers", "compile", "backend"}
)


def _truncate_log(path: str, step: int) -> None:
    """Drop the log lines of steps after ``step`` (a resumed run logs them again)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        keep = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            f.writelines(keep)


def _best_validation_aj(out_dir: str, step: int) -> float:
    """The best validation AJ logged at or before ``step`` (``-inf`` if none), so that a resumed run's
    ``best.pt`` is only replaced by a better checkpoint."""
    path = os.path.join(out_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return -math.inf
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    vals = [r["val/average_jaccard"] for r in rows if "val/average_jaccard" in r and r["step"] <= step]
    return max(vals, default=-math.inf)


class _Logger:
    def __init__(self, out_dir: str, enabled: bool):
        self.enabled = enabled
        self.path = os.path.join(out_dir, "metrics.jsonl")
        self.tb = None
        if enabled:
            os.makedirs(out_dir, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(out_dir, "tb"))
            except ImportError:
                warnings.warn("tensorboard is not installed: logging to metrics.jsonl only", stacklevel=2)

    def log(self, step: int, values: Dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


#: Seed of the validation clips. Training items come from ``cfg.seed`` through another seed stream, and the
#: held-out synthetic set of ``train/evaluate_heldout.py`` uses seed 0 of the evaluation stream: all disjoint.
VALIDATION_SEED = 10_000_019


def validation_config(cfg: TrainConfig):
    """The :class:`~cotracker_fast.data.synthetic.SyntheticConfig` of the validation clips: the training clips'
    distribution (``synthetic_overrides``, the same texture kinds and photographs; no augmentation) at
    ``cfg.size_hw`` and ``cfg.num_frames``, with 64 tracks queried at their first visible frame. For
    ``data="kubric"`` runs, the default evaluation look."""
    from ..data.synthetic import SyntheticConfig
    from ..data.synthetic_eval import EVAL_CONFIG

    base = {"num_frames": cfg.num_frames, "size_hw": cfg.size_hw, "num_points": 64, "random_query_fraction": 0.0}
    if cfg.data != "synthetic":
        return dataclasses.replace(EVAL_CONFIG, **base)
    photos = photo_files(cfg.photo_dir) if cfg.photo_dir else ()
    check_training_photos(photos)
    textures = SyntheticConfig.textures + (("photo",) if photos else ())
    return SyntheticConfig(**{**cfg.synthetic_overrides, **base, "textures": textures, "photo_paths": photos})


@torch.no_grad()
def validation_clip_scores(model: CoTracker, cfg: TrainConfig, device: torch.device, num_videos: int,
                           iters: int = 6, resolution: Optional[Tuple[int, int]] = None) -> List[Dict[str, float]]:
    """TAP-Vid metrics of each of ``num_videos`` validation clips (:func:`validation_config`, seed
    :data:`VALIDATION_SEED`), one dict per clip in clip order: multi-point protocol, "query first", ``iters``
    refinement iterations (the predictors' 6 unless a diagnostic asks otherwise). The clips are tracked at
    ``resolution`` ``(H, W)`` pixels (default: their own size, ``cfg.size_hw``); the metrics are computed in the
    TAP-Vid 256x256 space either way, so scores at different resolutions compare.

    This is the set a run's checkpoints are chosen by; the held-out sets and the demo clip never are."""
    from ..evaluation.datasets import read_synthetic
    from ..evaluation.run import evaluate_sample

    was_training = model.training
    model.eval()
    clips = read_synthetic(num_videos, num_frames=cfg.num_frames, size_hw=cfg.size_hw, seed=VALIDATION_SEED,
                           config=validation_config(cfg))
    scores = [
        evaluate_sample(model, s, "synthetic", single_point=False, iters=iters, resolution=resolution or cfg.size_hw,
                        device=device)
        for s in clips
    ]
    model.train(was_training)
    return scores


def validate(model: CoTracker, cfg: TrainConfig, device: torch.device, num_videos: int) -> Dict[str, float]:
    """The average over clips of :func:`validation_clip_scores`, keys ``"val/<metric>"``."""
    from ..evaluation.metrics import average_metrics

    scores = validation_clip_scores(model, cfg, device, num_videos)
    return {f"val/{k}": float(v) for k, v in average_metrics(scores).items()}


# ------------------------------------------------------------------------------------------------ main loop


def init_model(cfg: TrainConfig) -> CoTracker:
    """The model a run starts from: :attr:`TrainConfig.init_weights` when given, else a fresh initialisation (seeded
    by the caller) with :attr:`TrainConfig.zero_init_coord_head`."""
    model = CoTracker(cfg.model_config(), backend=cfg.backend)
    if cfg.init_weights:
        from ..models.checkpoint import read_state_dict

        sd = read_state_dict(cfg.init_weights)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})  # strict
        return model
    if cfg.zero_init_coord_head:
        with torch.no_grad():
            model.updateformer.flow_head.weight[:2].zero_()
            model.updateformer.flow_head.bias[:2].zero_()
    return model


def train(cfg: TrainConfig, *, device: Optional[str] = None, resume: bool = True) -> Dict[str, Any]:
    """Run (or resume) training. Returns ``{"step", "losses" (this run's logged losses), "out_dir"}``.

    Under ``torchrun`` every process calls this; rank 0 writes logs and checkpoints.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with distributed_session(device) as (rank, world, local_rank):
        return _train(cfg, device, resume, rank, world, local_rank)


def _train(cfg: TrainConfig, device: str, resume: bool, rank: int, world: int, local_rank: int) -> Dict[str, Any]:
    dev = torch.device(f"cuda:{local_rank}" if device.startswith("cuda") else device)  # one GPU per rank
    torch.manual_seed(cfg.seed)
    model = init_model(cfg).to(dev).train()
    opt, sched = build_optimizer(model, cfg)
    step = 0
    last = os.path.join(cfg.out_dir, "last.pt")
    if resume and os.path.exists(last):
        state = load_checkpoint_state(last)
        saved = {**json.loads(state["config"]), "world_size": state.get("world_size", world)}
        mine_all = {**json.loads(json.dumps(dataclasses.asdict(cfg))), "world_size": world}
        for k, mine in mine_all.items():
            if k not in RUN_CONTROL_FIELDS and k in saved and mine != saved[k]:
                raise ValueError(f"cannot resume {last}: its {k} is {saved[k]!r}, this run's is {mine!r}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        if rank == 0:
            _truncate_log(os.path.join(cfg.out_dir, "metrics.jsonl"), step)  # steps after the save ran again
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
    if cfg.compile:
        model.updateformer.compile(dynamic=True)  # in place: the state-dict keys stay the same
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    from ..data.clip import collate_clips

    loader = DataLoader(
        build_dataset(cfg, group=cfg.batch_size * world),
        batch_size=cfg.batch_size,
        sampler=StepSampler(step, cfg.num_steps, cfg.batch_size, rank, world),
        num_workers=cfg.num_workers,
        collate_fn=collate_clips,
        pin_memory=dev.type == "cuda",
        persistent_workers=False,
    )
    logger = _Logger(cfg.out_dir, rank == 0)
    t_start = time.time()
    ran = 0
    losses: List[float] = []
    best_aj = _best_validation_aj(cfg.out_dir, step) if rank == 0 else -math.inf
    pbar = None
    if rank == 0:
        from tqdm import tqdm

        pbar = tqdm(total=cfg.num_steps, initial=step, desc="train", unit="step", disable=None)

    def save(path: str) -> None:
        if rank == 0:
            save_checkpoint(path, checkpoint_state(model, opt, sched, step, cfg))

    for batch in loader:
        if batch.valid is not None and not bool(batch.valid.all()):
            raise ValueError("a batch holds clips flagged invalid (too few tracks): use the dataset's retry mode")
        batch = batch.to(dev)
        with _autocast(cfg, dev):
            loss, parts = train_step_loss(net, batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        # The step's one host-device sync: the losses (averaged over ranks: the loss of the combined batch) and the
        # gradient norm (the same on every rank, DDP averaged the gradients) come back together.
        vals = torch.stack([parts["loss"], parts["flow_loss"], parts["vis_loss"], grad_norm]).double()
        if world > 1:
            vals = vals.to(dev if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(vals)
            vals = vals / world
        loss_v, flow_v, vis_v, norm_v = vals.tolist()
        if not math.isfinite(norm_v):
            raise FloatingPointError(f"gradient norm is {norm_v} at step {step + 1}; nothing was saved")
        opt.step()
        sched.step()
        step += 1
        ran += 1
        logs = {"loss": loss_v, "flow_loss": flow_v, "vis_loss": vis_v}
        if not math.isfinite(loss_v):
            raise FloatingPointError(f"loss is {loss_v} at step {step}")
        losses.append(logs["loss"])
        if pbar is not None:
            pbar.update(1)
            pbar.set_postfix(loss=f"{logs['loss']:.3f}")
        if cfg.log_every and step % cfg.log_every == 0:
            logger.log(step, {**logs, "grad_norm": norm_v, "lr": sched.get_last_lr()[0],
                              "time_s": time.time() - t_start})
        if cfg.eval_every and step % cfg.eval_every == 0 and rank == 0:
            val = validate(model, cfg, dev, cfg.eval_videos)
            logger.log(step, val)
            if val["val/average_jaccard"] > best_aj:  # the run's best checkpoint by validation AJ
                best_aj = val["val/average_jaccard"]
                save(os.path.join(cfg.out_dir, "best.pt"))
        stop = (cfg.max_steps_this_run is not None and ran >= cfg.max_steps_this_run) or (
            cfg.max_time_s is not None and time.time() - t_start >= cfg.max_time_s
        )
        if world > 1:  # every rank stops at the same step
            flag = torch.tensor([float(stop)], device=dev if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if (cfg.save_every and step % cfg.save_every == 0) or stop or step == cfg.num_steps:
            save(last)
        if cfg.keep_every and step % cfg.keep_every == 0:
            save(os.path.join(cfg.out_dir, f"step_{step:07d}.pt"))
        if stop:
            break
    if pbar is not None:
        pbar.close()
    logger.close()
    return {"step": step, "losses": losses, "out_dir": cfg.out_dir}
