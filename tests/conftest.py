import os
import warnings

import pytest
import torch

# Without a GPU, Triton kernels are tested in the Triton interpreter on CPU tensors (read when kernels are defined,
# so it is set before any test imports them).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Tests pick backends explicitly; a developer's environment must not change what they check.
for _k in [k for k in os.environ if k.startswith("COTRACKER_FAST_BACKEND")]:
    del os.environ[_k]


@pytest.fixture(scope="session")
def random_state_dict():
    """Random weights for the official architecture (deterministic), shared by predictor tests."""
    from cotracker_fast.models.registry import create_model

    torch.manual_seed(1234)
    return create_model().state_dict()


@pytest.fixture
def make_predictor(random_state_dict):
    """Predictor factory with random weights and a small working resolution, so whole-pipeline tests stay fast
    on a 2-core CPU (the maths does not depend on the resolution)."""

    def make(cls=None, interp_shape=(64, 96), iters=2, **kw):
        from cotracker_fast.predictor import CoTrackerPredictor

        cls = cls or CoTrackerPredictor
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the "untrained weights" warning
            p = cls(None, model_name=kw.pop("model_name", "cotracker_stride_4_wind_8"), iters=iters, **kw)
        p.model.load_state_dict(random_state_dict)
        p.interp_shape = interp_shape
        return p

    return make


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread. Tests that check values, not speed: on the shared 2-core test machine every
    multi-threaded torch op waits for the busy second core (measured: ~12 ms per op under load, 100x slower than one
    thread), so they run single-threaded, as DataLoader workers do (test_data_synthetic's
    test_thread_count_does_not_change_results covers 2 threads)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

