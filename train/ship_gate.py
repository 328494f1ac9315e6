"""The two decisions at the end of a training stage, read from the saved validation scores.

``pick`` ranks candidates by their mean average Jaccard over several selection files
(``train/select_checkpoint.py --out``) and prints the winner::

    python train/ship_gate.py pick benchmarks/results/select-ship_small_p-val96x128.json \\
        benchmarks/results/select-ship_small_p-val192x256.json benchmarks/results/select-ship_small_p-val384x512.json

``gate`` compares a new calibrated file with the shipped one over the same validation sets, and copies the new file
over the shipped weights only if its mean is strictly higher::

    python train/ship_gate.py gate \\
        --new runs/ship_small_p_calibrated.safetensors --new-scores benchmarks/results/calibrate-ship_small_p.json \\
            benchmarks/results/select-ship_small_p-calibrated-val192x256.json ... \\
        --old runs/ship_small_o_calibrated.safetensors --old-scores benchmarks/results/calibrate-ship_small_o.json \\
            ... benchmarks/results/select-ship_small_p-val384x512.json=runs/ship_small_o_shipped.safetensors \\
        --ship-to cotracker_fast/assets/cotracker_fast_small.safetensors --out benchmarks/results/gate-ship_small_p.json

A score is a selection file (its ``candidates``) or a calibration file (``train/calibrate_visibility.py --out``: the
sweep's entry at the chosen bias, which scores the calibrated ``output`` file). A score names the file it reads;
``FILE=CANDIDATE`` reads another candidate's entry (the same weights saved under another name). The i-th new and
the i-th old score must come from the same validation set (config, clip count, seed): the gate refuses otherwise.

Each pair must also have been tracked at the same working resolution (a selection file's ``resolution``, else the
``model_resolution`` its photo clips were tracked at, else the clips' own size): a score of the new file at one
resolution says nothing about the old file at another. ``--across-resolutions`` allows the difference, for the one
decision that compares resolutions (the same weights tracked at two sizes). In the same way each pair must have
refined every window the same number of times (a selection file's ``iters``, 6 where it has none: the official
count every score used before the option existed); ``--across-iters`` allows the difference, for the decision that
compares iteration counts.

``--min-lead-se K`` asks more than a higher mean: the new mean must lead by more than K standard errors of the lead,
the noise of the validation clips themselves. On each set the clips pair up (both files list every clip's average
Jaccard in the same clip order, ``per_clip_average_jaccard``); the lead's standard error is that of the mean over
sets of the per-set mean paired difference, ``sqrt(sum_s var_s / n_s) / S`` (``var_s`` the sample variance of set
``s``'s ``n_s`` paired differences). It covers which clips were drawn, not a run's own randomness (its data seed),
so it is a floor on the noise, not all of it. Every score must then be a selection file with per-clip scores.

Nothing here runs a model; the scores are those measured by the two scripts above.
"""
import argparse
import json
import math
import os
import shutil
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks._common

from benchmarks._common import write_results  # noqa: E402

from cotracker_fast.io import atomic_output  # noqa: E402

#: The fields that identify a validation set in both kinds of score file.
SET_KEYS = ("config", "num_videos", "validation_seed")
#: Fields that only photo-validation files (``select_checkpoint.py --photo-dir``) have; None elsewhere.
PHOTO_SET_KEYS = ("photos", "clip")
ALL_SET_KEYS = SET_KEYS + PHOTO_SET_KEYS


