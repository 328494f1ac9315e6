"""Evaluation runner: a dataset, a checkpoint and a protocol in; per-video and average metrics (JSON + markdown) out.

Launched as ``cotracker-fast evaluate ...`` or, to shard the videos across processes,
``torchrun --nproc_per_node K -m cotracker_fast.cli evaluate ...``: rank r evaluates videos r, r+K, ...; the results
are gathered on rank 0 (``torch.distributed.all_gather_object``; gloo on CPU, nccl on GPU), which writes the files.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..distributed import distributed_session
from ..io import atomic_output
from ..models.cotracker3 import CoTracker3Base
from ..predictor import build_model
from .datasets import EvalSample, open_dataset
from .metrics import average_metrics, badja_pck, compute_tapvid_metrics, fastcapture_accuracy, tapvid_points_from_tracks
from .protocols import protocol_tracks

DATASETS = ("tapvid_davis_first", "tapvid_davis_strided", "tapvid_kinetics_first", "badja", "fastcapture", "kubric",
            "synthetic")
VISIBILITY_THRESHOLD = 0.9


def query_mode_of(dataset: str) -> str:
    return "strided" if dataset.endswith("strided") else "first"


@torch.no_grad()
def predict_sample(
    model,
    sample: EvalSample,
    dataset: str,
    *,
    single_point: bool = True,
    iters: int = 6,
    batch_size: int = 16,
    resolution: Tuple[int, int] = (384, 512),
    device="cpu",
) -> Tuple[np.ndarray, np.ndarray]:
    """Track the sample's queries with a protocol; the predictions :func:`evaluate_sample` scores.

    The video is resized to ``resolution`` (bilinear, as the official evaluator), queries scaled by
    ``resolution / (H, W)``, tracks scaled back. Predicted visibility: probability > 0.9. CoTracker3 models follow
    their own protocol (:mod:`.protocols_v3`: ``vis * conf > 0.6``; ``batch_size`` unused).

    Returns:
        ``(tracks, visible)``: ``(T, N, 2) float32`` ``(x, y)`` in pixels of the sample's frames and ``(T, N) bool``,
        one column per query.
    """
    video = torch.from_numpy(np.ascontiguousarray(sample.video)).to(device).permute(0, 3, 1, 2).float()
    T, _, H, W = video.shape
    if isinstance(model, CoTracker3Base):  # the v3 protocol: its geometry, grids and visibility rule
        from .protocols_v3 import V3_EVAL_THRESHOLD, v3_protocol_tracks

        qf = torch.as_tensor(sample.query_frames, dtype=torch.long)
        xy = torch.as_tensor(sample.tracks, dtype=torch.float32)[qf, torch.arange(qf.shape[0])]
        queries = torch.cat([qf.float()[:, None], xy], -1)[None].to(device)
        tracks, score = v3_protocol_tracks(
            model, video[None], queries, single_point=single_point, backward=query_mode_of(dataset) == "strided",
            iters=iters, resolution=tuple(resolution),
        )
        return tracks.cpu().numpy(), (score > V3_EVAL_THRESHOLD).cpu().numpy()
    rh, rw = resolution
    resized = F.interpolate(video, (rh, rw), mode="bilinear", align_corners=False)[None]
    qf = torch.as_tensor(sample.query_frames, dtype=torch.long)
    N = qf.shape[0]
    xy = torch.as_tensor(sample.tracks, dtype=torch.float32)[qf, torch.arange(N)]  # (N, 2) at the query frames
    queries = torch.stack([qf.float(), xy[:, 0] * (rw / W), xy[:, 1] * (rh / H)], -1).to(device)
    tracks, vis = protocol_tracks(
        model, resized, queries, single_point=single_point, backward=query_mode_of(dataset) == "strided",
        iters=iters, batch_size=batch_size,
    )
    tracks[..., 0] *= W / float(rw)
    tracks[..., 1] *= H / float(rh)
    return tracks.cpu().numpy(), (vis > VISIBILITY_THRESHOLD).cpu().numpy()


def evaluate_sample(
    model,
    sample: EvalSample,
    dataset: str,
    *,
    single_point: bool = True,
    iters: int = 6,
    batch_size: int = 16,
    resolution: Tuple[int, int] = (384, 512),
    device="cpu",
) -> Dict[str, float]:
    """Track the sample's queries with a protocol (:func:`predict_sample`) and score them with the dataset's
    metrics (:func:`score_sample`)."""
    tracks, visible = predict_sample(model, sample, dataset, single_point=single_point, iters=iters,
                                     batch_size=batch_size, resolution=resolution, device=device)
    return score_sample(sample, dataset, tracks, visible)


def score_sample(sample: EvalSample, dataset: str, pred: np.ndarray, pred_vis: np.ndarray) -> Dict[str, float]:
    """The dataset's metrics of predicted tracks ``pred`` ``(T, N, 2)`` pixels of the sample's frames and
    visibility ``pred_vis`` ``(T, N)`` bool, for the sample's columns (any tracker: the model or a baseline)."""
    H, W = sample.video.shape[1:3]
    if dataset == "badja":
        return badja_pck(pred, sample.tracks, sample.visible, sample.extra["seg_area"])
    if dataset == "fastcapture":
        return fastcapture_accuracy(pred, sample.tracks, sample.visible)
    q_pts, gt_occ, gt_tr = tapvid_points_from_tracks(sample.tracks, sample.visible, sample.query_frames, (H, W))
    _, pred_occ, pred_tr = tapvid_points_from_tracks(pred, pred_vis, sample.query_frames, (H, W))
    metrics = compute_tapvid_metrics(q_pts, gt_occ, gt_tr, pred_occ, pred_tr, query_mode_of(dataset))
    return {k: float(np.asarray(v).reshape(-1)[0]) for k, v in metrics.items()}


