"""Evaluation: TAP-Vid / BADJA / FastCapture metrics, dataset readers, the paper's protocols (batched), a runner.

``cotracker-fast evaluate --dataset NAME --root DIR --checkpoint FILE`` (or under ``torchrun`` to shard videos).
Heavy modules are imported on use: ``from cotracker_fast.evaluation.run import evaluate``.
"""
