"""Shared test helpers."""
import torch


@torch.no_grad()
def tame_random_weights_(model):
    """Make a randomly initialised CoTracker well-conditioned, in place, for equivalence tests.

    With random weights the official flow embedding (sin/cos at up to ~970 rad per feature cell) feeds the
    transformer directly, and the network is chaotic: a 1e-12 change of the input moves tracks by ~1 px after three
    windows, even in float64 (measured). Two changes make it tame while keeping every op exercised: the input
    columns of the sin/cos flow features are zeroed (the raw (dx, dy) columns stay), and the flow head is scaled by
    0.2. Measured: a 1e-3 input change then moves tracks by <2e-4 px, while tracks still move ~35 px per frame.
    Tests of exact parity with the untamed network use float64 and at most two windows instead.
    """
    model.updateformer.input_transform.weight[:, 2 : model.config.flow_dim] = 0
    model.updateformer.flow_head.weight.mul_(0.2)
    return model
