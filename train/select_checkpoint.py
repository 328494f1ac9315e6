"""Choose among candidate weights by their score on validation clips of a training config's distribution.

    python train/select_checkpoint.py --config train/configs/ship_small_c_mix.json --num-videos 20 \\
        runs/ship_small_a_camera.safetensors cotracker_fast/assets/cotracker_fast_small.safetensors \\
        runs/ship_small_c_mix/best.pt --out benchmarks/results/select-ship_small.json

The validation clips are those of :func:`cotracker_fast.training.trainer.validation_clip_scores` (the config's own
synthetic mix, no augmentation, a seed that neither training nor the held-out sets use), so the choice never looks at
the demo clip or at a held-out set. Candidates are ``.safetensors`` / ``.pth`` state dicts or training checkpoints
(``.pt`` holding ``"model"``) of the config's model variant. Prints one line per candidate and the winner (highest
average Jaccard); ``--out`` saves all scores, with every clip's average Jaccard in clip order
(``per_clip_average_jaccard``) so that ``train/ship_gate.py gate --min-lead-se`` can pair two candidates' clips.

``--photo-dir DIR`` scores on clips of real photographs instead: the held-out photo clips' look
(:func:`cotracker_fast.evaluation.datasets.read_photo_clips`, 24 frames of 256x320 by default, tracked at the model's
working resolution as the held-out sets are) made from DIR's photographs, which must be neither training photographs
(the config's ``photo_dir``) nor the demo's or held-out ones (``train/fetch_photos.sh --validation`` fetches such a
set). Static and Lucas-Kanade scores on the same clips are saved for context.

``--resolution H W`` tracks every clip at that working resolution instead, for choosing the resolution the
predictors resize to (the model's ``model_resolution``) on validation clips alone. ``--iters K`` refines every window
K times instead of the official 6, for choosing the count the predictors run the same way.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks._common
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling script calibrate_visibility

from benchmarks._common import write_results  # noqa: E402
from calibrate_visibility import config_for_weights, read_weights  # noqa: E402

from cotracker_fast.models.cotracker import CoTracker
from cotracker_fast.training.data import check_validation_photos, photo_files
from cotracker_fast.training.trainer import VALIDATION_SEED, TrainConfig, validation_clip_scores

KEYS = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")


def load_model(path: str, cfg: TrainConfig) -> CoTracker:
    """The model of ``cfg`` (with the model overrides the file records, if any) holding the weights at ``path``."""
    state, meta = read_weights(path)
    model = CoTracker(config_for_weights(cfg, meta).model_config())
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})  # strict
    return model


def _static_prediction(sample) -> tuple:
    """The "points stay at their query, always visible" baseline of one sample: ``(tracks (T, N, 2), visible)``."""
    import numpy as np

    start = sample.tracks[sample.query_frames, np.arange(sample.tracks.shape[1])]  # (N, 2) at the query frames
    return np.broadcast_to(start[None], sample.tracks.shape).copy(), np.ones(sample.visible.shape, bool)


def _static_scores(cfg: TrainConfig, num_videos: int) -> dict:
    """The "points stay at their query, always visible" baseline on the same validation clips."""
    from cotracker_fast.evaluation.datasets import read_synthetic
    from cotracker_fast.evaluation.metrics import average_metrics
    from cotracker_fast.evaluation.run import score_sample
    from cotracker_fast.training.trainer import validation_config

    scores = []
    for s in read_synthetic(num_videos, num_frames=cfg.num_frames, size_hw=cfg.size_hw, seed=VALIDATION_SEED,
                            config=validation_config(cfg)):
        scores.append(score_sample(s, "synthetic", *_static_prediction(s)))
    avg = average_metrics(scores)
    static = {k: float(avg[k]) for k in KEYS}
    print(json.dumps({"candidate": "static (context, not a candidate)", **static}), flush=True)
    return static


def _row(path: str, per_clip: list, time_s: float) -> dict:
    """A candidate's saved scores: the averages of ``KEYS`` over the clips, each clip's average Jaccard (in clip
    order, so two candidates' clip scores pair up), and the time taken."""
    from cotracker_fast.evaluation.metrics import average_metrics

    avg = average_metrics(per_clip)
    return {"candidate": path, **{k: float(avg[k]) for k in KEYS},
            "per_clip_average_jaccard": [float(c["average_jaccard"]) for c in per_clip], "time_s": time_s}


def _print_row(row: dict) -> None:
    print(json.dumps({k: v for k, v in row.items() if k != "per_clip_average_jaccard"}), flush=True)


def _config_scores(cfg: TrainConfig, args) -> list:
    """Candidates' scores on the config's own validation clips (:func:`validation_clip_scores`)."""
    rows = []
    for path in args.candidates:
        model = load_model(path, cfg)  # strict: a candidate of another variant fails here
        t0 = time.time()
        per = validation_clip_scores(model.eval(), cfg, torch.device("cpu"), args.num_videos, iters=args.iters,
                                     resolution=args.resolution)
        rows.append(_row(path, per, time.time() - t0))
        _print_row(rows[-1])
    return rows


def _photo_scores(cfg: TrainConfig, args) -> tuple:
    """Candidates', static's and Lucas-Kanade's scores on ``args.num_videos`` clips of ``args.photo_dir``."""
    import numpy as np
    from tqdm import tqdm

    from cotracker_fast.baselines.lk import track_lk
    from cotracker_fast.evaluation.datasets import read_photo_clips
    from cotracker_fast.evaluation.metrics import average_metrics
    from cotracker_fast.evaluation.run import evaluate_sample, score_sample

    photos = photo_files(args.photo_dir)
    if not photos:
        raise SystemExit(f"--photo-dir {args.photo_dir!r} holds no .jpg/.jpeg/.png file")
    training = list(photo_files(cfg.photo_dir)) if cfg.photo_dir else []
    for folder in args.training_photo_dir:
        more = photo_files(os.path.expanduser(folder))
        if not more:
            raise SystemExit(f"--training-photo-dir {folder!r} holds no .jpg/.jpeg/.png file")
        training += more
    check_validation_photos(photos, tuple(training))
    samples = list(read_photo_clips(photos, args.num_videos, num_frames=args.num_frames, size_hw=tuple(args.size),
                                    seed=VALIDATION_SEED))
    res = args.resolution or tuple(cfg.model_config().model_resolution)
    rows = []
    for path in args.candidates:
        model = load_model(path, cfg)  # strict: a candidate of another variant fails here
        model.eval()
        t0 = time.time()
        with torch.no_grad():
            per = [evaluate_sample(model, s, "synthetic", single_point=False, iters=args.iters, resolution=res,
                                   device="cpu")
                   for s in tqdm(samples, desc=os.path.basename(path), unit="clip")]
        rows.append(_row(path, per, time.time() - t0))
        _print_row(rows[-1])
    static, lk = [], []
    for s in samples:
        static_tracks, static_visible = _static_prediction(s)
        static.append(score_sample(s, "synthetic", static_tracks, static_visible))
        queries = np.concatenate([s.query_frames[:, None].astype(np.float32), static_tracks[0]], 1)  # (t, x, y)
        lk.append(score_sample(s, "synthetic", *track_lk(s.video, queries)))
    context = {name: {k: float(average_metrics(v)[k]) for k in KEYS} for name, v in (("static", static),
                                                                                       ("lucas_kanade", lk))}
    for name, sc in context.items():
        print(json.dumps({"candidate": f"{name} (context, not a candidate)", **sc}), flush=True)
    extra = {"photos": [os.path.basename(p) for p in photos], "clip": {"num_frames": args.num_frames,
             "size_hw": list(args.size)}, "model_resolution": list(res), "lucas_kanade": context["lucas_kanade"]}
    return rows, context["static"], extra


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("candidates", nargs="+", help="weights files or training checkpoints")
    p.add_argument("--config", required=True, help="the training config whose validation clips decide")
    p.add_argument("--num-videos", type=int, default=20)
    p.add_argument("--out", default=None)
    p.add_argument("--photo-dir", default=None, help="score on clips of these validation photographs (see above)")
    p.add_argument("--size", type=int, nargs=2, default=(256, 320), metavar=("H", "W"),
                   help="photo clips' frame size (with --photo-dir)")
    p.add_argument("--num-frames", type=int, default=24, help="photo clips' length (with --photo-dir)")
    p.add_argument("--resolution", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="track every clip at this working resolution in pixels (default: the config's clips at "
                        "their own size, photo clips at the model's working resolution); scores are computed in "
                        "the TAP-Vid 256x256 space, so they compare across resolutions")
    p.add_argument("--iters", type=int, default=6,
                   help="refinement iterations per window every candidate tracks with (default: the official 6)")
    p.add_argument("--training-photo-dir", action="append", default=[], metavar="DIR",
                   help="another folder of photographs the candidates trained on (repeatable; with --photo-dir the "
                        "validation photographs must differ from these too, besides the config's photo_dir)")
    args = p.parse_args(argv)
    if args.num_videos < 1:
        raise SystemExit("--num-videos must be >= 1")
    if args.iters < 1:
        raise SystemExit(f"--iters must be >= 1 (refinement iterations per window), got {args.iters}")
    if args.resolution is not None:
        if min(args.resolution) < 16 or any(v % 8 for v in args.resolution):
            raise SystemExit(f"--resolution must be two multiples of 8, each >= 16 (H W pixels), got {args.resolution}")
        args.resolution = tuple(args.resolution)
    cfg = TrainConfig.from_json(args.config)
    if args.photo_dir is not None:
        args.photo_dir = os.path.expanduser(args.photo_dir)
        rows, static, extra = _photo_scores(cfg, args)
    else:
        rows, static, extra = _config_scores(cfg, args), _static_scores(cfg, args.num_videos), {}
    best = max(rows, key=lambda r: r["average_jaccard"])
    print(f"best by validation average Jaccard: {best['candidate']} ({100 * best['average_jaccard']:.1f})")
    if args.out:
        write_results(args.out, {"config": args.config, "num_videos": args.num_videos, "photo_dir": args.photo_dir,
                                 "resolution": list(args.resolution) if args.resolution else None,
                                 "iters": args.iters, "validation_seed": VALIDATION_SEED, "candidates": rows,
                                 "static": static, **extra,
                                 "best": best["candidate"],
                                 "date": time.strftime("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
