import torch


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch"] = torch.__version__
    machine_info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    machine_info["torch_threads"] = torch.get_num_threads()
