"""Command-line interface: ``cotracker-fast track VIDEO ...``.

Frames are read with imageio as a stream and fed to the online predictor in chunks, so a long video never sits
whole in memory (only one window of frames and features, plus the tracks). ``--backward`` spools the original
frames to a disk-backed memory map (``T x H x W x 3`` bytes in the system temp folder) and runs a second
streaming pass over the reversed video, filling the frames before each point's first window exactly as the
offline predictor's ``backward_tracking`` does.

Bad input (a missing or unreadable video, a malformed queries or mask file, an unsupported output extension, an
option out of range, a device or backend that cannot run here) is reported as one line
``cotracker-fast: error: ...`` with exit status 2. Every path and option is checked before the model is built, so
such a mistake costs no tracking time. ``python -m cotracker_fast`` runs the same command line.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import ops
from .io import TRACK_EXTENSIONS, VideoReader, VideoWriter, load_mask, load_queries, save_tracks
from .models.checkpoint import CheckpointError
from .models.registry import list_models, model_name_from_checkpoint
from .online import CoTrackerOnlinePredictor
from .precision import parse_dtype_name, resolve_dtype
from .predictor import is_untrained

PROG = "cotracker-fast"
#: Exit status for bad arguments and bad input files (the status argparse gives for bad options).
USAGE_ERROR = 2


class InputError(ValueError):
    """The user's input cannot be tracked as given (e.g. a query frame past the end of the video); the command line
    reports it as one line with exit status 2."""


@dataclass
class TrackResult:
    """Tracks of one video: ``tracks`` ``(T, N, 2)`` (x, y) pixels, ``visibility`` ``(T, N)`` bool,
    ``queries`` ``(N, 3)`` (t, x, y) as tracked (grid points included), ``fps``, ``untrained``."""

    tracks: np.ndarray
    visibility: np.ndarray
    queries: np.ndarray
    fps: float
    untrained: bool


def _chunks(frames: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    buf: List[np.ndarray] = []
    for f in frames:
        buf.append(f)
        if len(buf) == size:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def _to_tensor(chunk: np.ndarray) -> torch.Tensor:
    """``(F, H, W, 3) uint8`` -> ``(1, F, 3, H, W)`` float32 0..255."""
    return torch.from_numpy(chunk).permute(0, 3, 1, 2)[None].float()


def _stream(online: CoTrackerOnlinePredictor, chunks: Iterable[np.ndarray], total_frames: Optional[int], desc: str):
    """Feed chunks, collect the emitted frames; the bar counts the frames read."""
    tracks, vis = [], []
    with tqdm(total=total_frames, desc=desc, unit="frame", disable=None) as bar:
        for chunk in chunks:
            t, v, _ = online.step(_to_tensor(chunk))
            tracks.append(t[0])
            vis.append(v[0])
            bar.update(chunk.shape[0])
        t, v, _ = online.finish()
        tracks.append(t[0])
        vis.append(v[0])
    return torch.cat(tracks).numpy(), torch.cat(vis).numpy()


#: ``--model`` choices: the model family and variant (default: the checkpoint's, or the shipped v1 weights).
CLI_MODELS = ("cotracker_v1", "cotracker3_offline", "cotracker3_online")


def resolve_cli_model(model: Optional[str], checkpoint: Optional[str]) -> Optional[str]:
    """The predictor ``model_name`` for ``--model``: ``None`` for v1 (the file name or ``--model-name`` says the
    variant), ``"cotracker3_offline"`` / ``"cotracker3_online"`` for CoTracker3. Without ``--model`` a CoTracker3
    checkpoint gives the variant its time table says (60 rows: offline, 16: online). Raises ValueError when the
    checkpoint is of the other family."""
    from .models.checkpoint import read_state_dict
    from .models.registry import checkpoint_family, resolve_v3_arguments

    if model is not None and model not in CLI_MODELS:
        raise ValueError(f"--model must be one of {CLI_MODELS}, got {model!r}")
    if checkpoint is None:
        return None if model in (None, "cotracker_v1") else model
    sd = read_state_dict(checkpoint)
    family = checkpoint_family(sd)
    if family == "v2":
        raise ValueError(f"--checkpoint {checkpoint!r} is a CoTracker2 checkpoint: not supported")
    if model is None:
        if family == "v1":
            return None
        offline, _ = resolve_v3_arguments(repr(checkpoint), sd, None, None)
        return "cotracker3_offline" if offline else "cotracker3_online"
    if (family == "v3") != model.startswith("cotracker3"):
        kind = "CoTracker3" if family == "v3" else "CoTracker v1"
        raise ValueError(f"--checkpoint {checkpoint!r} is a {kind} checkpoint, but --model is {model}")
    return None if model == "cotracker_v1" else model


def track_video(
    video_path: str,
    *,
    checkpoint: Optional[str] = None,
    model_name: Optional[str] = None,
    queries: Optional[np.ndarray] = None,
    grid_size: int = 0,
    grid_query_frame: int = 0,
    segm_mask: Optional[np.ndarray] = None,
    backward: bool = False,
    device: Optional[str] = None,
    backend: Optional[str] = None,
    dtype: Optional[torch.dtype] = None,
    max_frames: Optional[int] = None,
    model: Optional[str] = None,
) -> TrackResult:
    """Track points through a video file, streaming it from disk.

    ``model`` (one of :data:`CLI_MODELS`, default: the checkpoint's family and variant, or the shipped v1 weights)
    picks the model: v1 and ``cotracker3_online`` stream the video (memory flat in its length);
    ``cotracker3_offline`` attends over the whole clip at once, so it reads every frame into memory first.

    Args:
        video_path: a video file, GIF, image folder (see :class:`~cotracker_fast.io.VideoReader`).
        checkpoint / model_name: weights and variant (both ``None``: the shipped weights; ``checkpoint=None`` with
            an official ``model_name``: random weights, loudly flagged).
        queries: ``(N, 3)`` rows ``(t, x, y)`` in pixels of the video; or ``grid_size > 0`` for a grid at
            ``grid_query_frame`` (optionally restricted to ``segm_mask`` ``(H, W)`` bool).
        backward: also track backwards in time (see module docstring for the disk use).
    """
    if queries is None and grid_size <= 0:
        raise ValueError("give queries or grid_size > 0")
    v3_name = resolve_cli_model(model, checkpoint)
    if v3_name is not None:
        model_name = v3_name
    if v3_name == "cotracker3_offline":
        return _track_offline(video_path, checkpoint, queries, grid_size, grid_query_frame, segm_mask, backward,
                              device, backend, dtype, max_frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the untrained warning is reported by the caller
        online = CoTrackerOnlinePredictor(
            checkpoint, model_name=model_name, device=device, backend=backend, dtype=dtype
        )
    with VideoReader(video_path, max_frames=max_frames) as reader:
        H, W = reader.shape_hw
        fps = reader.fps
        total = reader.num_frames
        q = None if queries is None else torch.as_tensor(np.asarray(queries, np.float32))[None]
        mask = None if segm_mask is None else torch.as_tensor(np.asarray(segm_mask, bool))[None, None]
        if total is not None and q is not None and bool((q[..., 0] >= total).any()):
            raise InputError(f"a query frame is >= the number of frames ({total}) of {video_path!r}")
        online.start((H, W), q, grid_size=grid_size if q is None else 0, grid_query_frame=grid_query_frame,
                     segm_mask=mask)
        tracked_queries = online.tracked_queries[0]
        step = online.model.config.window_step
        spool = None
        frames: Iterable[np.ndarray] = reader
        if backward:
            spool = _Spool(H, W)
            frames = spool.tee(reader)
        tracks, vis = _stream(online, _chunks(frames, step), total, "tracking")
    T = tracks.shape[0]
    if q is not None and bool((q[..., 0] >= T).any()):
        raise InputError(f"a query frame is >= the number of frames ({T}) of {video_path!r}")
    if backward:
        try:
            online.start_backward()
            b_tracks, b_vis = _stream(online, _chunks(spool.reversed(), step), T, "backward")
        finally:
            spool.close()
        b_tracks, b_vis = b_tracks[::-1], b_vis[::-1]
        if online.family == "v3":  # every frame is predicted: the frames before each query frame come backward
            missing = np.arange(T)[:, None, None] < tracked_queries[:, 0].cpu().numpy()[None, :, None]
        else:
            missing = tracks == 0  # never predicted forward (frames before a point's first window)
        tracks = np.where(missing, b_tracks, tracks)
        vis = np.where(missing[..., 0], b_vis, vis)
    return TrackResult(tracks, vis, tracked_queries.cpu().numpy(), fps, untrained=is_untrained(checkpoint, model_name))


def _track_offline(video_path, checkpoint, queries, grid_size, grid_query_frame, segm_mask, backward, device,
                   backend, dtype, max_frames) -> TrackResult:
    """CoTracker3 offline: the whole clip in memory, one model call (two with ``backward``)."""
    from .predictor import CoTrackerPredictor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the untrained warning is reported by the caller
        pred = CoTrackerPredictor(checkpoint, model_name="cotracker3_offline", device=device, backend=backend,
                                  dtype=dtype)
    with VideoReader(video_path, max_frames=max_frames) as reader:
        fps = reader.fps
        frames = np.stack(list(tqdm(reader, total=reader.num_frames, desc="reading", unit="frame", disable=None)))
    T, H, W = frames.shape[:3]
    video = _to_tensor(frames)
    q = None if queries is None else torch.as_tensor(np.asarray(queries, np.float32))[None]
    if q is not None and bool((q[..., 0] >= T).any()):
        raise InputError(f"a query frame is >= the number of frames ({T}) of {video_path!r}")
    mask = None if segm_mask is None else torch.as_tensor(np.asarray(segm_mask, bool))[None, None]
    if q is not None:
        tracks, vis = pred(video, q, backward_tracking=backward)
    else:
        tracks, vis = pred(video, grid_size=grid_size, grid_query_frame=grid_query_frame, segm_mask=mask,
                           backward_tracking=backward)
        q = pred.to_video(pred.grid_queries(grid_size, grid_query_frame, 1, mask), (H, W), xy_at=1)
    untrained = checkpoint is None
    return TrackResult(tracks[0].numpy(), vis[0].numpy(), q[0].cpu().numpy(), fps, untrained=untrained)


class _Spool:
    """Disk-backed frame store for the backward pass (grows by doubling; deleted on close)."""

    def __init__(self, H: int, W: int):
        self.H, self.W, self.n, self.cap = H, W, 0, 64
        fd, self.path = tempfile.mkstemp(prefix="cotracker_fast_frames_", suffix=".u8")
        os.close(fd)
        self.mm = np.memmap(self.path, np.uint8, "w+", shape=(self.cap, H, W, 3))

    def tee(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for f in frames:
            if self.n == self.cap:
                self.mm.flush()
                self.cap *= 2
                self.mm = np.memmap(self.path, np.uint8, "r+", shape=(self.cap, self.H, self.W, 3))
            self.mm[self.n] = f
            self.n += 1
            yield f

    def reversed(self) -> Iterator[np.ndarray]:
        for i in range(self.n - 1, -1, -1):
            yield np.array(self.mm[i])

    def close(self) -> None:
        del self.mm
        if os.path.exists(self.path):
            os.remove(self.path)


def write_overlay(
    video_path: str, result: TrackResult, out_path: str, *, max_frames: Optional[int] = None
) -> Optional[np.ndarray]:
    """Re-read the video (streaming) and write the tracks over it: filled points visible, hollow occluded, trails.
    Returns the last drawn frame ``(H, W, 3) uint8`` (None for an empty video)."""
    from .viz import OverlayWriter

    has_pred = np.any(result.tracks != 0, axis=-1)
    with VideoReader(video_path, max_frames=max_frames) as reader, OverlayWriter(
        out_path, fps=result.fps, untrained=result.untrained
    ) as overlay:
        last = None
        frames = tqdm(reader, total=result.tracks.shape[0], desc="overlay", unit="frame", disable=None)
        for t, frame in enumerate(frames):
            last = overlay.write(frame, result.tracks[t], result.visibility[t], has_prediction=has_pred[t])
    return last


UNTRAINED_MESSAGE = (
    "WARNING: no checkpoint given: the model has RANDOM, UNTRAINED weights and the tracks are meaningless.\n"
    "         Pass --checkpoint cotracker_stride_4_wind_8.pth (official v1) for real tracks, or no --model-name\n"
    "         for the weights shipped with cotracker_fast."
)


def build_parser() -> argparse.ArgumentParser:
    """The ``cotracker-fast`` argument parser (sub-command ``track``)."""
    p = argparse.ArgumentParser(prog=PROG, description="Fast, faithful CoTracker v1 point tracking.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("track", help="track points through a video file")
    t.add_argument("video", help="video file (mp4, avi, mov, webm, gif, ...) or a folder of images")
    t.add_argument("--checkpoint", help="official cotracker_stride_*_wind_*.pth or our .safetensors")
    t.add_argument("--model", choices=CLI_MODELS, default=None,
                   help="model family: cotracker_v1, cotracker3_online (both stream the video from disk) or "
                        "cotracker3_offline (whole clip in memory); default: the checkpoint's")
    t.add_argument("--model-name", choices=list_models(), help="v1 variant, when the file name does not say")
    t.add_argument("--grid-size", type=int, default=0, help="track a G x G grid (default 10 without --queries)")
    t.add_argument("--grid-query-frame", type=int, default=0)
    t.add_argument("--queries", help="queries file (.csv/.txt/.npy/.json) with rows t,x,y in pixels")
    t.add_argument("--segm-mask", help="PNG mask: keep only grid points inside it")
    t.add_argument("--backward", action="store_true", help="also track backwards in time")
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    t.add_argument("--backend", default=None, help="ops backend: auto (default), torch, reference, ...")
    t.add_argument(
        "--dtype", choices=["auto", "fp32", "bf16", "fp16", "float32", "bfloat16", "float16"], default="auto",
        help="compute dtype. auto (default): bf16 on a CPU with native bf16 (AVX512-BF16/AMX/Arm BF16), fp32 "
        "elsewhere. bf16 keeps coordinates, correlation, the transformer's input and output layers and the "
        "visibility logits in fp32. Stated bound against fp32 on the demo clip: 0.1 px mean, 1 px p99, 99%% equal "
        "visibility flags. On the shipped weights (demo clip, 24 frames at 384x512 tracked at their 576x768, 256 "
        "points) bf16 tracks differ "
        "from fp32 by 0.076 px mean, 0.86 px p99, 99.98%% equal flags (benchmarks/bf16_accuracy.py); on harder clips "
        "(occluders, points leaving the frame) more than 1%% of the point-frames move by over 2 px (p99 4.5 px on "
        "validation clips, train/bf16_check.py); pass fp32 for the exact tracks. fp16 needs CUDA.")
    t.add_argument("--max-frames", type=int, default=None, help="only the first N frames")
    t.add_argument("--out", default="tracks.npz", help="tracks file: .npz, .csv or .json (default tracks.npz)")
    t.add_argument("--viz", default=None, help="write an overlay video (.mp4 or .gif)")

    e = sub.add_parser("evaluate", help="evaluate on a benchmark (TAP-Vid, BADJA, FastCapture, Kubric, synthetic)")
    e.add_argument("--dataset", required=True, choices=["tapvid_davis_first", "tapvid_davis_strided",
                                                         "tapvid_kinetics_first", "badja", "fastcapture", "kubric",
                                                         "synthetic"])
    e.add_argument("--root", default=None, help="dataset location (not needed for synthetic)")
    e.add_argument("--checkpoint", help="official cotracker_stride_*_wind_*.pth or our .safetensors")
    e.add_argument("--model", choices=CLI_MODELS, default=None,
                   help="model family (default: the checkpoint's); CoTracker3 is scored with its protocol")
    e.add_argument("--model-name", choices=list_models())
    e.add_argument("--protocol", choices=["single", "multi"], default="single",
                   help="single: the paper's single-target-point protocol (batched); multi: all queries at once")
    e.add_argument("--iters", type=int, default=6)
    e.add_argument("--batch-size", type=int, default=16, help="single-point problems per batch")
    e.add_argument("--resolution", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="model input resolution (default: the model's; official variants: 384 512)")
    e.add_argument("--device", default=None)
    e.add_argument("--max-videos", type=int, default=None)
    e.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each video")
    e.add_argument("--out-dir", default="eval_out")
    return p


class UsageError(Exception):
    """A bad option, path or input file found before any work started."""


def _error(message: str) -> int:
    """Report ``message`` as the one line ``cotracker-fast: error: ...`` on stderr; return the exit status."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return USAGE_ERROR


def _check_output(path: str, option: str, extensions: Sequence[str]) -> None:
    """``path`` has one of ``extensions`` and its folder exists (checked before tracking, not after)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in extensions:
        raise UsageError(f"{option} {path!r}: unsupported extension {ext or '(none)'!r}; use {', '.join(extensions)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path!r}: the folder {folder!r} does not exist")


def _check_at_least(value: Optional[int], option: str, minimum: int) -> None:
    if value is not None and value < minimum:
        raise UsageError(f"{option} must be >= {minimum}, got {value}")


def _check_weights(checkpoint: Optional[str], model_name: Optional[str], model: Optional[str] = None) -> None:
    """The checkpoint exists, is of ``--model``'s family, and (v1) its file name names a variant (or
    ``--model-name`` does)."""
    if model is not None and model.startswith("cotracker3") and model_name is not None:
        raise UsageError("--model-name names a v1 variant; it cannot be combined with --model " + model)
    if checkpoint is None:
        return
    if not os.path.isfile(checkpoint):
        raise UsageError(f"--checkpoint {checkpoint!r}: file not found")
    try:
        family = resolve_cli_model(model, checkpoint)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if family is not None:
        return
    if model_name is None:
        try:
            model_name_from_checkpoint(checkpoint)
        except ValueError as err:
            raise UsageError(f"--checkpoint: {err}") from None


def _resolve_device(device: Optional[str]) -> str:
    """``--device`` (default: cuda when available, else cpu), checked to exist on this machine."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r} is not a device name (cpu, cuda, cuda:1, ...)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device!r}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def _check_backend(backend: Optional[str], device: str) -> None:
    """A named ``--backend`` exists for every op and can run on ``device`` (the model would raise later)."""
    if backend is None:
        return
    dev = torch.device(device)
    for op in ("corr_sample", "attention"):
        try:
            ops.resolve(op, backend, dev, torch.float32)
        except (ops.BackendUnavailableError, ValueError, TypeError) as err:
            raise UsageError(f"--backend {backend!r}: {err}") from None