def _read(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def validation_set(d: dict, path: str) -> Tuple:
    """``(config, num_videos, validation_seed, photos, clip)`` of a loaded selection or calibration file (the last
    two None unless it scored clips of validation photographs)."""
    missing = [k for k in SET_KEYS if k not in d]
    if missing:
        raise ValueError(f"{path}: not a selection or calibration file (no {', '.join(missing)})")
    return tuple(d[k] for k in SET_KEYS) + tuple(d.get(k) for k in PHOTO_SET_KEYS)


def candidate_scores(d: dict, path: str) -> Dict[str, float]:
    """Candidate -> average Jaccard in one loaded score file (``path`` names it in errors).

    A selection file gives every candidate it scored; a calibration file gives one entry, the calibrated ``output``
    file at the chosen bias.
    """
    if "candidates" in d:
        return {c["candidate"]: float(c["average_jaccard"]) for c in d["candidates"]}
    if "sweep" in d and "bias" in d and "output" in d:
        chosen = [s for s in d["sweep"] if s["bias"] == d["bias"]]
        if len(chosen) != 1:
            raise ValueError(f"{path}: the chosen bias {d['bias']} is not once in the sweep")
        return {d["output"]: float(chosen[0]["average_jaccard"])}
    raise ValueError(f"{path}: neither a selection file (candidates) nor a calibration file (sweep, bias, output)")


def per_clip_scores(d: dict, candidate: str) -> Optional[List[float]]:
    """``candidate``'s per-clip average Jaccards in a loaded selection file, None where the file has none (a
    calibration file, or a selection file written before they were saved)."""
    for c in d.get("candidates", ()):
        if c["candidate"] == candidate:
            return [float(v) for v in c["per_clip_average_jaccard"]] if "per_clip_average_jaccard" in c else None
    return None


def tracked_resolution(d: dict) -> Optional[List[int]]:
    """The working resolution a loaded score file tracked its clips at: ``resolution`` when
    ``train/select_checkpoint.py --resolution`` set it, else the ``model_resolution`` its photo clips were tracked
    at, else None (the clips' own size)."""
    res = d.get("resolution") or d.get("model_resolution")
    return list(res) if res else None


def tracked_iters(d: dict) -> int:
    """The refinement iterations per window a loaded score file tracked with: its ``iters``, else the official 6."""
    return int(d.get("iters", 6))


def score_of(spec: str, default: str) -> Tuple[str, str, float, Tuple, Optional[List[float]], Optional[List[int]],
                                                int]:
    """``(file, candidate, AJ, validation set, per-clip AJs or None, tracked resolution or None, iterations)`` for
    a score spec ``FILE`` or ``FILE=CANDIDATE`` (``default`` for the former)."""
    path, _, cand = spec.partition("=")
    cand = cand or default
    d = _read(path)
    table = candidate_scores(d, path)
    if cand not in table:
        raise ValueError(f"{path} has no score for {cand!r}; it scores {sorted(table)}")
    return (path, cand, table[cand], validation_set(d, path), per_clip_scores(d, cand), tracked_resolution(d),
            tracked_iters(d))


def lead_standard_error(pairs: Sequence[Tuple[Sequence[float], Sequence[float]]]) -> float:
    """Standard error of the mean over sets of the per-set mean paired difference ``new - old``, from each set's
    ``(new per-clip scores, old per-clip scores)`` (at least two clips a set)."""
    total = 0.0
    for new, old in pairs:
        n = len(new)
        diffs = [a - b for a, b in zip(new, old)]
        mean = sum(diffs) / n
        total += sum((x - mean) ** 2 for x in diffs) / (n - 1) / n
    return math.sqrt(total) / len(pairs)


def pick(paths: Sequence[str], candidates: Optional[Sequence[str]] = None) -> Tuple[str, Dict[str, float]]:
    """The candidate with the highest mean AJ over ``paths`` and every such mean (candidate -> mean AJ).

    Only candidates scored in every file compete (or those named in ``candidates``, which must be). Ties go to the
    candidate listed first (in ``candidates``, else in the first file).
    """
    if not paths:
        raise ValueError("paths: give at least one selection file")
    tables = [candidate_scores(_read(p), p) for p in paths]
    names = list(candidates) if candidates else [c for c in tables[0] if all(c in t for t in tables)]
    for c in names:
        absent = [p for p, t in zip(paths, tables) if c not in t]
        if absent:
            raise ValueError(f"candidate {c!r} has no score in {absent}")
    if not names:
        raise ValueError(f"no candidate is scored in every one of {list(paths)}")
    means = {c: sum(t[c] for t in tables) / len(tables) for c in names}
    return max(names, key=lambda c: means[c]), means


def gate(new: str, new_scores: Sequence[str], old: str, old_scores: Sequence[str], min_lead_se: float = 0.0,
         across_resolutions: bool = False, across_iters: bool = False) -> dict:
    """Compare ``new`` with ``old`` over paired validation sets; the record of the decision.

    ``new_scores[i]`` and ``old_scores[i]`` must score the same validation set. ``ship`` is true only if the new
    mean AJ is strictly higher, and with ``min_lead_se > 0`` only if it leads by more than ``min_lead_se`` standard
    errors of the lead (:func:`lead_standard_error`; every score must then carry per-clip scores). Paired scores
    tracked at different working resolutions (:func:`tracked_resolution`) are refused unless ``across_resolutions``,
    and those tracked with different iteration counts (:func:`tracked_iters`) unless ``across_iters``.
    """
    if not new_scores or len(new_scores) != len(old_scores):
        raise ValueError(f"new_scores and old_scores: give the same number of files (>= 1), got "
                         f"{len(new_scores)} and {len(old_scores)}")
    if not min_lead_se >= 0:
        raise ValueError(f"min_lead_se must be >= 0, got {min_lead_se}")
    sets, pairs = [], []
    for n_spec, o_spec in zip(new_scores, old_scores):
        n_file, n_cand, n_aj, n_set, n_clips, n_res, n_it = score_of(n_spec, new)
        o_file, o_cand, o_aj, o_set, o_clips, o_res, o_it = score_of(o_spec, old)
        if n_set != o_set:
            raise ValueError(f"{n_file} and {o_file} score different validation sets "
                             f"({dict(zip(ALL_SET_KEYS, n_set))} against {dict(zip(ALL_SET_KEYS, o_set))})")
        if n_res != o_res and not across_resolutions:
            raise ValueError(f"{n_file} tracked its clips at {n_res or 'their own size'} and {o_file} at "
                             f"{o_res or 'their own size'}: rescore both at one working resolution (or pass "
                             "--across-resolutions to compare resolutions)")
        if n_it != o_it and not across_iters:
            raise ValueError(f"{n_file} refined every window {n_it} times and {o_file} {o_it} times: rescore both "
                             "with one count (or pass --across-iters to compare iteration counts)")
        if min_lead_se > 0:
            for f, c, clips in ((n_file, n_cand, n_clips), (o_file, o_cand, o_clips)):
                if clips is None:
                    raise ValueError(f"{f}: no per-clip scores for {c!r} (min_lead_se needs selection files "
                                     "written by train/select_checkpoint.py with per_clip_average_jaccard)")
                if len(clips) != n_set[1] or len(clips) < 2:
                    raise ValueError(f"{f}: {len(clips)} per-clip scores for {c!r}, expected num_videos = "
                                     f"{n_set[1]} (>= 2)")
            pairs.append((n_clips, o_clips))
        sets.append({**dict(zip(ALL_SET_KEYS, n_set)),
                     "new": {"file": n_file, "candidate": n_cand, "average_jaccard": n_aj, "resolution": n_res,
                             "iters": n_it},
                     "old": {"file": o_file, "candidate": o_cand, "average_jaccard": o_aj, "resolution": o_res,
                             "iters": o_it}})
    new_mean = sum(s["new"]["average_jaccard"] for s in sets) / len(sets)
    old_mean = sum(s["old"]["average_jaccard"] for s in sets) / len(sets)
    record = {"new": new, "old": old, "sets": sets, "new_mean": new_mean, "old_mean": old_mean}
    if min_lead_se > 0:
        se = lead_standard_error(pairs)
        record.update(lead_standard_error=se, min_lead_se=min_lead_se,
                      ship=new_mean - old_mean > min_lead_se * se)
    else:
        record["ship"] = new_mean > old_mean
    return record


def copy_atomic(src: str, dest: str) -> None:
    """Copy ``src`` over ``dest`` so that ``dest`` is never half written."""
    with atomic_output(dest) as tmp:
        shutil.copyfile(src, tmp)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("pick", help="print the candidate with the highest mean AJ over selection files")
    pp.add_argument("scores", nargs="+", help="selection files (train/select_checkpoint.py --out)")
    pp.add_argument("--candidates", nargs="+", help="compete only these (default: those scored in every file)")
    pg = sub.add_parser("gate", help="ship the new file only if it beats the old one over the same sets")
    pg.add_argument("--new", required=True, help="the new calibrated weights file")
    pg.add_argument("--new-scores", nargs="+", required=True, help="its score files (FILE or FILE=CANDIDATE)")
    pg.add_argument("--old", required=True, help="the shipped weights, under the name their scores use")
    pg.add_argument("--old-scores", nargs="+", required=True, help="its score files, on the same sets in order")
    pg.add_argument("--min-lead-se", type=float, default=0.0, metavar="K",
                    help="ship only if the new mean leads by more than K standard errors of the paired per-clip "
                         "lead (default 0: any strictly higher mean; see above)")
    pg.add_argument("--across-resolutions", action="store_true",
                    help="allow paired scores tracked at different working resolutions (see above)")
    pg.add_argument("--across-iters", action="store_true",
                    help="allow paired scores tracked with different refinement iteration counts (see above)")
    pg.add_argument("--ship-to", help="copy --new here when it wins (default: decide and report only)")
    pg.add_argument("--out", help="save the decision as JSON")
    args = p.parse_args(argv)
    try:
        if args.cmd == "pick":
            best, means = pick(args.scores, args.candidates)
            for c, m in means.items():
                print(f"{100 * m:6.2f}  {c}", file=sys.stderr)
            print(best)
            return 0
        record = gate(args.new, args.new_scores, args.old, args.old_scores, args.min_lead_se,
                      args.across_resolutions, args.across_iters)
    except (OSError, ValueError, KeyError) as e:
        print(f"ship_gate: {e}", file=sys.stderr)
        return 2
    for s in record["sets"]:
        source = f"{len(s['photos'])} photographs" if s.get("photos") else s["config"]
        print(f"{source} ({s['num_videos']} clips): new {100 * s['new']['average_jaccard']:.1f}, "
              f"old {100 * s['old']['average_jaccard']:.1f}")
    verdict = "ships" if record["ship"] else "does not ship"
    margin = (f" (lead needed: more than {args.min_lead_se:g} x {100 * record['lead_standard_error']:.2f})"
              if args.min_lead_se > 0 else "")
    print(f"mean AJ: new {100 * record['new_mean']:.2f}, old {100 * record['old_mean']:.2f}{margin}: {args.new} "
          f"{verdict}")
    if record["ship"] and args.ship_to:
        copy_atomic(args.new, args.ship_to)
        record["shipped_to"] = args.ship_to
    if args.out:
        write_results(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
