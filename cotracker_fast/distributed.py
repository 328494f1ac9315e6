"""Joining a ``torchrun`` process group, shared by training and evaluation."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Tuple

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



@contextlib.contextmanager
def distributed_session(device) -> Iterator[Tuple[int, int, int]]:
    """:func:`init_distributed` for the body of a ``with`` block, yielding ``(rank, world_size, local_rank)``.

    A group this call created is torn down on exit: after a normal exit every rank first waits at a barrier (rank 0
    may still be writing a checkpoint), then the group is destroyed, so no rank exits while gloo's or NCCL's threads
    still serve a peer (a process that exits with them alive aborts with ``terminate called without an active
    exception``). After an exception the group is destroyed without the barrier, which the other ranks may never
    reach. A group that existed before the call is left to its owner."""
    created = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not (dist.is_available() and dist.is_initialized())
    info = init_distributed(device)
    ok = False
    try:
        yield info
        ok = True
    finally:
        if created and dist.is_initialized():
            if ok:
                dist.barrier()
            dist.destroy_process_group()