def _prepare_track(args) -> dict:
    """Check every option and input file of ``track`` and read the small ones; no model is built here.
    Returns the keyword arguments of :func:`track_video`."""
    if args.queries and args.grid_size:
        raise UsageError("give either --queries or --grid-size, not both")
    if args.segm_mask and args.queries:
        raise UsageError("--segm-mask selects grid points; it cannot be combined with --queries")
    _check_at_least(args.grid_size, "--grid-size", 0)
    _check_at_least(args.grid_query_frame, "--grid-query-frame", 0)
    _check_at_least(args.max_frames, "--max-frames", 1)
    _check_output(args.out, "--out", TRACK_EXTENSIONS)
    if args.viz:
        _check_output(args.viz, "--viz", VideoWriter.SUPPORTED)
    _check_weights(args.checkpoint, args.model_name, args.model)
    device = _resolve_device(args.device)
    _check_backend(args.backend, device)
    dtype = parse_dtype_name(args.dtype, device)
    try:
        resolve_dtype(dtype, device)  # fp16 on a CPU is refused here, before any work
    except ValueError as e:
        raise UsageError(f"--dtype {args.dtype}: {e}") from None
    try:
        queries = load_queries(args.queries) if args.queries else None
        mask = load_mask(args.segm_mask) if args.segm_mask else None
        # Opening the video decodes its first frame: a missing or corrupt file fails here, before any tracking.
        with VideoReader(args.video, max_frames=args.max_frames) as reader:
            hw = reader.shape_hw
            # Counting the frames of a video file takes a decoding pass: only when query frames need checking.
            need_count = queries is not None or args.grid_query_frame > 0
            total = reader.num_frames if need_count else None
    except (ValueError, OSError) as err:  # the readers name the file and what is wrong with it
        raise UsageError(str(err)) from None
    if mask is not None and tuple(mask.shape) != tuple(hw):
        raise UsageError(f"--segm-mask is {mask.shape[1]}x{mask.shape[0]} pixels, the video {hw[1]}x{hw[0]}")
    if total is not None:
        if queries is not None and bool((queries[:, 0] >= total).any()):
            raise UsageError(f"a query frame is >= the number of frames ({total}) of {args.video!r}")
        if queries is None and args.grid_query_frame >= total:
            raise UsageError(f"--grid-query-frame {args.grid_query_frame} is >= the number of frames ({total})")
    grid = args.grid_size if queries is not None or args.grid_size else 10
    return dict(
        checkpoint=args.checkpoint,
        model_name=args.model_name,
        queries=queries,
        grid_size=0 if queries is not None else grid,
        grid_query_frame=args.grid_query_frame,
        segm_mask=mask,
        backward=args.backward,
        device=device,
        backend=args.backend,
        dtype=dtype,
        max_frames=args.max_frames,
        model=args.model,
    )


