"""Build script for cotracker_fast.

The pure-Python package (``cotracker_fast``) is always installed, with ``kernels/`` (Triton) as
``cotracker_fast.kernels``. The CUDA extension ``cotracker_fast._C`` (``csrc/``: attention kernels) is compiled with
``nvcc`` when it is found and ``COTRACKER_FAST_NO_CUDA`` is not set; otherwise one message says it was skipped and the
ops use the Triton / PyTorch backends. The build itself (architectures from ``TORCH_CUDA_ARCH_LIST``, ninja,
``MAX_JOBS``, ``DEBUG``) lives in ``cotracker_fast/_cuda_build.py``, shared with the JIT loader.
"""
import importlib.util
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _builder():
    # loaded from its file: importing the cotracker_fast package would import torch, absent in pip's build env
    spec = importlib.util.spec_from_file_location("_cuda_build", ROOT / "cotracker_fast" / "_cuda_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CudaBuildExt(build_ext):
    """Builds ``cotracker_fast._C`` with nvcc (through ninja) instead of setuptools' compiler."""

    def build_extension(self, ext):
        _builder().build(self.get_ext_fullpath(ext.name), verbose=bool(self.verbose))


def _ext_modules():
    if os.environ.get("COTRACKER_FAST_NO_CUDA", "0") not in ("", "0"):
        print("cotracker_fast: COTRACKER_FAST_NO_CUDA is set; skipping the CUDA extension.")
        return []
    if _builder().nvcc_path() is None:
        print("cotracker_fast: nvcc not found; skipping the CUDA extension (Triton/PyTorch backends only).")
        return []
    return [Extension("cotracker_fast._C", sources=[str(p.relative_to(ROOT)) for p in _builder().sources()])]


setup(
    packages=["cotracker_fast", "cotracker_fast.models", "cotracker_fast.ops", "cotracker_fast.evaluation", "cotracker_fast.data",
              "cotracker_fast.baselines", "cotracker_fast.io",
              "cotracker_fast.training",
              "cotracker_fast.kernels"],
    package_dir={"cotracker_fast.kernels": "kernels"},
    package_data={"cotracker_fast": ["assets/*", "assets/heldout/*"]},
    ext_modules=_ext_modules(),
    cmdclass={"build_ext": CudaBuildExt},
)
