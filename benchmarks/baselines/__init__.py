"""Baseline trackers for the speed and accuracy comparisons (not part of the installed package).

* :mod:`.pips` -- PIPs (Harley et al., ECCV 2022) as the official code computes it, with both chaining modes.
* :mod:`.raft` -- torchvision's RAFT, forward flows chained into tracks.
* :mod:`.lk` -- OpenCV pyramidal Lucas-Kanade with a forward-backward occlusion check.
* :mod:`.flops` -- FLOP estimates for every method of the speed suite.

Every module is written from the descriptions in ``/work/shared/spec/performance_model.md`` and the papers; none
contains code from the official repositories.
"""
