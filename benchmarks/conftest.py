import os

import pytest
import torch


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch"] = torch.__version__
    machine_info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    machine_info["torch_threads"] = torch.get_num_threads()
    from benchmarks._common import cpu_name

    machine_info["cpu_name"] = cpu_name()  # the brand with the CPU family and model (brands alone can be ambiguous)


@pytest.fixture(scope="module")
def cpu_threads():
    """torch's intra-op threads for a module's CPU cases: ``COTRACKER_BENCH_THREADS``, default 1 (the shared CI box's
    two cores are slower with two threads competing with another process); restored afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("COTRACKER_BENCH_THREADS", "1")))
    yield torch.get_num_threads()
    torch.set_num_threads(old)
