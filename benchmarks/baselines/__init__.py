"""Baseline trackers for the speed and accuracy comparisons (not part of the installed package).

* :mod:`.pips` -- PIPs (Harley et al., ECCV 2022) as the official code computes it, with both chaining modes.
* :mod:`.raft` -- torchvision's RAFT, forward flows chained into tracks.
* Lucas-Kanade lives in the package (:mod:`cotracker_fast.baselines.lk`): the demo reports it too.
* :mod:`.flops` -- FLOP estimates for every method of the speed suite.

Every module is written from descriptions of the architectures and the papers; none
contains code from the official repositories.
"""