def _untrained(args) -> bool:
    if args.checkpoint is None and args.model is not None and args.model.startswith("cotracker3"):
        return True
    return is_untrained(args.checkpoint, args.model_name)


def _track(args) -> int:
    kwargs = _prepare_track(args)
    if _untrained(args):
        print(UNTRAINED_MESSAGE, file=sys.stderr)
    result = track_video(args.video, **kwargs)
    save_tracks(args.out, result.tracks, result.visibility, queries=result.queries, fps=result.fps)
    T, N = result.visibility.shape
    print(f"tracked {N} points through {T} frames -> {args.out}")
    if args.viz:
        write_overlay(args.video, result, args.viz, max_frames=args.max_frames)
        print(f"overlay -> {args.viz}")
    return 0


def _evaluate(args) -> int:
    from .evaluation.run import evaluate

    _check_at_least(args.iters, "--iters", 1)
    _check_at_least(args.batch_size, "--batch-size", 1)
    _check_at_least(args.max_videos, "--max-videos", 1)
    _check_at_least(args.max_frames, "--max-frames", 1)
    if args.resolution is not None and min(args.resolution) < 1:
        raise UsageError(f"--resolution must be two positive sizes H W, got {args.resolution}")
    if args.root is not None and not os.path.exists(args.root):
        raise UsageError(f"--root {args.root!r}: not found")
    _check_weights(args.checkpoint, args.model_name, args.model)
    device = _resolve_device(args.device)
    if _untrained(args):
        print(UNTRAINED_MESSAGE, file=sys.stderr)
    model_name = resolve_cli_model(args.model, args.checkpoint) or args.model_name
    result = evaluate(
        args.dataset, root=args.root, checkpoint=args.checkpoint, model_name=model_name,
        single_point=args.protocol == "single", iters=args.iters, batch_size=args.batch_size,
        resolution=tuple(args.resolution) if args.resolution else None, device=device, max_videos=args.max_videos,
        max_frames=args.max_frames, out_dir=args.out_dir,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        shown = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy", "pck", "accuracy_3px")
        avg = ", ".join(f"{k} {result['average'][k]:.4f}" for k in shown if k in result["average"])
        print(f"{args.dataset}: {result['num_videos']} videos in {result['time_s']:.1f} s; {avg}")
        print(f"results -> {args.out_dir}/result_eval_{args.dataset}.json, .md")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cotracker-fast`` (and ``python -m cotracker_fast``); returns the exit status.

    Bad options and input files give one line ``cotracker-fast: error: ...`` on stderr and status 2: those found by
    the checks before any work, and those only found while tracking (a video whose length is not known up front
    and is shorter than a query frame, frames that fail to decode part-way, a checkpoint that does not match its
    variant). Other exceptions are bugs and keep their traceback."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "evaluate":
            return _evaluate(args)
        return _track(args)
    except (UsageError, InputError, CheckpointError, ops.BackendUnavailableError, OSError) as err:
        return _error(str(err))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
