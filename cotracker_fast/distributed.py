"""Joining a ``torchrun`` process group, shared by training and evaluation."""
from __future__ import annotations

import os
from typing import Tuple

import torch
import torch.distributed as dist


def dist_info() -> Tuple[int, int, int]:
    """``(rank, world_size, local_rank)``; ``(0, 1, 0)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def init_distributed(device) -> Tuple[int, int, int]:
    """Join the ``torchrun`` process group when ``WORLD_SIZE > 1`` (NCCL on CUDA, gloo on CPU) and return
    :func:`dist_info`. On CUDA every rank first selects GPU ``LOCAL_RANK``, so ``"cuda"`` means its own GPU."""
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return dist_info()