def _truncate(sample: EvalSample, max_frames: Optional[int]) -> EvalSample:
    if max_frames is None or sample.video.shape[0] <= max_frames:
        return sample
    keep = sample.query_frames < max_frames
    extra = {k: (v[:max_frames] if isinstance(v, np.ndarray) and v.shape[:1] == sample.video.shape[:1] else v)
             for k, v in sample.extra.items()}
    return EvalSample(sample.name, sample.video[:max_frames], sample.tracks[:max_frames][:, keep],
                      sample.visible[:max_frames][:, keep], sample.query_frames[keep], extra)


def evaluate(
    dataset: str,
    *,
    root: Optional[str] = None,
    checkpoint: Optional[str] = None,
    model_name: Optional[str] = None,
    single_point: bool = True,
    iters: int = 6,
    batch_size: int = 16,
    resolution: Optional[Tuple[int, int]] = None,
    device: str = "cpu",
    max_videos: Optional[int] = None,
    max_frames: Optional[int] = None,
    out_dir: Optional[str] = None,
    dataset_kwargs: Optional[dict] = None,
) -> Dict:
    """Evaluate a checkpoint on a dataset. Returns ``{"per_video": {name: metrics}, "average": metrics, ...}`` on
    every rank; rank 0 also writes ``<out_dir>/result_eval_<dataset>.json`` and ``.md`` (atomically)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    with distributed_session(device) as (rank, world, _):  # on CUDA, "cuda" is then each rank's own GPU
        model, name = build_model(checkpoint, model_name, None)
        model = model.to(device).eval()
        resolution = tuple(resolution or model.config.model_resolution)  # (384, 512) for the official variants
        local: List[Tuple[str, Dict[str, float]]] = []
        start = time.time()
        samples = open_dataset(dataset, root, **(dataset_kwargs or {}))
        for i, sample in enumerate(tqdm(samples, desc=f"evaluate {dataset} (rank {rank})", unit="video", disable=None)):
            if max_videos is not None and i >= max_videos:
                break
            if i % world != rank:
                continue
            sample = _truncate(sample, max_frames)
            if len(sample.query_frames) == 0:
                continue
            local.append((sample.name, evaluate_sample(model, sample, dataset, single_point=single_point, iters=iters,
                                                       batch_size=batch_size, resolution=resolution, device=device)))
        gathered = [local]
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, local)
        per_video = {n: m for part in gathered for n, m in part}
        result = {
            "dataset": dataset,
            "model": name,
            "checkpoint": checkpoint,
            "protocol": "single_point" if single_point else "multi_point",
            "resolution": list(resolution),
            "num_videos": len(per_video),
            "world_size": world,
            "time_s": time.time() - start,
            "average": average_metrics(list(per_video.values())) if per_video else {},
            "per_video": per_video,
        }
        if rank == 0 and out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
            _atomic_write(os.path.join(out_dir, f"result_eval_{dataset}.json"),
                          json.dumps(result, indent=1, default=float))
            _atomic_write(os.path.join(out_dir, f"result_eval_{dataset}.md"), markdown_table(result))
        return result


def markdown_table(result: Dict) -> str:
    """A paper-style table: one row per video and the average; TAP-Vid metrics in %, as the paper reports them."""
    avg = result["average"]
    if "average_jaccard" in avg:
        cols = [("AJ", "average_jaccard"), ("<δ_avg^x", "average_pts_within_thresh"), ("OA", "occlusion_accuracy")]
    else:
        cols = [(k, k) for k in avg]
    head = "| video | " + " | ".join(c for c, _ in cols) + " |\n|---|" + "---|" * len(cols) + "\n"

    def row(name, m):
        vals = [m.get(k, float("nan")) for _, k in cols]
        return f"| {name} | " + " | ".join("nan" if math.isnan(v) else f"{100 * v:.1f}" for v in vals) + " |\n"

    body = "".join(row(n, m) for n, m in sorted(result["per_video"].items()))
    title = f"**{result['dataset']}** ({result['protocol']}, {result['model']}, {result['num_videos']} videos)\n\n"
    return title + head + body + row("**average**", avg)


def _atomic_write(path: str, text: str) -> None:
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
